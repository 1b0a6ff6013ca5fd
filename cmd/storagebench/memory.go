package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/runtime"
)

// The -memory mode: what queues and caches cost in the server's memory,
// measured two ways. MEMORY USAGE (SAMPLES 0, every element counted) gives
// the bytes of the keys of one queue in a given state; the growth of INFO
// memory's used_memory over many queues adds what MEMORY USAGE leaves out
// (the keyspace's own dictionary entries and expiry records), so it is what
// a million queues cost.

// memDecls are the declarations the -memory mode uses, under keyPrefix like
// every key storagebench writes.
var (
	memQueueDecl    = &runtime.QueueDecl{Name: "mem", Prefix: keyPrefix, Key: runtime.MustKeyPattern("mem:q:{run}")}
	memReliableDecl = &runtime.QueueDecl{Name: "memr", Prefix: keyPrefix, Key: runtime.MustKeyPattern("mem:r:{run}")}
	memCacheDecl    = &runtime.CacheDecl{Name: "memc", Prefix: keyPrefix, Key: runtime.MustKeyPattern("mem:c:{run}"), TTL: time.Hour}
)

// memRow is one line of the -memory table.
type memRow struct {
	What  string `json:"what"`
	Keys  int    `json:"keys"`            // keys that exist in that state
	Bytes int64  `json:"bytes"`           // MEMORY USAGE summed over them
	Items int    `json:"items,omitempty"` // items they hold, for bytes per item
}

// memScale is the growth of used_memory over many queues in one state.
type memScale struct {
	What     string  `json:"what"`
	Queues   int     `json:"queues"`
	Bytes    int64   `json:"bytes"`     // used_memory after minus before
	PerQueue float64 `json:"per_queue"` // Bytes / Queues
}

type memReport struct {
	Redis  string     `json:"redis"`
	Rows   []memRow   `json:"rows"`
	Scales []memScale `json:"scales"`
}

// memSizes are the numbers of items a loaded queue is measured with: the
// small ones stay in one listpack, 10,000 makes a quicklist of many.
var memSizes = []int{1, 100, 10_000}

// runMemory measures and writes the -memory table. queues is how many
// queues the used_memory rows make (-n).
func runMemory(ctx context.Context, e *env, queues int, w io.Writer) (*memReport, error) {
	info, err := e.rdb.Info(ctx, "server").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO server: %w", err)
	}
	rep := &memReport{Redis: infoField(info, "redis_version")}
	m := &memMeter{e: e}

	// One queue in each state.
	q := runtime.NewQueue[message](e.ds, memQueueDecl, "one")
	if err := q.Push(ctx, e.item(0)); err != nil {
		return nil, err
	}
	if _, _, err := q.Pop(ctx, 0); err != nil {
		return nil, err
	}
	if err := m.row(ctx, rep, "at-most-once queue, emptied by Pop", 0); err != nil {
		return nil, err
	}
	for _, n := range memSizes {
		if err := e.clear(ctx); err != nil {
			return nil, err
		}
		if err := pushChunks(ctx, n, func(vs []message) error { return q.PushMany(ctx, vs...) }, e); err != nil {
			return nil, err
		}
		if err := m.row(ctx, rep, fmt.Sprintf("at-most-once queue, %s ready", count(n)), n); err != nil {
			return nil, err
		}
	}

	r := runtime.NewReliableQueue[message](e.ds, memReliableDecl, "one")
	for _, n := range memSizes {
		if err := e.clear(ctx); err != nil {
			return nil, err
		}
		// One Push a call: one dedupe marker per item, the costliest way.
		for i := range n {
			if err := r.Push(ctx, e.item(i)); err != nil {
				return nil, err
			}
		}
		if err := m.row(ctx, rep, fmt.Sprintf("at-least-once queue, %s ready (one Push each)", count(n)), n); err != nil {
			return nil, err
		}
		var ds []*runtime.Delivery[message]
		for len(ds) < n {
			got, err := r.ReceiveMany(ctx, min(n-len(ds), runtime.MaxReceiveBatch), 0)
			if err != nil {
				return nil, err
			}
			if len(got) == 0 {
				return nil, fmt.Errorf("at-least-once queue: %d of %d items received, then none", len(ds), n)
			}
			ds = append(ds, got...)
		}
		if err := m.row(ctx, rep, fmt.Sprintf("at-least-once queue, %s leased", count(n)), n); err != nil {
			return nil, err
		}
		for _, d := range ds {
			if err := d.Ack(ctx); err != nil {
				return nil, err
			}
		}
		if err := m.row(ctx, rep, fmt.Sprintf("at-least-once queue, %s acked (dedupe markers left)", count(n)), 0); err != nil {
			return nil, err
		}
	}
	if err := e.clear(ctx); err != nil {
		return nil, err
	}
	if err := runtime.NewCache[message](e.ds, memCacheDecl, "one").Set(ctx, e.item(0)); err != nil {
		return nil, err
	}
	if err := m.row(ctx, rep, "cache entry, with its TTL", 1); err != nil {
		return nil, err
	}

	// Many queues, one state each.
	scales := []struct {
		what string
		fill func(ctx context.Context, i int) error
	}{
		{"at-most-once queues, 1 item each", func(ctx context.Context, i int) error {
			return runtime.NewQueue[message](e.ds, memQueueDecl, "q"+strconv.Itoa(i)).Push(ctx, e.item(i))
		}},
		{"at-most-once queues, emptied by Pop", func(ctx context.Context, i int) error {
			q := runtime.NewQueue[message](e.ds, memQueueDecl, "q"+strconv.Itoa(i))
			if err := q.Push(ctx, e.item(i)); err != nil {
				return err
			}
			_, _, err := q.Pop(ctx, 0)
			return err
		}},
		{"at-least-once queues, 1 item each", func(ctx context.Context, i int) error {
			return runtime.NewReliableQueue[message](e.ds, memReliableDecl, "q"+strconv.Itoa(i)).Push(ctx, e.item(i))
		}},
		{"at-least-once queues, 1 item acked (markers left)", func(ctx context.Context, i int) error {
			r := runtime.NewReliableQueue[message](e.ds, memReliableDecl, "q"+strconv.Itoa(i))
			if err := r.Push(ctx, e.item(i)); err != nil {
				return err
			}
			d, ok, err := r.Receive(ctx, 0)
			if err != nil || !ok {
				return fmt.Errorf("receive: ok %v, %w", ok, err)
			}
			return d.Ack(ctx)
		}},
		{"caches, 1 entry each", func(ctx context.Context, i int) error {
			return runtime.NewCache[message](e.ds, memCacheDecl, "c"+strconv.Itoa(i)).Set(ctx, e.item(i))
		}},
	}
	for _, s := range scales {
		if err := e.clear(ctx); err != nil {
			return nil, err
		}
		before, err := m.usedMemory(ctx)
		if err != nil {
			return nil, err
		}
		if err := fanOut(ctx, queues, e.cfg.c, s.fill); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		after, err := m.usedMemory(ctx)
		if err != nil {
			return nil, err
		}
		rep.Scales = append(rep.Scales, memScale{What: s.what, Queues: queues, Bytes: after - before, PerQueue: float64(after-before) / float64(queues)})
	}
	if err := e.clear(ctx); err != nil {
		return nil, err
	}
	writeMemory(w, rep)
	return rep, nil
}

// memMeter reads the server's figures.
type memMeter struct{ e *env }

// row appends the MEMORY USAGE of every key under keyPrefix.
func (m *memMeter) row(ctx context.Context, rep *memReport, what string, items int) error {
	keys, err := m.keys(ctx)
	if err != nil {
		return err
	}
	var sum int64
	for _, k := range keys {
		n, err := m.e.rdb.MemoryUsage(ctx, k, 0).Result()
		if err != nil && err != redis.Nil {
			return fmt.Errorf("MEMORY USAGE: %w", err)
		}
		sum += n
	}
	rep.Rows = append(rep.Rows, memRow{What: what, Keys: len(keys), Bytes: sum, Items: items})
	return nil
}

func (m *memMeter) keys(ctx context.Context) ([]string, error) {
	var all []string
	err := scanKeys(ctx, m.e.rdb, func(keys []string) error {
		all = append(all, keys...)
		return nil
	})
	return all, err
}

// usedMemory returns INFO memory's used_memory, after letting lazy frees
// finish (UNLINK frees large values on a background thread).
func (m *memMeter) usedMemory(ctx context.Context) (int64, error) {
	var last int64 = -1
	for range 50 {
		info, err := m.e.rdb.Info(ctx, "memory").Result()
		if err != nil {
			return 0, fmt.Errorf("INFO memory: %w", err)
		}
		v, err := strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO memory: used_memory: %w", err)
		}
		if pending := infoField(info, "lazyfree_pending_objects"); v == last && (pending == "" || pending == "0") {
			return v, nil
		}
		last = v
		time.Sleep(20 * time.Millisecond)
	}
	return last, nil
}

// pushChunks pushes n items in PushMany calls of at most 1000.
func pushChunks(ctx context.Context, n int, push func([]message) error, e *env) error {
	for i := 0; i < n; i += 1000 {
		vs := make([]message, 0, min(1000, n-i))
		for j := i; j < min(i+1000, n); j++ {
			vs = append(vs, e.item(j))
		}
		if err := push(vs); err != nil {
			return err
		}
	}
	return nil
}

// fanOut runs fill(i) for i in [0, n) on g goroutines, stopping at the
// first error.
func fanOut(ctx context.Context, n, g int, fill func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	done := make(chan struct{})
	for range g {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range next {
				if err := fill(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	for range g {
		<-done
	}
	return context.Cause(ctx)
}

func count(n int) string {
	if n == 1 {
		return "1 item"
	}
	s := strconv.Itoa(n)
	if n >= 10_000 {
		s = s[:len(s)-3] + "," + s[len(s)-3:]
	}
	return s + " items"
}

func writeMemory(w io.Writer, rep *memReport) {
	fmt.Fprintf(w, "Memory on Redis %s (MEMORY USAGE SAMPLES 0, summed over the keys that exist; ~200-byte JSON payload)\n\n", rep.Redis)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "state\tkeys\tbytes\tbytes/item\t")
	for _, r := range rep.Rows {
		per := "-"
		if r.Items > 0 {
			per = strconv.FormatInt(r.Bytes/int64(r.Items), 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", r.What, r.Keys, r.Bytes, per)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nMany queues (growth of INFO used_memory, so the keyspace's own entries count)\n\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "state\tqueues\tbytes\tbytes/queue\ta million queues\t")
	for _, s := range rep.Scales {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t\n", s.What, s.Queues, s.Bytes, s.PerQueue, mib(s.PerQueue*1e6))
	}
	tw.Flush()
}

func mib(b float64) string {
	if b < 0 {
		return "~0"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.0f MiB", b/(1<<20)), ".0")
}

// memoryMode runs -memory on cfg.url and writes its table (and -json).
func memoryMode(cfg config, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "storagebench: -memory: %v\n", err)
		return 1
	}
	ds, rdb, _, err := clients(cfg) // one server (-memory is not with -cluster)
	if err != nil {
		return fail(err)
	}
	defer ds.Close()
	defer rdb.Close()
	e := &env{cfg: cfg, ds: ds, rdb: rdb, msg: newMessage()}
	ctx := context.Background()
	if err := e.clear(ctx); err != nil {
		return fail(err)
	}
	defer e.clear(context.Background())
	rep, err := runMemory(ctx, e, cfg.n, stdout)
	if err != nil {
		return fail(err)
	}
	if cfg.jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.jsonFile, append(b, '\n'), 0o644)
		}
		if err != nil {
			return fail(fmt.Errorf("-json: %w", err))
		}
	}
	return 0
}
