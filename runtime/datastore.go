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

import "sync"

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
}

// New validates opts and returns a DataStore. It does not connect: the
// first call that needs the server does.
func New(opts Options) (*DataStore, error) {
	ro, err := opts.redisOptions()
	if err != nil {
		return nil, opError("new", "", err)
	}
	ds := &DataStore{
		Connection: newConnection(opts, ro),
		prefix:     opts.Prefix,
		maxPayload: opts.MaxPayloadBytes,
		batch:      newBatchers(opts.NoCoalescing),
	}
	if ds.maxPayload == 0 {
		ds.maxPayload = DefaultMaxPayloadBytes
	}
	ds.Queue = &QueueStore{ds: ds}
	ds.Cache = &CacheStore{ds: ds}
	return ds, nil
}

// Close closes the connection: blocked pops return ErrClosed, calls in
// flight finish, and later calls return ErrClosed. It is idempotent.
func (ds *DataStore) Close() error {
	ds.stopPromoters()
	return ds.Connection.Close()
}
