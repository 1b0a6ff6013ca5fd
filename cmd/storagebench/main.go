// Command storagebench measures the typed layer (runtime.Queue[T],
// runtime.Cache[T], runtime.ReliableQueue[T]) beside plain go-redis code
// doing the same work: the same ~200-byte JSON payload of a struct type,
// the same codec (github.com/go-json-experiment/json), the same server and
// the same concurrency and pool sizes. It is the yardstick of the speed
// work: the ratios it prints are what the targets are stated in. Reference
// rows run the typed Push, Set and Get against go-redis's AutoPipeline.
//
// Usage:
//
//	go run ./cmd/storagebench [-redis URL] [-n 20000] [-c 64] [-rounds 3] [-json FILE] [-only REGEXP] [-timeout 2m] [-asynq] [-wait N] [-replicas N] [-cluster]
//	go run ./cmd/storagebench -memory [-redis URL] [-n 20000] [-json FILE]
//
// Flags:
//
//	-redis URL     the server; default $REDIS_URL, else a redis-server that
//	               storagebench starts on a free 127.0.0.1 port and stops
//	               (apt-get install redis-server if there is none)
//	-n N           items per workload, side and round (default 20000)
//	-c N           goroutines of the concurrent workloads, and the pool
//	               size of both sides (default 64)
//	-rounds N      rounds; each runs typed and plain once, alternating
//	               which goes first (default 3)
//	-json FILE     also write the results as JSON
//	-only REGEXP   run only the workloads whose id or name matches
//	-timeout D     longest one side of one round may take (default 2m)
//	-asynq         after the consume workload, run asynq on the same n, c,
//	               payload and server as a reference, once per round
//	               (see asynq.go; it builds the nested module
//	               cmd/storagebench/asynqref, which fetches asynq through
//	               the module proxy the first time)
//	-cluster       start a Redis Cluster of 3 primaries and 3 replicas on
//	               loopback (redis-server --cluster-enabled yes) and run
//	               the workloads on it: the typed side through
//	               Options.Addrs, the plain side through a go-redis
//	               ClusterClient, server figures summed over the
//	               primaries; not with -redis, -wait, -replicas, -asynq
//	-memory        run no workloads: measure what queues and caches take
//	               in the server's memory instead (memory.go): MEMORY
//	               USAGE of one queue in each state (empty, loaded with 1,
//	               100 and 10,000 items, leased, acked) and the growth of
//	               INFO used_memory over -n queues in each state, with what
//	               a million of them would take
//	-wait N        the typed side's DataStore has WaitReplicas N (WAIT
//	               after every push, ack, nack and cache Set; default 0,
//	               none); with no -redis, storagebench also starts N
//	               replicas of its server and waits for their links. The
//	               plain side sends no WAIT: the ratio is WAIT's cost
//	-replicas N    replicas to start with no -redis (default: -wait), so
//	               that a run with -wait 0 -replicas 1 is the baseline
//	               of one with -wait 1
//
// Every workload runs its typed and plain side once per round, with the
// keys cleared before each run; the figures are medians over the rounds,
// and the ratio is the median of the rounds' typed ÷ plain ratios. Per
// workload it prints items per second for each side, the typed side's
// p50/p99 latency per call (where a call is one operation), allocations
// per item on the client (runtime.MemStats.Mallocs), and the server's
// time per item summed from INFO commandstats (see serverUsec). When
// redis-benchmark is on PATH and storagebench started the server, its
// -P 16 figures for LPUSH, GET and SET on the same server follow, as the
// ceiling.
//
// All keys it writes start with "storagebench:", and it deletes them
// before each run and at the end; on a server of your own (-redis), they
// are the only keys it touches. It exits 0 when every run finished, 1 on
// an error (including a run over -timeout), 2 for bad flags or when no
// server can be had; never because of a ratio.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// config is what the flags say.
type config struct {
	url      string
	n, c     int
	rounds   int
	jsonFile string
	timeout  time.Duration
	asynq    bool
	memory   bool
	cluster  bool     // -cluster
	addrs    []string // the cluster's nodes, with -cluster
	wait     int      // Options.WaitReplicas of the typed side
	replicas int      // replicas of the server storagebench starts
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storagebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var only string
	fs.StringVar(&cfg.url, "redis", os.Getenv("REDIS_URL"), "server URL; default $REDIS_URL, else a redis-server started on a free loopback port")
	fs.IntVar(&cfg.n, "n", 20000, "items per workload, side and round")
	fs.IntVar(&cfg.c, "c", 64, "goroutines of the concurrent workloads, and the pool size of both sides")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds, each running typed and plain once")
	fs.StringVar(&cfg.jsonFile, "json", "", "also write the results as JSON to `FILE`")
	fs.StringVar(&only, "only", "", "run only the workloads whose id or name matches `REGEXP`")
	fs.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "longest one side of one round may take")
	fs.BoolVar(&cfg.cluster, "cluster", false, "start a Redis Cluster of 3 primaries and 3 replicas on loopback and run the workloads on it")
	fs.BoolVar(&cfg.memory, "memory", false, "instead of the workloads, measure the memory queues and caches take (MEMORY USAGE, and INFO used_memory over -n queues)")
	fs.BoolVar(&cfg.asynq, "asynq", false, "after the consume workload, run asynq as a reference (builds cmd/storagebench/asynqref, fetching asynq the first time)")
	fs.IntVar(&cfg.wait, "wait", 0, "WaitReplicas of the typed side; with no -redis, start that many replicas")
	fs.IntVar(&cfg.replicas, "replicas", -1, "replicas of the server storagebench starts (default: -wait)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "storagebench: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case cfg.n < 1 || cfg.n > 10_000_000:
		return usage("-n %d: want 1 to 10,000,000", cfg.n)
	case cfg.c < 1 || cfg.c > 10_000:
		return usage("-c %d: want 1 to 10,000", cfg.c)
	case cfg.rounds < 1 || cfg.rounds > 100:
		return usage("-rounds %d: want 1 to 100", cfg.rounds)
	case cfg.timeout <= 0:
		return usage("-timeout %v: want a positive duration", cfg.timeout)
	case cfg.wait < 0 || cfg.wait > 5:
		return usage("-wait %d: want 0 to 5", cfg.wait)
	case cfg.replicas < -1 || cfg.replicas > 5:
		return usage("-replicas %d: want 0 to 5", cfg.replicas)
	}
	re, err := regexp.Compile(only)
	if err != nil {
		return usage("-only: %v", err)
	}
	var selected []workload
	for _, w := range workloads(cfg) {
		if re.MatchString(w.id) || re.MatchString(w.name) {
			selected = append(selected, w)
		}
	}
	if len(selected) == 0 {
		return usage("-only %q matches no workload", only)
	}
	if cfg.memory && (only != "" || cfg.asynq || cfg.cluster) {
		return usage("-memory runs no workloads: it does not go with -only, -asynq or -cluster")
	}
	if cfg.cluster && (cfg.url != "" || cfg.wait > 0 || cfg.replicas > 0 || cfg.asynq) {
		return usage("-cluster starts its own cluster: it does not go with -redis (or REDIS_URL), -wait, -replicas or -asynq")
	}
	if cfg.asynq && !slices.ContainsFunc(selected, func(w workload) bool { return w.id == "consume" }) {
		return usage("-asynq: the consume workload is not selected (-only %q)", only)
	}

	var srv *redistest.Server
	if cfg.cluster {
		c, err := redistest.StartCluster()
		if errors.Is(err, redistest.ErrNoServer) {
			return usage("redis-server is not on PATH: install it (apt-get install redis-server)")
		}
		if err != nil {
			fmt.Fprintf(stderr, "storagebench: starting a cluster: %v\n", err)
			return 1
		}
		defer c.Close()
		cfg.addrs = c.Addrs()
	} else if cfg.url == "" {
		srv, err = redistest.Start()
		if errors.Is(err, redistest.ErrNoServer) {
			return usage("redis-server is not on PATH: install it (apt-get install redis-server) or pass -redis URL")
		}
		if err != nil {
			fmt.Fprintf(stderr, "storagebench: starting redis-server: %v\n", err)
			return 1
		}
		defer srv.Close()
		cfg.url = srv.URL(0)
		if cfg.replicas < 0 {
			cfg.replicas = cfg.wait
		}
		for range cfg.replicas {
			rep, err := startReplica(srv)
			if err != nil {
				fmt.Fprintf(stderr, "storagebench: -wait: %v\n", err)
				return 1
			}
			defer rep.Close()
		}
	}

	if cfg.memory {
		return memoryMode(cfg, stdout, stderr)
	}
	res, err := bench(cfg, selected, srv, newProgress(stderr))
	if err != nil {
		fmt.Fprintf(stderr, "storagebench: %v\n", err)
		return 1
	}
	writeTable(stdout, res)
	if cfg.jsonFile != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.jsonFile, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "storagebench: -json: %v\n", err)
			return 1
		}
	}
	return 0
}

// bench runs every selected workload and, when it may, redis-benchmark.
func bench(cfg config, selected []workload, srv *redistest.Server, prog *progress) (*results, error) {
	ds, plain, server, err := clients(cfg)
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	defer plain.Close()

	ctx := context.Background()
	info, err := plain.Info(ctx, "server").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO server: %w", err)
	}
	res := &results{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Go:         goruntime.Version() + " " + goruntime.GOOS + "/" + goruntime.GOARCH,
		GOMAXPROCS: goruntime.GOMAXPROCS(0),
		NumCPU:     goruntime.NumCPU(),
		Redis:      infoField(info, "redis_version"),
		Server:     server,
		OwnServer:  srv != nil,
		N:          cfg.n, C: cfg.c, Rounds: cfg.rounds,
		PoolSize: cfg.c, WaitReplicas: cfg.wait, Cluster: cfg.cluster,
	}
	b := &env{cfg: cfg, ds: ds, rdb: plain, msg: newMessage()}
	if err := b.clear(ctx); err != nil {
		return nil, err
	}
	defer b.clear(context.Background())

	for i, w := range selected {
		if w.notBuilt != "" {
			res.Workloads = append(res.Workloads, workloadResult{ID: w.id, Name: w.name, NotBuilt: w.notBuilt})
			continue
		}
		wr := workloadResult{ID: w.id, Name: w.name, Items: cfg.n, PerCall: w.perCall}
		for r := range cfg.rounds {
			sides := []struct {
				name string
				fn   sideFunc
				out  *sideResult
			}{{"typed", w.typed, &wr.Typed}, {"plain", w.plain, &wr.Plain}}
			if r%2 == 1 {
				sides[0], sides[1] = sides[1], sides[0]
			}
			var perRound [2]float64
			for _, s := range sides {
				prog.show("[%d/%d] %s: %s, round %d/%d", i+1, len(selected), w.id, s.name, r+1, cfg.rounds)
				m, err := b.runSide(ctx, w, s.fn)
				if err != nil {
					prog.done()
					return nil, fmt.Errorf("%s %s round %d: %w", w.id, s.name, r+1, err)
				}
				s.out.add(m)
				if s.name == "typed" {
					perRound[0] = m.opsPerSec()
				} else {
					perRound[1] = m.opsPerSec()
				}
			}
			wr.Ratios = append(wr.Ratios, perRound[0]/perRound[1])
		}
		wr.finish()
		res.Workloads = append(res.Workloads, wr)
		if w.id == "consume" && cfg.asynq {
			if res.Asynq, err = runAsynq(ctx, b, &wr, prog); err != nil {
				prog.done()
				return nil, fmt.Errorf("asynq reference: %w", err)
			}
		}
	}
	switch {
	case cfg.cluster:
		res.RedisBenchmark = &redisBenchmarkResult{Skipped: "redis-benchmark measures one server, not a cluster"}
	case srv != nil:
		prog.show("redis-benchmark")
		res.RedisBenchmark = redisBenchmark(ctx, srv, cfg)
	default:
		res.RedisBenchmark = &redisBenchmarkResult{Skipped: "the server is not one storagebench started, and redis-benchmark writes keys outside storagebench: (mylist, key:__rand_int__)"}
	}
	prog.done()
	return res, nil
}

// progress writes one line per step to stderr, overwriting it with \r when
// stderr is a terminal.
type progress struct {
	w    io.Writer
	tty  bool
	last int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) show(format string, a ...any) {
	line := "storagebench: " + fmt.Sprintf(format, a...)
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := max(p.last-len(line), 0)
	fmt.Fprint(p.w, "\r"+line+strings.Repeat(" ", pad))
	p.last = len(line)
}

// done clears a terminal's progress line.
func (p *progress) done() {
	if p.tty && p.last > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.last)+"\r")
		p.last = 0
	}
}

// startReplica starts a replica of srv and waits (up to 30s) until its
// link is up.
func startReplica(srv *redistest.Server) (*redistest.Server, error) {
	rep, err := redistest.Start("--replicaof", "127.0.0.1", strconv.Itoa(srv.Port), "--repl-diskless-sync-delay", "0")
	if err != nil {
		return nil, err
	}
	cl := redis.NewClient(&redis.Options{Addr: rep.Addr})
	defer cl.Close()
	for range 300 {
		if v, err := cl.Do(context.Background(), "ROLE").Slice(); err == nil && len(v) >= 4 && v[3] == "connected" {
			return rep, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.Close()
	return nil, fmt.Errorf("the replica on %s did not connect to %s within 30s", rep.Addr, srv.Addr)
}
