package inspect_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/storagegen/storagegen/internal/inspect"
	"github.com/storagegen/storagegen/internal/redistest"
	"github.com/storagegen/storagegen/runtime"
)

// TestInspectMetaKnown: the hash Q:meta that a Go producer with an
// OpenTelemetry provider writes beside an at-least-once queue's items is
// a key of the queue, not an unknown key (the dashboard counts those in
// storagegen.dashboard.unknown_keys and lists them).
func TestInspectMetaKnown(t *testing.T) {
	url, _, stop, err := redistest.ForTopology(redistest.TopologySingle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	ds, err := runtime.New(runtime.Options{URL: url, Logger: slog.New(slog.DiscardHandler), MeterProvider: mp})
	must(t, err)
	defer ds.Close()
	qd, _ := decls(load(t))
	must(t, runtime.NewReliableQueue[Msg](ds, qd["jobs"], "t1").Push(ctx, Msg{"j", 1}))
	var n int64
	must(t, ds.Do("check", "", func(cl redis.UniversalClient) (err error) {
		n, err = cl.Exists(ctx, "it:queue:{jobs:t1}:meta").Result()
		return err
	}))
	if n != 1 {
		t.Fatal("the push wrote no meta: the test sees nothing")
	}
	ov, err := inspect.New(load(t), ds, inspect.Options{}).Overview(ctx, 100)
	must(t, err)
	if ov.Unknown.Count != 0 {
		t.Errorf("unknown keys %d %q; want none (Q:meta is the queue's)", ov.Unknown.Count, ov.Unknown.Keys)
	}
	for _, s := range ov.Decls {
		if s.Decl.Name == "jobs" && (s.Instances != 1 || s.Queue.Ready != 1) {
			t.Errorf("jobs: %d instances, %d ready; want 1 and 1", s.Instances, s.Queue.Ready)
		}
	}
}
