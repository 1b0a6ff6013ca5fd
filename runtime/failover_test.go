package runtime

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
)

var failoverLong = flag.Bool("failover.long", false, "run the failover and slot migration tests with more load (3,000 items before and after each event)")

// failoverItems is how many items are handled before each event, and again
// after it.
func failoverItems() int {
	if *failoverLong {
		return 3000
	}
	return 300
}

// waitTimeout is the WaitTimeout of the failover tests: 250ms with
// WaitReplicas, else none.
func waitTimeout(replicas int) time.Duration {
	if replicas == 0 {
		return 0
	}
	return 250 * time.Millisecond
}

// load drives an at-least-once queue: producers push items with PushID,
// each sent again with the same ID after an error until it returns nil
// (so stored once); a Consume handles them. It records which IDs were
// acknowledged (PushID returned nil) and how often each was handled.
type load struct {
	t    *testing.T
	r    ReliableQueue[string]
	stop chan struct{}
	wg   sync.WaitGroup
	halt sync.Once // stops the producers

	mu        sync.Mutex
	acked     map[string]time.Time // PushID returned nil at
	handled   map[string]int
	event     time.Time   // when the last event ended
	resumed   time.Time   // when the first item acknowledged after event was handled
	handledAt []time.Time // when each item was handled
	pushErrs  atomic.Int64

	cnt      Counters
	consumed chan error
	cancel   context.CancelFunc
	warnings atomic.Int64 // Consume's log lines at Warn and above
}

func startLoad(t *testing.T, ds *DataStore, name string, producers int) *load {
	l := &load{t: t, r: testReliable[string](ds, name, 3*time.Second, 0), stop: make(chan struct{}),
		acked: map[string]time.Time{}, handled: map[string]int{}, consumed: make(chan error, 1)}
	for p := range producers {
		l.wg.Go(func() { l.produce(p) })
	}
	ctx, cancel := context.WithTimeout(bg, 10*time.Minute)
	l.cancel = cancel
	// A test that fails half-way stops its load before it ends: a
	// producer that reports after its test ended would panic the binary.
	t.Cleanup(l.stopAll)
	logger := slog.New(countingHandler{&l.warnings})
	go func() {
		l.consumed <- l.r.Consume(ctx, func(ctx context.Context, d *Delivery[string]) error {
			l.mu.Lock()
			l.handled[d.Value]++
			l.handledAt = append(l.handledAt, time.Now())
			if at, ok := l.acked[d.Value]; ok && !l.event.IsZero() && l.resumed.IsZero() && at.After(l.event) {
				l.resumed = time.Now()
			}
			l.mu.Unlock()
			return nil
		}, ConsumeOptions{Concurrency: 8, BlockTimeout: 300 * time.Millisecond, Counters: &l.cnt, Logger: logger})
	}()
	return l
}

// stopProducers stops the producers and waits for them.
func (l *load) stopProducers() {
	l.halt.Do(func() {
		close(l.stop)
		l.wg.Wait()
	})
}

// stopAll stops the producers and the Consume.
func (l *load) stopAll() {
	l.stopProducers()
	l.cancel()
}

func (l *load) produce(p int) {
	for i := 0; i < 1_000_000; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		id := fmt.Sprintf("p%d-%d", p, i)
		for try := 0; ; try++ {
			ctx, cancel := context.WithTimeout(bg, 10*time.Second)
			err := l.r.PushID(ctx, id, id)
			cancel()
			if err == nil {
				l.mu.Lock()
				l.acked[id] = time.Now()
				l.mu.Unlock()
				break
			}
			l.pushErrs.Add(1)
			select {
			case <-l.stop:
				return
			default:
			}
			if try == 3000 { // a minute of failures
				l.t.Errorf("push %s keeps failing: %v", id, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Millisecond) // a steady load, not a flood, on a shared machine
	}
}

// waitHandled waits until n more acknowledged items than now have been
// handled (bounded: two minutes).
func (l *load) waitHandled(n int) {
	l.t.Helper()
	start := l.cnt.Acked.Load()
	for range 12_000 {
		if l.cnt.Acked.Load() >= start+int64(n) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.t.Fatalf("%d items were not handled within two minutes (%d were)", n, l.cnt.Acked.Load()-start)
}

// during runs event, waits until items pushed after it ended are being
// handled, and returns the longest pause in handling from the event's start
// on: the time the consumer took to resume (bounded: two minutes).
func (l *load) during(what string, event func()) time.Duration {
	l.t.Helper()
	l.mu.Lock()
	start, from := time.Now(), len(l.handledAt)
	l.mu.Unlock()
	event()
	l.mu.Lock()
	l.event, l.resumed = time.Now(), time.Time{}
	l.mu.Unlock()
	for i := 0; ; i++ {
		l.mu.Lock()
		resumed := l.resumed
		l.mu.Unlock()
		if !resumed.IsZero() {
			break
		}
		if i == 12_000 {
			l.t.Fatalf("nothing pushed after %s was handled within two minutes", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	longest, prev := time.Duration(0), start
	for _, at := range l.handledAt[from:] {
		longest, prev = max(longest, at.Sub(prev)), at
	}
	return longest
}

// finish stops the producers, waits until every acknowledged item was
// handled (bounded: a minute), stops Consume, and returns the counts:
// acknowledged items never handled (lost), and handlings beyond the first
// (duplicated).
func (l *load) finish() (acked, lost, dup int) {
	l.t.Helper()
	l.stopProducers()
	missing := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		lost, _ := lostAndDuplicated(l.acked, l.handled)
		return lost
	}
	// Until none is missing, or the count has not moved for 10s (three
	// leases: a lost item never comes); at most a minute.
	last, still := -1, 0
	for range 600 {
		n := missing()
		if n == 0 || still == 100 {
			break
		}
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.cancel()
	if err := <-l.consumed; err != nil {
		l.t.Errorf("Consume = %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lost, dup = lostAndDuplicated(l.acked, l.handled)
	return len(l.acked), lost, dup
}

// lostAndDuplicated counts the acknowledged items never handled, and the
// handlings beyond each item's first.
func lostAndDuplicated[V any](acked map[string]V, handled map[string]int) (lost, dup int) {
	for id := range acked {
		if handled[id] == 0 {
			lost++
		}
	}
	for _, n := range handled {
		dup += max(n-1, 0)
	}
	return lost, dup
}

// countingHandler counts log records at Warn and above, and drops them all.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// replicaOf returns the running node of c that replicates primary.
func replicaOf(t *testing.T, c *redistest.Cluster, primary *redistest.Node) *redistest.Node {
	t.Helper()
	for range 200 {
		for _, n := range c.Nodes() {
			if n.Down() || n == primary {
				continue
			}
			cl := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
			v, err := cl.Do(bg, "ROLE").Slice()
			cl.Close()
			if err == nil && len(v) >= 3 && v[0] == "slave" && fmt.Sprintf("%v:%v", v[1], v[2]) == primary.Addr {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no replica of %s", primary.Addr)
	return nil
}

// waitOwner waits until slot is served by a running primary other than
// not, and returns it (bounded: a minute).
func waitOwner(t *testing.T, c *redistest.Cluster, slot int, not *redistest.Node) *redistest.Node {
	t.Helper()
	n, last := ownerWithin(c, slot, not, 600)
	if n == nil {
		for _, n := range c.Nodes() {
			t.Logf("log of %s:\n%s", n.Addr, n.LogTail(3000))
		}
		t.Fatalf("slot %d still not served by a primary other than %s after a minute (%v)", slot, not.Addr, last)
	}
	return n
}

// manualFailover sends CLUSTER FAILOVER to replica until it serves slot
// instead of primary. Redis aborts a manual failover whose replica has not
// caught up with the primary's offset within the node timeout, which a
// loaded machine makes happen; the command is then sent again, up to four
// times, 15 s apart.
func manualFailover(t *testing.T, c *redistest.Cluster, replica *redistest.Node, slot int, primary *redistest.Node) {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: replica.Addr})
	defer cl.Close()
	var last error
	for try := range 4 {
		if err := cl.Do(bg, "CLUSTER", "FAILOVER").Err(); err != nil {
			t.Fatal(err)
		}
		var n *redistest.Node
		if n, last = ownerWithin(c, slot, primary, 150); n != nil {
			if try > 0 {
				t.Logf("CLUSTER FAILOVER took %d tries", try+1)
			}
			return
		}
	}
	t.Fatalf("slot %d still served by %s after four CLUSTER FAILOVERs, a minute (%v)", slot, primary.Addr, last)
}

// ownerWithin polls, tries times 100 ms apart, for a running primary other
// than not that serves slot; nil and the last error when there is none.
func ownerWithin(c *redistest.Cluster, slot int, not *redistest.Node, tries int) (*redistest.Node, error) {
	var last error
	for range tries {
		n, err := c.Owner(bg, slot)
		if err == nil && n != not && !n.Down() {
			if role, err := n.Role(bg); err == nil && role == "master" {
				return n, nil
			}
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return nil, last
}

// TestClusterFailoverUnderLoad runs producers and a Consume on an
// at-least-once queue of a 3+3 cluster through CLUSTER FAILOVER on the
// replica of the queue's primary, then through killing the new primary
// outright (SIGKILL; its replica, the old primary, is promoted, and the
// killed node restarted to become a replica again). It logs the items
// acknowledged, lost (acknowledged and never handled) and duplicated, and
// the longest pause in handling from each event on (the time to resume).
// Without WaitReplicas, lost is only logged: an acknowledged push that had
// not reached the replica when its primary died is gone, which is Redis's
// asynchronous replication (how many depends on timing). With WaitReplicas
// 1, none may be lost.
func TestClusterFailoverUnderLoad(t *testing.T) {
	redistest.SingleOnly(t, "starts a cluster of its own, the same whatever the run's topology")
	c, err := redistest.StartCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Each step fails over a primary that no earlier step touched: Redis
	// 7.0 lets a replica that won an election seconds ago claim the next
	// one with its old votes, and the other nodes never take the claim, so
	// the slot stays without a primary. Operators do not fail one pair
	// over twice in seconds; the tests would.
	var used []*redistest.Node
	for _, wait := range []int{0, 1} {
		t.Run(fmt.Sprintf("WaitReplicas=%d", wait), func(t *testing.T) {
			ds := newStore(t, Options{Addrs: c.Addrs(), Prefix: fmt.Sprintf("fo%d:", wait), WaitReplicas: wait, WaitTimeout: waitTimeout(wait),
				Logger: slog.New(slog.DiscardHandler)})
			name := queueAwayFrom(t, c, used, "jobs", func(name string) string { return testReliable[string](ds, name, time.Second, 0).Key() })
			l := startLoad(t, ds, name, 4)
			l.waitHandled(failoverItems())
			slot := keyspace.Slot(l.r.Key())
			primary, err := c.Owner(bg, slot)
			if err != nil {
				t.Fatal(err)
			}
			replica := replicaOf(t, c, primary)
			used = append(used, primary, replica)

			manual := l.during("CLUSTER FAILOVER", func() {
				manualFailover(t, c, replica, slot, primary)
			})
			l.waitHandled(failoverItems())

			killed := l.during("killing the primary", func() {
				if err := replica.Kill(); err != nil {
					t.Fatal(err)
				}
				waitOwner(t, c, slot, replica)
				if err := replica.Restart(); err != nil {
					t.Fatal(err)
				}
				if err := c.Wait(time.Minute); err != nil {
					t.Fatal(err)
				}
			})
			l.waitHandled(failoverItems())
			acked, lost, dup := l.finish()
			t.Logf("cluster, WaitReplicas=%d: %d items acknowledged, %d lost, %d duplicated; longest pause in handling %v through CLUSTER FAILOVER, %v through killing the primary; %d push errors retried, %d Consume warnings",
				wait, acked, lost, dup, manual.Round(time.Millisecond), killed.Round(time.Millisecond), l.pushErrs.Load(), l.warnings.Load())
			if wait > 0 && lost != 0 {
				t.Errorf("%d acknowledged items lost with WaitReplicas %d", lost, wait)
			}
		})
	}
	t.Run("dead primary", func(t *testing.T) { onDeadPrimary(t, c, used) })
}

// queueAwayFrom returns the first of base0, base1, … whose queue (key
// gives its key) is on a primary not in avoid.
func queueAwayFrom(t *testing.T, c *redistest.Cluster, avoid []*redistest.Node, base string, key func(name string) string) string {
	t.Helper()
	for i := range 500 {
		name := fmt.Sprint(base, i)
		if owner, err := c.Owner(bg, keyspace.Slot(key(name))); err == nil && !slices.Contains(avoid, owner) {
			return name
		}
	}
	t.Fatalf("no queue %s0…%s499 on a primary other than %d nodes", base, base, len(avoid))
	return ""
}

// onDeadPrimary kills the primary of a queue of c and does not restart
// it: go-redis alone would go on dialing the dead node until its slot map's
// reload interval (60s) runs out; the runtime reloads the map after the
// connection errors, so that pushes, a blocking pop (whose pool on the dead
// node is dropped) and receives work again once the replica is promoted.
// Each is tried for at most 30s.
func onDeadPrimary(t *testing.T, c *redistest.Cluster, avoid []*redistest.Node) {
	ds := newStore(t, Options{Addrs: c.Addrs(), Prefix: "dead:", Logger: slog.New(slog.DiscardHandler)})
	q := testQueue[int](t, ds, queueAwayFrom(t, c, avoid, "q", func(name string) string { return testQueue[int](t, ds, name).Key() }))
	slot := keyspace.Slot(q.Key())
	primary, err := c.Owner(bg, slot)
	if err != nil {
		t.Fatal(err)
	}
	// An at-least-once queue on the same primary.
	var r ReliableQueue[int]
	for i := range 100 {
		r = testReliable[int](ds, fmt.Sprint("r", i), time.Minute, 0)
		if owner, err := c.Owner(bg, keyspace.Slot(r.Key())); err == nil && owner == primary {
			break
		}
	}
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if err := r.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := q.Pop(bg, time.Second); v != 1 || !ok || err != nil {
		t.Fatalf("Pop = %v, %v, %v", v, ok, err)
	}
	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	waitOwner(t, c, slot, primary)
	retry := func(what string, fn func() error) {
		t.Helper()
		var err error
		for range 300 {
			if err = fn(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s after the primary died and its replica took over: still failing after 30s: %v", what, err)
	}
	retry("Push", func() error { return q.Push(bg, 2) })
	retry("blocking Pop", func() error {
		v, ok, err := q.Pop(bg, 200*time.Millisecond)
		if err == nil && (!ok || v != 2) {
			t.Fatalf("Pop = %v, %v; want 2", v, ok)
		}
		return err
	})
	retry("reliable Push", func() error { return r.Push(bg, 3) })
	retry("Receive", func() error {
		ds, err := r.ReceiveMany(bg, 10, 200*time.Millisecond)
		if err == nil && len(ds) == 0 {
			return errors.New("nothing received")
		}
		return err
	})
}

// TestSentinelFailoverUnderLoad is TestClusterFailoverUnderLoad through
// SENTINEL FAILOVER, which promotes the replica without waiting for it to
// catch up: without WaitReplicas, pushes acknowledged by the old primary
// and not yet replicated are lost when it turns replica (logged); with
// WaitReplicas 1, none may be.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	redistest.SingleOnly(t, "starts a Sentinel group of its own, the same whatever the run's topology")
	g, err := redistest.StartSentinel()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sentinel := redis.NewClient(&redis.Options{Addr: g.Sentinels[0].Addr})
	defer sentinel.Close()
	for _, wait := range []int{0, 1} {
		t.Run(fmt.Sprintf("WaitReplicas=%d", wait), func(t *testing.T) {
			ds := newStore(t, Options{MasterName: g.MasterName, SentinelAddrs: g.Addrs(), Prefix: fmt.Sprintf("so%d:", wait),
				WaitReplicas: wait, WaitTimeout: waitTimeout(wait), Logger: slog.New(slog.DiscardHandler)})
			l := startLoad(t, ds, "jobs", 4)
			l.waitHandled(failoverItems())
			before, err := g.Master(bg)
			if err != nil {
				t.Fatal(err)
			}
			took := l.during("SENTINEL FAILOVER", func() {
				var err error
				for range 50 { // INPROG, NOGOODSLAVE while the last failover settles
					if err = sentinel.Do(bg, "SENTINEL", "FAILOVER", g.MasterName).Err(); err == nil {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := g.Wait(time.Minute); err != nil {
					t.Fatal(err)
				}
				if after, err := g.Master(bg); err != nil || after == before {
					t.Fatalf("after SENTINEL FAILOVER the master is %v (%v)", after, err)
				}
			})
			l.waitHandled(failoverItems())
			acked, lost, dup := l.finish()
			t.Logf("Sentinel, WaitReplicas=%d: %d items acknowledged, %d lost, %d duplicated; longest pause in handling %v through SENTINEL FAILOVER; %d push errors retried, %d Consume warnings",
				wait, acked, lost, dup, took.Round(time.Millisecond), l.pushErrs.Load(), l.warnings.Load())
			if wait > 0 && lost != 0 {
				t.Errorf("%d acknowledged items lost with WaitReplicas %d", lost, wait)
			}
		})
	}
}

// TestSlotMigrationUnderLoad moves the slots of two busy queues to other
// primaries (Cluster.MoveSlot: what redis-cli --cluster reshard does, one
// key per MIGRATE, so that the queues' keys are split for a while) while producers and consumers run: an at-least-once
// queue with WaitReplicas 1 (its scripts meet TRYAGAIN while the queue's
// keys are split, and ASK, which the durable path follows with ASKING),
// and an at-most-once queue (LPUSH, RPOP and BRPOP: ASK and MOVED, which
// go-redis follows; a blocking pop refused with one returns the error and
// is called again). Nothing acknowledged may be lost; the at-most-once
// queue may hand out nothing twice.
func TestSlotMigrationUnderLoad(t *testing.T) {
	redistest.SingleOnly(t, "starts a cluster of its own, the same whatever the run's topology")
	c, err := redistest.StartCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The DataStores' clients count the redirects and TRYAGAINs their
	// nodes answer, to show what the migration put them through.
	var replies redirectCounter
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(&replies) })
	ds := newStore(t, Options{Client: cc, Prefix: "mig:", WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	plainDS := newStore(t, Options{Client: cc, Prefix: "migp:", Logger: slog.New(slog.DiscardHandler)})
	l := startLoad(t, ds, "jobs", 4)
	p := startPlainLoad(t, plainDS, "plain", 4, 4)
	l.waitHandled(failoverItems())
	p.waitPopped(failoverItems())

	move := func(what, key string) {
		slot := keyspace.Slot(key)
		from, err := c.Owner(bg, slot)
		if err != nil {
			t.Fatal(err)
		}
		var to *redistest.Node
		for _, n := range c.Nodes() {
			if role, err := n.Role(bg); err == nil && role == "master" && n != from {
				to = n
				break
			}
		}
		start := time.Now()
		moved, err := c.MoveSlot(bg, slot, to, 1)
		if err != nil {
			t.Fatal(err)
		}
		if owner, err := c.Owner(bg, slot); err != nil || owner != to {
			t.Fatalf("slot %d is served by %v after MoveSlot (%v)", slot, owner, err)
		}
		t.Logf("%s: slot %d moved from %s to %s with %d keys in %v", what, slot, from.Addr, to.Addr, moved, time.Since(start).Round(time.Millisecond))
	}
	move("at-least-once queue", l.r.Key())
	move("at-most-once queue", p.q.Key())
	l.waitHandled(failoverItems())
	p.waitPopped(failoverItems())
	acked, lost, dup := l.finish()
	pAcked, pLost, pDup, pUnknown := p.finish()
	t.Logf("slot migration: at-least-once (WaitReplicas 1): %d acknowledged, %d lost, %d duplicated, %d push errors retried; at-most-once: %d acknowledged, %d lost, %d duplicated, %d pushes of unknown outcome, %d pop errors; replies seen: %d ASK, %d MOVED, %d TRYAGAIN",
		acked, lost, dup, l.pushErrs.Load(), pAcked, pLost, pDup, pUnknown, p.popErrs.Load(),
		replies.ask.Load(), replies.moved.Load(), replies.tryAgain.Load())
	if lost != 0 || pLost != 0 || pDup != 0 {
		t.Errorf("lost %d at-least-once items, %d at-most-once items; %d at-most-once items handed out twice", lost, pLost, pDup)
	}
}

// plainLoad drives an at-most-once queue: producers Push (sent again after
// an error that says nothing was written; an ErrUnknownOutcome is counted
// and not sent again), consumers Pop.
type plainLoad struct {
	t        *testing.T
	q        Queue[string]
	stop     chan struct{}
	prod     sync.WaitGroup
	cons     sync.WaitGroup
	consStop chan struct{}

	mu      sync.Mutex
	acked   map[string]bool
	popped  map[string]int
	unknown int
	npopped atomic.Int64
	popErrs atomic.Int64
}

func startPlainLoad(t *testing.T, ds *DataStore, name string, producers, consumers int) *plainLoad {
	p := &plainLoad{t: t, q: testQueue[string](t, ds, name), stop: make(chan struct{}), consStop: make(chan struct{}),
		acked: map[string]bool{}, popped: map[string]int{}}
	for i := range producers {
		p.prod.Go(func() {
			for n := 0; n < 1_000_000; n++ {
				select {
				case <-p.stop:
					return
				default:
				}
				v := fmt.Sprintf("p%d-%d", i, n)
				for try := 0; ; try++ {
					err := p.q.Push(bg, v)
					if err == nil || errors.Is(err, ErrUnknownOutcome) {
						p.mu.Lock()
						if err == nil {
							p.acked[v] = true
						} else {
							p.unknown++
						}
						p.mu.Unlock()
						break
					}
					if try == 3000 {
						t.Errorf("push %s keeps failing: %v", v, err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	for range consumers {
		p.cons.Go(func() {
			for range 10_000_000 {
				select {
				case <-p.consStop:
					return
				default:
				}
				v, ok, err := p.q.Pop(bg, 200*time.Millisecond)
				if err != nil {
					p.popErrs.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if ok {
					p.mu.Lock()
					p.popped[v]++
					p.mu.Unlock()
					p.npopped.Add(1)
				}
			}
		})
	}
	return p
}

func (p *plainLoad) waitPopped(n int) {
	p.t.Helper()
	start := p.npopped.Load()
	for range 12_000 {
		if p.npopped.Load() >= start+int64(n) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("%d items were not popped within two minutes", n)
}

func (p *plainLoad) finish() (acked, lost, dup, unknown int) {
	p.t.Helper()
	close(p.stop)
	p.prod.Wait()
	for range 600 {
		if n, err := p.q.Len(bg); err == nil && n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(p.consStop)
	p.cons.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	lost, dup = lostAndDuplicated(p.acked, p.popped)
	return len(p.acked), lost, dup, p.unknown
}

// redirectCounter is a hook that counts ASK, MOVED and TRYAGAIN replies.
type redirectCounter struct{ ask, moved, tryAgain atomic.Int64 }

func (h *redirectCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redirectCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(cmd.Err())
		return err
	}
}

func (h *redirectCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			h.count(cmd.Err())
		}
		return err
	}
}

func (h *redirectCounter) count(err error) {
	if err == nil {
		return
	}
	if _, ok := redis.IsAskError(err); ok {
		h.ask.Add(1)
	}
	if _, ok := redis.IsMovedError(err); ok {
		h.moved.Add(1)
	}
	if redis.IsTryAgainError(err) {
		h.tryAgain.Add(1)
	}
}
