package dashboard

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/storagegen/storagegen/internal/inspect"
)

// Metrics is the dashboard's OpenTelemetry MeterProvider and the
// Prometheus registry it is exported through (its own registry, not the
// process-wide default). GET /metrics serves the registry. The command
// does not give MeterProvider to the DataStore the dashboard reads
// through: that runtime's own storagegen.queue.items, for the few queues
// the dashboard opens, would stand beside the samples' totals.
type Metrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// NewMetrics returns a MeterProvider whose reader is the OpenTelemetry
// Prometheus exporter on a registry of its own.
func NewMetrics() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	return &Metrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		// Errors are answered as a 500 and never logged: a collection
		// error could quote a label value.
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// MeterProvider is the provider the metrics are recorded in.
func (m *Metrics) MeterProvider() metric.MeterProvider { return m.provider }

// Shutdown releases the provider.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.provider.Shutdown(ctx) }

// The dashboard's instruments. Every value is read from the last sample
// (Run takes one per Config.Interval); a collection never walks Redis.
//
//   - storagegen.queue.items ({item}, gauge): a queue declaration's items
//     summed over the instances the walk found, by storagegen.state
//     (ready, in_flight, delayed, dead for an at-least-once queue; ready
//     and dead for an at-most-once one), with storagegen.kind (queue or
//     reliable_queue), storagegen.name, messaging.system (storagegen) and
//     messaging.destination.name (the declaration's name): the name and
//     attributes of the runtime's own gauge.
//   - storagegen.cache.entries ({entry}, gauge): a cache declaration's
//     entries, with storagegen.kind (cache) and storagegen.name.
//   - storagegen.instances ({instance}, gauge): the instances the walk
//     found per declaration (kind, name).
//   - storagegen.dashboard.sample.duration (s, gauge): how long the last
//     sample took.
//   - storagegen.dashboard.sample.capped (gauge, 0 or 1): 1 when the
//     last walk stopped at -max-instances or -max-keys, so that every
//     count above is a lower bound.
//   - storagegen.dashboard.samples ({sample}, counter): samples taken,
//     by outcome (ok or error); the gauges keep the last good sample's
//     values while sampling fails.
//   - storagegen.dashboard.unknown_keys ({key}, gauge): keys under the
//     prefix that are no declaration's.
type meters struct {
	samples metric.Int64Counter
	ok, bad metric.AddOption
}

// states are the storagegen.state values of a queue's gauge.
var (
	stateReady    = attribute.String("storagegen.state", "ready")
	stateInFlight = attribute.String("storagegen.state", "in_flight")
	stateDelayed  = attribute.String("storagegen.state", "delayed")
	stateDead     = attribute.String("storagegen.state", "dead")
)

// registerMeters makes the instruments and the callback that observes the
// last sample.
func (s *Server) registerMeters(mp metric.MeterProvider) (*meters, error) {
	m := mp.Meter("github.com/storagegen/storagegen/internal/dashboard")
	items, err := m.Int64ObservableGauge("storagegen.queue.items", metric.WithUnit("{item}"),
		metric.WithDescription("Items of a queue declaration by state, summed over its instances."))
	if err != nil {
		return nil, err
	}
	entries, err := m.Int64ObservableGauge("storagegen.cache.entries", metric.WithUnit("{entry}"),
		metric.WithDescription("Entries of a cache declaration, summed over the instances the dashboard's last walk found."))
	if err != nil {
		return nil, err
	}
	instances, err := m.Int64ObservableGauge("storagegen.instances", metric.WithUnit("{instance}"),
		metric.WithDescription("Instances of a declaration the dashboard's last walk found."))
	if err != nil {
		return nil, err
	}
	dur, err := m.Float64ObservableGauge("storagegen.dashboard.sample.duration", metric.WithUnit("s"),
		metric.WithDescription("How long the dashboard's last sample took."))
	if err != nil {
		return nil, err
	}
	capped, err := m.Int64ObservableGauge("storagegen.dashboard.sample.capped",
		metric.WithDescription("1 when the last walk stopped at -max-instances or -max-keys: the counts are lower bounds."))
	if err != nil {
		return nil, err
	}
	unknown, err := m.Int64ObservableGauge("storagegen.dashboard.unknown_keys", metric.WithUnit("{key}"),
		metric.WithDescription("Keys under the schema's prefix that are no declaration's, in the last walk."))
	if err != nil {
		return nil, err
	}
	samples, err := m.Int64Counter("storagegen.dashboard.samples", metric.WithUnit("{sample}"),
		metric.WithDescription("Samples the dashboard took, by outcome."))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s.mu.Lock()
		ov, took := s.latest, s.took
		s.mu.Unlock()
		if ov == nil {
			return nil
		}
		o.ObserveFloat64(dur, took.Seconds())
		o.ObserveInt64(unknown, int64(ov.Unknown.Count))
		var c int64
		if ov.Unknown.AtLeast {
			c = 1
		}
		for _, d := range ov.Decls {
			if d.AtLeast {
				c = 1
			}
			observeDecl(o, d, items, entries, instances)
		}
		o.ObserveInt64(capped, c)
		return nil
	}, items, entries, instances, dur, capped, unknown)
	if err != nil {
		return nil, err
	}
	return &meters{samples: samples,
		ok:  metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "ok"))),
		bad: metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "error")))}, nil
}

// observeDecl observes one declaration of a sample.
func observeDecl(o metric.Observer, d inspect.DeclSummary, items, entries, instances metric.Int64Observable) {
	kind := "cache"
	if d.Queue != nil {
		kind = "queue"
		if d.Decl.Reliable() {
			kind = "reliable_queue"
		}
	}
	decl := []attribute.KeyValue{attribute.String("storagegen.kind", kind), attribute.String("storagegen.name", d.Decl.Name)}
	o.ObserveInt64(instances, int64(d.Instances), metric.WithAttributes(decl...))
	if d.Cache != nil {
		o.ObserveInt64(entries, d.Cache.Entries, metric.WithAttributes(decl...))
		return
	}
	q := d.Queue
	if q == nil {
		return
	}
	attrs := append(decl, attribute.String("messaging.system", "storagegen"), attribute.String("messaging.destination.name", d.Decl.Name))
	obs := func(state attribute.KeyValue, v int64) {
		o.ObserveInt64(items, v, metric.WithAttributes(append(attrs[:len(attrs):len(attrs)], state)...))
	}
	obs(stateReady, q.Ready)
	if d.Decl.Reliable() {
		obs(stateInFlight, q.InFlight)
		obs(stateDelayed, q.Delayed)
	}
	obs(stateDead, q.Dead)
}

// countSample counts a sample by its outcome.
func (s *Server) countSample(ctx context.Context, err error) {
	if err != nil {
		s.meters.samples.Add(ctx, 1, s.meters.bad)
		return
	}
	s.meters.samples.Add(ctx, 1, s.meters.ok)
}

// metricsPage serves the Prometheus text of the registry.
func (s *Server) metricsPage(w http.ResponseWriter, r *http.Request) {
	s.metrics.handler.ServeHTTP(w, r)
}
