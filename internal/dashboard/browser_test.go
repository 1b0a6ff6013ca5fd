package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/storagegen/storagegen/internal/dashboard"
)

// chromium returns the browser the browser test drives: $STORAGEGEN_CHROMIUM,
// else Debian's /usr/bin/chromium (scripts/test.sh installs it). Without
// one the test is skipped, unless CI is set: then it fails.
func chromium(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("STORAGEGEN_CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no browser at %s (apt-get install chromium, or set STORAGEGEN_CHROMIUM): %v", bin, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// serve serves s on a free loopback port until the test ends, with its
// sampling loop, and returns its base URL.
func serve(t *testing.T, s *dashboard.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { hs.Serve(ln); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		hs.Shutdown(sctx)
		for range 2 {
			<-done
		}
	})
	return "http://" + ln.Addr().String()
}

// TestBrowser drives headless Chromium through the dashboard over a
// seeded Redis: the numbers and decoded payloads on the pages are the
// seeded state, hostile payloads stay text, a requeue clicked through its
// confirmation reaches Redis, a cross-origin write without the CSRF token
// and a request without the token are refused. Screenshots go to the
// test's temp dir.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	f := seed(t, startRedis(t))
	srv, logs := newServer(t, f, dashboard.Config{AllowWrites: true, Interval: 300 * time.Millisecond, Samples: 40})
	base := serve(t, srv)
	shots := t.TempDir()

	// The whole test is bounded: the browser, every page and every wait.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bctx := browser(t, ctx, bin)

	// A dialog would mean a payload ran as script: record it and close it.
	// (Subscribed here, before any other use of the context: that starts
	// the browser.)
	dialogs := make(chan string, 8)
	dialogEvents := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogEvents {
			if err != nil {
				return
			}
			dialogs <- ev.Message
			chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each step is bounded on its own too (a missing element fails in
	// 30s, not at the test's end). The browser runs since the Events call.
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(bctx, 30*time.Second) }
	do := func(actions ...chromedp.Action[chromedp.Void]) error {
		sctx, scancel := step()
		defer scancel()
		return chromedp.Do(sctx, actions...)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := runStep(step, chromedp.Text(chromedp.CSS(sel)))
		must(err)
		return strings.TrimSpace(s)
	}
	eval := func(js string) string {
		t.Helper()
		s, err := runStep(step, chromedp.Evaluate[string](js))
		must(err)
		return s
	}
	shot := func(name string) []byte {
		t.Helper()
		buf, err := runStep(step, chromedp.FullScreenshot(100))
		must(err)
		must(os.WriteFile(filepath.Join(shots, name), buf, 0o644))
		return buf
	}
	nav := func(path, wait string) {
		t.Helper()
		must(do(chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(wait))))
	}

	// The overview: every number is the seeded state.
	nav("/", `tr[data-decl="jobs"] td[data-col="ready"]`)
	want := map[string]map[string]string{
		"jobs":   {"instances": "2", "ready": "3", "in_flight": "2", "expired": "1", "delayed": "1", "dead": "1"},
		"edges":  {"instances": "1", "ready": "2", "dead": "1"},
		"spread": {"instances": "1", "ready": "3", "dead": "0"},
		"out":    {"instances": "2", "entries": "2", "no_ttl": "1"},
		"kv":     {"entries": "1", "no_ttl": "1"},
	}
	for decl, cols := range want {
		for col, v := range cols {
			if got := text(`tr[data-decl="` + decl + `"] td[data-col="` + col + `"]`); got != v {
				t.Errorf("overview %s %s = %q, want %q", decl, col, got, v)
			}
		}
	}
	// The table refreshes in place (the script): the time it is of
	// changes and the charts gain samples, without a navigation.
	must(do(chromedp.Evaluate[chromedp.Void](`window.__kept = 1`)))
	first := text("#asof")
	deadline := time.Now().Add(30 * time.Second)
	bars := func() int {
		n, err := runStep(step, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-decl="jobs"] svg.flow rect').length`))
		must(err)
		return n
	}
	for time.Now().Before(deadline) && (text("#asof") == first || bars() < 3) {
		time.Sleep(200 * time.Millisecond)
	}
	if text("#asof") == first || eval(`String(window.__kept)`) != "1" {
		t.Errorf("the overview did not refresh in place")
	}
	shot("overview.png")

	// jobs t1: its ready items, decoded; the in-flight item with the
	// expired lease; the hostile payload is text.
	nav("/queue/jobs?arg.tenant=t1", `tr[data-id="j5"] pre.payload`)
	if got := text(`tr[data-id="j5"] pre.payload`); !strings.Contains(got, `"id": "<script>alert(\"id\")</script>"`) || !strings.Contains(got, `"note": "`+hostileNote+`"`) {
		t.Errorf("j5 payload on the page: %q", got)
	}
	if got := text(`tr[data-id="j3"] pre.payload`); !strings.Contains(got, `"id": "j3"`) || !strings.Contains(got, `"n": 3`) {
		t.Errorf("j3 payload on the page: %q", got)
	}
	if got := text(`tr[data-id="` + f.expiredID + `"]`); !strings.Contains(got, "in_flight") || !strings.Contains(got, "lease expired") {
		t.Errorf("the expired lease: %q", got)
	}
	if n := eval(`String(document.querySelectorAll("main script, main img, main iframe").length)`); n != "0" {
		t.Errorf("a payload became %s element(s)", n)
	}
	shot("jobs-t1.png")

	// jobs t2: the dead letter, then requeue it through the confirmation.
	nav("/queue/jobs?arg.tenant=t2", `tr[data-id="dead1"]`)
	if a, e := text(`tr[data-id="dead1"] td[data-col="attempts"]`), text(`tr[data-id="dead1"] td[data-col="last_error"]`); a != "2" || e != "handler: boom <i>" {
		t.Errorf("dead1: attempts %q, last error %q", a, e)
	}
	must(do(chromedp.Click(chromedp.CSS(`a[data-op="requeue"]`)), chromedp.WaitVisible(chromedp.ID("confirm"))))
	if got := text("main"); !strings.Contains(got, "move up to N of the oldest dead letters back to the queue") || !strings.Contains(got, "tenant=t2") {
		t.Errorf("the confirmation page: %q", got)
	}
	if st, err := f.jobsT2.Stats(ctx); err != nil || st.Dead != 1 {
		t.Fatalf("the confirmation page wrote: %+v %v", st, err)
	}
	shot("confirm.png")
	must(do(chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("done"))))
	if got := text("#done"); got != "requeued 1 dead letter(s)" {
		t.Errorf("after requeue: %q", got)
	}
	if st, err := f.jobsT2.Stats(ctx); err != nil || st.Dead != 0 || st.Ready != 1 {
		t.Errorf("Redis after requeue: %+v %v", st, err)
	}

	// A page of another origin (another port) posts a write with every
	// field but the CSRF token: refused, and Redis unchanged.
	evil := http.NewServeMux()
	evil.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/write">
<input type="hidden" name="op" value="purge"><input type="hidden" name="kind" value="queue">
<input type="hidden" name="name" value="jobs"><input type="hidden" name="arg.tenant" value="t2">
<input type="hidden" name="confirm" value="yes"><button id="go">win a prize</button></form>`, base)
	})
	evilLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	evilSrv := &http.Server{Handler: evil, ReadHeaderTimeout: 10 * time.Second}
	go evilSrv.Serve(evilLn)
	defer evilSrv.Close()
	must(do(chromedp.Navigate("http://"+evilLn.Addr().String()+"/"), chromedp.WaitVisible(chromedp.ID("go")),
		chromedp.Click(chromedp.ID("go")), chromedp.WaitVisible(chromedp.ID("error"))))
	if got := text("#error"); !strings.Contains(got, "refused") {
		t.Errorf("the cross-origin write: %q", got)
	}
	if st, err := f.jobsT2.Stats(ctx); err != nil || st.Ready != 1 {
		t.Errorf("the cross-origin write changed Redis: %+v %v", st, err)
	}
	// The same write from the dashboard's own origin without the token.
	nav("/queue/jobs?arg.tenant=t2", "#instances")
	st, err := runStep(step, chromedp.Evaluate[string](`fetch("/write", {method: "POST", body: new URLSearchParams({op: "purge", kind: "queue", name: "jobs", "arg.tenant": "t2", confirm: "yes"})}).then(r => String(r.status))`, chromedp.EvalAwaitPromise))
	must(err)
	if st != "403" {
		t.Errorf("a same-origin write without the CSRF token: %s, want 403", st)
	}

	// Without JavaScript the pages work the same (the overview refreshes
	// with a meta refresh).
	_, err = chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
	must(err)
	nav("/", `tr[data-decl="jobs"] td[data-col="dead"]`)
	if got := text(`tr[data-decl="jobs"] td[data-col="ready"]`); got != "4" {
		t.Errorf("without script, jobs ready = %q, want 4 (3 and the requeued one)", got)
	}
	_, err = chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
	must(err)

	// A dashboard that requires its token (as on a non-loopback address):
	// without it, the login form and none of the data; a wrong token is
	// refused; the right one sets an HttpOnly cookie that scripts cannot
	// read.
	const token = "browser-token-0123456789"
	if _, err := dashboard.New(dashboard.Config{Inspector: f.in, Listen: "0.0.0.0:8080"}); !errors.Is(err, dashboard.ErrRefused) {
		t.Errorf("a non-loopback dashboard without a token: %v", err)
	}
	locked, lockedLogs := newServer(t, f, dashboard.Config{Listen: "192.0.2.1:8080", Token: token, AllowWrites: true, Interval: time.Hour})
	lbase := serve(t, locked)
	must(do(chromedp.Navigate(lbase+"/queue/jobs?arg.tenant=t1"), chromedp.WaitVisible(chromedp.ID("token"))))
	if got := text("main"); strings.Contains(got, "j3") || !strings.Contains(got, "requires its token") {
		t.Errorf("without the token: %q", got)
	}
	must(do(chromedp.SendKeys(chromedp.ID("token"), "wrong-token-0123456789"), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("error"))))
	if got := text("#error"); got != "wrong token" {
		t.Errorf("a wrong token: %q", got)
	}
	must(do(chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-decl="jobs"] td[data-col="ready"]`))))
	if got := text(`tr[data-decl="jobs"] td[data-col="ready"]`); got != "4" {
		t.Errorf("logged in, jobs ready = %q, want 4", got)
	}
	cookies, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{lbase}})
	must(err)
	if len(cookies.Cookies) != 1 || !cookies.Cookies[0].HTTPOnly || cookies.Cookies[0].SameSite != network.CookieSameSiteStrict || strings.Contains(cookies.Cookies[0].Value, token) {
		t.Errorf("the session cookie: %+v", cookies.Cookies)
	}
	if c := eval(`document.cookie`); c != "" {
		t.Errorf("a script reads the cookie: %q", c)
	}
	shot("logged-in.png")

	select {
	case m := <-dialogs:
		t.Errorf("a dialog opened (a payload ran as script?): %q", m)
	default:
	}
	checkLogs(t, logs)
	checkLogs(t, lockedLogs)
	t.Logf("screenshots in %s", shots)
}

// runStep runs a in a context step makes.
func runStep[T any](step func() (context.Context, context.CancelFunc), a chromedp.Action[T]) (T, error) {
	ctx, cancel := step()
	defer cancel()
	return chromedp.Run(ctx, a)
}

// browser starts headless Chromium for the test, ended with ctx or the
// test.
func browser(t *testing.T, ctx context.Context, bin string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1300, 900),
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run its sandbox as root
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

// TestREADMEScreenshot writes the README's picture of the overview when
// STORAGEGEN_DASHBOARD_SCREENSHOT names the file (it is skipped
// otherwise):
//
//	STORAGEGEN_DASHBOARD_SCREENSHOT=$PWD/docs/dashboard.png go test -run TestREADMEScreenshot ./internal/dashboard
//
// Over the seeded state, a producer and a consumer run for a few seconds
// so that the charts have something to show.
func TestREADMEScreenshot(t *testing.T) {
	out := os.Getenv("STORAGEGEN_DASHBOARD_SCREENSHOT")
	if out == "" {
		t.Skip("STORAGEGEN_DASHBOARD_SCREENSHOT is not set")
	}
	bin := chromium(t)
	f := seed(t, startRedis(t))
	srv, _ := newServer(t, f, dashboard.Config{Interval: 100 * time.Millisecond, Samples: 60})
	base := serve(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// 60 rounds of 100ms: pushes rise then fall; receives lag behind.
	for i := range 60 {
		push := 6 - abs(30-i)/5
		for j := range max(push, 0) {
			if err := f.jobsT1.Push(ctx, Msg{ID: fmt.Sprint("p", i, "-", j), N: j}); err != nil {
				t.Fatal(err)
			}
		}
		if i%2 == 0 {
			ds, err := f.jobsT1.ReceiveMany(ctx, 3, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if err := d.Ack(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	bctx := browser(t, ctx, bin)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`tr[data-decl="jobs"]`))); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(buf))
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
