package pyclient

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/storagegen/storagegen/internal/pyinterop"
	"github.com/storagegen/storagegen/runtime"
)

// The cross-language tests run the typed clients that go generate makes
// from one schema (internal/pyinterop/schema.yaml): its Go package and its
// Python package (internal/pyinterop/py/pyinterop), through a real
// redis-server. The Python side is testdata/xlang.py.

var (
	india    = time.FixedZone("", 5*3600+30*60)
	west     = time.FixedZone("", -(23*3600 + 59*60))
	ams1936  = time.FixedZone("", 19*60+32) // an offset with seconds: written in UTC
	nanoInd  = time.Date(2026, 3, 4, 5, 6, 7, 123456789, india)
	nanoUTC  = time.Date(2026, 3, 4, 23, 59, 59, 999999999, time.UTC)
	westEnd  = time.Date(9999, 12, 31, 23, 59, 59, 999999999, west)
	ams      = time.Date(1936, 5, 1, 12, 0, 0, 1, ams1936)
	text     = "h\u00e9 \u2028 <&> \x7f \x00 \U0001F600 \"\\ \u00a0\ufeff"
	beyond53 = int64(1<<53 + 1)
)

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// goValues are the values of the trip by payload type and name: the very
// values xlang.py's values() builds in Python. Required slices and maps are
// empty, not nil (Python has one value for both); the Envelope
// "nil_required", which Go pushes and Python does not build, has nil ones.
func goValues() map[string]map[string]any {
	scalars := map[string]pyinterop.Scalars{
		"max": {Flag: true, Text: text, I: math.MaxInt, I32: math.MaxInt32, I64: math.MaxInt64, U32: math.MaxUint32, U64: math.MaxUint64,
			F32: -0.1, F64: 5e-324, Raw: allBytes(), At: nanoInd,
			Value: map[string]any{"n": 1.5, "big": 1e300, "int": 3.0, "list": []any{"x", true, nil, map[string]any{}}}},
		"min": {Text: "", I: math.MinInt, I32: math.MinInt32, I64: math.MinInt64, F32: 16777216, F64: -1e21, Raw: []byte{0}, At: westEnd, Value: "s"},
		"beyond53": {Flag: true, Text: "\U0010FFFF", I: -int(beyond53), I32: -1, I64: beyond53, U32: 1, U64: 1<<63 + 1,
			F32: 0.5, F64: 0.1, Raw: []byte{}, At: ams, Value: []any{}},
		"zero": {Raw: []byte{}},
	}
	innerNano := pyinterop.Inner{Name: "i", At: nanoInd}
	optionals := map[string]pyinterop.Optionals{
		"empty": {},
		"set": {Flag: true, Text: "t", I64: math.MinInt64, U64: math.MaxUint64, F64: -0.5, At: nanoInd, Raw: []byte{}, Tags: []string{},
			Meta: map[string]any{}, Value: false, Inner: innerNano},
		"full": {Flag: true, Text: text, I64: beyond53, U64: 1, F64: 1e300, At: ams, Raw: []byte{1, 2}, Tags: []string{"a", ""},
			Meta: map[string]any{"k": []any{1.0, "v"}, "n": nil}, Value: map[string]any{"x": nil}, Inner: pyinterop.Inner{At: nanoUTC}},
	}
	nested := map[string]pyinterop.Nested{
		"full": {Inner: pyinterop.Inner{Name: "in", At: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
			List:   []pyinterop.Inner{{Name: "a"}, {Name: "b", At: nanoInd}},
			ByName: map[string]pyinterop.Inner{"x": {Name: "x"}, "": {}, "\u00e9{}%": innerNano},
			Matrix: [][]int64{{math.MinInt64, 0, math.MaxInt64}, {}, {beyond53}},
			Deep:   map[string][]map[string]time.Time{"d": {{"t": nanoInd, "w": westEnd}, {}}, "": {}},
			Class:  "c", ToJSON: "j", Type: -7},
		"min": {List: []pyinterop.Inner{}, ByName: map[string]pyinterop.Inner{}, Matrix: [][]int64{}, Deep: map[string][]map[string]time.Time{}},
	}
	sparse := pyinterop.Envelope{RunID: "\u00e9", Row: math.MinInt64, SentAt: westEnd, Data: map[string]any{}, Scalars: scalars["zero"],
		Opts: []pyinterop.Optionals{}, Nested: nested["min"], Times: []time.Time{}, Counts: map[string]uint64{}, Blobs: [][]byte{},
		Items: []any{}, Ratios: map[string]float32{}}
	envelope := map[string]pyinterop.Envelope{
		"full": {RunID: "run-1", Row: math.MaxInt64, SentAt: nanoUTC,
			Data:    map[string]any{"k": []any{1.0, "v", nil, true}, "nested": map[string]any{"a": map[string]any{}}, "f": 0.25, "big": 1e300},
			Scalars: scalars["max"], Opts: []pyinterop.Optionals{optionals["empty"], optionals["set"], optionals["full"]}, Nested: nested["full"],
			Times:  []time.Time{nanoUTC, nanoInd, westEnd, ams, {}},
			Counts: map[string]uint64{"max": math.MaxUint64, "zero": 0, "\u00e9": uint64(beyond53)},
			Blobs:  [][]byte{{}, {0, 255}, allBytes()}, Items: []any{1.0, "x", nil, false, []any{}, map[string]any{}},
			Ratios: map[string]float32{"a": 0.5, "b": -0.1}, Note: "n", Extra: nested["min"]},
		"sparse": sparse,
		"naive_free": {RunID: "r", Row: -beyond53, SentAt: ams, Data: map[string]any{"t": "2026-01-02T03:04:05"}, Scalars: scalars["beyond53"],
			Opts: []pyinterop.Optionals{optionals["full"]}, Nested: nested["min"], Times: []time.Time{{}}, Counts: map[string]uint64{"": 1},
			Blobs: [][]byte{{}}, Items: []any{map[string]any{"deep": []any{[]any{[]any{}}}}}, Ratios: map[string]float32{"max": math.MaxFloat32},
			Extra: nested["full"]},
	}
	out := map[string]map[string]any{"Scalars": {}, "Optionals": {}, "Nested": {}, "Envelope": {}}
	for k, v := range scalars {
		out["Scalars"][k] = v
	}
	for k, v := range optionals {
		out["Optionals"][k] = v
	}
	for k, v := range nested {
		out["Nested"][k] = v
	}
	for k, v := range envelope {
		out["Envelope"][k] = v
	}
	return out
}

// nilRequired is an Envelope with nil slices and maps (and a zero Scalars
// whose Raw is nil) in required fields, which Go writes as null and Python
// reads as empty: Python expects "sparse" with run_id "nil".
func nilRequired() pyinterop.Envelope {
	return pyinterop.Envelope{RunID: "nil", Row: math.MinInt64, SentAt: westEnd}
}

// wireOffset is the offset a time keeps on the wire: its own, or UTC when
// it has seconds (RFC 3339 offsets have none).
func wireOffset(t time.Time) int {
	if _, off := t.Zone(); off%60 == 0 {
		return off
	}
	return 0
}

// exact compares values as the codec promises them: nil and empty apart,
// times as instant and offset on the wire (with nanoseconds), floats
// (including float32) exactly.
var exact = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) && wireOffset(a) == wireOffset(b) }),
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// xlangTuples are the argument tuples of each side, as xlang.py's tuples().
func xlangTuples(side string) (mixed, edge [2]string, tenant string, events int) {
	return [2]string{side + "_{src}%", "t:1"}, [2]string{side + "_node_5", "node_8{x}%*é"}, side + "-tenant", math.MaxInt
}

func xlangKeys(s *pyinterop.Store, side string) map[string]any {
	mixed, edge, tenant, events := xlangTuples(side)
	return map[string]any{
		"mixed":  s.Queues.Mixed(mixed[0], mixed[1]).Key(),
		"edge":   s.Queues.Edge(edge[0], edge[1]).Key(),
		"tasks":  s.Queues.Tasks(tenant).Key(),
		"jobs":   s.Queues.Jobs(tenant).ShardKeys(),
		"events": s.Queues.Events(side, events).Key(),
		"output": s.Caches.Output(side + "-full").Key(),
		"latest": s.Caches.Latest(side + "-set").Key(),
	}
}

// xlangEnv returns what xlang.py needs: the generated Python package of the
// test schema on PYTHONPATH.
func xlangEnv() []string {
	return []string{"PYTHONPATH=" + filepath.Join(Root(), "internal", "pyinterop", "py")}
}

func newXlangStore(t *testing.T, addr string) (*runtime.DataStore, *pyinterop.Store) {
	t.Helper()
	ds, err := runtime.New(runtime.Options{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds, pyinterop.New(ds)
}

// TestTypedTrip: every payload type of the test schema, with its edge
// values, written by the typed Go client and read by the typed Python one
// and the other way round, through an at-most-once queue of each layout
// (tagged and plain), an unsharded and a sharded at-least-once queue, and
// caches of each layout; each side compares what it reads with its own
// copy of the values field by field. Python refuses naive datetimes and
// out-of-range ints before sending anything.
func TestTypedTrip(t *testing.T) {
	py := Python(t)
	srv := startServer(t)
	_, s := newXlangStore(t, srv.Addr)
	ctx := context.Background()
	vals := goValues()
	envs := map[string]pyinterop.Envelope{"nil_required": nilRequired()}
	for k, v := range vals["Envelope"] {
		envs[k] = v.(pyinterop.Envelope)
	}

	// Go writes with the "go" tuples.
	mixed, edge, tenant, events := xlangTuples("go")
	var ordered []pyinterop.Envelope
	for _, name := range sortedKeys(envs) {
		ordered = append(ordered, envs[name])
		if err := s.Queues.Tasks(tenant).PushID(ctx, name, envs[name]); err != nil {
			t.Fatal(err)
		}
		if err := s.Caches.Output("go-"+name).Set(ctx, envs[name]); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []runtime.Queue[pyinterop.Envelope]{s.Queues.Mixed(mixed[0], mixed[1]), s.Queues.Edge(edge[0], edge[1])} {
		if err := q.PushMany(ctx, ordered...); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range sortedKeys(vals["Nested"]) {
		if err := s.Queues.Events("go", events).Push(ctx, vals["Nested"][name].(pyinterop.Nested)); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range vals["Scalars"] {
		if err := s.Queues.Jobs(tenant).PushID(ctx, name, v.(pyinterop.Scalars)); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range vals["Optionals"] {
		if err := s.Caches.Latest("go-"+name).Set(ctx, v.(pyinterop.Optionals)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Caches.Forever().Set(ctx, pyinterop.Inner{Name: "forever", At: nanoInd}); err != nil {
		t.Fatal(err)
	}

	// Python reads and checks them, then writes its own with the "py" tuples.
	out := runPython(t, py, filepath.Join(Root(), "internal", "pyclient", "testdata"), xlangEnv(), 2*time.Minute,
		"xlang.py", srv.Addr, "trip")
	var r struct {
		Errors  []string          `json:"errors"`
		Checked int               `json:"checked"`
		Keys    map[string]any    `json:"keys"`
		GoKeys  map[string]any    `json:"go_keys"`
		Refused map[string]string `json:"refused"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	for _, e := range r.Errors {
		t.Errorf("Python read another value than Go wrote: %s", e)
	}
	if want := 4*len(envs) + len(vals["Nested"]) + len(vals["Scalars"]) + len(vals["Optionals"]) + 1; r.Checked != want {
		t.Errorf("Python checked %d values, want %d", r.Checked, want)
	}
	for side, keys := range map[string]map[string]any{"py": r.Keys, "go": r.GoKeys} {
		b, _ := json.Marshal(xlangKeys(s, side))
		var want map[string]any
		_ = json.Unmarshal(b, &want)
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Errorf("Python's keys for the %q tuples differ from Go's (-Go +Python):\n%s", side, diff)
		}
	}
	for what, msg := range r.Refused {
		field := map[string]string{"sent_at": "Envelope.sent_at", "nested": "Envelope.scalars.at", "times": "Envelope.times[1]",
			"u64": "Envelope.scalars.u64", "i32": "Envelope.scalars.i32", "row": "Envelope.row"}[what]
		if !strings.Contains(msg, field) || (strings.HasSuffix(field, "at") || what == "times") && !strings.Contains(msg, "naive") {
			t.Errorf("Python's refusal of %s: %q; want an EncodeError naming %s", what, msg, field)
		}
	}
	if len(r.Refused) != 6 {
		t.Errorf("Python refused %v; want 6 refusals", r.Refused)
	}

	// Go reads what Python wrote and compares it with its own values.
	pyEnvs := vals["Envelope"]
	mixed, edge, tenant, _ = xlangTuples("py")
	for qname, q := range map[string]runtime.Queue[pyinterop.Envelope]{"mixed": s.Queues.Mixed(mixed[0], mixed[1]), "edge": s.Queues.Edge(edge[0], edge[1])} {
		got, err := q.PopMany(ctx, len(pyEnvs)+1, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", qname, err)
		}
		if len(got) != len(pyEnvs) {
			t.Errorf("%s: Go popped %d of Python's %d values", qname, len(got), len(pyEnvs))
		}
		for i, name := range sortedKeys(pyEnvs)[:min(len(got), len(pyEnvs))] {
			if diff := cmp.Diff(pyEnvs[name], got[i], exact); diff != "" {
				t.Errorf("py->go %s[%s] (-want +got):\n%s", qname, name, diff)
			}
		}
	}
	gotN, err := s.Queues.Events("py", events).PopMany(ctx, 10, 2*time.Second)
	if err != nil || len(gotN) != len(vals["Nested"]) {
		t.Fatalf("events: %d values, %v", len(gotN), err)
	}
	for i, name := range sortedKeys(vals["Nested"]) {
		if diff := cmp.Diff(vals["Nested"][name], gotN[i], exact); diff != "" {
			t.Errorf("py->go events[%s] (-want +got):\n%s", name, diff)
		}
	}
	receiveTyped(t, s.Queues.Tasks(tenant), pyEnvs, "tasks")
	receiveTyped(t, s.Queues.Jobs(tenant), vals["Scalars"], "jobs")
	for name, want := range pyEnvs {
		got, ok, err := s.Caches.Output("py-" + name).Get(ctx)
		if err != nil || !ok {
			t.Fatalf("output[py-%s]: %v, %v", name, ok, err)
		}
		if diff := cmp.Diff(want, got, exact); diff != "" {
			t.Errorf("py->go output[%s] (-want +got):\n%s", name, diff)
		}
	}
	for name, want := range vals["Optionals"] {
		c := s.Caches.Latest("py-" + name)
		got, ok, err := c.Get(ctx)
		if err != nil || !ok {
			t.Fatalf("latest[py-%s]: %v, %v", name, ok, err)
		}
		if diff := cmp.Diff(want, got, exact); diff != "" {
			t.Errorf("py->go latest[%s] (-want +got):\n%s", name, diff)
		}
		if ttl, err := c.TTL(ctx); err != nil || ttl <= 0 || ttl > 90*time.Second {
			t.Errorf("latest[py-%s]: TTL %v, %v; want the schema's 90s", name, ttl, err)
		}
	}
	if got, ok, err := s.Caches.Forever().Get(ctx); err != nil || !ok || !cmp.Equal(pyinterop.Inner{Name: "forever-py", At: ams}, got, exact) {
		t.Errorf("forever: %+v, %v, %v", got, ok, err)
	}
	t.Logf("Python checked %d values Go wrote; Go checked %d values Python wrote", r.Checked,
		2*len(pyEnvs)+len(vals["Nested"])+len(pyEnvs)+len(vals["Scalars"])+len(pyEnvs)+len(vals["Optionals"])+1)
}

// receiveTyped receives every value of want (by ID) from q with Go, acks
// it, and compares it with want.
func receiveTyped[T any, V any](t *testing.T, q runtime.ReliableQueue[T], want map[string]V, name string) {
	t.Helper()
	ctx := context.Background()
	seen := map[string]bool{}
	for range 50 {
		if len(seen) >= len(want) {
			break
		}
		ds, err := q.ReceiveMany(ctx, 10, time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, d := range ds {
			w, ok := want[d.ID]
			if !ok || d.Attempt != 1 || seen[d.ID] {
				t.Errorf("%s: delivery %q attempt %d", name, d.ID, d.Attempt)
			} else if diff := cmp.Diff(any(w), any(d.Value), exact); diff != "" {
				t.Errorf("py->go %s[%s] (-want +got):\n%s", name, d.ID, diff)
			}
			seen[d.ID] = true
			if err := d.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := sortedKeys(seen); !slices.Equal(got, sortedKeys(want)) {
		t.Errorf("%s: Go received %q of %q", name, got, sortedKeys(want))
	}
}
