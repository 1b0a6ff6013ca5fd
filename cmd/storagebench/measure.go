package main

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/runtime"
)

// keyPrefix starts every key storagebench writes.
const keyPrefix = "storagebench:"

// env is what every run shares: one DataStore and one plain client for the
// whole benchmark, so connections are dialled once.
type env struct {
	cfg config
	ds  *runtime.DataStore
	rdb benchClient
	msg message
}

// sideFunc runs one side of a workload: it fills what it needs, then
// calls m.begin, does the timed work, and calls m.end.
type sideFunc func(ctx context.Context, e *env, m *meter) error

// clear deletes every key under keyPrefix, on every server.
func (e *env) clear(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return e.eachServer(ctx, func(ctx context.Context, c *redis.Client) error {
		return clearServer(ctx, c, e.cfg.cluster)
	})
}

// runSide clears the keys and runs one side of w within the -timeout.
func (e *env) runSide(ctx context.Context, w workload, fn sideFunc) (*measurement, error) {
	if err := e.clear(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.timeout)
	defer cancel()
	m := &meter{e: e}
	err := fn(ctx, e, m)
	if err == nil && !m.ended {
		err = errors.New("side ended without a measurement") // a bug in the workload
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("not done within -timeout %v (%d of %d items): %w", e.cfg.timeout, m.items.Load(), e.cfg.n, err)
		}
		return nil, err
	}
	return &m.res, nil
}

// meter measures one run: wall time, latencies, client allocations and
// the server's time.
type meter struct {
	e     *env
	items atomic.Int64 // items done so far, for the timeout message

	serverTaken bool
	before      map[string]cmdStat
	perBefore   map[string]map[string]cmdStat // by server
	cpuBefore   float64
	mallocs     uint64
	start       time.Time
	ended       bool
	res         measurement
}

// measurement is one side of one round.
type measurement struct {
	Items       int                `json:"items"`
	Calls       int                `json:"calls"`
	Seconds     float64            `json:"seconds"`
	Latencies   []time.Duration    `json:"-"`
	Mallocs     uint64             `json:"mallocs"`
	ServerUsec  int64              `json:"server_usec"`
	ServerCPU   float64            `json:"server_cpu_seconds"` // INFO cpu, user+sys: includes network I/O
	CommandStat map[string]cmdStat `json:"commandstats"`
	// BusiestShare is the largest share of the server time that one
	// server (one primary of a cluster) took: 1 on one server.
	BusiestShare float64 `json:"busiest_server_share"`
}

func (m *measurement) opsPerSec() float64 { return float64(m.Items) / m.Seconds }

// serverSnapshot reads the server's counters; begin does it unless a side
// called it earlier to count its fill too.
func (m *meter) serverSnapshot(ctx context.Context) error {
	st, per, cpu, err := m.e.serverStats(ctx)
	m.before, m.perBefore, m.cpuBefore, m.serverTaken = st, per, cpu, true
	return err
}

func (m *meter) begin(ctx context.Context) error {
	if !m.serverTaken {
		if err := m.serverSnapshot(ctx); err != nil {
			return err
		}
	}
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	m.mallocs = ms.Mallocs
	m.start = time.Now()
	return nil
}

// end closes the measurement: the work ended at stop, having done items
// in calls calls.
func (m *meter) end(ctx context.Context, stop time.Time, items, calls int, lat []time.Duration) error {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	after, per, cpu, err := m.e.serverStats(ctx)
	if err != nil {
		return err
	}
	slices.Sort(lat)
	delta := statsDelta(m.before, after)
	m.res = measurement{
		Items: items, Calls: calls, Seconds: stop.Sub(m.start).Seconds(), Latencies: lat,
		Mallocs: ms.Mallocs - m.mallocs, ServerUsec: serverUsec(delta), ServerCPU: cpu - m.cpuBefore,
		CommandStat: delta, BusiestShare: busiestShare(m.perBefore, per),
	}
	m.ended = true
	return nil
}

// serverStats reads INFO commandstats and the server's CPU seconds,
// summed over the primaries of a cluster, and each server's commandstats.
func (e *env) serverStats(ctx context.Context) (map[string]cmdStat, map[string]map[string]cmdStat, float64, error) {
	var sum sumStats
	err := e.eachServer(ctx, func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "commandstats", "cpu").Result()
		if err != nil {
			return fmt.Errorf("INFO commandstats: %w", err)
		}
		st, err := parseCommandStats(info)
		if err != nil {
			return err
		}
		user, _ := strconv.ParseFloat(infoField(info, "used_cpu_user"), 64)
		sys, _ := strconv.ParseFloat(infoField(info, "used_cpu_sys"), 64)
		sum.add(c.Options().Addr, st, user+sys)
		return nil
	})
	return sum.stats, sum.per, sum.cpu, err
}

// calls runs op total times on g goroutines (goroutine w makes calls w,
// w+g, w+2g…), timing each call; op returns how many items its call did.
// The first error stops every goroutine.
func (m *meter) calls(ctx context.Context, g, total int, op func(ctx context.Context, i int) (int, error)) error {
	g = min(g, total)
	lats := make([][]time.Duration, g)
	for w := range g {
		lats[w] = make([]time.Duration, 0, total/g+1)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := m.begin(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for w := range g {
		wg.Go(func() {
			for i := w; i < total; i += g {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				n, err := op(ctx, i)
				lats[w] = append(lats[w], time.Since(t0))
				if err != nil {
					cancel(fmt.Errorf("call %d: %w", i, err))
					return
				}
				m.items.Add(int64(n))
			}
		})
	}
	wg.Wait()
	stop := time.Now()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return m.end(ctx, stop, int(m.items.Load()), total, slices.Concat(lats...))
}

// drain runs take on g goroutines until want items are in hand, and
// measures until the last of them is: a goroutine still waiting for an
// item when the queue is empty (a plain BRPOP waits at least a second)
// does not count. take returns how many items one call got.
func (m *meter) drain(ctx context.Context, g, want int, take func(ctx context.Context) (int, error)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := m.begin(ctx); err != nil {
		return err
	}
	var stop atomic.Pointer[time.Time]
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			// Bounded by count as well as by ctx: at most 2·want+100 calls.
			for range 2*want + 100 {
				if ctx.Err() != nil || m.items.Load() >= int64(want) {
					return
				}
				n, err := take(ctx)
				calls.Add(1)
				if err != nil {
					if ctx.Err() != nil && m.items.Load() >= int64(want) {
						return // cancelled because the drain is done
					}
					cancel(err)
					return
				}
				if got := m.items.Add(int64(n)); got >= int64(want) && got-int64(n) < int64(want) {
					now := time.Now()
					stop.Store(&now)
					cancel(nil) // the others may stop waiting
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if got := m.items.Load(); got != int64(want) {
		return fmt.Errorf("drained %d items, want %d", got, want)
	}
	return m.end(context.WithoutCancel(ctx), *stop.Load(), want, int(calls.Load()), nil)
}
