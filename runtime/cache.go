package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Caches are Redis strings written with SET … PX, so TTLs are exact to the
// millisecond.

// TTL values with a meaning of their own.
const (
	// NoExpiry, as a CacheDecl's TTL, stores without expiry (the schema's
	// `ttl: none`); returned by TTL for a key that exists without expiry.
	NoExpiry time.Duration = -1
	// KeyMissing is returned by TTL for a key that does not exist.
	KeyMissing time.Duration = -2
)

// CacheDecl describes one cache of a schema. Generated code declares one
// per cache.
type CacheDecl struct {
	Name   string        // the schema's name, for errors
	Prefix string        // the schema's prefix
	Key    *KeyPattern   // the key pattern
	Layout Layout        // LayoutTagged (the zero value) or LayoutPlain
	TTL    time.Duration // the schema's ttl; NoExpiry for `ttl: none`
	// Local is the number of entries the cache keeps in process memory
	// (the schema's `local: true` and `local_size`); 0 keeps none. See
	// localcache.go.
	Local int
}

// Cache is one typed cache entry. Its zero value is not usable; get one
// from a generated accessor or NewCache.
type Cache[T any] struct {
	ds  *DataStore
	key string
	ttl time.Duration
	err error // from building the key; returned by every call

	local *CacheDecl // set when decl is a local cache
	tel   *declTel   // the declaration's metrics; nil records none (telemetry.go)
}

// NewCache returns the cache entry of decl for the placeholder values args.
// A bad argument (an empty string, say) is reported by every call on the
// returned entry.
func NewCache[T any](ds *DataStore, decl *CacheDecl, args ...any) Cache[T] {
	name, err := decl.Key.ExpandLayout(decl.Layout, args...)
	if err == nil && ds == nil {
		err = fmt.Errorf("%w: nil DataStore", ErrInvalidArgument)
	}
	if err != nil {
		return Cache[T]{ds: ds, key: decl.Key.String(), err: fmt.Errorf("cache %s: %w", decl.Name, err)}
	}
	c := Cache[T]{ds: ds, key: CacheKey(decl.Prefix, name), ttl: decl.TTL, tel: ds.tel.decl(kindCache, decl.Name)}
	if decl.Local > 0 {
		c.local = decl
	}
	return c
}

// Key returns the entry's Redis key.
func (c Cache[T]) Key() string { return c.key }

// Set stores v with the schema's TTL. Concurrent sets share a pipeline.
// If ctx ends before the SET is sent, Set returns ctx's error and stores
// nothing; once sent, it returns the SET's outcome. An error wrapping
// ErrUnknownOutcome means the reply was lost (the SET is not sent twice).
func (c Cache[T]) Set(ctx context.Context, v T) error {
	if c.err != nil {
		return opError("set", c.key, c.err)
	}
	if c.tel == nil {
		return c.ds.set(ctx, c.key, v, c.ttl)
	}
	start := time.Now()
	ctx, span := c.tel.start(ctx, opSet)
	err := c.ds.set(ctx, c.key, v, c.ttl)
	out := outcomeOf(err, outOK)
	c.tel.done(ctx, opSet, out, start, 0)
	endSpan(span, out)
	return err
}

// SetTTL stores v with the given TTL, which must be at least 1ms; it is
// truncated to whole milliseconds. Only the schema's `ttl: none` stores
// without expiry.
func (c Cache[T]) SetTTL(ctx context.Context, v T, ttl time.Duration) error {
	if c.err != nil {
		return opError("set", c.key, c.err)
	}
	if ttl < time.Millisecond {
		return opError("set", c.key, fmt.Errorf("%w: ttl %v is below 1ms", ErrInvalidArgument, ttl))
	}
	if c.tel == nil {
		return c.ds.set(ctx, c.key, v, ttl)
	}
	start := time.Now()
	ctx, span := c.tel.start(ctx, opSet)
	err := c.ds.set(ctx, c.key, v, ttl)
	out := outcomeOf(err, outOK)
	c.tel.done(ctx, opSet, out, start, 0)
	endSpan(span, out)
	return err
}

// Get returns the stored value, decoded into a fresh T. ok is false when
// there is none (a miss is not an error). A value that cannot be decoded
// is left in place and Get returns an error wrapping ErrDecode. Concurrent
// gets share a pipeline.
func (c Cache[T]) Get(ctx context.Context) (v T, ok bool, err error) {
	if c.tel == nil {
		return c.get(ctx)
	}
	start := time.Now()
	ctx, span := c.tel.start(ctx, opGet)
	v, ok, err = c.get(ctx)
	out := outMiss
	if ok {
		out = outHit
	}
	out = outcomeOf(err, out)
	c.tel.done(ctx, opGet, out, start, 0)
	endSpan(span, out)
	return v, ok, err
}

func (c Cache[T]) get(ctx context.Context) (v T, ok bool, err error) {
	if c.err != nil {
		return v, false, opError("get", c.key, c.err)
	}
	var data []byte
	if c.local != nil {
		data, ok, err = c.ds.localGet(ctx, c.local, c.key)
	} else {
		data, ok, err = c.ds.get(ctx, c.key)
	}
	if !ok {
		return v, false, err
	}
	if v, err = decode[T](data, c.ds.maxPayload); err != nil {
		return v, false, opError("get", c.key, err)
	}
	return v, true, nil
}

// Delete removes the entry and reports whether it existed.
func (c Cache[T]) Delete(ctx context.Context) (bool, error) {
	if c.err != nil {
		return false, opError("delete", c.key, c.err)
	}
	if c.tel == nil {
		return c.ds.del(ctx, c.key)
	}
	start := time.Now()
	ctx, span := c.tel.start(ctx, opDelete)
	deleted, err := c.ds.del(ctx, c.key)
	out := outcomeOf(err, outOK)
	c.tel.done(ctx, opDelete, out, start, 0)
	endSpan(span, out)
	return deleted, err
}

// Exists reports whether the entry exists.
func (c Cache[T]) Exists(ctx context.Context) (bool, error) {
	if c.err != nil {
		return false, opError("exists", c.key, c.err)
	}
	return c.ds.exists(ctx, c.key)
}

// TTL returns the time the entry has left, to the millisecond: NoExpiry
// if it never expires, KeyMissing if it does not exist.
func (c Cache[T]) TTL(ctx context.Context) (time.Duration, error) {
	if c.err != nil {
		return 0, opError("ttl", c.key, c.err)
	}
	return c.ds.ttl(ctx, c.key)
}

// CacheStore is the untyped cache API, as the engine's Python CacheStore
// has it: entries by key, values as any JSON-encodable value. The key is
// used as given (no escaping); it may not contain { } * ? [ ] \ or control
// bytes.
type CacheStore struct{ ds *DataStore }

// Set stores v under key. ttl > 0 expires it after ttl (truncated to whole
// milliseconds, at least 1ms); 0 stores without expiry, as the Python
// CacheStore's set without a ttl does; < 0 is an error.
func (s *CacheStore) Set(ctx context.Context, key string, v any, ttl time.Duration) error {
	full := CacheKey(s.ds.prefix, key)
	if err := checkName(key); err != nil {
		return opError("set", full, err)
	}
	switch {
	case ttl == 0:
		ttl = NoExpiry
	case ttl < time.Millisecond:
		return opError("set", full, fmt.Errorf("%w: ttl %v is negative or below 1ms", ErrInvalidArgument, ttl))
	}
	return s.ds.set(ctx, full, v, ttl)
}

// Get decodes the value under key into a fresh value stored in *dst and
// reports whether there was one. A value that cannot be decoded is left in
// place and Get returns an error wrapping ErrDecode.
func (s *CacheStore) Get(ctx context.Context, key string, dst any) (bool, error) {
	full := CacheKey(s.ds.prefix, key)
	if err := errors.Join(checkName(key), checkTarget(dst)); err != nil {
		return false, opError("get", full, err)
	}
	data, ok, err := s.ds.get(ctx, full)
	if !ok {
		return false, err
	}
	if err := decodeInto(data, dst, s.ds.maxPayload); err != nil {
		return false, opError("get", full, err)
	}
	return true, nil
}

// Delete removes key and reports whether it existed.
func (s *CacheStore) Delete(ctx context.Context, key string) (bool, error) {
	full := CacheKey(s.ds.prefix, key)
	if err := checkName(key); err != nil {
		return false, opError("delete", full, err)
	}
	return s.ds.del(ctx, full)
}

// Exists reports whether key exists.
func (s *CacheStore) Exists(ctx context.Context, key string) (bool, error) {
	full := CacheKey(s.ds.prefix, key)
	if err := checkName(key); err != nil {
		return false, opError("exists", full, err)
	}
	return s.ds.exists(ctx, full)
}

// TTL returns the time key has left, as Cache.TTL does.
func (s *CacheStore) TTL(ctx context.Context, key string) (time.Duration, error) {
	full := CacheKey(s.ds.prefix, key)
	if err := checkName(key); err != nil {
		return 0, opError("ttl", full, err)
	}
	return s.ds.ttl(ctx, full)
}

// set encodes v and stores it under key: with PX when ttl > 0, without
// expiry when ttl is NoExpiry.
func (ds *DataStore) set(ctx context.Context, key string, v any, ttl time.Duration) error {
	if ttl != NoExpiry && ttl < time.Millisecond {
		return opError("set", key, fmt.Errorf("%w: ttl %v is below 1ms", ErrInvalidArgument, ttl))
	}
	data, err := encode(v, ds.maxPayload)
	if err != nil {
		return opError("set", key, err)
	}
	cl, release, err := ds.Connection.acquire()
	if err != nil {
		return opError("set", key, err)
	}
	defer release()
	c := ds.batch.set.get()
	a := &c.arg
	a.args[0], a.args[1], a.args[2], a.n = "set", key, data, 3
	if ttl != NoExpiry {
		a.args[3], a.args[4], a.n = "px", ttl.Milliseconds(), 5
	}
	c.items, c.bytes = 1, len(data)
	ds.batch.set.do(ctx, cl, c)
	err = c.err
	ds.Connection.sawError(err)
	ds.batch.set.put(c)
	ds.Connection.forgetLocal(key)
	return opError("set", key, err)
}

// get reads key through the get coalescer; ok is false for a miss.
func (ds *DataStore) get(ctx context.Context, key string) (data []byte, ok bool, err error) {
	cl, release, err := ds.Connection.acquire()
	if err != nil {
		return nil, false, opError("get", key, err)
	}
	defer release()
	c := ds.batch.get.get()
	c.arg.args[0], c.arg.args[1], c.items = "get", key, 1
	if ds.batch.get.do(ctx, cl, c) {
		return nil, false, opError("get", key, ctx.Err()) // c is the batch's now
	}
	data, ok, err = c.arg.data, c.arg.ok, c.err
	ds.batch.get.put(c)
	return data, ok, opError("get", key, err)
}

func (ds *DataStore) del(ctx context.Context, key string) (deleted bool, err error) {
	err = ds.Connection.call("delete", key, func(cl redis.UniversalClient) error {
		n, err := cl.Del(ctx, key).Result()
		deleted = n > 0
		return err
	})
	ds.Connection.forgetLocal(key)
	return deleted, err
}

func (ds *DataStore) exists(ctx context.Context, key string) (exists bool, err error) {
	err = ds.Connection.call("exists", key, func(cl redis.UniversalClient) error {
		n, err := cl.Exists(ctx, key).Result()
		exists = n > 0
		return err
	})
	return exists, err
}

func (ds *DataStore) ttl(ctx context.Context, key string) (time.Duration, error) {
	var ms int64
	err := ds.Connection.call("ttl", key, func(cl redis.UniversalClient) (err error) {
		ms, err = cl.Do(ctx, "pttl", key).Int64()
		return err
	})
	switch {
	case err != nil:
		return 0, err
	case ms == -2:
		return KeyMissing, nil
	case ms == -1:
		return NoExpiry, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}
