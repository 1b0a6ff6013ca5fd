// Package runtime is the storage layer under the code that storagegen
// generates: a DataStore facade over a QueueStore (Redis lists), a
// CacheStore (Redis strings) and a lazily opened Connection, plus the
// generic typed wrappers Queue[T] and Cache[T] that generated accessors
// return.
//
// Untyped use, as the engine's Python storage layer has it:
//
//	ds, err := runtime.New(runtime.Options{URL: "redis://127.0.0.1:6379/0"})
//	defer ds.Close()
//	err = ds.Queue.Push(ctx, "queue_node_5_node_8", map[string]any{"k": "v"})
//	var m map[string]any
//	ok, err := ds.Queue.Pop(ctx, "queue_node_5_node_8", 5*time.Second, &m)
//
// Typed use goes through a generated package: generated.New(ds).
//
// The package is named after its directory, runtime, like the standard
// library's; a file that imports both gives this one an alias, such as
// sgruntime. Its errors start with "storagegen: ", never "runtime: ", so
// they are not taken for the Go runtime's.
package runtime

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// SupportPackageIsVersion1 is referenced by generated code; it fails to
// compile against a runtime that no longer supports what it emits.
const SupportPackageIsVersion1 = true

// DataStore is the single entry point to queues and caches.
type DataStore struct {
	// Queue holds the untyped queue operations, by queue name.
	Queue *QueueStore
	// Cache holds the untyped cache operations, by key.
	Cache *CacheStore
	// Connection manages the Redis clients; it connects on first use.
	Connection *Connection

	prefix     string
	maxPayload int
	batch      batchers // coalesces concurrent pushes, sets, gets and pops (coalesce.go)
	reclaimed  sync.Map // queue key → *atomic.Int64: unix ns of its last reclaim (reliable.go)
	promoters  sync.Map // queue key → *promoter: makes delayed items ready on time (reliable.go)
	shardSets  sync.Map // shardSetKey → *shardSet: the shards of each sharded queue (shards.go)
	log        *slog.Logger
	eviction   sync.Once  // checks the server's eviction policy (warnEviction)
	tel        *telemetry // nil without Options.MeterProvider (telemetry.go)
}

// New validates opts and returns a DataStore. It does not connect: the
// first call that needs the server does.
func New(opts Options) (*DataStore, error) {
	ro, err := opts.redisOptions()
	if err != nil {
		return nil, opError("new", "", err)
	}
	tel, err := newTelemetry(opts.MeterProvider, opts.TracerProvider, opts.StatsInterval)
	if err != nil {
		return nil, opError("new", "", err)
	}
	conn := newConnection(opts, ro)
	ds := &DataStore{
		Connection: conn,
		prefix:     opts.Prefix,
		maxPayload: opts.MaxPayloadBytes,
		batch:      newBatchers(opts.NoCoalescing, conn),
		log:        opts.Logger,
		tel:        tel,
	}
	ds.batch.instrument(tel)
	if err := tel.observe(opts.MeterProvider, conn); err != nil {
		return nil, opError("new", "", err)
	}
	if ds.log == nil {
		ds.log = slog.Default()
	}
	if ds.maxPayload == 0 {
		ds.maxPayload = DefaultMaxPayloadBytes
	}
	ds.Queue = &QueueStore{ds: ds}
	ds.Cache = &CacheStore{ds: ds}
	return ds, nil
}

// Close closes the connection: blocked pops return ErrClosed, calls in
// flight finish, and later calls return ErrClosed. The gauge
// storagegen.queue.items no longer reports the DataStore's queues. It is
// idempotent.
func (ds *DataStore) Close() error {
	ds.tel.close()
	ds.stopPromoters()
	return ds.Connection.Close()
}

// warnEviction reads the server's maxmemory-policy, once per DataStore, on
// its first at-least-once push or receive, and warns through the logger
// when it is not noeviction: a server that evicts keys when its memory is
// full may drop the keys of an at-least-once queue, and with them items
// whose push returned nil. A server that does not let the user read its
// configuration (NOPERM from a managed service, CONFIG renamed away) is
// taken as it is, with a debug line. It costs the first call one round
// trip, of at most a second.
func (ds *DataStore) warnEviction(ctx context.Context, cl redis.UniversalClient) {
	ds.eviction.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		res, err := cl.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			ds.log.Debug("storagegen: could not read the server's maxmemory-policy", "err", err)
			return
		}
		if p := res["maxmemory-policy"]; p != "" && p != "noeviction" {
			ds.log.Warn("storagegen: the server's maxmemory-policy is not noeviction: when its memory is full it may evict the keys of at-least-once queues, losing items; set maxmemory-policy noeviction", "maxmemory-policy", p)
		}
	})
}
