package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/storagegen/storagegen/internal/redistest"
)

// results is everything one run found; -json writes it as it is.
type results struct {
	Date           string                `json:"date"`
	Go             string                `json:"go"`
	GOMAXPROCS     int                   `json:"gomaxprocs"`
	NumCPU         int                   `json:"num_cpu"`
	Redis          string                `json:"redis_version"`
	Server         string                `json:"server"`
	OwnServer      bool                  `json:"own_server"`
	N              int                   `json:"n"`
	C              int                   `json:"c"`
	Rounds         int                   `json:"rounds"`
	PoolSize       int                   `json:"pool_size"`
	WaitReplicas   int                   `json:"wait_replicas,omitempty"` // -wait
	Cluster        bool                  `json:"cluster,omitempty"`       // -cluster
	Workloads      []workloadResult      `json:"workloads"`
	RedisBenchmark *redisBenchmarkResult `json:"redis_benchmark,omitempty"`
	Asynq          *asynqResult          `json:"asynq,omitempty"` // -asynq
}

type workloadResult struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	NotBuilt string     `json:"not_built,omitempty"`
	Items    int        `json:"items,omitempty"`
	PerCall  bool       `json:"per_call,omitempty"` // latencies are per operation
	Typed    sideResult `json:"typed"`
	Plain    sideResult `json:"plain"`
	Ratios   []float64  `json:"ratios,omitempty"` // typed ÷ plain items/s, per round
	Ratio    float64    `json:"ratio,omitempty"`  // their median
}

// sideResult is one side over all rounds: the medians, and the rounds.
type sideResult struct {
	OpsPerSec          float64        `json:"items_per_sec"`
	P50, P99           time.Duration  `json:"-"`
	P50Micros          float64        `json:"p50_us,omitempty"`
	P99Micros          float64        `json:"p99_us,omitempty"`
	AllocsPerItem      float64        `json:"allocs_per_item"`
	ServerUsecPerItem  float64        `json:"server_usec_per_item"`
	ServerCPUUsPerItem float64        `json:"server_process_cpu_usec_per_item"`
	BusiestShare       float64        `json:"busiest_server_share"` // median; see measurement
	Rounds             []*measurement `json:"rounds"`
}

func (s *sideResult) add(m *measurement) { s.Rounds = append(s.Rounds, m) }

func (w *workloadResult) finish() {
	w.Ratio = median(w.Ratios)
	for _, s := range []*sideResult{&w.Typed, &w.Plain} {
		var ops, allocs, srv, cpu, share, p50, p99 []float64
		for _, m := range s.Rounds {
			items := float64(m.Items)
			ops = append(ops, m.opsPerSec())
			allocs = append(allocs, float64(m.Mallocs)/items)
			srv = append(srv, float64(m.ServerUsec)/items)
			cpu = append(cpu, m.ServerCPU*1e6/items)
			share = append(share, m.BusiestShare)
			if w.PerCall {
				p50 = append(p50, float64(percentile(m.Latencies, 50)))
				p99 = append(p99, float64(percentile(m.Latencies, 99)))
			}
		}
		s.OpsPerSec, s.AllocsPerItem, s.ServerUsecPerItem, s.ServerCPUUsPerItem = median(ops), median(allocs), median(srv), median(cpu)
		s.BusiestShare = median(share)
		if w.PerCall {
			s.P50, s.P99 = time.Duration(median(p50)), time.Duration(median(p99))
			s.P50Micros, s.P99Micros = float64(s.P50)/1e3, float64(s.P99)/1e3
		}
	}
}

// writeTable prints the results as a Markdown table, so that it can go
// into the README as it is.
func writeTable(w io.Writer, r *results) {
	own := ""
	if r.OwnServer {
		own = ", started by storagebench"
	}
	wait := ""
	if r.WaitReplicas > 0 {
		wait = fmt.Sprintf("; typed side with WaitReplicas %d (WAIT after each write), plain side without", r.WaitReplicas)
	}
	fmt.Fprintf(w, "storagebench: %s, GOMAXPROCS %d (%d CPUs), Redis %s on %s%s; n %d, c %d, %d round(s), pool size %d on both sides%s; medians over rounds\n\n",
		r.Go, r.GOMAXPROCS, r.NumCPU, r.Redis, r.Server, own, r.N, r.C, r.Rounds, r.PoolSize, wait)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| workload\t| typed items/s\t| plain items/s\t| typed ÷ plain\t| typed p50 / p99 per call\t| allocs/item typed / plain\t| server µs/item typed / plain\t|")
	fmt.Fprintln(tw, "| ---\t| ---:\t| ---:\t| ---:\t| ---:\t| ---:\t| ---:\t|")
	for _, wr := range r.Workloads {
		if wr.NotBuilt != "" {
			fmt.Fprintf(tw, "| %s (%s)\t| —\t| —\t| —\t| —\t| —\t| —\t|\n", wr.Name, wr.NotBuilt)
			continue
		}
		lat := "—"
		if wr.PerCall {
			lat = micros(wr.Typed.P50) + " / " + micros(wr.Typed.P99)
		}
		fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %.2f\t| %s\t| %.1f / %.1f\t| %.2f / %.2f\t|\n",
			wr.Name, rate(wr.Typed.OpsPerSec), rate(wr.Plain.OpsPerSec), wr.Ratio, lat,
			wr.Typed.AllocsPerItem, wr.Plain.AllocsPerItem, wr.Typed.ServerUsecPerItem, wr.Plain.ServerUsecPerItem)
		if wr.ID == "consume" && r.Asynq != nil {
			fmt.Fprint(tw, asynqRow(r.Asynq, &wr))
		}
	}
	tw.Flush()
	if r.Cluster {
		fmt.Fprintf(w, "\nThe busiest primary's share of the server time (1.00: one primary did all the work; 0.33: spread evenly over three), median over rounds:\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		fmt.Fprintln(tw, "| workload\t| typed\t| plain\t|")
		fmt.Fprintln(tw, "| ---\t| ---:\t| ---:\t|")
		for _, wr := range r.Workloads {
			if wr.NotBuilt == "" {
				fmt.Fprintf(tw, "| %s\t| %.2f\t| %.2f\t|\n", wr.Name, wr.Typed.BusiestShare, wr.Plain.BusiestShare)
			}
		}
		tw.Flush()
	}
	if r.Asynq != nil {
		fmt.Fprint(w, "\n"+asynqNote(r.Asynq))
	}
	if rb := r.RedisBenchmark; rb != nil {
		fmt.Fprintln(w)
		if rb.Skipped != "" {
			fmt.Fprintf(w, "redis-benchmark: skipped: %s\n", rb.Skipped)
		} else {
			var parts []string
			for _, t := range []string{"LPUSH", "SET", "GET"} {
				if v, ok := rb.RequestsPerSec[t]; ok {
					parts = append(parts, t+" "+rate(v))
				}
			}
			fmt.Fprintf(w, "ceiling, `%s`: %s requests/s\n", rb.Command, strings.Join(parts, ", "))
		}
	}
}

func rate(v float64) string {
	if v >= 1e6 {
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	}
	return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
}

func micros(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + " µs"
}

type redisBenchmarkResult struct {
	Command        string             `json:"command,omitempty"`
	RequestsPerSec map[string]float64 `json:"requests_per_sec,omitempty"`
	Skipped        string             `json:"skipped,omitempty"`
}

// redisBenchmark runs redis-benchmark -P 16 against srv, which
// storagebench started: it writes keys of its own (mylist,
// key:__rand_int__). Its -n is bounded: 5·n, from 10,000 to 1,000,000.
func redisBenchmark(ctx context.Context, srv *redistest.Server, cfg config) *redisBenchmarkResult {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return &redisBenchmarkResult{Skipped: "redis-benchmark is not on PATH"}
	}
	n := min(max(5*cfg.n, 10_000), 1_000_000)
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port), "-c", strconv.Itoa(cfg.c), "-n", strconv.Itoa(n),
		"-d", strconv.Itoa(len(mustEncode(newMessage()))), "-P", "16", "-t", "lpush,get,set", "-q"}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	res := &redisBenchmarkResult{Command: "redis-benchmark " + strings.Join(slices.Delete(slices.Clone(args), 0, 4), " ")}
	if err != nil {
		res.Skipped = fmt.Sprintf("redis-benchmark failed: %v", err)
		return res
	}
	res.RequestsPerSec = parseRedisBenchmark(string(out))
	if len(res.RequestsPerSec) == 0 {
		res.Skipped = "no figures in redis-benchmark's output"
	}
	return res
}
