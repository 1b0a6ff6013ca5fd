package dashboard_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/dashboard"
	"github.com/storagegen/storagegen/internal/redistest"
)

const host = "127.0.0.1:8080"

// do serves one request to s as a browser on host would send it.
func do(t *testing.T, h http.Handler, method, target string, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	r.Host = host
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// cell returns the text of the data-col cell of a row (data-decl or
// data-key) of page.
func cell(page, rowAttr, row, col string) string {
	i := strings.Index(page, rowAttr+`="`+row+`"`)
	if i < 0 {
		return "(no row " + row + ")"
	}
	rest := page[i:]
	if j := strings.Index(rest, "</tr>"); j >= 0 {
		rest = rest[:j]
	}
	m := regexp.MustCompile(`data-col="` + col + `"[^>]*>([^<]*)<`).FindStringSubmatch(rest)
	if m == nil {
		return "(no cell " + col + ")"
	}
	return strings.TrimSpace(m[1])
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token a page carries.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

func TestPagesSingle(t *testing.T) { testPages(t, redistest.TopologySingle) }

// TestPagesCluster and TestPagesSentinel serve the same pages over the
// other topologies: the inspector walks every primary.
func TestPagesCluster(t *testing.T)  { testPages(t, redistest.TopologyCluster) }
func TestPagesSentinel(t *testing.T) { testPages(t, redistest.TopologySentinel) }

// testPages seeds known state and checks the overview and the pages of
// each declaration against it; payloads are hostile and must be escaped,
// and no payload may reach the log.
func testPages(t *testing.T, tp redistest.Topology) {
	if testing.Short() && tp != redistest.TopologySingle {
		t.Skip("-short: single server only")
	}
	url, _, stop, err := redistest.ForTopology(tp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	f := seed(t, url)
	s, logs := newServer(t, f, dashboard.Config{})
	h := s.Handler()

	w := do(t, h, "GET", "/", nil, nil)
	if w.Code != 200 {
		t.Fatalf("overview: %d\n%s", w.Code, w.Body)
	}
	page := w.Body.String()
	want := map[string]map[string]string{
		"jobs":   {"instances": "2", "ready": "3", "in_flight": "2", "expired": "1", "delayed": "1", "dead": "1"},
		"edges":  {"instances": "1", "ready": "2", "in_flight": "0", "dead": "1", "oldest": "-"},
		"spread": {"instances": "1", "ready": "3", "dead": "0"},
		"out":    {"instances": "2", "entries": "2", "no_ttl": "1"},
		"kv":     {"instances": "1", "entries": "1", "no_ttl": "1"},
	}
	for decl, cols := range want {
		for col, v := range cols {
			if got := cell(page, "data-decl", decl, col); got != v {
				t.Errorf("overview %s %s = %q, want %q", decl, col, got, v)
			}
		}
	}
	if !strings.Contains(page, "<svg class=\"spark\"") || !strings.Contains(page, "<polyline") {
		t.Errorf("overview: no chart")
	}
	if got := cell(page, "id", "unknown", "unknown"); got != "0" {
		t.Errorf("unknown keys %q, want 0", got)
	}
	frag := do(t, h, "GET", "/fragment/overview", nil, nil)
	if frag.Code != 200 || cell(frag.Body.String(), "data-decl", "jobs", "ready") != "3" || strings.Contains(frag.Body.String(), "<html") {
		t.Errorf("fragment: %d\n%s", frag.Code, frag.Body)
	}

	// jobs: two instances; t1's page shows its items, t2's its dead letter.
	w = do(t, h, "GET", "/queue/jobs", nil, nil)
	page = w.Body.String()
	if w.Code != 200 || cell(page, "data-key", "db:queue:{jobs:t1}", "expired") != "1" || cell(page, "data-key", "db:queue:{jobs:t2}", "dead") != "1" {
		t.Errorf("jobs: %d\n%s", w.Code, page)
	}
	w = do(t, h, "GET", "/queue/jobs?arg.tenant=t2", nil, nil)
	page = w.Body.String()
	if strings.Contains(page, "db:queue:{jobs:t1}") {
		t.Errorf("the filter tenant=t2 shows t1")
	}
	if cell(page, "data-id", "dead1", "attempts") != "2" || cell(page, "data-id", "dead1", "last_error") != "handler: boom &lt;i&gt;" {
		t.Errorf("dead1: attempts %q, last error %q", cell(page, "data-id", "dead1", "attempts"), cell(page, "data-id", "dead1", "last_error"))
	}
	w = do(t, h, "GET", "/queue/jobs?arg.tenant=t1", nil, nil)
	page = w.Body.String()
	if !strings.Contains(page, `data-id="`+f.expiredID+`" data-state="in_flight"`) || !strings.Contains(page, "lease expired") {
		t.Errorf("jobs t1: the expired lease is not shown")
	}
	for _, id := range []string{"j3", "j4", "j5"} {
		if !strings.Contains(page, `data-id="`+id+`" data-state="ready"`) {
			t.Errorf("jobs t1: ready %s missing", id)
		}
	}
	escaped := []string{`&#34;id&#34;: &#34;&lt;script&gt;alert(\&#34;id\&#34;)&lt;/script&gt;&#34;`, `&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;`}
	for _, e := range escaped {
		if !strings.Contains(page, e) {
			t.Errorf("jobs t1: the hostile payload is not shown escaped as %s", e)
		}
	}
	hostile(t, page)
	if !strings.Contains(page, "Read-only") || strings.Contains(page, "/confirm?") {
		t.Errorf("read-only page offers writes")
	}
	w = do(t, h, "GET", "/queue/edges?arg.a=x", nil, nil)
	page = w.Body.String()
	if !strings.Contains(page, `&#34;&lt;b&gt;raw&lt;/b&gt;\xff&#34;`) || !strings.Contains(page, "does not decode") {
		t.Errorf("edges: the raw dead letter is not shown quoted with its error\n%s", page)
	}
	hostile(t, page)
	w = do(t, h, "GET", "/cache/out?arg.node=n2", nil, nil)
	if page = w.Body.String(); !strings.Contains(page, `<span id="ttl">none</span>`) || !strings.Contains(page, "&#34;n2&#34;") {
		t.Errorf("out n2: %s", page)
	}
	w = do(t, h, "GET", "/cache/out?arg.node=n1", nil, nil)
	if page = w.Body.String(); strings.Contains(page, `<span id="ttl">none</span>`) || !strings.Contains(page, `<span id="ttl">59m`) {
		t.Errorf("out n1: no TTL shown")
	}
	w = do(t, h, "GET", "/cache/kv?arg.k=a+b", nil, nil)
	if page = w.Body.String(); !strings.Contains(page, "&lt;/pre&gt;&lt;img") {
		t.Errorf("kv: the value is not shown escaped")
	}
	hostile(t, page)
	for path, code := range map[string]int{"/queue/nope": 404, "/cache/jobs": 404, "/queue/spread?arg.x=1": 200, "/queue/jobs?arg.nope=1": 200} {
		if w := do(t, h, "GET", path, nil, nil); w.Code != code {
			t.Errorf("%s: %d, want %d", path, w.Code, code)
		}
	}
	if w := do(t, h, "GET", "/queue/jobs?arg.tenant=t1", nil, nil); w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers missing: %v", w.Header())
	}
	checkLogs(t, logs)
}

// hostile fails when a payload's markup reached the page unescaped.
func hostile(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"<script>alert", "<img src=x", "<b>raw", "<i>"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
}

func TestWrites(t *testing.T) {
	f := seed(t, startRedis(t))
	ctx := context.Background()

	// Read-only: no button, and the confirmation page and the POST are
	// refused even with a valid token.
	ro, logs := newServer(t, f, dashboard.Config{})
	page := do(t, ro.Handler(), "GET", "/", nil, nil).Body.String()
	if strings.Contains(page, `name="csrf"`) {
		t.Errorf("a read-only page without login carries a write form")
	}
	rw, rwLogs := newServer(t, f, dashboard.Config{AllowWrites: true})
	page = do(t, rw.Handler(), "GET", "/queue/jobs?arg.tenant=t2", nil, nil).Body.String()
	if !strings.Contains(page, `/confirm?`) {
		t.Fatalf("no write buttons with -allow-writes")
	}
	confirm := do(t, rw.Handler(), "GET", "/confirm?op=requeue&kind=queue&name=jobs&arg.tenant=t2", nil, nil)
	if confirm.Code != 200 {
		t.Fatalf("confirm: %d %s", confirm.Code, confirm.Body)
	}
	csrf := csrfOf(t, confirm.Body.String())
	form := func(extra ...string) url.Values {
		v := url.Values{"op": {"requeue"}, "kind": {"queue"}, "name": {"jobs"}, "arg.tenant": {"t2"}, "n": {"5"}, "confirm": {"yes"}, "csrf": {csrf}}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == "" {
				v.Del(extra[i])
			} else {
				v.Set(extra[i], extra[i+1])
			}
		}
		return v
	}
	origin := map[string]string{"Origin": "http://" + host}
	if w := do(t, ro.Handler(), "GET", "/confirm?op=requeue&kind=queue&name=jobs&arg.tenant=t2", nil, nil); w.Code != 403 {
		t.Errorf("read-only confirm: %d, want 403", w.Code)
	}
	if w := do(t, ro.Handler(), "POST", "/write", form(), origin); w.Code != 403 {
		t.Errorf("read-only write: %d, want 403", w.Code)
	}
	// A read-only server's own CSRF token (its log-out form carries one
	// when it requires a token) does not make a write either.
	const token = "ro-token-0123456789abc"
	roTok, _ := newServer(t, f, dashboard.Config{Token: token})
	bearer := map[string]string{"Authorization": "Bearer " + token, "Origin": "http://" + host}
	roCSRF := csrfOf(t, do(t, roTok.Handler(), "GET", "/", nil, bearer).Body.String())
	if w := do(t, roTok.Handler(), "POST", "/write", form("csrf", roCSRF), bearer); w.Code != 403 || !strings.Contains(w.Body.String(), "read-only") {
		t.Errorf("read-only write with its own CSRF token: %d, want 403", w.Code)
	}
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
		code int
	}{
		{"no CSRF token", form("csrf", ""), origin, 403},
		{"a wrong CSRF token", form("csrf", csrf[:len(csrf)-1]+"x"), origin, 403},
		{"another origin", form(), map[string]string{"Origin": "http://evil.example"}, 403},
		{"another port", form(), map[string]string{"Origin": "http://127.0.0.1:9999"}, 403},
		{"an opaque origin", form(), map[string]string{"Origin": "null", "Referer": "http://" + host + "/"}, 403},
		{"another referer", form(), map[string]string{"Referer": "http://evil.example/queue/jobs"}, 403},
		{"no origin nor referer", form(), nil, 403},
		{"not confirmed", form("confirm", ""), origin, 400},
		{"not one instance", form("arg.tenant", ""), origin, 400},
		{"an unknown op", form("op", "flush"), origin, 400},
		{"pause of an at-most-once queue", form("op", "pause", "name", "edges", "arg.a", "x"), origin, 400},
	}
	for _, c := range cases {
		if w := do(t, rw.Handler(), "POST", "/write", c.form, c.hdr); w.Code != c.code {
			t.Errorf("%s: %d, want %d: %s", c.name, w.Code, c.code, w.Body)
		}
	}
	st, err := f.jobsT2.Stats(ctx)
	if err != nil || st.Dead != 1 || st.Ready != 0 {
		t.Fatalf("refused writes changed Redis: %+v %v", st, err)
	}
	// The same-origin Referer (no Origin) and the token: requeued.
	w := do(t, rw.Handler(), "POST", "/write", form(), map[string]string{"Referer": "http://" + host + "/confirm?x"})
	if w.Code != 303 || !strings.Contains(w.Header().Get("Location"), "count=1&done=requeue") {
		t.Fatalf("requeue: %d %v %s", w.Code, w.Header(), w.Body)
	}
	st, err = f.jobsT2.Stats(ctx)
	if err != nil || st.Dead != 0 || st.Ready != 1 {
		t.Errorf("after requeue: %+v %v", st, err)
	}
	if page := do(t, rw.Handler(), "GET", w.Header().Get("Location"), nil, nil).Body.String(); !strings.Contains(page, "requeued 1 dead letter(s)") {
		t.Errorf("no outcome shown")
	}
	// Pause, then resume, of t1 (from behind a TLS proxy: the origin is
	// https).
	for _, op := range []string{"pause", "resume"} {
		w := do(t, rw.Handler(), "POST", "/write", form("op", op, "arg.tenant", "t1", "n", ""), map[string]string{"Origin": "https://" + host})
		st, err := f.jobsT1.Stats(ctx)
		if w.Code != 303 || err != nil || st.Paused != (op == "pause") {
			t.Errorf("%s: %d, paused %v %v", op, w.Code, st.Paused, err)
		}
	}
	// Reclaim and purge of the plain queue's dead letters.
	if w := do(t, rw.Handler(), "POST", "/write", form("op", "reclaim", "arg.tenant", "t1"), origin); w.Code != 303 || !strings.Contains(w.Header().Get("Location"), "count=1") {
		t.Errorf("reclaim: %d %v", w.Code, w.Header())
	}
	if w := do(t, rw.Handler(), "POST", "/write", form("op", "purge", "name", "edges", "arg.tenant", "", "arg.a", "x"), origin); w.Code != 303 || !strings.Contains(w.Header().Get("Location"), "count=1") {
		t.Errorf("purge: %d %v", w.Code, w.Header())
	}
	var dead int64
	f.admin(func(cl redis.UniversalClient) (err error) {
		dead, err = cl.Exists(ctx, "db:queue:e_x:dead").Result()
		return err
	})
	if dead != 0 {
		t.Errorf("purge left the dead letters")
	}
	checkLogs(t, logs)
	checkLogs(t, rwLogs)
}

func TestListenRefused(t *testing.T) {
	for _, c := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"127.0.0.2:0", "", true},
		{"[::1]:8080", "", true},
		{"localhost:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"[::]:8080", "", false},
		{"192.0.2.1:8080", "", false},
		{"192.0.2.1:8080", "0123456789abcdef", true},
		{"192.0.2.1:8080", "short", false},
		{"no-port", "", false},
	} {
		err := dashboard.CheckListen(c.addr, c.token)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, dashboard.ErrRefused)) {
			t.Errorf("CheckListen(%q, %q) = %v, want ok %v", c.addr, c.token, err, c.ok)
		}
		if _, err := dashboard.New(dashboard.Config{Inspector: nil, Listen: c.addr, Token: c.token}); err == nil {
			t.Errorf("New without an inspector")
		}
	}
}

func TestToken(t *testing.T) {
	f := seed(t, startRedis(t))
	const token = "s3cret-token-0123456789"
	// Configured as for a non-loopback -listen (192.0.2.1 is a
	// documentation address: nothing listens; the handler is served
	// directly).
	s, logs := newServer(t, f, dashboard.Config{Listen: "192.0.2.1:8080", Token: token, AllowWrites: true})
	h := s.Handler()
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": "Basic " + token}, {"Cookie": "storagegen_dashboard=" + token}} {
		w := do(t, h, "GET", "/queue/jobs?arg.tenant=t1", nil, hdr)
		if w.Code != 401 || strings.Contains(w.Body.String(), "j3") || !strings.Contains(w.Body.String(), `action="/login"`) {
			t.Errorf("%v: %d, want 401 and the login form", hdr, w.Code)
		}
	}
	if w := do(t, h, "POST", "/write", url.Values{"csrf": {"x"}}, map[string]string{"Origin": "http://" + host}); w.Code != 401 {
		t.Errorf("write without the token: %d", w.Code)
	}
	if w := do(t, h, "GET", "/static/style.css", nil, nil); w.Code != 200 {
		t.Errorf("static without the token: %d", w.Code)
	}
	if w := do(t, h, "GET", "/", nil, map[string]string{"Authorization": "Bearer " + token}); w.Code != 200 {
		t.Errorf("bearer: %d", w.Code)
	}
	origin := map[string]string{"Origin": "http://" + host}
	if w := do(t, h, "POST", "/login", url.Values{"token": {"wrong"}}, origin); w.Code != 401 || len(w.Result().Cookies()) != 0 {
		t.Errorf("wrong login: %d %v", w.Code, w.Result().Cookies())
	}
	if w := do(t, h, "POST", "/login", url.Values{"token": {token}}, map[string]string{"Origin": "http://evil.example"}); w.Code != 403 {
		t.Errorf("login from another origin: %d", w.Code)
	}
	w := do(t, h, "POST", "/login", url.Values{"token": {token}}, origin)
	cs := w.Result().Cookies()
	if w.Code != 303 || len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || strings.Contains(cs[0].Value, token) {
		t.Fatalf("login: %d %+v", w.Code, cs)
	}
	cookie := map[string]string{"Cookie": cs[0].Name + "=" + cs[0].Value}
	if w := do(t, h, "GET", "/queue/jobs?arg.tenant=t1", nil, cookie); w.Code != 200 || !strings.Contains(w.Body.String(), "j3") {
		t.Errorf("with the cookie: %d", w.Code)
	}
	// Hosts: on a non-loopback address, IP literals and -allow-host names.
	for hostHdr, code := range map[string]int{"192.0.2.1:8080": 200, "evil.example": 421, "localhost:8080": 421} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = hostHdr
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != code {
			t.Errorf("Host %s: %d, want %d", hostHdr, w.Code, code)
		}
	}
	checkLogs(t, logs)
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token reached the log")
	}
}

func TestHostHeader(t *testing.T) {
	f := seed(t, startRedis(t))
	s, _ := newServer(t, f, dashboard.Config{AllowHosts: []string{"Dash.Internal"}})
	for hostHdr, code := range map[string]int{
		"127.0.0.1:8080": 200, "localhost:8080": 200, "[::1]:8080": 200, "dash.internal": 200,
		"evil.example:8080": 421, "192.0.2.1:8080": 421, "": 421, "localhost.evil.example": 421,
	} {
		r := httptest.NewRequest("GET", "/static/live.js", nil)
		r.Host = hostHdr
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		if w.Code != code {
			t.Errorf("Host %q: %d, want %d", hostHdr, w.Code, code)
		}
	}
}

// TestNoExternalAssets: the templates and static files name no other
// origin, and the CSP allows none.
func TestNoExternalAssets(t *testing.T) {
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasPrefix(p, "templates") || strings.HasPrefix(p, "static")) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(`).Find(b); m != nil {
			t.Errorf("%s names an external resource: %s", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSampling: the sampling loop keeps a bounded ring and stops with its
// context.
func TestSampling(t *testing.T) {
	f := seed(t, startRedis(t))
	s, _ := newServer(t, f, dashboard.Config{Interval: 20 * time.Millisecond, Samples: 5})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	// Wait for twice as many samples as the ring keeps.
	var page string
	taken := regexp.MustCompile(`data-decl="jobs"[\s\S]*?data-taken="(\d+)"`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		page = do(t, s.Handler(), "GET", "/fragment/overview", nil, nil).Body.String()
		if m := taken.FindStringSubmatch(page); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 10 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	row := regexp.MustCompile(`data-decl="jobs"[\s\S]*?</tr>`).FindString(page)
	if n := strings.Count(row, "<rect"); n != 4 {
		t.Errorf("jobs chart: %d bars, want 4 (5 samples kept)", n)
	}
	if pts := regexp.MustCompile(`points="([^"]*)"`).FindStringSubmatch(row); pts == nil || len(strings.Fields(pts[1])) != 5 {
		t.Errorf("jobs chart: points %v, want 5", pts)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
