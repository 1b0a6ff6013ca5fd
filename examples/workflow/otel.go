package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// otelValues are the values -otel accepts.
const otelValues = `"stdout" (print spans and metrics after the flow) or "" (none)`

// The section headers the demo prints before the spans and the metrics:
// each followed by JSON values, one per line (spans: stdouttrace's
// encoding, one per span; metrics: stdoutmetric's, one per collection).
const (
	spansHeader   = "otel: spans (stdouttrace JSON, one per line)"
	metricsHeader = "otel: metrics (stdoutmetric JSON)"
)

// telemetry is the demo's OpenTelemetry setup: the providers it gives
// runtime.Options (nil for none) and its own tracer for the scheduler's
// and the executor's steps.
type telemetry struct {
	meters metric.MeterProvider
	traces trace.TracerProvider
	tracer trace.Tracer
	// finish flushes the providers and prints what they exported.
	finish func(ctx context.Context, out io.Writer) error
}

// noTelemetry records nothing: no providers, a no-op tracer.
func noTelemetry() *telemetry {
	return &telemetry{tracer: noop.NewTracerProvider().Tracer(""),
		finish: func(context.Context, io.Writer) error { return nil }}
}

// newTelemetry returns the setup -otel names, or an error naming the
// values accepted.
func newTelemetry(which string) (*telemetry, error) {
	switch which {
	case "":
		return noTelemetry(), nil
	case "stdout":
	default:
		return nil, fmt.Errorf("-otel %q: the values accepted are %s", which, otelValues)
	}
	// The exporters write into buffers printed once the flow is done, so
	// that the flow's lines and the JSON do not interleave.
	var spans, metrics bytes.Buffer
	res := resource.NewSchemaless(attribute.String("service.name", "workflow-demo"))
	texp, err := stdouttrace.New(stdouttrace.WithWriter(&spans))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(texp))
	mexp, err := stdoutmetric.New(stdoutmetric.WithWriter(&metrics))
	if err != nil {
		return nil, err
	}
	// One collection, at shutdown: the interval is longer than the demo.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Hour))))
	return &telemetry{meters: mp, traces: tp, tracer: tp.Tracer("github.com/storagegen/storagegen/examples/workflow"),
		finish: func(ctx context.Context, out io.Writer) error {
			// Shutdown flushes: every span ended, one last collection.
			err := errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
			fmt.Fprintln(out, spansHeader)
			out.Write(spans.Bytes())
			fmt.Fprintln(out, metricsHeader)
			out.Write(metrics.Bytes())
			return err
		}}, nil
}
