package runtime

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Amsterdam where the machine has no zoneinfo

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// Hardening tests: a raw null is not a value, times keep their instant,
// no part of a URL's user info reaches an error, reads refuse oversized
// payloads, a released item keeps its place, and the dedupe window is in
// milliseconds.

// TestNullIsNotAValue: an item or cache value that is JSON null as a
// whole decodes only into a type with a nil (pointer, interface, map,
// slice); into any other type it is an undecodable item, dead-lettered
// like the others, and a cache value that stays in place.
func TestNullIsNotAValue(t *testing.T) {
	ds := newStore(t, Options{})
	raw := rawClient(t)
	nulls := []string{"null", " null\n"}

	t.Run("Queue.Pop", func(t *testing.T) {
		q := testQueue[payload](t, ds, "null-pop")
		for _, n := range nulls {
			raw.LPush(bg, q.Key(), n)
			v, ok, err := q.Pop(bg, time.Second)
			if ok || !errors.Is(err, ErrDecode) {
				t.Errorf("Pop of %q = %+v, %v, %v; want ErrDecode", n, v, ok, err)
			}
		}
		if dead := raw.LRange(bg, DeadKey(q.Key()), 0, -1).Val(); len(dead) != 2 {
			t.Errorf("dead letters %q; want both nulls", dead)
		}
	})
	t.Run("Queue.PopMany", func(t *testing.T) {
		q := testQueue[item](t, ds, "null-popmany")
		raw.LPush(bg, q.Key(), `{"n":1}`, `null`, `{"n":2}`)
		vs, err := q.PopMany(bg, 10, 0)
		if !errors.Is(err, ErrDecode) || len(vs) != 2 || vs[0].N != 1 || vs[1].N != 2 {
			t.Errorf("PopMany = %v, %v; want items 1 and 2 and ErrDecode", vs, err)
		}
		if dead := raw.LRange(bg, DeadKey(q.Key()), 0, -1).Val(); len(dead) != 1 || dead[0] != "null" {
			t.Errorf("dead letters %q; want the null", dead)
		}
	})
	t.Run("QueueStore.Pop", func(t *testing.T) {
		key := QueueKey(ds.prefix, "null-untyped")
		raw.LPush(bg, key, "null")
		var v item
		if ok, err := ds.Queue.Pop(bg, "null-untyped", time.Second, &v); ok || !errors.Is(err, ErrDecode) {
			t.Errorf("untyped Pop of null into a struct = %v, %v; want ErrDecode", ok, err)
		}
		if n := raw.LLen(bg, DeadKey(key)).Val(); n != 1 {
			t.Errorf("%d dead letters; want the null", n)
		}
		raw.LPush(bg, key, "null")
		var a any = "stale"
		if ok, err := ds.Queue.Pop(bg, "null-untyped", time.Second, &a); !ok || err != nil || a != nil {
			t.Errorf("untyped Pop of null into an any = %v, %v, %v; want nil", ok, err, a)
		}
	})
	t.Run("types with a nil", func(t *testing.T) {
		// These are what the codec itself writes for a nil value, so null
		// must come back as nil, not as an error.
		pq := testQueue[*item](t, ds, "null-ptr")
		mq := testQueue[map[string]int](t, ds, "null-map")
		sq := testQueue[[]int](t, ds, "null-slice")
		aq := testQueue[any](t, ds, "null-any")
		if err := errors.Join(pq.Push(bg, nil), mq.Push(bg, nil), sq.Push(bg, nil), aq.Push(bg, nil)); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := pq.Pop(bg, time.Second); !ok || err != nil || v != nil {
			t.Errorf("*item: %v, %v, %v", v, ok, err)
		}
		if v, ok, err := mq.Pop(bg, time.Second); !ok || err != nil || v != nil {
			t.Errorf("map: %v, %v, %v", v, ok, err)
		}
		if v, ok, err := sq.Pop(bg, time.Second); !ok || err != nil || v != nil {
			t.Errorf("slice: %v, %v, %v", v, ok, err)
		}
		if v, ok, err := aq.Pop(bg, time.Second); !ok || err != nil || v != nil {
			t.Errorf("any: %v, %v, %v", v, ok, err)
		}
	})
	t.Run("Cache.Get", func(t *testing.T) {
		c := testCache[payload](ds, "null", time.Minute)
		raw.Set(bg, c.Key(), "null", time.Minute)
		if v, ok, err := c.Get(bg); ok || !errors.Is(err, ErrDecode) {
			t.Errorf("Get of null = %+v, %v, %v; want ErrDecode", v, ok, err)
		}
		if err := ds.Cache.Set(bg, "null-untyped", nil, 0); err != nil {
			t.Fatal(err)
		}
		var s string
		if ok, err := ds.Cache.Get(bg, "null-untyped", &s); ok || !errors.Is(err, ErrDecode) {
			t.Errorf("untyped Get of null into a string = %v, %v; want ErrDecode", ok, err)
		}
		if ok, _ := ds.Cache.Exists(bg, "null-untyped"); !ok {
			t.Error("the undecodable value was removed")
		}
		var p *item
		if ok, err := ds.Cache.Get(bg, "null-untyped", &p); !ok || err != nil || p != nil {
			t.Errorf("untyped Get of null into a pointer = %v, %v, %v", ok, err, p)
		}
	})
	t.Run("ReliableQueue", func(t *testing.T) {
		// A pointer view of the queue pushes the null, the struct view
		// receives it: a failed delivery, then a dead letter.
		decl := &QueueDecl{Name: "null-reliable", Prefix: ds.prefix, Key: MustKeyPattern("null-reliable"), MaxDeliveries: 1}
		if err := NewReliableQueue[*item](ds, decl).Push(bg, nil); err != nil {
			t.Fatal(err)
		}
		q := NewReliableQueue[item](ds, decl)
		d, ok, err := q.Receive(bg, time.Second)
		if ok || !errors.Is(err, ErrDecode) {
			t.Fatalf("Receive of null = %+v, %v, %v; want ErrDecode", d, ok, err)
		}
		if n, err := q.Dead().Len(bg); n != 1 || err != nil {
			t.Errorf("dead letters %d, %v; want the null", n, err)
		}
	})
}

// timeCarrier holds time.Time values everywhere a payload can.
type timeCarrier struct {
	At     time.Time
	Ptr    *time.Time
	List   []time.Time
	Array  [1]time.Time
	Map    map[string]time.Time
	Keys   map[time.Time]int
	Any    any
	Nested struct{ At time.Time }
}

// TestTimesKeepTheirInstant: a time whose zone offset has seconds (RFC
// 3339 offsets have none) comes back at the same instant wherever it is in
// a payload, and a time with a whole-minute offset keeps that offset.
func TestTimesKeepTheirInstant(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{
		time.Date(1900, 6, 1, 12, 0, 0, 123456789, ams), // +00:19:32
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 37)),
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("y", -(5*3600+59))),
	} {
		if _, off := at.Zone(); off%60 == 0 {
			t.Fatalf("%v: the zone data has no seconds in this offset", at)
		}
		in := timeCarrier{At: at, Ptr: &at, List: []time.Time{at}, Array: [1]time.Time{at},
			Map: map[string]time.Time{"k": at}, Keys: map[time.Time]int{at: 1}, Any: at}
		in.Nested.At = at
		b, err := encode(in, DefaultMaxPayloadBytes)
		if err != nil {
			t.Fatalf("encode %v: %v", at, err)
		}
		out, err := decode[timeCarrier](b, DefaultMaxPayloadBytes)
		if err != nil {
			t.Fatal(err)
		}
		check := func(where string, got time.Time) {
			if !got.Equal(at) {
				t.Errorf("%v: %s came back as %v, %v off", at, where, got, got.Sub(at))
			}
		}
		check("a field", out.At)
		check("a pointer", *out.Ptr)
		check("a slice element", out.List[0])
		check("an array element", out.Array[0])
		check("a map value", out.Map["k"])
		check("a nested field", out.Nested.At)
		for k := range out.Keys {
			check("a map key", k)
		}
		s, _ := out.Any.(string)
		anyAt, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("inside any: %q: %v", s, err)
		}
		check("a value inside any", anyAt)

		// Through Redis, by each kind of store.
		q := testQueue[time.Time](t, newStore(t, Options{}), "times")
		if err := q.Push(bg, at); err != nil {
			t.Fatal(err)
		}
		got, ok, err := q.Pop(bg, time.Second)
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		check("a queue item", got)
		c := testCache[*time.Time](q.ds, "times", time.Minute)
		if err := c.Set(bg, &at); err != nil {
			t.Fatal(err)
		}
		p, ok, err := c.Get(bg)
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		check("a cache value", *p)
		if err := q.ds.Cache.Set(bg, "times", []any{at}, 0); err != nil {
			t.Fatal(err)
		}
		var l []time.Time
		if ok, err := q.ds.Cache.Get(bg, "times", &l); !ok || err != nil {
			t.Fatal(ok, err)
		}
		check("an untyped cache value", l[0])
		rq := testReliable[map[string]time.Time](q.ds, "times", 0, 0)
		if err := rq.Push(bg, map[string]time.Time{"at": at}); err != nil {
			t.Fatal(err)
		}
		d := receive(t, rq, time.Second)
		check("an at-least-once item", d.Value["at"])
	}

	// A whole-minute offset is kept as it is.
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("z", 5*3600+1800))
	b, err := encode(at, DefaultMaxPayloadBytes)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"2026-01-02T03:04:05.000000006+05:30"`; string(b) != want {
		t.Errorf("encoded %s; want %s", b, want)
	}
}

// secretCorpus holds user names and passwords that are not percent-encoded
// in a URL, each with characters url.Parse chokes on or cuts at.
var secretCorpus = []string{
	`Qx7"Wd9`, "Qx7\tWd9", "Qx7/Wd9", "Qx7#Wd9", "Qx7?Wd9", "Qx7%zzWd9", "Qx7%Wd9",
	"Qx7 Wd9", "Qx7[Wd9]", "Qx7@Wd9", "Qx7:Wd9/x#y?z", "Qx7\x00Wd9", "Qx7éWd9", "Qx7%2",
}

// leaks returns a substring of secret of at least 3 bytes found in text.
func leaks(text, secret string) string {
	for i := 0; i+3 <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+3]) {
			return secret[i : i+3]
		}
	}
	return ""
}

// TestNoUserInfoInErrors: whatever is wrong with a URL (its user info, its
// database, its query options, skip_verify, its TLS, or the server behind
// it), no piece of its user name or password reaches an error.
func TestNoUserInfoInErrors(t *testing.T) {
	redistest.SingleOnly(t, "servers of its own with a password and TLS; URLs that never connect")
	tlsSrv, _, err := redistest.StartTLS()
	if err != nil {
		t.Fatal(err)
	}
	defer tlsSrv.Close()
	// A default user without a password takes any password: this one
	// has one.
	srv, err := redistest.Start("--requirepass", "the-real-one")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	plain := srv.Addr

	// Every URL shape that can fail, for a user info ui.
	shapes := []func(ui string) string{
		func(ui string) string { return "redis://" + ui + "@127.0.0.1:1/0" },
		func(ui string) string { return "redis://" + ui + "@127.0.0.1:1/notadb" },
		func(ui string) string { return "redis://" + ui + "@127.0.0.1:1/0/1" },
		func(ui string) string { return "redis://" + ui + "@127.0.0.1:1/0?pool_size=many" },
		func(ui string) string { return "redis://" + ui + "@127.0.0.1:1/0?no_such_option=1" },
		func(ui string) string { return "redis://" + ui + "@127.0.0.1:notaport/0" },
		func(ui string) string { return "rediss://" + ui + "@" + tlsSrv.Addr + "/0?skip_verify=true" },
		func(ui string) string { return "http://" + ui + "@127.0.0.1/0" },
		func(ui string) string { return ui + "@127.0.0.1:1" },
		func(ui string) string { return "redis//" + ui + "@127.0.0.1:1" },
		// Cluster and Sentinel URLs: go-redis's ParseClusterURL and
		// ParseFailoverURL errors, and the refusals of their own.
		func(ui string) string { return "redis+cluster://" + ui + "@127.0.0.1:1?addr=127.0.0.1:2" },
		func(ui string) string { return "redis+cluster://" + ui + "@127.0.0.1:1?addr=nohost" },
		func(ui string) string { return "redis+cluster://" + ui + "@127.0.0.1:1?pool_size=many" },
		func(ui string) string { return "redis+cluster://" + ui + "@127.0.0.1:1?db=2" },
		func(ui string) string { return "redis+cluster://" + ui + "@127.0.0.1:1/2" },
		func(ui string) string { return "rediss+cluster://" + ui + "@127.0.0.1:1?read_only=true" },
		func(ui string) string { return "rediss+cluster://" + ui + "@127.0.0.1:1?skip_verify=true" },
		func(ui string) string { return "redis+cluster://" + ui + "@127.0.0.1:notaport" },
		func(ui string) string {
			return "redis+sentinel://" + ui + "@127.0.0.1:1/0?master_name=m&addr=127.0.0.1:2"
		},
		func(ui string) string { return "redis+sentinel://" + ui + "@127.0.0.1:1/notadb?master_name=m" },
		func(ui string) string { return "redis+sentinel://" + ui + "@127.0.0.1:1/0" },
		func(ui string) string {
			return "redis+sentinel://" + ui + "@127.0.0.1:1/0?master_name=m&no_such_option=1"
		},
		func(ui string) string {
			return "redis+sentinel://" + ui + "@127.0.0.1:1/0?master_name=m&replica_only=1"
		},
		func(ui string) string {
			return "rediss+sentinel://" + ui + "@127.0.0.1:1/0?master_name=m&skip_verify=true"
		},
		func(ui string) string { return "redis+sentinel://" + ui + "@127.0.0.1:1/0?master_name=m&password=x" },
		// These parse when the user info is encoded: their errors come
		// from the server (a wrong password, a certificate no one trusts).
		func(ui string) string { return "redis://" + ui + "@" + plain + "/0" },
		func(ui string) string { return "rediss://" + ui + "@" + tlsSrv.Addr + "/0" },
	}
	check := func(u, secret string, err error) {
		t.Helper()
		if err == nil {
			return
		}
		if s := leaks(err.Error(), secret); s != "" {
			t.Errorf("URL %q: error carries %q of the secret: %v", u, s, err)
		}
	}
	for _, secret := range secretCorpus {
		for i, ui := range []string{
			"default:" + secret, secret + ":pw", ":" + secret, secret,
			url.UserPassword("default", secret).String(), url.UserPassword(secret, secret).String(),
		} {
			for _, shape := range shapes {
				u := shape(ui)
				ds, err := New(Options{URL: u})
				check(u, secret, err)
				if err != nil {
					if !errors.Is(err, ErrInvalidArgument) {
						t.Errorf("New(%q) = %v; want ErrInvalidArgument", u, err)
					}
					continue
				}
				// Nothing listens on port 1: a dial error names the address
				// only. A failed TLS handshake takes go-redis's dial retries:
				// one user info per secret is enough there.
				if !strings.Contains(u, plain) && !(strings.Contains(u, tlsSrv.Addr) && i == 4) {
					ds.Close()
					continue
				}
				ctx, cancel := context.WithTimeout(bg, 2*time.Second)
				err = ds.Connection.Ping(ctx)
				cancel()
				ds.Close()
				if err == nil {
					t.Errorf("Ping through %q succeeded; the server has no such password", u)
				}
				check(u, secret, err)
			}
		}
	}
}

// TestEncodedUserInfoWorks: a password with every character of the corpus,
// percent-encoded, authenticates; unencoded, it is refused with an error
// that says how to encode it.
func TestEncodedUserInfoWorks(t *testing.T) {
	redistest.SingleOnly(t, "a server of its own with a password")
	const pw = "a\"b\tc/d#e?f%g h@i:j"
	srv, err := redistest.Start("--requirepass", pw)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, ui := range []*url.Userinfo{url.UserPassword("default", pw), url.UserPassword("", pw)} {
		u := "redis://" + ui.String() + "@" + srv.Addr + "/0"
		ds, err := New(Options{URL: u})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if err := ds.Connection.Ping(bg); err != nil {
			t.Errorf("Ping with %s: %v", ui.Username(), err)
		}
		ds.Close()
	}
	_, err = New(Options{URL: "redis://default:" + pw + "@" + srv.Addr + "/0"})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "percent-encoded") ||
		!strings.Contains(err.Error(), "redis://xxxxx@"+srv.Addr+"/0") {
		t.Errorf("unencoded password: %v; want a refusal that shows the URL without its user info", err)
	}
}

// TestReadsRefuseOversizedPayloads: every read, typed or untyped, refuses
// a stored value larger than MaxPayloadBytes (written by a store with a
// larger limit, or by something else): a cache value stays in place, a
// queue item goes to the dead letters, an at-least-once delivery fails.
func TestReadsRefuseOversizedPayloads(t *testing.T) {
	big := `"` + strings.Repeat("x", 200) + `"` // valid JSON: only the size is wrong
	ds := newStore(t, Options{MaxPayloadBytes: 100})
	raw := rawClient(t)

	t.Run("CacheStore.Get", func(t *testing.T) {
		raw.Set(bg, CacheKey(ds.prefix, "big"), big, time.Minute)
		var s string
		if ok, err := ds.Cache.Get(bg, "big", &s); ok || !errors.Is(err, ErrPayloadTooLarge) || s != "" {
			t.Errorf("untyped Get of %d bytes = %v, %v (%d bytes); want ErrPayloadTooLarge", len(big), ok, err, len(s))
		}
		if ok, _ := ds.Cache.Exists(bg, "big"); !ok {
			t.Error("the oversized value was removed")
		}
	})
	t.Run("Cache.Get", func(t *testing.T) {
		c := testCache[string](ds, "big", time.Minute)
		raw.Set(bg, c.Key(), big, time.Minute)
		if _, ok, err := c.Get(bg); ok || !errors.Is(err, ErrPayloadTooLarge) {
			t.Errorf("Get = %v, %v; want ErrPayloadTooLarge", ok, err)
		}
	})
	t.Run("QueueStore.Pop", func(t *testing.T) {
		key := QueueKey(ds.prefix, "big")
		raw.LPush(bg, key, big)
		var s string
		if ok, err := ds.Queue.Pop(bg, "big", time.Second, &s); ok || !errors.Is(err, ErrPayloadTooLarge) {
			t.Errorf("untyped Pop = %v, %v; want ErrPayloadTooLarge", ok, err)
		}
		if dead := raw.LRange(bg, DeadKey(key), 0, -1).Val(); len(dead) != 1 || dead[0] != big {
			t.Errorf("dead letters: %d; want the oversized item", len(dead))
		}
	})
	t.Run("Queue.PopMany", func(t *testing.T) {
		q := testQueue[string](t, ds, "bigmany")
		raw.LPush(bg, q.Key(), `"small"`, big)
		vs, err := q.PopMany(bg, 10, time.Second)
		if !errors.Is(err, ErrPayloadTooLarge) || len(vs) != 1 || vs[0] != "small" {
			t.Errorf("PopMany = %d items, %v; want the small one and ErrPayloadTooLarge", len(vs), err)
		}
		if n := raw.LLen(bg, DeadKey(q.Key())).Val(); n != 1 {
			t.Errorf("dead letters: %d; want the oversized item", n)
		}
	})
	t.Run("ReliableQueue.Receive", func(t *testing.T) {
		roomy := newStore(t, Options{Prefix: ds.prefix})
		decl := &QueueDecl{Name: "bigreliable", Prefix: ds.prefix, Key: MustKeyPattern("bigreliable"), MaxDeliveries: 1}
		if err := NewReliableQueue[string](roomy, decl).Push(bg, big[1:len(big)-1]); err != nil {
			t.Fatal(err)
		}
		q := NewReliableQueue[string](ds, decl)
		if _, ok, err := q.Receive(bg, time.Second); ok || !errors.Is(err, ErrPayloadTooLarge) {
			t.Errorf("Receive = %v, %v; want ErrPayloadTooLarge", ok, err)
		}
		if n, _ := q.Dead().Len(bg); n != 1 {
			t.Errorf("dead letters: %d; want the oversized item", n)
		}
	})
}

// cancelAfterBLMOVE is a hook on the blocking client: once a BLMOVE has
// moved an item (and before the receive script can lease it) it runs
// between, then cancels the receiver's context.
type cancelAfterBLMOVE struct {
	armed   *atomic.Bool // fires once
	between func()
	cancel  context.CancelFunc
}

// cancelAfterNextBLMOVE arms ds's blocking client for the queue at key
// (on a cluster, its primary's) so that, right after the next BLMOVE
// returns, between runs and then the returned context is cancelled: a
// Receive on it ends between BLMOVE and the lease.
func cancelAfterNextBLMOVE(t *testing.T, ds *DataStore, key string, between func()) context.Context {
	ctx, cancel := context.WithCancel(bg)
	t.Cleanup(cancel)
	armed := new(atomic.Bool)
	armed.Store(true)
	if err := ds.Connection.Ping(bg); err != nil { // makes the clients
		t.Fatal(err)
	}
	pool, err := ds.Connection.poolFor(bg, key)
	if err != nil {
		t.Fatal(err)
	}
	pool.client.AddHook(cancelAfterBLMOVE{armed: armed, cancel: cancel, between: between})
	return ctx
}

func (h cancelAfterBLMOVE) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h cancelAfterBLMOVE) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h cancelAfterBLMOVE) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "blmove" && err == nil && h.armed.CompareAndSwap(true, false) {
			h.between()
			h.cancel()
		}
		return err
	}
}

// TestReleasedItemKeepsItsPlace: an item that a waiting Receive's BLMOVE
// took, and that went back because the receiver's context ended before
// the lease, is still the oldest: it is received before an item pushed
// after it, and its delivery was not counted.
func TestReleasedItemKeepsItsPlace(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[string](ds, "released", 10*time.Second, 0)
	if _, err := q.Len(bg); err != nil { // makes the clients
		t.Fatal(err)
	}
	ctx := cancelAfterNextBLMOVE(t, ds, q.Key(), func() {
		if err := q.Push(bg, "second"); err != nil {
			t.Error(err)
		}
	})
	errc := make(chan error, 1)
	go func() {
		_, ok, err := q.Receive(ctx, 10*time.Second)
		if ok {
			err = errors.New("Receive leased the item although its context ended before the lease")
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // Receive is waiting in BLMOVE
	if err := q.Push(bg, "first"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive = %v; want context.Canceled", err)
	}
	for _, want := range []string{"first", "second"} {
		d := receive(t, q, 0)
		if d.Value != want || d.Attempt != 1 {
			t.Errorf("received %q (delivery %d); want %q (delivery 1)", d.Value, d.Attempt, want)
		}
		if err := d.Ack(bg); err != nil {
			t.Fatal(err)
		}
	}
	queueState(t, q.Key())
}

// TestDedupeWindowIsInMilliseconds: the default window (an hour) and one of
// a few seconds reach the server whole (a window sent in seconds to PX
// would be 1000 times too short), and after the window a PushID of the
// same ID is a new item.
func TestDedupeWindowIsInMilliseconds(t *testing.T) {
	ds := newStore(t, Options{})
	raw := rawClient(t)
	for _, tc := range []struct {
		window, min, max time.Duration
	}{
		{0, DefaultDedupeWindow - 5*time.Second, DefaultDedupeWindow},
		{3 * time.Second, 2500 * time.Millisecond, 3 * time.Second},
	} {
		name := "dedupe-" + tc.window.String()
		q := NewReliableQueue[int](ds, &QueueDecl{Name: name, Prefix: ds.prefix, Key: MustKeyPattern(name), DedupeWindow: tc.window})
		if err := q.PushID(bg, "job", 1); err != nil {
			t.Fatal(err)
		}
		marker := markerKey(q.Key(), "job")
		ttl, err := raw.PTTL(bg, marker).Result()
		if err != nil || ttl <= tc.min || ttl > tc.max {
			t.Errorf("window %v: marker PTTL %v, %v; want (%v, %v]", tc.window, ttl, err, tc.min, tc.max)
		}
		if tc.window == 0 {
			if DefaultDedupeWindow != time.Hour {
				t.Errorf("DefaultDedupeWindow = %v; the README says an hour", DefaultDedupeWindow)
			}
			continue
		}
		if err := receive(t, q, 0).Ack(bg); err != nil {
			t.Fatal(err)
		}
		if err := q.PushID(bg, "job", 2); err != nil {
			t.Fatal(err)
		}
		if n, _ := q.Len(bg); n != 0 {
			t.Fatalf("window %v: a PushID after the ack, within the window, stored the item again", tc.window)
		}
		time.Sleep(ttl + 50*time.Millisecond)
		if err := q.PushID(bg, "job", 3); err != nil {
			t.Fatal(err)
		}
		if d := receive(t, q, 0); d.ID != "job" || d.Value != 3 {
			t.Errorf("window %v: after the window, received %s %d; want job 3", tc.window, d.ID, d.Value)
		}
	}
}
