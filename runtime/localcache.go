package runtime

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// A local cache (a CacheDecl with Local > 0, the schema's `local: true`)
// answers Get from process memory while Redis promises to say when the key
// changes. It is go-redis's client-side caching: each local cache has a
// client of its own with Protocol 3, whose connections all run CLIENT
// TRACKING ON (the default mode, not BCAST: the server remembers the keys
// each connection read and pushes an "invalidate" message to that
// connection when one of them is written, expires or is evicted). go-redis
// reads those pushes when the connection is next used and, for idle pooled
// connections, every 5 ms from a goroutine of its own; it drops every entry
// a connection fetched when that connection closes or is re-dialled, since
// the server forgets its tracking then and invalidations could have been
// missed; and it turns caching off for good (plain GETs) when the server
// refuses HELLO 3 or CLIENT TRACKING.
//
// The entries live in a localStore, this package's implementation of
// go-redis's Cache interface, rather than go-redis's LocalCache, for one
// reason: an entry must not be served after its key expires. Redis sends
// the invalidation of an expired key only when it deletes the key, lazily
// on access or in its sampling expire cycle, possibly long after the
// expiry; LocalCache keeps no expiry (its MaxStaleness counts from the
// fetch, for the whole client, not from the key's TTL). So after every
// fetch the entry stays unservable until a PTTL, sent after the GET's
// reply came back, gives it a deadline: the time the PTTL was sent plus
// the milliseconds it returned, which is never later than the expiry the
// server will apply. An entry is served only while it is settled so and
// before its deadline.

// localStoreMax is the most entries a local cache may hold: each miss that
// finds the cache full evicts one entry, which stays cheap up to this size.
const localStoreMax = 1_000_000

// localCaches holds the local caches of a Connection, made on first use.
type localCaches struct {
	mu     sync.Mutex
	byDecl atomic.Pointer[map[localKey]*localCache] // copy on write
	closed bool
}

// localCache is one declaration's local cache.
type localCache struct {
	client *redis.Client // Protocol 3 with tracking; nil when unavailable
	store  *localStore
}

// localKey identifies a declaration by what it says, not by its address:
// a caller of NewCache may build an equal CacheDecl for every call, and
// must not get a client of its own each time.
type localKey struct {
	prefix, name, pattern string
	layout                Layout
	size                  int
}

func localKeyOf(decl *CacheDecl) localKey {
	return localKey{decl.Prefix, decl.Name, decl.Key.String(), decl.Layout, decl.Local}
}

// localFor returns decl's local cache, made on first use, or nil when
// local caching is unavailable on c (then Gets go to Redis as for any
// cache). The clients must have been made (acquire).
func (c *Connection) localFor(decl *CacheDecl) *localCache {
	k := localKeyOf(decl)
	if m := c.local.byDecl.Load(); m != nil {
		if lc, ok := (*m)[k]; ok {
			return lc
		}
	}
	c.local.mu.Lock()
	defer c.local.mu.Unlock()
	old := c.local.byDecl.Load()
	if old != nil {
		if lc, ok := (*old)[k]; ok {
			return lc
		}
	}
	if c.local.closed {
		return nil
	}
	lc := c.newLocalCache(decl)
	m := make(map[localKey]*localCache, 1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[k] = lc
	c.local.byDecl.Store(&m)
	return lc
}

// newLocalCache makes decl's tracking client, from the options of the
// command client, or returns nil when they rule client-side caching out:
// local caches turned off, a database other than 0 (go-redis tracks DB 0
// only) or a credentials provider (the ACL user could change under the
// cache).
func (c *Connection) newLocalCache(decl *CacheDecl) *localCache {
	if c.noLocal {
		return nil
	}
	cl, ok := c.client.(*redis.Client)
	if !ok {
		return nil // a cluster's: its GETs go to the owning primary as for any cache
	}
	o := *cl.Options()
	if o.DB != 0 || o.CredentialsProvider != nil || o.CredentialsProviderContext != nil || o.StreamingCredentialsProvider != nil {
		return nil
	}
	store := newLocalStore(decl.Local, o.DB, o.Username)
	o.Protocol = 3
	// A client made with Protocol 2 carries a processor that drops pushes;
	// the tracking client needs go-redis's own.
	o.PushNotificationProcessor = nil
	o.ClientSideCache = store
	o.ClientSideCacheConfig = nil
	o.ClientSideCacheRefreshOnInvalidate = false
	o.ClientSideCacheCoalesceMisses = false
	o.ClientSideCacheInvalidationBatchWindow = 0
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	o.MinIdleConns = 0
	return &localCache{client: redis.NewClient(&o), store: store}
}

// forgetLocal drops key from every local cache, after a write of this
// process to key (whatever its outcome): the next Get of this process
// fetches it again, without waiting for the server's invalidation.
func (c *Connection) forgetLocal(key string) {
	m := c.local.byDecl.Load()
	if m == nil {
		return
	}
	for _, lc := range *m {
		if lc != nil {
			lc.store.deleteKey(key)
		}
	}
}

// closeLocal closes the tracking clients and empties the local caches;
// Close calls it once no call is in flight.
func (c *Connection) closeLocal() error {
	c.local.mu.Lock()
	defer c.local.mu.Unlock()
	c.local.closed = true
	m := c.local.byDecl.Load()
	if m == nil {
		return nil
	}
	var err error
	for _, lc := range *m {
		if lc != nil {
			if e := lc.client.Close(); e != nil && err == nil {
				err = e
			}
			lc.store.Flush()
		}
	}
	return err
}

// localGet is DataStore.get for a local cache: from memory when the entry is
// there, settled and before its deadline; otherwise a GET through the
// tracking client, which caches the reply, and a PTTL that settles it.
func (ds *DataStore) localGet(ctx context.Context, decl *CacheDecl, key string) (data []byte, ok bool, err error) {
	c := ds.Connection
	// A hit needs neither the clients nor registering with Close: Close
	// empties the memory once the calls in flight are done, so a Get
	// after Close misses here and gets ErrClosed below.
	if err := ctx.Err(); err != nil {
		return nil, false, opError("get", key, err)
	}
	if m := c.local.byDecl.Load(); m != nil {
		if lc := (*m)[localKeyOf(decl)]; lc != nil {
			if d, found, hit := lc.store.lookup(key); hit {
				return d, found, nil
			}
		}
	}
	err = c.call("get", key, func(cl redis.UniversalClient) error {
		lc := c.localFor(decl)
		if lc == nil {
			data, err = cl.Get(ctx, key).Bytes()
		} else if d, found, hit := lc.store.lookup(key); hit {
			data, ok = d, found
			return nil
		} else {
			data, err = lc.client.Get(ctx, key).Bytes()
			if err == nil || err == redis.Nil {
				lc.settle(ctx, cl, key)
			}
		}
		if err == redis.Nil {
			return nil
		}
		ok = err == nil
		return err
	})
	return data, ok, err
}

// settle gives the entry a fetch left for key its deadline, if no other
// caller is doing so. An error leaves the entry unservable, to be settled by
// a later Get.
func (lc *localCache) settle(ctx context.Context, cl redis.UniversalClient, key string) {
	e := lc.store.toSettle(key)
	if e == nil {
		return
	}
	sent := monoNow()
	ms, err := cl.PTTL(ctx, key).Result()
	if err != nil {
		e.settling.Store(false)
		return
	}
	// go-redis turns PTTL's -1 and -2 into these durations.
	pttl := int64(-2)
	switch {
	case ms == -1:
		pttl = -1
	case ms >= 0:
		pttl = ms.Milliseconds()
	}
	lc.store.settle(e, sent, pttl)
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow is a monotonic clock reading in nanoseconds.
func monoNow() int64 { return int64(time.Since(monoBase)) }

// Entry states.
const (
	fetching  = iota // reserved by a fetch in flight
	unsettled        // holds a reply; no deadline known yet: not served
	settled          // holds a reply and its deadline: served until then
	gone             // removed from the store
)

// localEntry is one cached GET reply.
type localEntry struct {
	ck, key  string // go-redis's cache key; the Redis key
	state    int
	token    uint64        // while fetching
	since    int64         // monoNow at the reservation
	wait     chan struct{} // closed when the entry stops fetching
	value    []byte        // the raw RESP reply, never changed once set
	conn     uint64        // the connection that fetched it
	deadline int64         // monoNow after which it is not served; 0: none
	settling atomic.Bool
	used     atomic.Bool // read since the clock hand last passed
	slot     int         // index in localStore.ring
}

// localStore implements go-redis's Cache for one local cache: at most max
// entries (fetching ones included), evicted by the clock algorithm (an
// entry read since the hand last passed it gets a second chance).
type localStore struct {
	ns  string // the namespace go-redis puts before the Redis keys it hands over
	max int

	mu     sync.RWMutex
	byCK   map[string]*localEntry
	byKey  map[string]*localEntry
	byConn map[uint64]map[*localEntry]struct{}
	ring   []*localEntry
	hand   int
	tokens uint64
}

// LocalMaxAge is the longest a local cache serves an entry after fetching
// it, whatever the key's TTL. Invalidations arrive on the connection that
// fetched the entry; one that dies silently (a NAT or firewall dropping an
// idle flow: no FIN or RST reaches the client) loses them, and nothing
// else would notice, since a hit never touches the network. Fetching the
// entry again after LocalMaxAge bounds how stale it can be then, and uses
// a pooled connection, which finds a dead one out.
const LocalMaxAge = 5 * time.Second

// localMaxAge is LocalMaxAge, shortened by tests.
var localMaxAge = LocalMaxAge

// localFetchTimeout is how long a Get waits for another caller's fetch of
// the same key before fetching itself, as go-redis's LocalCache does.
const localFetchTimeout = 5 * time.Second

func newLocalStore(max, db int, username string) *localStore {
	return &localStore{
		// As go-redis v9.23 builds it (cscNamespacePrefix); Reserve refuses
		// to cache keys without it, so a change there costs hits, never
		// correctness.
		ns:     strconv.Itoa(db) + "\x00" + strconv.Itoa(len(username)) + ":" + username + "\x00",
		max:    min(max, localStoreMax),
		byCK:   map[string]*localEntry{},
		byKey:  map[string]*localEntry{},
		byConn: map[uint64]map[*localEntry]struct{}{},
	}
}

var _ redis.Cache = (*localStore)(nil)

// servable reports whether e may be served at now; the lock is held.
func (e *localEntry) servable(now int64) bool {
	return e.state == settled && (e.deadline == 0 || now < e.deadline)
}

// lookup returns key's cached value (found false for a cached miss); hit is
// false when there is nothing servable.
func (s *localStore) lookup(key string) (data []byte, found, hit bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byKey[key]
	if e == nil || !e.servable(monoNow()) {
		return nil, false, false
	}
	data, found, ok := bulkPayload(e.value)
	if !ok {
		return nil, false, false
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return data, found, true
}

// bulkPayload reads a GET reply: a bulk string, or a null (found false).
func bulkPayload(raw []byte) (data []byte, found, ok bool) {
	if bytes.Equal(raw, []byte("_\r\n")) || bytes.Equal(raw, []byte("$-1\r\n")) {
		return nil, false, true
	}
	if len(raw) < 4 || raw[0] != '$' {
		return nil, false, false
	}
	i := bytes.IndexByte(raw, '\r')
	if i < 2 {
		return nil, false, false
	}
	n, err := strconv.Atoi(string(raw[1:i]))
	if err != nil || n < 0 || len(raw) != i+2+n+2 {
		return nil, false, false
	}
	return raw[i+2 : i+2+n], true, true
}

// toSettle returns key's unsettled entry and marks it being settled, or
// nil.
func (s *localStore) toSettle(key string) *localEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byKey[key]
	if e == nil || e.state != unsettled || !e.settling.CompareAndSwap(false, true) {
		return nil
	}
	return e
}

// settle gives e, if it is still key's entry and unsettled, the deadline
// that a PTTL sent at sent and answering pttl (ms, -1 no expiry, -2 no key)
// implies. A reply that disagrees with the entry (a value for a cached miss,
// or the reverse) means the key changed since the GET: the entry goes.
func (s *localStore) settle(e *localEntry, sent, pttl int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey[e.key] != e || e.state != unsettled {
		return
	}
	_, found, ok := bulkPayload(e.value)
	switch {
	case !ok, found != (pttl != -2):
		s.removeLocked(e)
	case pttl >= 0:
		e.deadline = max(min(sent+pttl*int64(time.Millisecond), sent+int64(localMaxAge)), 1)
		e.state = settled
	default:
		e.deadline = max(sent+int64(localMaxAge), 1)
		e.state = settled
	}
}

// deleteKey drops key's entry, fetching or not.
func (s *localStore) deleteKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byKey[key]; e != nil {
		s.removeLocked(e)
	}
}

// len returns the number of entries.
func (s *localStore) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byCK)
}

// Get returns the value cached under go-redis's cache key ck if it may be
// served, waiting (until ctx ends) for a fetch of it in flight.
func (s *localStore) Get(ctx context.Context, ck string) ([]byte, bool) {
	for {
		s.mu.RLock()
		e := s.byCK[ck]
		if e == nil {
			s.mu.RUnlock()
			return nil, false
		}
		if e.state != fetching {
			ok := e.servable(monoNow())
			v := e.value
			s.mu.RUnlock()
			if !ok {
				return nil, false
			}
			return v, true
		}
		wait, left := e.wait, time.Duration(e.since+int64(localFetchTimeout)-monoNow())
		s.mu.RUnlock()
		if left <= 0 {
			return nil, false
		}
		t := time.NewTimer(left)
		select {
		case <-wait:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-t.C:
			return nil, false
		}
	}
}

// Reserve makes a fetching entry for ck, whose one Redis key must be in the
// store's namespace, and returns its token; shouldFetch is false when
// another caller is fetching ck or it is cached (the caller then Gets it).
// A token of 0 with shouldFetch fetches without caching.
func (s *localStore) Reserve(ck string, redisKeys []string) (token uint64, shouldFetch bool) {
	if len(redisKeys) != 1 || len(redisKeys[0]) < len(s.ns) || redisKeys[0][:len(s.ns)] != s.ns || s.max <= 0 {
		return 0, true
	}
	key := redisKeys[0][len(s.ns):]
	now := monoNow()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byCK[ck]; e != nil {
		switch {
		case e.state == fetching && now-e.since < int64(localFetchTimeout),
			e.state == unsettled, e.servable(now):
			return 0, false
		}
		s.removeLocked(e)
	}
	if e := s.byKey[key]; e != nil {
		s.removeLocked(e)
	}
	for len(s.ring) >= s.max {
		if !s.evictLocked() {
			return 0, true
		}
	}
	s.tokens++
	e := &localEntry{ck: ck, key: key, state: fetching, token: s.tokens, since: now, wait: make(chan struct{}), slot: len(s.ring)}
	s.byCK[ck], s.byKey[key] = e, e
	s.ring = append(s.ring, e)
	return e.token, true
}

// evictLocked removes one entry that is not fetching, by the clock; false
// when every entry is fetching.
func (s *localStore) evictLocked() bool {
	for range 2 * len(s.ring) {
		if s.hand >= len(s.ring) {
			s.hand = 0
		}
		e := s.ring[s.hand]
		switch {
		case e.state == fetching:
			s.hand++
		case e.used.Load():
			e.used.Store(false)
			s.hand++
		default:
			// The last entry, the newest, takes e's slot: the hand moves on,
			// so it is not the next one looked at.
			s.removeLocked(e)
			s.hand++
			return true
		}
	}
	return false
}

// FulfillOwned stores the reply value of the fetch holding token, fetched on
// connection conn, unsettled.
func (s *localStore) FulfillOwned(ck string, token, conn uint64, value []byte) bool {
	v := bytes.Clone(value)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byCK[ck]
	if e == nil || token == 0 || e.state != fetching || e.token != token {
		return false
	}
	e.value, e.state, e.token, e.conn = v, unsettled, 0, conn
	close(e.wait)
	if conn != 0 {
		if s.byConn[conn] == nil {
			s.byConn[conn] = map[*localEntry]struct{}{}
		}
		s.byConn[conn][e] = struct{}{}
	}
	return true
}

// Cancel drops the fetching entry holding token.
func (s *localStore) Cancel(ck string, token uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byCK[ck]
	if e == nil || token == 0 || e.state != fetching || e.token != token {
		return false
	}
	s.removeLocked(e)
	return true
}

// DeleteByRedisKey drops the entry of a key named by an invalidation;
// a key outside the namespace empties the store, to be safe.
func (s *localStore) DeleteByRedisKey(redisKey string) int {
	if len(redisKey) < len(s.ns) || redisKey[:len(s.ns)] != s.ns {
		return s.Flush()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byKey[redisKey[len(s.ns):]]; e != nil {
		s.removeLocked(e)
		return 1
	}
	return 0
}

// DeleteByCacheKey drops ck's entry.
func (s *localStore) DeleteByCacheKey(ck string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byCK[ck]; e != nil {
		s.removeLocked(e)
		return true
	}
	return false
}

// EvictByConn drops every entry fetched on connection conn: go-redis calls
// it when the connection closes or is re-dialled.
func (s *localStore) EvictByConn(conn uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for e := range s.byConn[conn] {
		s.removeLocked(e)
		n++
	}
	return n
}

// Flush drops every entry.
func (s *localStore) Flush() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.ring)
	for len(s.ring) > 0 {
		s.removeLocked(s.ring[len(s.ring)-1])
	}
	return n
}

// removeLocked drops e from every index and wakes its waiters.
func (s *localStore) removeLocked(e *localEntry) {
	if s.byCK[e.ck] == e {
		delete(s.byCK, e.ck)
	}
	if s.byKey[e.key] == e {
		delete(s.byKey, e.key)
	}
	if m := s.byConn[e.conn]; m != nil {
		delete(m, e)
		if len(m) == 0 {
			delete(s.byConn, e.conn)
		}
	}
	if e.slot >= 0 && e.slot < len(s.ring) && s.ring[e.slot] == e {
		last := s.ring[len(s.ring)-1]
		s.ring[e.slot], last.slot = last, e.slot
		s.ring[len(s.ring)-1] = nil
		s.ring = s.ring[:len(s.ring)-1]
		e.slot = -1
	}
	if e.state == fetching {
		close(e.wait)
	}
	e.state = gone
}
