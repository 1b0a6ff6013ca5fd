package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/storagegen/storagegen/runtime"
)

// The cost of OpenTelemetry: the same typed workload run on a DataStore
// with an SDK MeterProvider and TracerProvider (the "typed" column) and
// on one without providers (the "plain" column, the baseline), so that
// typed ÷ plain is the throughput kept with telemetry on. Each side opens
// its DataStore before the timed part and closes it after, so both start
// with an empty pool. The providers do the work a production setup does,
// minus the network: every measurement aggregated by the SDK (a
// ManualReader: collections are a scraper's cost, not the caller's),
// every span sampled (AlwaysSample) and handed to a BatchSpanProcessor
// whose exporter encodes it as JSON into io.Discard. The workloads only
// set Options, so whatever the runtime records or traces is measured.

// Which providers a side's DataStore has.
type providers uint8

const (
	noProviders     providers = iota
	meterOnly                 // a MeterProvider
	meterAndTracer            // a MeterProvider and a TracerProvider sampling every span
	meterAndSampled           // a MeterProvider and a TracerProvider sampling 1% of traces
)

// telemetrySide runs body on a DataStore of its own, with the providers
// which says.
func telemetrySide(which providers, body func(ctx context.Context, e *env, ds *runtime.DataStore, m *meter) error) sideFunc {
	return func(ctx context.Context, e *env, m *meter) (err error) {
		opts := typedOptions(e.cfg)
		var reader *sdkmetric.ManualReader
		if which != noProviders {
			reader = sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer func() { err = errors.Join(err, mp.Shutdown(context.Background())) }()
			opts.MeterProvider = mp
		}
		if which == meterAndTracer || which == meterAndSampled {
			exp, err := stdouttrace.New(stdouttrace.WithWriter(io.Discard))
			if err != nil {
				return err
			}
			sampler := sdktrace.AlwaysSample()
			if which == meterAndSampled {
				// What production tracing of a hot path looks like: a
				// root span is sampled at 1%, a child follows its parent.
				sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(exp))
			defer func() { err = errors.Join(err, tp.Shutdown(context.Background())) }()
			opts.TracerProvider = tp
		}
		ds, err := runtime.New(opts)
		if err != nil {
			return err
		}
		defer ds.Close()
		if err := body(ctx, e, ds, m); err != nil || reader == nil {
			return err
		}
		return checkRecorded(ctx, reader, e.cfg.n)
	}
}

// checkRecorded fails unless the DataStore recorded at least n calls
// (after the timed part): a side that measured nothing would pass for
// free telemetry.
func checkRecorded(ctx context.Context, reader *sdkmetric.ManualReader, n int) error {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	var calls uint64
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if h, ok := mt.Data.(metricdata.Histogram[float64]); ok && mt.Name == "storagegen.operation.duration" {
				for _, dp := range h.DataPoints {
					calls += dp.Count
				}
			}
		}
	}
	if calls < uint64(n) {
		return fmt.Errorf("the MeterProvider recorded %d calls, want at least %d", calls, n)
	}
	return nil
}

// otelPushGet is a coalesced Push and a Get of a key set beforehand per
// call, from g goroutines; an item is one pair.
func otelPushGet(g int) func(ctx context.Context, e *env, ds *runtime.DataStore, m *meter) error {
	return func(ctx context.Context, e *env, ds *runtime.DataStore, m *meter) error {
		q := runtime.NewQueue[message](ds, queueDecl, "node_extract", "node_transform")
		cache := func(i int) runtime.Cache[message] {
			return runtime.NewCache[message](ds, cacheDecl, "node_transform", i)
		}
		if err := typedFill(ctx, e, func(ctx context.Context, ms ...message) error {
			for _, v := range ms {
				if err := cache(int(v.Seq)).Set(ctx, v); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			if err := q.Push(ctx, e.item(i)); err != nil {
				return 0, err
			}
			_, ok, err := cache(i).Get(ctx)
			return 1, wantValue(ok, err)
		})
	}
}

// otelReliable is an at-least-once Push, Receive and Ack per call, from g
// goroutines; an item is one pushed and acked.
func otelReliable(g int) func(ctx context.Context, e *env, ds *runtime.DataStore, m *meter) error {
	return func(ctx context.Context, e *env, ds *runtime.DataStore, m *meter) error {
		q := runtime.NewReliableQueue[message](ds, queueDecl, "node_extract", "otel")
		return m.calls(ctx, g, e.cfg.n, func(ctx context.Context, i int) (int, error) {
			if err := q.Push(ctx, e.item(i)); err != nil {
				return 0, err
			}
			// Every goroutine pushes before it receives, so an item is
			// there for each Receive; another goroutine's may be taken.
			d, ok, err := q.Receive(ctx, waitTimeout)
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, fmt.Errorf("receive: nothing within %v", waitTimeout)
			}
			return 1, d.Ack(ctx)
		})
	}
}

// telemetryWorkloads are the pairs: with providers vs without. The
// -metrics pairs have a MeterProvider only, the -sampled pairs also a
// TracerProvider sampling 1% of traces, the others one sampling every span.
func telemetryWorkloads(c int) []workload {
	gs := fmt.Sprintf("%d goroutines", c)
	var ws []workload
	for _, v := range []struct {
		suffix, what string
		which        providers
	}{
		{"", "OpenTelemetry meter and tracer (every span)", meterAndTracer},
		{"-sampled", "OpenTelemetry meter and tracer (1% of traces)", meterAndSampled},
		{"-metrics", "an OpenTelemetry meter", meterOnly},
	} {
		ws = append(ws,
			workload{id: "otel-pushget" + v.suffix, name: "Push+Get, " + gs + ", with " + v.what + " vs without", perCall: true,
				typed: telemetrySide(v.which, otelPushGet(c)), plain: telemetrySide(noProviders, otelPushGet(c))},
			workload{id: "otel-reliable" + v.suffix, name: "at-least-once Push+Receive+Ack, " + gs + ", with " + v.what + " vs without", perCall: true,
				typed: telemetrySide(v.which, otelReliable(c)), plain: telemetrySide(noProviders, otelReliable(c))})
	}
	return ws
}
