// Command asynqref is storagebench's reference point for the at-least-once
// row: github.com/hibiken/asynq processing the same JSON payload with a
// handler that decodes it and returns nil. It lives in a module of its own
// so that asynq is never a dependency of storagegen; storagebench builds
// and runs it when given -asynq.
//
// Usage:
//
//	asynqref -redis ADDR|URL [-n 20000] [-c 64] [-payload FILE] [-timeout 2m]
//
// It refuses a server outside 127.0.0.0/8 and ::1: it is a benchmark, and
// it writes asynq's keys. The payload is read from FILE, or from stdin
// when -payload is "-" or absent.
//
// What it does: it deletes the keys of its asynq queue ("storagebench":
// every key under asynq:{storagebench}: and that name in the asynq:queues
// set, and nothing else), enqueues n tasks carrying the payload with
// asynq's client (c goroutines, not timed), starts an asynq server with
// Concurrency c and a handler that decodes the payload into the same
// struct as storagebench's and returns nil, and times from the server's
// start until asynq has marked the n-th task done (its Done script, which
// removes the task and counts it in asynq:{storagebench}:processed: the
// counter is polled every millisecond, as storagebench polls the typed
// Consume's ack counter). The time until the n-th handler returned is
// printed too. Then it shuts the server down, deletes the queue's keys
// again and prints one JSON line on stdout:
//
//	{"items":20000,"seconds":2.9,"items_per_sec":6896.6,"handler_seconds":2.89,...}
//
// asynq runs with its defaults except Concurrency (c), Queues (the one
// queue; asynq's default is a queue named "default"), LogLevel (warn) and
// the connection pool (c connections, the pool size storagebench gives
// every side; asynq's default is 10 per CPU).
//
// Exit status: 0 when all n tasks were processed, 1 on an error (a task
// that failed, a run over -timeout), 2 for bad flags or a refused address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// message is storagebench's payload type (cmd/storagebench/workloads.go),
// copied: this module cannot import storagegen's main package.
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

const (
	queueName = "storagebench"
	taskType  = "storagebench:message"
	keyPrefix = "asynq:{" + queueName + "}:" // every key asynq keeps for the queue
	allQueues = "asynq:queues"               // asynq's set of queue names
	processed = keyPrefix + "processed"      // incremented by asynq's Done script
)

// result is the line printed on stdout.
type result struct {
	Items          int     `json:"items"`
	Seconds        float64 `json:"seconds"`       // server start to the n-th task marked done
	ItemsPerSec    float64 `json:"items_per_sec"` // items / seconds
	HandlerSeconds float64 `json:"handler_seconds"`
	EnqueueSeconds float64 `json:"enqueue_seconds"`
	Concurrency    int     `json:"concurrency"`
	Asynq          string  `json:"asynq_version"`
}

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("asynqref", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("redis", os.Getenv("REDIS_URL"), "loopback server, host:port or redis:// URL; default $REDIS_URL")
	n := fs.Int("n", 20000, "tasks")
	c := fs.Int("c", 64, "the server's Concurrency, and the pool size")
	payloadFile := fs.String("payload", "-", "`FILE` holding the JSON payload; - for stdin")
	timeout := fs.Duration("timeout", 2*time.Minute, "longest the enqueueing and the processing may take")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "asynqref: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *addr == "":
		return usage("-redis is required (or $REDIS_URL)")
	case *n < 1 || *n > 10_000_000:
		return usage("-n %d: want 1 to 10,000,000", *n)
	case *c < 1 || *c > 10_000:
		return usage("-c %d: want 1 to 10,000", *c)
	case *timeout <= 0:
		return usage("-timeout %v: want a positive duration", *timeout)
	}
	opts, err := loopbackOptions(*addr)
	if err != nil {
		return usage("-redis: %v", err)
	}
	var payload []byte
	if *payloadFile == "-" {
		payload, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		payload, err = os.ReadFile(*payloadFile)
	}
	if err != nil {
		return usage("-payload: %v", err)
	}
	var m message
	if err := json.Unmarshal(payload, &m); err != nil {
		return usage("-payload: not a JSON message of storagebench's shape") // no payload bytes in the message
	}

	opts.PoolSize = *c
	res, err := bench(opts, payload, *n, *c, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "asynqref: %v\n", err)
		return 1
	}
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(stderr, "asynqref: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// loopbackOptions parses s (host:port or a redis:// or rediss:// URL) and
// refuses any server but a TCP one on 127.0.0.0/8 or ::1. The name
// "localhost" is resolved, and every address it has must be loopback.
func loopbackOptions(s string) (*redis.Options, error) {
	var opts *redis.Options
	if strings.Contains(s, "://") {
		o, err := redis.ParseURL(s) // go-redis does not echo passwords in its errors
		if err != nil {
			return nil, err
		}
		opts = o
	} else {
		opts = &redis.Options{Addr: s}
	}
	if opts.Network != "" && opts.Network != "tcp" {
		return nil, fmt.Errorf("network %q: want a TCP address on 127.0.0.0/8 or ::1", opts.Network)
	}
	host, port, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %v", opts.Addr, err)
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		if !strings.EqualFold(host, "localhost") {
			return nil, fmt.Errorf("host %q: want 127.0.0.0/8, ::1 or localhost", host)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("host %q does not resolve: %v", host, err)
		}
		ips = ips[:0]
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("host %q (%s) is not on 127.0.0.0/8 or ::1: a benchmark runs only against a loopback server", host, ip)
		}
	}
	ip := ips[0]
	for _, x := range ips {
		if x.To4() != nil {
			ip = x // a resolved localhost: prefer 127.0.0.1, as redis-server listens there by default
			break
		}
	}
	opts.Addr = net.JoinHostPort(ip.String(), port) // dial what was checked
	return opts, nil
}

func bench(opts *redis.Options, payload []byte, n, c int, timeout time.Duration) (*result, error) {
	rdb := redis.NewClient(opts) // asynq's client and server
	defer rdb.Close()
	side := redis.NewClient(&redis.Options{ // cleaning and polling
		Addr: opts.Addr, Username: opts.Username, Password: opts.Password, DB: opts.DB,
		TLSConfig: opts.TLSConfig, PoolSize: 2,
	})
	defer side.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := clean(ctx, side); err != nil {
		return nil, err
	}
	defer clean(context.Background(), side)

	// Enqueue, not timed: c goroutines, each task its own Enqueue.
	t0 := time.Now()
	client := asynq.NewClientFromRedisClient(rdb)
	var next atomic.Int64
	var enqErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(c, n) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := client.EnqueueContext(ctx, asynq.NewTask(taskType, payload), asynq.Queue(queueName)); err != nil {
					once.Do(func() { enqErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if enqErr != nil {
		return nil, fmt.Errorf("enqueue: %w", enqErr)
	}
	enqueued := time.Since(t0)

	var handled, failed atomic.Int64
	var handlerStop atomic.Pointer[time.Time]
	handler := asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
		var m message
		if err := json.Unmarshal(t.Payload(), &m); err != nil {
			failed.Add(1)
			return fmt.Errorf("the payload did not decode: %w", asynq.SkipRetry)
		}
		if handled.Add(1) == int64(n) {
			now := time.Now()
			handlerStop.Store(&now)
		}
		return nil
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: c,
		Queues:      map[string]int{queueName: 1},
		LogLevel:    asynq.WarnLevel,
	})

	start := time.Now()
	if err := srv.Start(handler); err != nil {
		return nil, fmt.Errorf("asynq server: %w", err)
	}
	stop, err := waitProcessed(ctx, side, int64(n), &failed)
	srv.Shutdown()
	if err != nil {
		return nil, fmt.Errorf("%w (%d of %d tasks handled)", err, handled.Load(), n)
	}
	hs := handlerStop.Load()
	if hs == nil { // asynq counted n done, so n handlers returned
		return nil, fmt.Errorf("asynq counted %d tasks done, but only %d handlers returned", n, handled.Load())
	}
	secs := stop.Sub(start).Seconds()
	return &result{
		Items: n, Seconds: secs, ItemsPerSec: float64(n) / secs,
		HandlerSeconds: hs.Sub(start).Seconds(), EnqueueSeconds: enqueued.Seconds(),
		Concurrency: c, Asynq: asynqVersion(),
	}, nil
}

// waitProcessed polls asynq's processed counter every millisecond until it
// reaches n, and returns when it saw it there.
func waitProcessed(ctx context.Context, rdb *redis.Client, n int64, failed *atomic.Int64) (time.Time, error) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, errors.New("not done within -timeout")
		case <-tick.C:
			if f := failed.Load(); f > 0 {
				return time.Time{}, fmt.Errorf("%d tasks failed to decode", f)
			}
			got, err := rdb.Get(ctx, processed).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				if ctx.Err() != nil {
					continue // reported by the ctx case
				}
				return time.Time{}, fmt.Errorf("GET %s: %w", processed, err)
			}
			if got >= n {
				// After the reply: at most one round trip late, never early.
				return time.Now(), nil
			}
		}
	}
}

// clean deletes the keys of the benchmark's queue, and only those: every
// key under asynq:{storagebench}: and the name in asynq:queues. (The
// server's own entries, asynq:servers and asynq:workers, are removed by
// its shutdown, and expire if it dies.)
func clean(ctx context.Context, rdb *redis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var cursor uint64
	for range 1_000_000 {
		keys, next, err := rdb.Scan(ctx, cursor, keyPrefix+"*", 1000).Result()
		if err != nil {
			return fmt.Errorf("clearing %s*: %w", keyPrefix, err)
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("clearing %s*: %w", keyPrefix, err)
			}
		}
		if cursor = next; cursor == 0 {
			if err := rdb.SRem(ctx, allQueues, queueName).Err(); err != nil {
				return fmt.Errorf("SREM %s: %w", allQueues, err)
			}
			return nil
		}
	}
	return fmt.Errorf("clearing %s*: SCAN did not end", keyPrefix)
}

func asynqVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hibiken/asynq" {
				return d.Version
			}
		}
	}
	return "unknown"
}
