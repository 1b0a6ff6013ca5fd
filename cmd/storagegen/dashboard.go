package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/storagegen/storagegen/internal/dashboard"
	"github.com/storagegen/storagegen/internal/inspect"
	"github.com/storagegen/storagegen/runtime"
)

// The dashboard subcommand: the inspector's results as web pages.

const dashboardUsage = `[-schema FILE] [-redis URL] [-listen 127.0.0.1:8080] [-allow-writes] [-token TOKEN] [-allow-host NAME,…] [-interval 5s]`

// dashboardEnv is what the dashboard command reads beyond its arguments;
// tests replace it.
type dashboardEnv struct {
	ctx    context.Context
	getenv func(string) string
	// ready is told the address served once listening.
	ready func(addr string)
}

var newDashboardEnv = func() (dashboardEnv, func()) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	return dashboardEnv{ctx: ctx, getenv: os.Getenv, ready: func(string) {}}, stop
}

func runDashboard(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dashboard", dashboardUsage, stderr)
	schema := fs.String("schema", "schema.yaml", "the schema `file`")
	redisURL := fs.String("redis", "", "the Redis `URL` (as inspect); default $REDIS_URL, else redis://127.0.0.1:6379/0")
	listen := fs.String("listen", "127.0.0.1:8080", "the `address` to serve on; anything but loopback requires -token")
	writes := fs.Bool("allow-writes", false, "enable requeue, purge, reclaim, pause and resume (each a confirmed POST with a CSRF token)")
	token := fs.String("token", "", "require this `token` (at least 16 bytes) as a bearer header or through the login form; default $STORAGEGEN_DASHBOARD_TOKEN")
	hosts := fs.String("allow-host", "", "host `names`, comma-separated, accepted in the Host header besides IP literals (and localhost on loopback)")
	interval := fs.Duration("interval", 5*time.Second, "how often the overview is sampled for the table and the charts (at least 1s)")
	maxInstances := fs.Int("max-instances", 10000, "collect at most `N` instances per declaration")
	maxKeys := fs.Int("max-keys", 1000000, "read at most `N` keys per walk of the key space")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "storagegen dashboard: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *interval < time.Second || *maxInstances < 1 || *maxKeys < 1 {
		fmt.Fprintln(stderr, "storagegen dashboard: -interval is at least 1s; counts must be positive")
		return 2
	}
	env, stop := newDashboardEnv()
	defer stop()
	if *token == "" {
		*token = env.getenv("STORAGEGEN_DASHBOARD_TOKEN")
	}
	// Refuse before anything is read or bound.
	if err := dashboard.CheckListen(*listen, *token); err != nil {
		fmt.Fprintf(stderr, "storagegen dashboard: %v\n", err)
		return 2
	}
	m, ok := loadSchema(*schema, stderr)
	if !ok {
		return 1
	}
	url := *redisURL
	if url == "" {
		url = env.getenv("REDIS_URL")
	}
	// The MeterProvider of the samples' gauges, served as /metrics. The
	// DataStore gets none: its runtime would report storagegen.queue.items
	// for the few queues the dashboard opens (peeks, requeues) beside the
	// samples' totals under the same name.
	mx, err := dashboard.NewMetrics()
	if err != nil {
		fmt.Fprintf(stderr, "storagegen dashboard: %v\n", err)
		return 1
	}
	defer mx.Shutdown(context.Background())
	ds, err := runtime.New(runtime.Options{URL: url, Logger: slog.New(slog.DiscardHandler), PoolSize: 16})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer ds.Close()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	in := inspect.New(m, ds, inspect.Options{MaxInstances: *maxInstances, MaxKeys: *maxKeys})
	var allow []string
	if *hosts != "" {
		allow = strings.Split(*hosts, ",")
	}
	srv, err := dashboard.New(dashboard.Config{Inspector: in, Listen: *listen, Token: *token, AllowWrites: *writes,
		AllowHosts: allow, Logger: logger, Interval: *interval, Metrics: mx})
	if err != nil {
		fmt.Fprintf(stderr, "storagegen dashboard: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "storagegen dashboard: %v\n", err)
		return 1
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	ctx, cancel := context.WithCancel(env.ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { srv.Run(ctx) })
	mode := "read-only"
	if *writes {
		mode = "writes allowed"
	}
	auth := "no token (loopback)"
	if *token != "" {
		auth = "token required"
	}
	fmt.Fprintf(stdout, "storagegen dashboard: serving %s on http://%s/ (%s, %s); Ctrl-C stops it\n", m.Prefix, ln.Addr(), mode, auth)
	env.ready(ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	code := 0
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "storagegen dashboard: %v\n", err)
			code = 1
		}
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	hs.Shutdown(sctx)
	wg.Wait()
	return code
}
