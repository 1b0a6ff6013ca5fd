package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dashboardRun runs the dashboard command until ctx ends, with env as its
// environment; ready gets the address it serves on.
func dashboardRun(t *testing.T, ctx context.Context, env map[string]string, ready func(string), args ...string) (int, string, string) {
	t.Helper()
	old := newDashboardEnv
	t.Cleanup(func() { newDashboardEnv = old })
	newDashboardEnv = func() (dashboardEnv, func()) {
		if ready == nil {
			ready = func(string) {}
		}
		return dashboardEnv{ctx: ctx, getenv: func(k string) string { return env[k] }, ready: ready}, func() {}
	}
	var out, errw strings.Builder
	code := run(append([]string{"dashboard"}, args...), &out, &errw)
	return code, out.String(), errw.String()
}

func TestDashboardCommand(t *testing.T) {
	// Refused before anything is read or bound: a non-loopback address
	// without a token, a short token, bad flags.
	for _, args := range [][]string{
		{"-listen", "0.0.0.0:0"},
		{"-listen", ":0"},
		{"-listen", "[::]:0"},
		{"-listen", "0.0.0.0:0", "-token", "short"},
		{"-interval", "10ms"},
		{"extra"},
	} {
		code, _, errs := dashboardRun(t, context.Background(), nil, nil, append([]string{"-schema", "/nonexistent"}, args...)...)
		if code != 2 || errs == "" {
			t.Errorf("%v: exit %d, %q; want 2", args, code, errs)
		}
		if len(args) == 2 && args[0] == "-listen" && !strings.Contains(errs, "not a loopback address") {
			t.Errorf("%v: %q does not say why", args, errs)
		}
	}

	srv, schema, cl := inspectFixture(t)
	if err := cl.LPush(context.Background(), "ci:queue:e_x", `{"id":"<b>SECRET-e</b>"}`, `{"id":"b"}`).Err(); err != nil {
		t.Fatal(err)
	}

	// Served on loopback, the token from the environment: the page needs
	// it; REDIS_URL names the server.
	const token = "cmd-token-0123456789"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan struct{})
	var code int
	var out, errs string
	go func() {
		defer close(done)
		code, out, errs = dashboardRun(t, ctx, map[string]string{"REDIS_URL": srv.URL(0), "STORAGEGEN_DASHBOARD_TOKEN": token},
			func(a string) { addr <- a }, "-schema", schema, "-listen", "127.0.0.1:0")
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-done:
		t.Fatalf("the dashboard stopped: %d %s", code, errs)
	}
	get := func(path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, body := get("/", ""); c != 401 || strings.Contains(body, "edges") {
		t.Errorf("without the token: %d", c)
	}
	if c, body := get("/", token); c != 200 || !strings.Contains(body, `data-decl="edges"`) {
		t.Errorf("overview: %d %s", c, body)
	}
	if c, body := get("/queue/edges?arg.a=x", token); c != 200 || !strings.Contains(body, "&lt;b&gt;SECRET-e&lt;/b&gt;") {
		t.Errorf("edges x: %d", c)
	}
	// /metrics: the token as a bearer header, the last sample's counts.
	if c, _ := get("/metrics", ""); c != 401 {
		t.Errorf("/metrics without the token: %d", c)
	}
	if c, body := get("/metrics", token); c != 200 || !strings.Contains(body, `storagegen_queue_items{`) || !strings.Contains(body, `storagegen_name="edges",storagegen_state="ready"} 2`) {
		t.Errorf("/metrics: %d %s", c, body)
	}
	cancel()
	<-done
	if code != 0 || !strings.Contains(out, "read-only, token required") {
		t.Errorf("exit %d, %q", code, out)
	}
	if strings.Contains(errs, "SECRET") || strings.Contains(errs, token) || !strings.Contains(errs, "route=") {
		t.Errorf("the log: %s", errs)
	}
}
