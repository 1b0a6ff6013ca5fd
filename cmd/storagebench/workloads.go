package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/runtime"
)

// message is the payload: a struct of the kind the engine passes between
// nodes, about 200 bytes of JSON.
type message struct {
	RunID     string            `json:"run_id"`
	Source    string            `json:"source"`
	Target    string            `json:"target"`
	Seq       int64             `json:"seq"`
	Attempt   int               `json:"attempt"`
	CreatedAt time.Time         `json:"created_at"`
	Tags      []string          `json:"tags"`
	Output    map[string]string `json:"output"`
}

func newMessage() message {
	return message{
		RunID: "run-2f9c1a7e", Source: "node_extract", Target: "node_transform",
		Attempt: 1, CreatedAt: time.Date(2026, 11, 26, 9, 30, 0, 123456789, time.UTC),
		Tags:   []string{"etl"},
		Output: map[string]string{"rows": "1024", "uri": "s3://out/p1.parquet"},
	}
}

// The typed side's declarations, as generated code would declare them.
var (
	queueDecl = &runtime.QueueDecl{Name: "bench", Prefix: keyPrefix, Key: runtime.MustKeyPattern("edge:{source}:{target}")}
	cacheDecl = &runtime.CacheDecl{Name: "bench", Prefix: keyPrefix, Key: runtime.MustKeyPattern("output:{node}:{attempt:int}"), TTL: time.Hour}
	localDecl = &runtime.CacheDecl{Name: "local", Prefix: keyPrefix, Key: runtime.MustKeyPattern("local:{node}:{attempt:int}"), TTL: time.Hour, Local: hotKeys}
	// shardedDecl is queueDecl spread over benchShards lists.
	shardedDecl = &runtime.QueueDecl{Name: "sharded", Prefix: keyPrefix, Key: runtime.MustKeyPattern("sharded:{source}:{target}"), Shards: benchShards}
)

// benchShards is the shards of the sharded workloads.
const benchShards = 8

// The plain side's keys.
const (
	plainQueue  = keyPrefix + "plain:queue"
	plainCache  = keyPrefix + "plain:cache:"
	batchSize   = 100         // of PushMany, PopMany and the plain pipeline
	waitTimeout = time.Second // of blocking pops; go-redis sends no less than 1s anyway
	hotKeys     = 1000        // the keys a hot Get reads again and again
)

func (e *env) queue() runtime.Queue[message] {
	return runtime.NewQueue[message](e.ds, queueDecl, "node_extract", "node_transform")
}

func (e *env) shardedQueue() runtime.Queue[message] {
	return runtime.NewQueue[message](e.ds, shardedDecl, "node_extract", "node_transform")
}

func (e *env) cache(i int) runtime.Cache[message] {
	return runtime.NewCache[message](e.ds, cacheDecl, "node_transform", i)
}

func plainKey(i int) string { return plainCache + "node_transform:" + strconv.Itoa(i) }

// item returns the i-th payload: the message with its sequence number.
func (e *env) item(i int) message {
	m := e.msg
	m.Seq = int64(i)
	return m
}

// workload is one row of the table.
type workload struct {
	id, name     string
	perCall      bool   // each call is one operation, so its latency is shown
	notBuilt     string // why there is nothing to run yet
	typed, plain sideFunc
}

func workloads(cfg config) []workload {
	c := cfg.c
	gs := fmt.Sprintf("%d goroutines", c)
	return append([]workload{
		{id: "push-1", name: "Push, 1 goroutine", perCall: true, typed: typedPush(1), plain: plainPush(1)},
		{id: "pop-1", name: "Pop, 1 goroutine", perCall: true, typed: typedPop(1), plain: plainPop(1)},
		{id: "set-1", name: "Set, 1 goroutine", perCall: true, typed: typedSet(1), plain: plainSet(1)},
		{id: "get-1", name: "Get, 1 goroutine", perCall: true, typed: typedGet(1), plain: plainGet(1)},
		{id: "push-c", name: "Push, " + gs, perCall: true, typed: typedPush(c), plain: plainPush(c)},
		{id: "pop-c", name: "Pop, " + gs, perCall: true, typed: typedPop(c), plain: plainPop(c)},
		{id: "set-c", name: "Set, " + gs, perCall: true, typed: typedSet(c), plain: plainSet(c)},
		{id: "get-c", name: "Get, " + gs, perCall: true, typed: typedGet(c), plain: plainGet(c)},
		{id: "push-ap", name: "Push, " + gs + ", vs go-redis AutoPipeline (reference)", perCall: true, typed: typedPush(c), plain: autoPush(c)},
		{id: "set-ap", name: "Set, " + gs + ", vs go-redis AutoPipeline (reference)", perCall: true, typed: typedSet(c), plain: autoSet(c)},
		{id: "get-ap", name: "Get, " + gs + ", vs go-redis AutoPipeline (reference)", perCall: true, typed: typedGet(c), plain: autoGet(c)},
		{id: "pushmany", name: "PushMany(100) vs pipeline of 100 LPUSH, 1 goroutine", perCall: true, typed: typedPushMany, plain: plainPipeline},
		{id: "drain", name: "drain: PopMany(100) vs BRPOP, " + gs, typed: typedDrain(c), plain: plainDrain(c, false)},
		{id: "consume", name: "at-least-once Consume vs BRPOP, " + gs, typed: typedConsume(c), plain: plainDrain(c, true)},
		{id: "push-c-sh8", name: fmt.Sprintf("Push, %s, %d shards", gs, benchShards), perCall: true, typed: typedPushOn(c, (*env).shardedQueue), plain: plainPush(c)},
		{id: "pop-c-sh8", name: fmt.Sprintf("Pop, %s, %d shards", gs, benchShards), perCall: true, typed: typedPopOn(c, (*env).shardedQueue), plain: plainPop(c)},
		{id: "consume-sh8", name: fmt.Sprintf("at-least-once Consume, %d shards, vs BRPOP, %s", benchShards, gs), typed: typedConsumeOn(c, shardedDecl), plain: plainDrain(c, true)},
		{id: "get-local", name: fmt.Sprintf("hot Get (%d keys) with the local cache, %s", hotKeys, gs), perCall: true, typed: typedGetLocal(c), plain: plainGetHot(c)},
	}, telemetryWorkloads(c)...) // telemetry.go
}

// Push: one item a call.

func typedPush(g int) sideFunc { return typedPushOn(g, (*env).queue) }

func typedPushOn(g int, queue func(*env) runtime.Queue[message]) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		q := queue(e)
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			return 1, q.Push(ctx, e.item(i))
		})
	}
}

func plainPush(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			b, err := json.Marshal(e.item(i))
			if err != nil {
				return 0, err
			}
			return 1, e.rdb.LPush(ctx, plainQueue, b).Err()
		})
	}
}

// Pop: a blocking pop a call, from a queue filled beforehand.

func typedPop(g int) sideFunc { return typedPopOn(g, (*env).queue) }

func typedPopOn(g int, queue func(*env) runtime.Queue[message]) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		q := queue(e)
		if err := typedFill(ctx, e, q.PushMany); err != nil {
			return err
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			_, ok, err := q.Pop(ctx, waitTimeout)
			return 1, wantItem(ok, err)
		})
	}
}

func plainPop(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		if err := plainFill(ctx, e); err != nil {
			return err
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			return 1, plainPopOne(ctx, e)
		})
	}
}

// plainPopOne pops and decodes one item with BRPOP.
func plainPopOne(ctx context.Context, e *env) error {
	kv, err := e.rdb.BRPop(ctx, waitTimeout, plainQueue).Result()
	if err != nil {
		return wantItem(false, err)
	}
	var v message
	return json.Unmarshal([]byte(kv[1]), &v)
}

func wantItem(ok bool, err error) error {
	if errors.Is(err, redis.Nil) || (err == nil && !ok) {
		return errors.New("the queue was empty before its last item")
	}
	return err
}

// typedFill pushes n items with push, 100 a call.
func typedFill(ctx context.Context, e *env, push func(context.Context, ...message) error) error {
	batch := make([]message, 0, batchSize)
	for i := range e.cfg.n {
		batch = append(batch, e.item(i))
		if len(batch) == batchSize || i == e.cfg.n-1 {
			if err := push(ctx, batch...); err != nil {
				return fmt.Errorf("fill: %w", err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// plainFill pushes n encoded items onto the plain queue, in pipelines of
// 100 LPUSH.
func plainFill(ctx context.Context, e *env) error {
	for start := 0; start < e.cfg.n; start += batchSize {
		if _, err := pushPipeline(ctx, e, start); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
	}
	return nil
}

// pushPipeline sends items start… (at most 100) as one pipeline of LPUSH.
func pushPipeline(ctx context.Context, e *env, start int) (int, error) {
	end := min(start+batchSize, e.cfg.n)
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := start; i < end; i++ {
			b, err := json.Marshal(e.item(i))
			if err != nil {
				return err
			}
			p.LPush(ctx, plainQueue, b)
		}
		return nil
	})
	return end - start, err
}

// Set and Get: one key per item, as node outputs are.

func typedSet(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			return 1, e.cache(i).Set(ctx, e.item(i))
		})
	}
}

func plainSet(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			return 1, plainSetOne(ctx, e, e.rdb, i)
		})
	}
}

func plainSetOne(ctx context.Context, e *env, c redis.Cmdable, i int) error {
	b, err := json.Marshal(e.item(i))
	if err != nil {
		return err
	}
	return c.Set(ctx, plainKey(i), b, cacheDecl.TTL).Err()
}

func typedGet(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		for i := range e.cfg.n {
			if err := e.cache(i).Set(ctx, e.item(i)); err != nil {
				return fmt.Errorf("fill: %w", err)
			}
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			_, ok, err := e.cache(i).Get(ctx)
			return 1, wantValue(ok, err)
		})
	}
}

func plainGet(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		if err := plainFillCache(ctx, e); err != nil {
			return err
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			return 1, plainGetOne(ctx, e.rdb, i)
		})
	}
}

// A hot Get: every call reads one of hotKeys keys, filled beforehand. The
// typed side reads a local cache, warmed by one Get of each key; the plain
// side GETs the same keys.

func typedGetLocal(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		c := func(i int) runtime.Cache[message] {
			return runtime.NewCache[message](e.ds, localDecl, "node_transform", i%hotKeys)
		}
		for i := range hotKeys {
			if err := c(i).Set(ctx, e.item(i)); err != nil {
				return fmt.Errorf("fill: %w", err)
			}
			if _, ok, err := c(i).Get(ctx); err != nil || !ok {
				return fmt.Errorf("warm: %w", wantValue(ok, err))
			}
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			_, ok, err := c(i).Get(ctx)
			return 1, wantValue(ok, err)
		})
	}
}

func plainGetHot(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		for i := range hotKeys {
			if err := plainSetOne(ctx, e, e.rdb, i); err != nil {
				return fmt.Errorf("fill: %w", err)
			}
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			return 1, plainGetOne(ctx, e.rdb, i%hotKeys)
		})
	}
}

// plainFillCache sets the n plain keys, in pipelines of 100.
func plainFillCache(ctx context.Context, e *env) error {
	for start := 0; start < e.cfg.n; start += batchSize {
		_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(start+batchSize, e.cfg.n); i++ {
				if err := plainSetOne(ctx, e, p, i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
	}
	return nil
}

// plainGetOne gets and decodes the i-th plain key.
func plainGetOne(ctx context.Context, c redis.Cmdable, i int) error {
	b, err := c.Get(ctx, plainKey(i)).Bytes()
	if err != nil {
		return wantValue(false, err)
	}
	var v message
	return json.Unmarshal(b, &v)
}

func wantValue(ok bool, err error) error {
	if errors.Is(err, redis.Nil) || (err == nil && !ok) {
		return errors.New("a key set beforehand was missing")
	}
	return err
}

// The same Push, Set and Get through go-redis's AutoPipeline (its blocking
// face, with its defaults), as a reference: it folds concurrent commands
// into pipelines too, but runs them on a context of its own (a caller's
// cancel is not honoured once queued) and sends a batch again after a lost
// reply (an LPUSH may be stored twice).

func autoPush(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		ap, err := e.rdb.AutoPipeline()
		if err != nil {
			return err
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			b, err := json.Marshal(e.item(i))
			if err != nil {
				return 0, err
			}
			return 1, ap.LPush(ctx, plainQueue, b).Err()
		})
	}
}

func autoSet(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		ap, err := e.rdb.AutoPipeline()
		if err != nil {
			return err
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			return 1, plainSetOne(ctx, e, ap, i)
		})
	}
}

func autoGet(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		if err := plainFillCache(ctx, e); err != nil {
			return err
		}
		ap, err := e.rdb.AutoPipeline()
		if err != nil {
			return err
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			return 1, plainGetOne(ctx, ap, i)
		})
	}
}

// PushMany(100) against a pipeline of 100 LPUSH, one goroutine.

func typedPushMany(ctx context.Context, e *env, m *meter) error {
	q := e.queue()
	calls := (e.cfg.n + batchSize - 1) / batchSize
	batch := make([]message, 0, batchSize)
	return m.calls(ctx, 1, calls, func(ctx context.Context, c int) (int, error) {
		batch = batch[:0]
		for i := c * batchSize; i < min((c+1)*batchSize, e.cfg.n); i++ {
			batch = append(batch, e.item(i))
		}
		return len(batch), q.PushMany(ctx, batch...)
	})
}

func plainPipeline(ctx context.Context, e *env, m *meter) error {
	calls := (e.cfg.n + batchSize - 1) / batchSize
	return m.calls(ctx, 1, calls, func(ctx context.Context, c int) (int, error) {
		return pushPipeline(ctx, e, c*batchSize)
	})
}

// Draining a filled queue with g goroutines, until the last item is in
// hand.

func typedDrain(g int) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		q := e.queue()
		if err := typedFill(ctx, e, q.PushMany); err != nil {
			return err
		}
		return m.drain(ctx, g, e.cfg.n, func(ctx context.Context) (int, error) {
			vs, err := q.PopMany(ctx, batchSize, waitTimeout)
			return len(vs), err
		})
	}
}

// plainDrain is BRPOP at g goroutines, each item decoded. For the
// comparison with Consume, the server's time counts the fill too (push to
// ack on the typed side).
func plainDrain(g int, countFill bool) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		if countFill {
			if err := m.serverSnapshot(ctx); err != nil {
				return err
			}
		}
		if err := plainFill(ctx, e); err != nil {
			return err
		}
		return m.drain(ctx, g, e.cfg.n, func(ctx context.Context) (int, error) {
			kv, err := e.rdb.BRPop(ctx, waitTimeout, plainQueue).Result()
			if errors.Is(err, redis.Nil) {
				return 0, nil // timed out on an empty queue: try again
			}
			if err != nil {
				return 0, err
			}
			var v message
			return 1, json.Unmarshal([]byte(kv[1]), &v)
		})
	}
}

// typedConsume pushes n items to an at-least-once queue (PushMany of 100)
// and runs Consume with Concurrency g and a handler that returns nil,
// until all are acked. The server's time counts push to ack.
func typedConsume(g int) sideFunc { return typedConsumeOn(g, queueDecl) }

func typedConsumeOn(g int, decl *runtime.QueueDecl) sideFunc {
	return func(ctx context.Context, e *env, m *meter) error {
		q := runtime.NewReliableQueue[message](e.ds, decl, "node_extract", "consume")
		if err := m.serverSnapshot(ctx); err != nil {
			return err
		}
		if err := typedFill(ctx, e, q.PushMany); err != nil {
			return err
		}
		var cnt runtime.Counters
		cctx, stopConsume := context.WithCancel(ctx)
		defer stopConsume()
		if err := m.begin(ctx); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() {
			done <- q.Consume(cctx, func(context.Context, *runtime.Delivery[message]) error { return nil }, runtime.ConsumeOptions{
				Concurrency: g, BlockTimeout: waitTimeout, Counters: &cnt,
				Logger: slog.New(slog.DiscardHandler),
			})
		}()
		// Acks are counted after the handler returns, so poll the counter;
		// a millisecond's resolution is far below a run's length.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		want := int64(e.cfg.n)
		var stop time.Time
	wait:
		for {
			select {
			case <-ctx.Done():
				stopConsume()
				<-done
				return ctx.Err()
			case err := <-done:
				return fmt.Errorf("consume returned early: %v", err)
			case now := <-tick.C:
				m.items.Store(cnt.Acked.Load())
				if cnt.Acked.Load() >= want {
					stop = now
					break wait
				}
			}
		}
		stopConsume()
		if err := <-done; err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		if f := cnt.Nacked.Load() + cnt.DeadLettered.Load(); f > 0 {
			return fmt.Errorf("consume: %d deliveries failed", f)
		}
		return m.end(ctx, stop, e.cfg.n, int(cnt.Received.Load()), nil)
	}
}

// mustEncode is the payload's encoding, for its size.
func mustEncode(m message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}
