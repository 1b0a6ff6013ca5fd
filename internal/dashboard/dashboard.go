// Package dashboard serves what the inspector (internal/inspect) sees as
// web pages: an overview of every declaration refreshed live, with a
// small chart per queue drawn by the server from samples it keeps in
// memory, and a page per declaration with its instances, items and dead
// letters, and the writes an operator needs.
//
// Everything it serves is embedded (templates, one stylesheet, one small
// script that refreshes the overview; the pages work without it). It is
// read-only unless Config.AllowWrites; every write is a POST from a
// confirmation page carrying a CSRF token, from a page of the same
// origin. It answers only Host headers that name it (against DNS
// rebinding), requires a token when it listens on anything but loopback,
// and never writes a payload to its log. GET /metrics serves the last
// sample's counts (and whatever else is recorded in Config.Metrics) for
// Prometheus, under the same Host and token rules.
package dashboard

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/storagegen/storagegen/internal/inspect"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a Server. Zero values mean defaults.
type Config struct {
	Inspector *inspect.Inspector
	// Listen is the address the server listens on: it decides whether a
	// token is required (anything but loopback) and which Host headers
	// are answered.
	Listen string
	// Token, when set, is required of every request: as a bearer header
	// (Authorization: Bearer TOKEN) or through the login form, which sets
	// an HttpOnly, SameSite=Strict session cookie. At least MinTokenLen
	// bytes.
	Token string
	// AllowWrites enables requeue, purge, reclaim, pause and resume.
	AllowWrites bool
	// AllowHosts are host names (beyond IP literals, and localhost on
	// loopback) accepted in the Host header.
	AllowHosts []string
	// Logger gets one line per request (method, route pattern, status,
	// duration: never a query, an argument or a payload) and sampling
	// errors. Default: discard.
	Logger *slog.Logger
	// Interval is how often the overview is sampled. Default 5s.
	Interval time.Duration
	// Samples is how many samples each queue's chart keeps. Default 120.
	Samples int
	// Timeout bounds the Redis work of one request or sample. Default 30s.
	Timeout time.Duration
	// Peek is how many items and dead letters an instance's page shows.
	// Default 20.
	Peek int
	// Metrics is where the dashboard records the gauges of its samples,
	// served as GET /metrics for Prometheus. Default: a NewMetrics of its
	// own (then the DataStore's calls are not in it).
	Metrics *Metrics
}

// Server is the dashboard. Its Handler serves the pages; Run samples.
type Server struct {
	in           *inspect.Inspector
	token        string
	loopback     bool
	writes       bool
	allowHosts   []string
	log          *slog.Logger
	interval     time.Duration
	samples      int
	timeout      time.Duration
	peek         int
	unknownLimit int
	sec          secrets
	pages        map[string]*template.Template
	mux          *http.ServeMux
	metrics      *Metrics
	meters       *meters

	sampling sync.Mutex // one overview at a time
	mu       sync.Mutex
	latest   *inspect.Overview
	took     time.Duration // how long latest took
	rings    map[string]*ring
}

// New checks cfg (see CheckListen) and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Inspector == nil {
		return nil, errors.New("dashboard: no inspector")
	}
	if err := CheckListen(cfg.Listen, cfg.Token); err != nil {
		return nil, err
	}
	lb, _ := Loopback(cfg.Listen)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s := &Server{in: cfg.Inspector, token: cfg.Token, loopback: lb, writes: cfg.AllowWrites,
		log: cfg.Logger, interval: cfg.Interval, samples: cfg.Samples, timeout: cfg.Timeout, peek: cfg.Peek,
		unknownLimit: 20, sec: newSecrets(key, cfg.Token), rings: map[string]*ring{}}
	for _, h := range cfg.AllowHosts {
		if h = strings.TrimSpace(h); h != "" {
			s.allowHosts = append(s.allowHosts, strings.ToLower(h))
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.interval <= 0 {
		s.interval = 5 * time.Second
	}
	if s.samples < 2 {
		s.samples = 120
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	if s.peek <= 0 {
		s.peek = 20
	}
	var err error
	if s.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	if s.metrics = cfg.Metrics; s.metrics == nil {
		if s.metrics, err = NewMetrics(); err != nil {
			return nil, err
		}
	}
	if s.meters, err = s.registerMeters(s.metrics.provider); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Run samples the overview every Config.Interval until ctx ends, and
// returns then.
func (s *Server) Run(ctx context.Context) { s.run(ctx) }

// Handler returns the handler of every page.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", s.overviewPage)
	m.HandleFunc("GET /fragment/overview", s.overviewFragment)
	m.HandleFunc("GET /queue/{name}", s.declPage)
	m.HandleFunc("GET /cache/{name}", s.declPage)
	m.HandleFunc("GET /confirm", s.confirmPage)
	m.HandleFunc("POST /write", s.write)
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.logout)
	m.HandleFunc("GET /metrics", s.metricsPage)
	s.mux = m
}

// statusWriter records the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// serve checks the Host header and the token, then routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	securityHeaders(sw.Header())
	route := "-"
	defer func() {
		s.log.Info("dashboard", "method", r.Method, "route", route, "status", sw.status, "duration", time.Since(start).Round(time.Microsecond))
	}()
	if !s.hostOK(r) {
		route = "(host refused)"
		http.Error(sw, "this host name is not served here (see -allow-host)", http.StatusMisdirectedRequest)
		return
	}
	_, pattern := s.mux.Handler(r)
	route = pattern
	public := strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/login"
	if !public && !s.authed(r) {
		if r.URL.Path == "/metrics" {
			// A scraper, not a browser: no login page.
			sw.Header().Set("WWW-Authenticate", `Bearer realm="storagegen dashboard"`)
			http.Error(sw, "unauthorized: /metrics requires the token as a bearer header", http.StatusUnauthorized)
		} else if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.render(sw, http.StatusUnauthorized, "login", s.base(r, "Log in"), nil)
		} else {
			http.Error(sw, "unauthorized: this dashboard requires its token", http.StatusUnauthorized)
		}
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// Base is what every page's layout needs.
type Base struct {
	Title       string
	CSRF        string
	Writes      bool
	Auth        bool // a token is required (show log out)
	RefreshMS   int64
	RefreshSec  int64
	Prefix      string
	Interval    time.Duration
	SampleCount int
}

func (s *Server) base(r *http.Request, title string) Base {
	return Base{Title: title, CSRF: s.sec.csrf, Writes: s.writes, Auth: s.token != "" && s.authed(r),
		RefreshMS: s.interval.Milliseconds(), RefreshSec: max(1, int64((s.interval+time.Second-1)/time.Second)), Prefix: s.in.Prefix(), Interval: s.interval, SampleCount: s.samples}
}

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.timeout)
}

// fail shows an error page. Errors from Redis and the inspector carry no
// payloads, so the log gets the message of a server error; a client
// error's message (which may echo an argument) is not logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		s.log.Error("dashboard: request failed", "route", r.Pattern, "err", err)
	}
	s.render(w, code, "error", s.base(r, http.StatusText(code)), err.Error())
}

func (s *Server) render(w http.ResponseWriter, code int, page string, b Base, data any) {
	t := s.pages[page]
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", struct {
		Base
		Data any
	}{b, data}); err != nil {
		s.log.Error("dashboard: template failed", "page", page, "err", err)
		http.Error(w, "template failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprint(w, buf.String())
}
