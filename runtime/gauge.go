package runtime

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// storagegen.queue.items: how many items each queue declaration holds, by
// state, as an observable gauge read from the server.
//
// A declaration such as node_edge(source, target) has an instance (a key)
// for every pair of arguments, so the gauge is per declaration, never per
// instance: each series is the sum over the instances this DataStore has
// opened (NewQueue, NewReliableQueue: generated accessors call them on
// every access). Those are noted in a copy-on-write map per declaration,
// read without a lock: opening a handle of an instance already noted costs
// one map lookup by its key and allocates nothing. At most maxWatched
// instances are noted per declaration; beyond that, new instances are not
// counted (the gauge undercounts) until noted ones are forgotten: an
// instance that has read empty at forgetAfter samples in a row is dropped
// from the map (opening it again notes it again).
//
// The instances are read (the stats script for an at-least-once queue,
// two LLENs per list for an at-most-once one) when a collection finds a
// declaration's last sample older than Options.StatsInterval: so at most
// once per interval, in pipelines of about statsPipeline commands. A
// collection waits for the reads at most statsTimeout (min(interval, 2s)),
// then reports the last values that were read, whatever the server does:
// the reads go on in the background (one sample at a time per DataStore),
// and their values serve the next collection. An instance whose read
// failed keeps its last values.

const (
	// DefaultStatsInterval is Options.StatsInterval's default.
	DefaultStatsInterval = 10 * time.Second
	// minStatsInterval is the shortest Options.StatsInterval.
	minStatsInterval = 100 * time.Millisecond
	// maxStatsWait bounds how long a collection waits for a sample.
	maxStatsWait = 2 * time.Second
	// maxWatched is the most instances of one declaration the gauge sums.
	maxWatched = 1000
	// forgetAfter is how many samples in a row an instance must read
	// empty before it is forgotten.
	forgetAfter = 3
	// statsPipeline is about how many commands one pipeline of a sample
	// sends.
	statsPipeline = 256
	// maxScriptRounds bounds the rounds of one pipeline that load the
	// stats script where the server lacks it: one per node (cluster
	// primary) that does.
	maxScriptRounds = 16
)

// States of a queue's items, the values of storagegen.state.
type itemState uint8

const (
	stateReady itemState = iota
	stateInFlight
	stateDelayed
	stateDead
	numStates
)

var stateNames = [numStates]string{"ready", "in_flight", "delayed", "dead"}

// gauges is a telemetry's storagegen.queue.items.
type gauges struct {
	queueItems metric.Int64ObservableGauge // nil without a MeterProvider
	interval   time.Duration
	reg        metric.Registration
	conn       *Connection
	unregister sync.Once

	mu      sync.Mutex    // guards running, every watch's last, every instance's vals and zero
	running chan struct{} // not nil while a sample runs; closed when it ends
	reads   atomic.Int64  // commands samples have sent (tests read it)
}

// newGauges makes the gauge's instrument on m.
func (g *gauges) newGauges(m metric.Meter, interval time.Duration) (err error) {
	g.interval = interval
	if g.interval == 0 {
		g.interval = DefaultStatsInterval
	}
	g.queueItems, err = m.Int64ObservableGauge("storagegen.queue.items",
		metric.WithUnit("{item}"),
		metric.WithDescription("Items of the queues of a declaration that this process opened, by state, sampled from the server."))
	return err
}

// observe registers the gauge's callback, which reads through conn.
func (t *telemetry) observe(m metric.MeterProvider, conn *Connection) error {
	if t == nil || t.queueItems == nil {
		return nil
	}
	t.conn = conn
	reg, err := m.Meter(instrumentationName).RegisterCallback(t.callback, t.queueItems)
	t.reg = reg
	return err
}

// close unregisters the gauge's callback: a closed DataStore reports no
// queue.
func (t *telemetry) close() {
	if t == nil || t.reg == nil {
		return
	}
	t.unregister.Do(func() { t.reg.Unregister() })
}

// statsTimeout is how long a collection waits for a sample.
func (g *gauges) statsTimeout() time.Duration { return min(g.interval, maxStatsWait) }

// watch is the instances of one queue declaration the gauge sums.
type watch struct {
	obs      [numStates][]metric.ObserveOption
	reliable bool

	mu   sync.Mutex                           // serializes writers of inst
	inst atomic.Pointer[map[string]*instance] // by key; copied on write
	last time.Time                            // of its last sample (gauges.mu)
}

// instance is one queue (one key) of a declaration.
type instance struct {
	lists []string    // at-most-once: its lists (shards), each with its dead list
	rel   []*reliable // at-least-once: its core, or each shard's
	vals  [numStates]int64
	zero  int // samples in a row that read it empty
}

func newWatch(d *declTel, kind telKind, name string) *watch {
	w := &watch{reliable: kind == kindReliable}
	for s := range numStates {
		w.obs[s] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(
			declAttrs(kind, name, attribute.String("storagegen.state", stateNames[s]))...))}
	}
	m := map[string]*instance{}
	w.inst.Store(&m)
	return w
}

// noted reports whether key needs no noting: noted already, or the
// declaration is at its cap.
func (d *declTel) noted(key string) bool {
	if d == nil || d.watch == nil {
		return true
	}
	m := *d.watch.inst.Load()
	_, ok := m[key]
	return ok || len(m) >= maxWatched
}

// noteQueue notes the at-most-once queue at key (sh: its shards, or nil).
func (d *declTel) noteQueue(key string, sh *shardSet) {
	if d.noted(key) {
		return
	}
	in := &instance{lists: []string{key}}
	if sh != nil {
		in.lists = sh.keys
	}
	d.watch.add(key, in)
}

// noteReliable notes the at-least-once queue at key, whose core is r (sh:
// its shards, or nil).
func (d *declTel) noteReliable(key string, r *reliable, sh *shardSet) {
	if d.noted(key) {
		return
	}
	in := &instance{rel: []*reliable{r}}
	if sh != nil {
		in.rel = sh.rel
	}
	d.watch.add(key, in)
}

func (w *watch) add(key string, in *instance) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := *w.inst.Load()
	if _, ok := old[key]; ok || len(old) >= maxWatched {
		return
	}
	m := make(map[string]*instance, len(old)+1)
	maps.Copy(m, old)
	m[key] = in
	w.inst.Store(&m)
}

// forget drops the instances that read empty forgetAfter times in a row.
// The caller holds gauges.mu.
func (w *watch) forget() {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := *w.inst.Load()
	var m map[string]*instance
	for k, in := range old {
		if in.zero < forgetAfter {
			continue
		}
		if m == nil {
			m = maps.Clone(old)
		}
		delete(m, k)
	}
	if m != nil {
		w.inst.Store(&m)
	}
}

// callback is the gauge's: it starts a sample of the declarations that
// are due (unless one is running), waits for it at most statsTimeout, and
// observes every declaration's sums.
func (t *telemetry) callback(ctx context.Context, o metric.Observer) error {
	decls := *t.decls.Load()
	now := time.Now()
	var due []*watch
	var started chan struct{}
	t.gauges.mu.Lock()
	if t.running == nil { // else the running sample's values serve
		for _, d := range decls {
			if w := d.watch; w != nil && now.Sub(w.last) >= t.interval {
				w.last = now
				due = append(due, w)
			}
		}
		if len(due) > 0 {
			started = make(chan struct{})
			t.running = started
			go t.sample(due, started)
		}
	}
	t.gauges.mu.Unlock()
	if started != nil {
		timer := time.NewTimer(t.statsTimeout())
		select {
		case <-started:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
	}
	t.gauges.mu.Lock()
	defer t.gauges.mu.Unlock()
	for _, d := range decls {
		w := d.watch
		if w == nil {
			continue
		}
		var sums [numStates]int64
		for _, in := range *w.inst.Load() {
			for s := range numStates {
				sums[s] += in.vals[s]
			}
		}
		for s := range numStates {
			if w.reliable || s == stateReady || s == stateDead {
				o.ObserveInt64(t.queueItems, sums[s], w.obs[s]...)
			}
		}
	}
	return nil
}

// sample reads the instances of due, then closes done.
func (g *gauges) sample(due []*watch, done chan struct{}) {
	defer func() {
		g.mu.Lock()
		g.running = nil
		g.mu.Unlock()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	_ = g.conn.call("stats", "", func(cl redis.UniversalClient) error {
		var batch []*instance
		var cmds []redis.Cmder
		for _, w := range due {
			for _, in := range *w.inst.Load() {
				batch = append(batch, in)
				cmds = g.queueReads(ctx, cmds, in)
				if len(cmds) >= statsPipeline {
					g.read(ctx, cl, batch, cmds)
					batch, cmds = batch[:0], cmds[:0]
				}
			}
		}
		g.read(ctx, cl, batch, cmds)
		return nil
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range due {
		w.forget()
	}
}

// queueReads appends to cmds the reads of in, not yet sent.
func (g *gauges) queueReads(ctx context.Context, cmds []redis.Cmder, in *instance) []redis.Cmder {
	for _, l := range in.lists {
		cmds = append(cmds, redis.NewIntCmd(ctx, "llen", l), redis.NewIntCmd(ctx, "llen", DeadKey(l)))
	}
	for _, r := range in.rel {
		cmds = append(cmds, statsCmd(ctx, g.conn, r))
	}
	return cmds
}

// statsCmd is the stats script's EVALSHA for r, in the form the
// Connection sends.
func statsCmd(ctx context.Context, c *Connection, r *reliable) *redis.Cmd {
	keys := r.withKey(r.paused)
	args := make([]any, 0, 3+len(keys))
	args = append(args, "evalsha", statsHash(c), len(keys))
	for _, k := range keys {
		args = append(args, k)
	}
	return redis.NewCmd(ctx, args...)
}

// statsHash is the SHA1 of the stats script in the form c sends.
func statsHash(c *Connection) string {
	if c.shebangRefused.Load() {
		return statsScript.noFlags.Hash()
	}
	return statsScript.shebang.Hash()
}

// read sends cmds in one pipeline (the stats script's, again after
// loading it when the server did not have it) and sets the values of the
// instances of batch whose reads all succeeded.
func (g *gauges) read(ctx context.Context, cl redis.UniversalClient, batch []*instance, cmds []redis.Cmder) {
	if len(cmds) == 0 {
		return
	}
	g.reads.Add(int64(len(cmds)))
	pipeline(ctx, cl, cmds)
	// The server does not know the script (a restart, SCRIPT FLUSH, a
	// replica promoted, a cluster node no sample read yet): run it once
	// as run does, which loads it (in the form the server takes) on the
	// node of the first command that failed so, then send those commands
	// again. On a cluster each node lacks it on its own, so this goes on
	// while commands fail so and a load succeeds, at most
	// maxScriptRounds times (one per primary that lacks it).
	for range maxScriptRounds {
		var again []int
		for i, c := range cmds {
			if c.Err() != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		args := cmds[again[0]].Args()
		keys := make([]string, 0, len(args)-3)
		for _, a := range args[3:] {
			keys = append(keys, a.(string))
		}
		g.reads.Add(int64(1 + len(again)))
		if statsScript.run(ctx, g.conn, cl, keys).Err() != nil {
			break
		}
		resend := make([]redis.Cmder, len(again))
		for j, i := range again {
			args := slices.Clone(cmds[i].Args())
			args[1] = statsHash(g.conn)
			cmds[i] = redis.NewCmd(ctx, args...)
			resend[j] = cmds[i]
		}
		pipeline(ctx, cl, resend)
	}
	i := 0
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, in := range batch {
		var v [numStates]int64
		ok := true
		for range in.lists {
			ready, err1 := cmds[i].(*redis.IntCmd).Result()
			dead, err2 := cmds[i+1].(*redis.IntCmd).Result()
			i += 2
			ok = ok && err1 == nil && err2 == nil
			v[stateReady] += ready
			v[stateDead] += dead
		}
		for range in.rel {
			res, err := cmds[i].(*redis.Cmd).Int64Slice()
			i++
			if ok = ok && err == nil && len(res) == 7; ok {
				v[stateReady] += res[0]
				v[stateInFlight] += res[1]
				v[stateDelayed] += res[3]
				v[stateDead] += res[4]
			}
		}
		if !ok {
			continue
		}
		in.vals = v
		if v == ([numStates]int64{}) {
			in.zero++
		} else {
			in.zero = 0
		}
	}
}

// pipeline sends cmds in one pipeline; each command holds its own reply
// or error.
func pipeline(ctx context.Context, cl redis.UniversalClient, cmds []redis.Cmder) {
	if len(cmds) == 0 {
		return
	}
	p := cl.Pipeline()
	for _, c := range cmds {
		_ = p.Process(ctx, c)
	}
	_, _ = p.Exec(ctx)
}
