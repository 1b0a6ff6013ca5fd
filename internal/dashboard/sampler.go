package dashboard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/storagegen/storagegen/internal/inspect"
)

// sample is one reading of a queue's counts (summed over its instances)
// from an overview.
type sample struct {
	t       time.Time
	backlog int64 // ready + in flight + delayed
	dead    int64
}

// ring keeps the last len(buf) samples of one declaration.
type ring struct {
	buf   []sample
	next  int
	n     int
	taken int // samples added since the start
}

func (r *ring) add(s sample) {
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.taken++
}

// list returns the samples oldest first.
func (r *ring) list() []sample {
	out := make([]sample, 0, r.n)
	start := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := range r.n {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}

// run takes an overview every interval until ctx ends.
func (s *Server) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if _, err := s.sample(ctx); err != nil && ctx.Err() == nil {
			// Redis errors carry no payload (the runtime's promise).
			s.log.Warn("dashboard: sampling failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample takes one overview, keeps it as the latest and adds each queue's
// counts to its ring. One sample runs at a time.
func (s *Server) sample(ctx context.Context) (*inspect.Overview, error) {
	s.sampling.Lock()
	defer s.sampling.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	ov, err := s.in.Overview(ctx, s.unknownLimit)
	s.countSample(ctx, err)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest, s.took = ov, time.Since(start)
	for _, d := range ov.Decls {
		if d.Queue == nil {
			continue
		}
		r := s.rings[d.Decl.Name]
		if r == nil {
			r = &ring{buf: make([]sample, s.samples)}
			s.rings[d.Decl.Name] = r
		}
		q := d.Queue
		r.add(sample{t: ov.Time, backlog: q.Ready + q.InFlight + q.Delayed, dead: q.Dead})
	}
	return ov, nil
}

// current returns the latest overview, taking one when there is none yet.
func (s *Server) current(ctx context.Context) (*inspect.Overview, error) {
	s.mu.Lock()
	ov := s.latest
	s.mu.Unlock()
	if ov != nil {
		return ov, nil
	}
	return s.sample(ctx)
}

// Chart is what the overview draws for one queue: its backlog (ready, in
// flight and delayed) and dead letters over the samples kept, and the net
// flow between samples (the change of the backlog per second: positive
// when it grows, negative when consumers drain it faster than producers
// fill it). The counts the runtime keeps have no totals of pushes or acks,
// so the net flow is what can be known.
type Chart struct {
	W, H     int
	Backlog  string // polyline points
	Dead     string
	Bars     []Bar
	Max      int64 // the backlog's highest value drawn
	Net      string
	Samples  int
	Taken    int // samples taken since the start, of which Samples are kept
	Span     string
	Baseline float64
}

// Bar is one bar of the flow chart.
type Bar struct {
	X, Y, W, H float64
	Up         bool
}

const chartW, chartH = 120, 28

func (s *Server) chart(name string) *Chart {
	s.mu.Lock()
	r := s.rings[name]
	var list []sample
	taken := 0
	if r != nil {
		list, taken = r.list(), r.taken
	}
	s.mu.Unlock()
	c := &Chart{W: chartW, H: chartH, Samples: len(list), Taken: taken, Baseline: chartH / 2}
	if len(list) == 0 {
		return c
	}
	var top int64 = 1
	for _, x := range list {
		top = max(top, x.backlog, x.dead)
	}
	c.Max = top
	step := float64(chartW) / float64(max(s.samples-1, 1))
	// The newest sample is at the right edge.
	x0 := float64(chartW) - step*float64(len(list)-1)
	points := func(v func(sample) int64) string {
		var b strings.Builder
		for i, x := range list {
			y := float64(chartH) - float64(v(x))*float64(chartH-2)/float64(top) - 1
			fmt.Fprintf(&b, "%s,%s ", num(x0+step*float64(i)), num(y))
		}
		return strings.TrimSpace(b.String())
	}
	c.Backlog = points(func(x sample) int64 { return x.backlog })
	c.Dead = points(func(x sample) int64 { return x.dead })
	var rates []float64
	var most float64
	for i := 1; i < len(list); i++ {
		dt := list[i].t.Sub(list[i-1].t).Seconds()
		rate := 0.0
		if dt > 0 {
			rate = float64(list[i].backlog-list[i-1].backlog) / dt
		}
		rates = append(rates, rate)
		most = max(most, rate, -rate)
	}
	for i, rate := range rates {
		h := 0.0
		if most > 0 {
			h = rate / most * (chartH/2 - 1)
		}
		b := Bar{X: x0 + step*float64(i+1) - step*0.8, W: max(step*0.7, 0.5), Up: h >= 0}
		if h >= 0 {
			b.Y, b.H = chartH/2-h, h
		} else {
			b.Y, b.H = chartH/2, -h
		}
		c.Bars = append(c.Bars, b)
	}
	if len(rates) > 0 {
		c.Net = fmt.Sprintf("%+.1f/s", rates[len(rates)-1])
	}
	c.Span = list[len(list)-1].t.Sub(list[0].t).Round(time.Second).String()
	return c
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
