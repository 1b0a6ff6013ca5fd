package dashboard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/storagegen/storagegen/gen"
	"github.com/storagegen/storagegen/internal/dashboard"
	"github.com/storagegen/storagegen/internal/inspect"
	"github.com/storagegen/storagegen/runtime"
)

// scrape GETs path from base as Prometheus would, with tok as the bearer
// token when set; it returns the status, the headers and the body.
func scrape(t *testing.T, base, path, tok, host string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// families parses the Prometheus text format.
func families(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the /metrics text does not parse: %v\n%s", err, body)
	}
	return fams
}

// series returns the value of each series of family name as
// "label=value,..." of the labels in keys → value.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, keys ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		var id []string
		for _, k := range keys {
			id = append(id, k+"="+labels[k])
		}
		var v float64
		switch {
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		out[strings.Join(id, ",")] = v
	}
	return out
}

// TestMetrics scrapes /metrics over HTTP and checks every gauge against
// the seeded state; the DataStore given the same MeterProvider has its
// calls in the same registry.
func TestMetrics(t *testing.T) {
	url := startRedis(t)
	f := seed(t, url)
	mx, err := dashboard.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mx.Shutdown(context.Background()) })
	s, logs := newServer(t, f, dashboard.Config{Metrics: mx})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)

	// Before the first sample: no counts, and no walk of Redis either.
	code, hdr, body := scrape(t, hs.URL, "/metrics", "", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s\n%s", code, hdr.Get("Content-Type"), body)
	}
	if fams := families(t, body); fams["storagegen_queue_items"] != nil || fams["storagegen_dashboard_samples_total"] != nil {
		t.Errorf("counts before any sample:\n%s", body)
	}

	// The overview takes the first sample.
	if code, _, _ := scrape(t, hs.URL, "/", "", ""); code != 200 {
		t.Fatalf("overview: %d", code)
	}
	// The DataStore's own calls, through the same provider.
	ds, err := runtime.New(runtime.Options{URL: url, Logger: slog.New(slog.DiscardHandler), MeterProvider: mx.MeterProvider()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	ctx := context.Background()
	if _, _, err := runtime.NewCache[Msg](ds, outDecl(t), "n1").Get(ctx); err != nil {
		t.Fatal(err)
	}

	code, _, body = scrape(t, hs.URL, "/metrics?probe=n1", "", "")
	if code != 200 {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	fams := families(t, body)
	check := func(name string, keys []string, want map[string]float64) {
		t.Helper()
		got := series(t, fams, name, keys...)
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s{%s} = %v (present %v), want %v", name, k, g, ok, v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d series, want %d: %v", name, len(got), len(want), got)
		}
	}
	qk := []string{"storagegen_kind", "storagegen_name", "storagegen_state", "messaging_system", "messaging_destination_name"}
	check("storagegen_queue_items", qk, map[string]float64{
		"storagegen_kind=reliable_queue,storagegen_name=jobs,storagegen_state=ready,messaging_system=storagegen,messaging_destination_name=jobs":     3,
		"storagegen_kind=reliable_queue,storagegen_name=jobs,storagegen_state=in_flight,messaging_system=storagegen,messaging_destination_name=jobs": 2,
		"storagegen_kind=reliable_queue,storagegen_name=jobs,storagegen_state=delayed,messaging_system=storagegen,messaging_destination_name=jobs":   1,
		"storagegen_kind=reliable_queue,storagegen_name=jobs,storagegen_state=dead,messaging_system=storagegen,messaging_destination_name=jobs":      1,
		"storagegen_kind=queue,storagegen_name=edges,storagegen_state=ready,messaging_system=storagegen,messaging_destination_name=edges":            2,
		"storagegen_kind=queue,storagegen_name=edges,storagegen_state=dead,messaging_system=storagegen,messaging_destination_name=edges":             1,
		"storagegen_kind=queue,storagegen_name=spread,storagegen_state=ready,messaging_system=storagegen,messaging_destination_name=spread":          3,
		"storagegen_kind=queue,storagegen_name=spread,storagegen_state=dead,messaging_system=storagegen,messaging_destination_name=spread":           0,
	})
	dk := []string{"storagegen_kind", "storagegen_name"}
	check("storagegen_cache_entries", dk, map[string]float64{
		"storagegen_kind=cache,storagegen_name=out": 2,
		"storagegen_kind=cache,storagegen_name=kv":  1,
	})
	check("storagegen_instances", dk, map[string]float64{
		"storagegen_kind=reliable_queue,storagegen_name=jobs": 2,
		"storagegen_kind=queue,storagegen_name=edges":         1,
		"storagegen_kind=queue,storagegen_name=spread":        1,
		"storagegen_kind=cache,storagegen_name=out":           2,
		"storagegen_kind=cache,storagegen_name=kv":            1,
	})
	check("storagegen_dashboard_sample_capped", nil, map[string]float64{"": 0})
	check("storagegen_dashboard_unknown_keys", nil, map[string]float64{"": 0})
	check("storagegen_dashboard_samples_total", []string{"outcome"}, map[string]float64{"outcome=ok": 1})
	if d := series(t, fams, "storagegen_dashboard_sample_duration_seconds")[""]; d <= 0 {
		t.Errorf("sample duration %v, want > 0", d)
	}
	// The runtime's histogram, from the DataStore given the provider: one
	// get of out, a hit.
	check("storagegen_operation_duration_seconds", []string{"storagegen_kind", "storagegen_name", "storagegen_operation", "outcome"},
		map[string]float64{"storagegen_kind=cache,storagegen_name=out,storagegen_operation=get,outcome=hit": 1})
	for _, bad := range []string{"db:", "n1", "tenant", secretMark} {
		if strings.Contains(body, bad) {
			t.Errorf("/metrics holds %q (a key, an argument or a payload)", bad)
		}
	}
	checkLogs(t, logs)
	if l := logs.String(); !strings.Contains(l, `route="GET /metrics"`) || strings.Contains(l, "probe") {
		t.Errorf("the log of /metrics:\n%s", l)
	}
}

// outDecl is the declaration of testSchema's cache out.
func outDecl(t *testing.T) *runtime.CacheDecl {
	t.Helper()
	m, err := gen.Load("schema.yaml", []byte(testSchema), gen.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Caches {
		if c.Name == "out" {
			return &runtime.CacheDecl{Name: c.Name, Prefix: m.Prefix, Key: c.Key, Layout: c.Layout, TTL: c.TTL}
		}
	}
	t.Fatal("no cache out in testSchema")
	return nil
}

// TestMetricsCapped: a walk that stops at MaxInstances says so, and the
// counts it exports are those it read.
func TestMetricsCapped(t *testing.T) {
	url := startRedis(t)
	f := seed(t, url)
	m, err := gen.Load("schema.yaml", []byte(testSchema), gen.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.in = inspect.New(m, f.ds, inspect.Options{MaxInstances: 1})
	s, _ := newServer(t, f, dashboard.Config{})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	if code, _, _ := scrape(t, hs.URL, "/", "", ""); code != 200 {
		t.Fatalf("overview: %d", code)
	}
	_, _, body := scrape(t, hs.URL, "/metrics", "", "")
	fams := families(t, body)
	if c := series(t, fams, "storagegen_dashboard_sample_capped")[""]; c != 1 {
		t.Errorf("capped = %v, want 1\n%s", c, body)
	}
	if n := series(t, fams, "storagegen_instances", "storagegen_name")["storagegen_name=jobs"]; n != 1 {
		t.Errorf("jobs instances = %v, want 1 (the cap)", n)
	}
}

// TestMetricsSecurity: /metrics follows the dashboard's rules: the Host
// check, the token as a bearer header (a plain 401 for a scraper, no
// login page), GET only.
func TestMetricsSecurity(t *testing.T) {
	f := seed(t, startRedis(t))
	const token = "metrics-token-0123456789"
	s, logs := newServer(t, f, dashboard.Config{Token: token})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)

	code, hdr, body := scrape(t, hs.URL, "/metrics", "", "")
	if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") || strings.Contains(body, "<html") || strings.Contains(body, "storagegen_") {
		t.Errorf("without the token: %d %q\n%s", code, hdr.Get("WWW-Authenticate"), body)
	}
	if code, _, body := scrape(t, hs.URL, "/metrics", "wrong-token-0123456789", ""); code != 401 || strings.Contains(body, "storagegen_") {
		t.Errorf("a wrong token: %d", code)
	}
	if code, _, body := scrape(t, hs.URL, "/metrics", token, ""); code != 200 {
		t.Errorf("with the token: %d\n%s", code, body)
	}
	// DNS rebinding: a name that is not this server's.
	if code, _, body := scrape(t, hs.URL, "/metrics", token, "evil.example:8080"); code != http.StatusMisdirectedRequest || strings.Contains(body, "storagegen_") {
		t.Errorf("Host evil.example: %d", code)
	}
	for _, method := range []string{"POST", "PUT", "DELETE"} {
		w := do(t, s.Handler(), method, "/metrics", nil, map[string]string{"Authorization": "Bearer " + token})
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /metrics: %d, want 405", method, w.Code)
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log holds the token")
	}
}
