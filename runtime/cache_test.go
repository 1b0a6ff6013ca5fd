package runtime

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testCache[T any](ds *DataStore, name string, ttl time.Duration) Cache[T] {
	return NewCache[T](ds, &CacheDecl{Name: name, Prefix: ds.prefix, Key: MustKeyPattern(name + ":{id}"), TTL: ttl}, "x")
}

func TestCacheTTLs(t *testing.T) {
	ds := newStore(t, Options{})
	raw := rawClient(t)
	c := testCache[int](ds, "ttl", time.Hour)

	if err := c.SetTTL(bg, 1, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// SETEX would store 1s; SET … PX keeps the milliseconds.
	if ms := raw.PTTL(bg, c.Key()).Val().Milliseconds(); ms <= 1400 || ms > 1500 {
		t.Errorf("PTTL after SetTTL(1500ms) = %dms; want (1400, 1500]", ms)
	}
	if left, err := c.TTL(bg); err != nil || left <= 1400*time.Millisecond || left > 1500*time.Millisecond {
		t.Errorf("TTL = %v, %v", left, err)
	}
	if err := c.Set(bg, 2); err != nil {
		t.Fatal(err)
	}
	if ms := raw.PTTL(bg, c.Key()).Val(); ms <= 59*time.Minute || ms > time.Hour {
		t.Errorf("PTTL after Set = %v; want the schema's 1h", ms)
	}
	for _, bad := range []time.Duration{-time.Second, 0, time.Microsecond, NoExpiry} {
		if err := c.SetTTL(bg, 3, bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SetTTL(%v) = %v; want ErrInvalidArgument", bad, err)
		}
	}
	if v, ok, _ := c.Get(bg); !ok || v != 2 {
		t.Errorf("refused SetTTL changed the value: %v, %v", v, ok)
	}

	forever := testCache[int](ds, "forever", NoExpiry)
	if err := forever.Set(bg, 1); err != nil {
		t.Fatal(err)
	}
	if left, err := forever.TTL(bg); err != nil || left != NoExpiry {
		t.Errorf("TTL of ttl: none entry = %v, %v; want NoExpiry", left, err)
	}
	missing := testCache[int](ds, "missing", time.Hour)
	if left, err := missing.TTL(bg); err != nil || left != KeyMissing {
		t.Errorf("TTL of missing entry = %v, %v; want KeyMissing", left, err)
	}
	expiring := testCache[int](ds, "expiring", time.Hour)
	expiring.SetTTL(bg, 1, 20*time.Millisecond)
	time.Sleep(60 * time.Millisecond)
	if _, ok, err := expiring.Get(bg); ok || err != nil {
		t.Errorf("Get after expiry = %v, %v; want a miss", ok, err)
	}
}

func TestCacheGetDeleteExists(t *testing.T) {
	ds := newStore(t, Options{})
	c := testCache[payload](ds, "entry", time.Minute)
	if _, ok, err := c.Get(bg); ok || err != nil {
		t.Fatalf("Get on empty = %v, %v; want a miss", ok, err)
	}
	if ok, err := c.Exists(bg); ok || err != nil {
		t.Fatalf("Exists on empty = %v, %v", ok, err)
	}
	if err := c.Set(bg, payload{S: "a", Opt: "set", Map: map[string]any{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	// A new value without Opt must not come back with the old Opt.
	if err := c.Set(bg, payload{S: "b"}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(bg)
	if err != nil || !ok || got.S != "b" || got.Opt != "" || got.Map != nil {
		t.Fatalf("Get = %+v, %v, %v", got, ok, err)
	}
	if ok, err := c.Exists(bg); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	if ok, err := c.Delete(bg); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if ok, err := c.Delete(bg); ok || err != nil {
		t.Fatalf("second Delete = %v, %v", ok, err)
	}
}

// TestRoundTrip stores every field type a schema accepts and reads it back
// unchanged: int64 above 2^53, time.Time with its offset, nested maps and
// slices; json v2 cannot be left to its merging and float64 defaults.
func TestRoundTrip(t *testing.T) {
	ds := newStore(t, Options{})
	at := time.Date(2026, 11, 26, 3, 4, 5, 123456789, time.FixedZone("X", 5*3600+1800))
	want := payload{
		S: "héllo \x00 \"quoted\"", B: true, I: -42, I32: math.MinInt32, I64: 1<<53 + 1,
		U32: math.MaxUint32, U64: math.MaxUint64, F32: 1.5, F64: math.Pi,
		Raw: []byte{0, 1, 2, 255}, At: at, Any: map[string]any{"n": 2.5, "l": []any{"x", true, nil}},
		List: []string{"a", ""}, Map: map[string]any{"nested": map[string]any{"deep": []any{1.0}}},
		Deep: map[string][]item{"k": {{N: math.MaxInt64}, {N: math.MinInt64}}},
	}
	c := testCache[payload](ds, "roundtrip", time.Minute)
	if err := c.Set(bg, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(bg)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cache round trip (-want +got):\n%s", diff)
	}
	q := testQueue[payload](t, ds, "roundtrip")
	q.Push(bg, want)
	got, ok, err = q.Pop(bg, time.Second)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("queue round trip (-want +got):\n%s", diff)
	}
}

func TestUntypedCache(t *testing.T) {
	ds := newStore(t, Options{})
	if err := ds.Cache.Set(bg, "node_1_output", map[string]any{"data": 123}, time.Hour); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"stale": true}
	ok, err := ds.Cache.Get(bg, "node_1_output", &m)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if diff := cmp.Diff(map[string]any{"data": 123.0}, m); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	if err := ds.Cache.Set(bg, "forever", 1, 0); err != nil {
		t.Fatal(err)
	}
	if left, err := ds.Cache.TTL(bg, "forever"); left != NoExpiry || err != nil {
		t.Errorf("TTL after Set(ttl 0) = %v, %v; want NoExpiry", left, err)
	}
	if err := ds.Cache.Set(bg, "neg", 1, -time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Set with negative ttl = %v", err)
	}
	if ok, err := ds.Cache.Exists(bg, "node_1_output"); !ok || err != nil {
		t.Errorf("Exists = %v, %v", ok, err)
	}
	if ok, err := ds.Cache.Delete(bg, "node_1_output"); !ok || err != nil {
		t.Errorf("Delete = %v, %v", ok, err)
	}
	if ok, err := ds.Cache.Get(bg, "node_1_output", &m); ok || err != nil {
		t.Errorf("Get after Delete = %v, %v", ok, err)
	}
	if _, err := ds.Cache.Get(bg, "forever", m); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Get into a non-pointer = %v; want ErrInvalidArgument", err)
	}
	// A value that does not decode stays where it is.
	rawClient(t).Set(bg, CacheKey(ds.prefix, "bad"), "{", 0)
	if _, err := ds.Cache.Get(bg, "bad", &m); !errors.Is(err, ErrDecode) {
		t.Errorf("Get of bad JSON = %v; want ErrDecode", err)
	}
	if ok, _ := ds.Cache.Exists(bg, "bad"); !ok {
		t.Error("undecodable value was removed")
	}
}

func TestPayloadLimits(t *testing.T) {
	ds := newStore(t, Options{MaxPayloadBytes: 100})
	big := strings.Repeat("x", 200)
	q := testQueue[string](t, ds, "limits")
	if err := q.PushMany(bg, "small", big); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("PushMany = %v; want ErrPayloadTooLarge", err)
	} else if strings.Contains(err.Error(), big[:50]) {
		t.Errorf("error carries the payload: %v", err)
	}
	if n, _ := q.Len(bg); n != 0 {
		t.Errorf("Len = %d after a refused PushMany; want nothing written", n)
	}
	c := testCache[string](ds, "limits", time.Minute)
	if err := c.Set(bg, big); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("Set = %v; want ErrPayloadTooLarge", err)
	}
	raw := rawClient(t)
	raw.Set(bg, c.Key(), `"`+big+`"`, time.Minute)
	if _, _, err := c.Get(bg); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("Get of a large value = %v; want ErrPayloadTooLarge", err)
	}
	raw.LPush(bg, q.Key(), `"`+big+`"`)
	if _, _, err := q.Pop(bg, time.Second); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("Pop of a large item = %v; want ErrPayloadTooLarge", err)
	}
	if n := raw.LLen(bg, DeadKey(q.Key())).Val(); n != 1 {
		t.Errorf("large item not in dead letters (%d)", n)
	}
	if _, err := New(Options{MaxPayloadBytes: 1 << 30}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("MaxPayloadBytes 1GiB accepted: %v", err)
	}
}

func TestBadKeyArguments(t *testing.T) {
	ds := newStore(t, Options{})
	decl := &QueueDecl{Name: "edge", Prefix: "p:", Key: MustKeyPattern("edge:{a}:{b:int}")}
	q := NewQueue[int](ds, decl, "", 1)
	for _, err := range []error{q.Push(bg, 1), second(q.Len(bg)), third(q.Pop(bg, 0))} {
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "{a} is empty") {
			t.Errorf("error = %v; want ErrInvalidArgument naming {a}", err)
		}
	}
	if err := NewQueue[int](ds, decl, "x", "1").Push(bg, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("string for an int placeholder: %v", err)
	}
	cdecl := &CacheDecl{Name: "c", Key: MustKeyPattern("c:{a}"), TTL: time.Minute}
	if err := NewCache[int](ds, cdecl).Set(bg, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("missing argument: %v", err)
	}
}

func second[A, B any](_ A, b B) B        { return b }
func third[A, B, C any](_ A, _ B, c C) C { return c }

func TestMissIsNotRefusedConnection(t *testing.T) {
	ds, err := New(Options{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	c := testCache[int](ds, "refused", time.Minute)
	if _, ok, err := c.Get(ctx); err == nil || ok {
		t.Errorf("Get against a closed port = %v, %v; want an error, not a miss", ok, err)
	} else if !strings.Contains(err.Error(), `storagegen: get "cache:refused:x"`) {
		t.Errorf("error does not name op and key: %v", err)
	}
}
