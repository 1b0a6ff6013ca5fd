package runtime_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/storagegen/storagegen/internal/pyclient"
	"github.com/storagegen/storagegen/internal/pyinterop"
	"github.com/storagegen/storagegen/runtime"
)

// The JSON of the generated Python package (internal/pyinterop/py, from
// the test schema internal/pyinterop/schema.yaml) against the runtime's
// codec, with no Redis: every value below is encoded by Go, read and
// written again by Python (from_json, to_json), and must decode in Go to
// the value it was; and values that Python builds on its own
// (pyBuiltScript) must decode in Go to the same values Go builds. Go's
// nil and empty slices and maps are one value in Python ([] and {}), so
// the comparison equates them; times compare as instants.

var (
	amsterdam1936 = time.FixedZone("", 19*60+32) // an offset with seconds: Go writes it in UTC
	india         = time.FixedZone("", 5*3600+30*60)
	west          = time.FixedZone("", -(23*3600 + 59*60))
	nanoTime      = time.Date(2026, 3, 4, 5, 6, 7, 123456789, india)
)

func goValues() map[string]any {
	return map[string]any{
		"scalars_zero": pyinterop.Scalars{},
		"scalars_edges": pyinterop.Scalars{
			Flag: true, Text: "hé \u2028 <&> \x7f \x00 \U0001F600 \"\\", I: math.MinInt64, I32: math.MinInt32, I64: math.MaxInt64,
			U32: math.MaxUint32, U64: math.MaxUint64, F32: math.MaxFloat32, F64: -math.SmallestNonzeroFloat64,
			Raw: []byte{0, 1, 2, 253, 254, 255}, At: nanoTime,
			Value: map[string]any{"n": 1.5, "big": 1e300, "list": []any{"x", true, nil, map[string]any{}}, "": -0.0},
		},
		"scalars_times":  pyinterop.Scalars{At: time.Date(1936, 5, 1, 12, 0, 0, 1, amsterdam1936), F64: 1e21, F32: 0.1, Value: "s"},
		"scalars_west":   pyinterop.Scalars{At: time.Date(9999, 12, 31, 23, 59, 59, 999999999, west), Value: []any{}},
		"optionals_zero": pyinterop.Optionals{},
		"optionals_set": pyinterop.Optionals{
			Flag: true, Text: "t", I64: -1 << 62, U64: 1<<64 - 1, F64: -0.5, At: nanoTime, Raw: []byte{}, Tags: []string{},
			Meta: map[string]any{"k": []any{1.0, "v"}}, Value: false, Inner: pyinterop.Inner{Name: "i", At: nanoTime},
		},
		"nested": pyinterop.Nested{
			Inner:  pyinterop.Inner{Name: "in", At: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
			List:   []pyinterop.Inner{{Name: "a"}, {Name: "b", At: nanoTime}},
			ByName: map[string]pyinterop.Inner{"x": {Name: "x"}, "": {}},
			Matrix: [][]int64{{math.MinInt64, 0, math.MaxInt64}, nil, {}},
			Deep:   map[string][]map[string]time.Time{"d": {{"t": nanoTime}, nil}},
			Class:  "c", ToJSON: "j", Type: -7,
		},
	}
}

// pyBuilt are the values pyBuiltScript builds in Python, as Go builds them.
func pyBuilt() map[string]any {
	return map[string]any{
		"py_scalars": pyinterop.Scalars{
			Flag: true, Text: "é", I: math.MinInt64, I32: math.MaxInt32, I64: math.MaxInt64, U32: math.MaxUint32, U64: math.MaxUint64,
			F32: 1.5, F64: 0.1, Raw: []byte("hi"), At: nanoTime, Value: map[string]any{"a": []any{1.0, nil, "x"}},
		},
		"py_optionals": pyinterop.Optionals{Text: "t", At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Tags: []string{"a"}, Inner: pyinterop.Inner{Name: "n"}},
		"py_nested": pyinterop.Nested{
			Inner: pyinterop.Inner{Name: "in"}, List: []pyinterop.Inner{{Name: "a", At: time.Date(1936, 5, 1, 12, 0, 0, 0, amsterdam1936)}},
			Matrix: [][]int64{{1 << 62}}, Deep: map[string][]map[string]time.Time{"d": {{"t": nanoTime}}}, Class: "c", ToJSON: "j", Type: 3,
		},
	}
}

const pyBuiltScript = `
import datetime as dt
from pyinterop._codec import ZERO_TIME, with_nanosecond
from pyinterop.types import Inner, Nested, Optionals, Scalars
india = dt.timezone(dt.timedelta(hours=5, minutes=30))
nano = with_nanosecond(dt.datetime(2026, 3, 4, 5, 6, 7, 123456, india), 789)
ams = dt.timezone(dt.timedelta(minutes=19, seconds=32))
built = {
    "py_scalars": Scalars(flag=True, text="\u00e9", i=-(1 << 63), i32=(1 << 31) - 1, i64=(1 << 63) - 1, u32=(1 << 32) - 1,
                          u64=(1 << 64) - 1, f32=1.5, f64=0.1, raw=b"hi", at=nano, value={"a": [1, None, "x"]}),
    "py_optionals": Optionals(text="t", at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), tags=["a"],
                              inner=Inner(name="n", at=ZERO_TIME), i64=0, flag=False),
    "py_nested": Nested(inner=Inner(name="in", at=ZERO_TIME), list_=[Inner(name="a", at=dt.datetime(1936, 5, 1, 12, 0, tzinfo=ams))],
                        by_name={}, matrix=[[1 << 62]], deep={"d": [{"t": nano}]}, class_="c", to_json_="j", type_=3),
}
`

// pyTripScript reads {name: [type, base64 JSON]} on stdin, and writes
// {name: base64 of T.from_json(data).to_json()} and the built values.
const pyTripScript = pyBuiltScript + `
import base64, json, sys
from pyinterop import types
out = {}
for name, (typ, data) in json.load(sys.stdin).items():
    out[name] = base64.b64encode(getattr(types, typ).from_json(base64.b64decode(data)).to_json()).decode()
for name, v in built.items():
    out[name] = base64.b64encode(v.to_json()).decode()
json.dump(out, sys.stdout)
`

func TestPythonCodecMatchesGo(t *testing.T) {
	py := pyclient.Python(t)
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pyinterop")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	// The payload types need types.py, _codec.py and _errors.py only, so
	// the package's __init__ (which imports the store and its runtime) is
	// left empty here.
	for _, name := range []string{"types.py", "_codec.py", "_errors.py"} {
		src, err := os.ReadFile(filepath.Join("..", "internal", "pyinterop", "py", "pyinterop", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(pkg, "__init__.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	values := goValues()
	in := map[string][2]string{}
	goJSON := map[string][]byte{}
	for name, v := range values {
		b, err := runtime.EncodeForTest(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		goJSON[name] = b
		in[name] = [2]string{strings.TrimPrefix(fmt.Sprintf("%T", v), "pyinterop."), base64.StdEncoding.EncodeToString(b)}
	}
	stdin, _ := json.Marshal(in)
	cmd := exec.Command(py, "-c", pyTripScript)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.Bytes())
	}
	var got map[string]string
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatal(err)
	}
	want := pyBuilt()
	for name, v := range values {
		want[name] = v
	}
	opts := cmp.Options{cmpopts.EquateEmpty()}
	for name, v := range want {
		b, err := base64.StdEncoding.DecodeString(got[name])
		if err != nil || len(b) == 0 {
			t.Errorf("%s: no output from Python (%v)", name, err)
			continue
		}
		back, err := decodeLike(v, b)
		if err != nil {
			t.Errorf("%s: Go cannot decode Python's %s: %v", name, b, err)
			continue
		}
		goBack, err := decodeLike(v, mustEncode(t, v))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(goBack, back, opts); diff != "" {
			t.Errorf("%s: Python's JSON decodes to another Go value (-Go's +Python's):\n%s\nGo:     %s\nPython: %s", name, diff, goJSON[name], b)
		}
		if g, ok := goJSON[name]; ok && !bytes.Equal(g, b) && !strings.HasPrefix(name, "scalars") && name != "nested" {
			t.Errorf("%s: Python writes %s, Go %s", name, b, g)
		}
	}
}

func mustEncode(t *testing.T, v any) []byte {
	b, err := runtime.EncodeForTest(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeLike decodes data with the runtime's codec into the type of v.
func decodeLike(v any, data []byte) (any, error) {
	switch v.(type) {
	case pyinterop.Scalars:
		return runtime.DecodeForTest[pyinterop.Scalars](data)
	case pyinterop.Optionals:
		return runtime.DecodeForTest[pyinterop.Optionals](data)
	case pyinterop.Nested:
		return runtime.DecodeForTest[pyinterop.Nested](data)
	case pyinterop.Inner:
		return runtime.DecodeForTest[pyinterop.Inner](data)
	}
	return nil, fmt.Errorf("no decoder for %T", v)
}
