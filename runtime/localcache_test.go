package runtime

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

func localDecl(ds *DataStore, name string, ttl time.Duration, size int) *CacheDecl {
	return &CacheDecl{Name: name, Prefix: ds.prefix, Key: MustKeyPattern(name + ":{id}"), TTL: ttl, Local: size}
}

// localStoreOf returns decl's local store on ds, failing the test when
// there is none.
func localStoreOf(t *testing.T, ds *DataStore, decl *CacheDecl) *localStore {
	t.Helper()
	m := ds.Connection.local.byDecl.Load()
	if m == nil || (*m)[localKeyOf(decl)] == nil {
		t.Fatalf("no local cache for %s", decl.Name)
	}
	return (*m)[localKeyOf(decl)].store
}

// cached reports whether key is served from memory.
func cached(s *localStore, key string) bool {
	_, _, hit := s.lookup(key)
	return hit
}

func mustGet[T comparable](t *testing.T, c Cache[T], want T) {
	t.Helper()
	v, ok, err := c.Get(bg)
	if err != nil || !ok || v != want {
		t.Fatalf("Get = %v, %v, %v; want %v", v, ok, err, want)
	}
}

// A Get on a local cache fills it; the next Get is answered from memory;
// this process's Set and Delete are seen by its next Get at once.
func TestLocalCacheReadYourWrites(t *testing.T) {
	localCachesOnly(t)
	ds := newStore(t, Options{})
	decl := localDecl(ds, "ryw", time.Hour, 100)
	c := NewCache[int](ds, decl, "x")
	if _, ok, err := c.Get(bg); ok || err != nil {
		t.Fatalf("Get of a missing entry = %v, %v", ok, err)
	}
	s := localStoreOf(t, ds, decl)
	if !cached(s, c.Key()) {
		t.Fatal("a miss is not cached")
	}
	for i := range 200 {
		if err := c.Set(bg, i); err != nil {
			t.Fatal(err)
		}
		mustGet(t, c, i)
		// The server's invalidation of the Set may still come, and cancel
		// the fetch it overtakes: then the next Get caches.
		mustGet(t, c, i)
		if !cached(s, c.Key()) {
			t.Fatalf("round %d: the value read is not cached", i)
		}
		mustGet(t, c, i)
	}
	if ok, err := c.Delete(bg); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if _, ok, err := c.Get(bg); ok || err != nil {
		t.Fatalf("Get after Delete = %v, %v; want a miss", ok, err)
	}
	// The untyped CacheStore writes the same key: it is forgotten too.
	name := c.Key()[len(CacheKey(ds.prefix, "")):]
	if err := ds.Cache.Set(bg, name, 7, 0); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, 7)
}

// A Set from another client reaches this process's local cache by the
// server's invalidation. The bound asserted, 100 ms, is twenty times
// go-redis's 5 ms sweep of idle connections; each attempt is measured
// again up to three times so that one stall of a loaded machine does not
// fail it, while a missing invalidation fails all three.
func TestLocalCacheInvalidatedByOtherClient(t *testing.T) {
	localCachesOnly(t)
	ds := newStore(t, Options{})
	decl := localDecl(ds, "other", time.Hour, 100)
	c := NewCache[int](ds, decl, "x")
	raw := rawClient(t)
	other, err := New(Options{URL: redisURL, Prefix: ds.prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	oc := NewCache[int](other, localDecl(other, "other", time.Hour, 100), "x")

	var took []time.Duration
	for attempt := range 3 {
		if err := c.Set(bg, 1000*attempt); err != nil {
			t.Fatal(err)
		}
		mustGet(t, c, 1000*attempt)
		if !cached(localStoreOf(t, ds, decl), c.Key()) {
			t.Fatal("not cached")
		}
		// Alternately a plain go-redis client and a DataStore of its own.
		want := 1000*attempt + 1
		if attempt%2 == 0 {
			if err := raw.Set(bg, c.Key(), fmt.Sprint(want), 0).Err(); err != nil {
				t.Fatal(err)
			}
		} else if err := oc.Set(bg, want); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			v, ok, err := c.Get(bg)
			if err != nil || !ok {
				t.Fatalf("Get = %v, %v, %v", v, ok, err)
			}
			if v == want {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("after 5s Get still returns %d, not the %d another client set: the invalidation never arrived", v, want)
			}
			time.Sleep(time.Millisecond)
		}
		took = append(took, time.Since(start))
		if took[len(took)-1] <= 100*time.Millisecond {
			t.Logf("invalidation seen after %v", took[len(took)-1])
			return
		}
	}
	t.Fatalf("invalidations took %v; want one attempt within 100ms", took)
}

// The cache holds at most its size in entries, and evicting never serves a
// wrong value.
func TestLocalCacheSizeBound(t *testing.T) {
	localCachesOnly(t)
	ds := newStore(t, Options{})
	decl := localDecl(ds, "bound", time.Hour, 10)
	for i := range 100 {
		c := NewCache[int](ds, decl, fmt.Sprint(i))
		if err := c.Set(bg, i); err != nil {
			t.Fatal(err)
		}
		mustGet(t, c, i)
		if n := localStoreOf(t, ds, decl).len(); n > 10 {
			t.Fatalf("after %d keys the local cache holds %d entries; want at most 10", i+1, n)
		}
	}
	for i := range 100 {
		mustGet(t, NewCache[int](ds, decl, fmt.Sprint(i)), i)
	}
	if n := localStoreOf(t, ds, decl).len(); n != 10 {
		t.Errorf("local cache holds %d entries; want it full at 10", n)
	}
	// Hot keys survive a scan of cold ones (the clock gives them a second chance).
	hot := NewCache[int](ds, decl, "0")
	mustGet(t, hot, 0)
	for i := 1; i < 30; i++ {
		mustGet(t, NewCache[int](ds, decl, fmt.Sprint(50+i)), 50+i)
		if !cached(localStoreOf(t, ds, decl), hot.Key()) { // a read, too
			t.Fatalf("a key read between every miss was evicted after %d misses", i)
		}
	}
}

// An entry is not served past its key's expiry, even when the server's
// invalidation never comes: the proxy drops everything the server says
// once the entry is cached.
func TestLocalCacheExpiry(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	// The Get through the cut network below outlasts LocalMaxAge; the
	// entry of the key without expiry must stay servable for the check.
	defer func(d time.Duration) { localMaxAge = d }(localMaxAge)
	localMaxAge = time.Hour
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds := newStore(t, Options{Addr: proxy.Addr})
	decl := localDecl(ds, "expiry", time.Hour, 100)
	c := NewCache[int](ds, decl, "x")
	forever := NewCache[int](ds, localDecl(ds, "forever", NoExpiry, 100), "x")
	if err := c.SetTTL(bg, 1, 400*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := forever.Set(bg, 2); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, 1)
	mustGet(t, forever, 2)
	s := localStoreOf(t, ds, decl)
	if !cached(s, c.Key()) {
		t.Fatal("not cached")
	}
	proxy.Blackhole(true)
	defer proxy.Blackhole(false)
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if cached(s, c.Key()) {
		t.Fatal("the entry is served after its key expired")
	}
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	if v, ok, err := c.Get(ctx); ok {
		t.Fatalf("Get after expiry = %v, %v, %v; want no value", v, ok, err)
	}
	mustGet(t, forever, 2) // ttl: none: still served, from memory
}

// The entries fetched on a connection go with it: the server forgets what
// the connection read, and invalidations sent meanwhile are lost.
func TestLocalCacheConnectionLost(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds := newStore(t, Options{Addr: proxy.Addr})
	decl := localDecl(ds, "lost", time.Hour, 100)
	c := NewCache[int](ds, decl, "x")
	if err := c.Set(bg, 1); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, 1)
	s := localStoreOf(t, ds, decl)
	if !cached(s, c.Key()) {
		t.Fatal("not cached")
	}
	proxy.Cut()
	// Written past the proxy: no invalidation can reach ds.
	if err := rawClient(t).Set(bg, c.Key(), "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		v, ok, err := c.Get(bg)
		if err == nil && ok && v == 2 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("5s after its connection was cut, Get = %v, %v, %v; want the value written meanwhile, 2", v, ok, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Where client-side caching is unavailable, a local cache is a plain one:
// every Get goes to the server, so another client's Set is seen at once.
func TestLocalCacheUnavailable(t *testing.T) {
	redistest.SingleOnly(t, "miniredis, database 1 and a plain client of the one server's address")
	mr := miniredis.RunT(t) // HELLO 3, but no CLIENT TRACKING
	raw := rawClient(t)
	if err := raw.Do(bg, "acl", "setuser", "nocsc", "on", ">pw", "~*", "+@all", "-client").Err(); err != nil {
		t.Fatal(err)
	}
	defer raw.Do(bg, "acl", "deluser", "nocsc")
	addr := testServerAddr(t)
	for _, tc := range []struct {
		name   string
		opts   Options
		writer redis.Options
	}{
		{"miniredis", Options{Addr: mr.Addr()}, redis.Options{Addr: mr.Addr()}},
		{"ACL user without CLIENT", Options{Addr: addr, Username: "nocsc", Password: "pw"}, redis.Options{Addr: addr}},
		{"DB 1", Options{Addr: addr, DB: 1}, redis.Options{Addr: addr, DB: 1}},
		{"turned off", Options{URL: redisURL, DisableLocalCaches: true}, redis.Options{Addr: addr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := newStore(t, tc.opts)
			if tc.opts.Client != nil {
				defer tc.opts.Client.Close()
			}
			writer := redis.NewClient(&tc.writer)
			defer writer.Close()
			decl := localDecl(ds, "plain", time.Hour, 100)
			c := NewCache[int](ds, decl, "x")
			for i := range 20 {
				if err := writer.Set(bg, c.Key(), fmt.Sprint(i), 0).Err(); err != nil {
					t.Fatal(err)
				}
				mustGet(t, c, i)
			}
			if m := ds.Connection.local.byDecl.Load(); m != nil && (*m)[localKeyOf(decl)] != nil {
				if n := (*m)[localKeyOf(decl)].store.len(); n != 0 {
					t.Errorf("local cache holds %d entries; want none", n)
				}
			}
		})
	}
	// The untyped CacheStore and caches not declared local never make one.
	ds := newStore(t, Options{})
	plain := testCache[int](ds, "notlocal", time.Hour)
	if err := plain.Set(bg, 1); err != nil {
		t.Fatal(err)
	}
	mustGet(t, plain, 1)
	var v int
	if ok, err := ds.Cache.Get(bg, "notlocal:x", &v); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ds.Connection.local.byDecl.Load() != nil {
		t.Error("a local cache was made without a local declaration")
	}
}

// Close: later Gets fail with ErrClosed and the memory is emptied.
func TestLocalCacheClose(t *testing.T) {
	localCachesOnly(t)
	ds := newStore(t, Options{})
	decl := localDecl(ds, "close", time.Hour, 100)
	c := NewCache[int](ds, decl, "x")
	if err := c.Set(bg, 1); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, 1)
	s := localStoreOf(t, ds, decl)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, _, err := c.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v; want context.Canceled, even on a hit", err)
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(bg); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v; want ErrClosed", err)
	}
	if n := s.len(); n != 0 {
		t.Errorf("%d entries left after Close", n)
	}
}

// Many readers and writers on a few keys, under the race detector: each
// writer of this process reads its own write back, and once the writes
// stop every reader sees the last value of each key.
func TestLocalCacheConcurrent(t *testing.T) {
	ds := newStore(t, Options{})
	decl := localDecl(ds, "conc", time.Hour, 3)
	other, err := New(Options{URL: redisURL, Prefix: ds.prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	keys := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := keys[(g+i)%len(keys)]
				c := NewCache[int](ds, decl, k)
				switch {
				case g%4 == 0: // a writer of this process: reads its write back at once
					// Only goroutines 0, 4, 8, 12 write, each its own values.
					w := NewCache[int](ds, decl, fmt.Sprint("own", g))
					if err := w.Set(bg, i); err != nil {
						errs <- err
						return
					}
					if v, ok, err := w.Get(bg); err != nil || !ok || v != i {
						errs <- fmt.Errorf("goroutine %d read %v, %v, %v after writing %d", g, v, ok, err, i)
						return
					}
				case g%4 == 1: // another client
					if err := NewCache[int](other, decl, k).Set(bg, i); err != nil {
						errs <- err
						return
					}
				default:
					if _, _, err := c.Get(bg); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := NewCache[int](other, decl, k).Set(bg, -1); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		c := NewCache[int](ds, decl, k)
		start := time.Now()
		for {
			v, ok, err := c.Get(bg)
			if err == nil && ok && v == -1 {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("key %s: Get = %v, %v, %v 5s after the last write; want -1", k, v, ok, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestLocalCacheDeclPerCall: runtime.NewCache is public, and a caller may
// build an equal CacheDecl for every call; that must not make a go-redis
// client, pool and sweep goroutine per call.
func TestLocalCacheDeclPerCall(t *testing.T) {
	ds := newStore(t, Options{})
	before := goruntime.NumGoroutine()
	for i := range 200 {
		c := NewCache[int](ds, &CacheDecl{Name: "per", Prefix: ds.prefix, Key: MustKeyPattern("per:{id}"), TTL: time.Hour, Local: 10}, fmt.Sprint(i))
		if _, _, err := c.Get(bg); err != nil {
			t.Fatal(err)
		}
	}
	after := goruntime.NumGoroutine()
	m := ds.Connection.local.byDecl.Load()
	t.Logf("goroutines %d -> %d, local caches %d", before, after, len(*m))
	if after-before > 20 {
		t.Errorf("200 Gets through equal decls made %d goroutines and %d local caches (clients)", after-before, len(*m))
	}
}

// localCachesOnly skips t on a cluster, where local caches are plain ones
// (see the README's "Redis Cluster and Sentinel"): a test of what a local
// cache keeps in memory has nothing to look at there.
func localCachesOnly(t *testing.T) {
	t.Helper()
	if redistest.CurrentTopology() == redistest.TopologyCluster {
		t.Skip("local caches are plain on a cluster")
	}
}
