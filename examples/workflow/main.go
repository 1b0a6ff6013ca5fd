// Command workflow plays a small flow through the generated storage layer:
// a QueueWriter loop pushes NodeMessages on a node_edge queue, a
// QueueReader loop in another goroutine pops them, and node outputs are
// cached with their TTL and read back, as a developer's step-by-step run
// would. Then a flow run goes through the at-least-once jobs queue to an
// executor that fails it once.
//
// It uses REDIS_URL when set; otherwise it starts an embedded in-process
// Redis-compatible server (miniredis) and says so on its first line.
//
//	go run ./examples/workflow
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/workflow
//
// With -serve it runs no flow: it starts the embedded server, prints the
// REDIS_URL to give other programs (such as the Python client's demo,
// examples/python/demo.py), and keeps the server up until interrupted.
//
//	go run ./examples/workflow -serve
//
// With -otel stdout it gives the DataStore an OpenTelemetry
// TracerProvider and MeterProvider and, after the flow, prints the spans
// and the metrics they recorded as JSON (the stdout exporters); the
// scheduler's push of the job and the executor's handling of it are
// spans of the demo's own tracer too.
//
//	go run ./examples/workflow -otel stdout
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/storagegen/storagegen/generated"
	"github.com/storagegen/storagegen/runtime"
)

func main() { os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr)) }

// mainArgs runs the command with args and returns its exit code: 2 for a
// usage error.
func mainArgs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("workflow", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serveFlag := fs.Bool("serve", false, "start the embedded server, print its REDIS_URL and keep it up until interrupted; run no flow")
	otelFlag := fs.String("otel", "", "OpenTelemetry: "+otelValues)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "workflow: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *serveFlag {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx, stdout); err != nil {
			fmt.Fprintln(stderr, "workflow:", err)
			return 1
		}
		return 0
	}
	tel, err := newTelemetry(*otelFlag)
	if err != nil {
		fmt.Fprintln(stderr, "workflow:", err)
		fs.Usage()
		return 2
	}
	if err := run(context.Background(), stdout, os.Getenv("REDIS_URL"), tel); err != nil {
		fmt.Fprintln(stderr, "workflow:", err)
		return 1
	}
	return 0
}

// serve keeps an embedded server up until ctx ends, having printed the
// REDIS_URL that reaches it.
func serve(ctx context.Context, out io.Writer) error {
	mr, err := miniredis.Run()
	if err != nil {
		return err
	}
	defer mr.Close()
	fmt.Fprintf(out, "REDIS_URL=redis://%s/0\n", mr.Addr())
	fmt.Fprintln(out, "embedded server (miniredis) up; interrupt to stop")
	<-ctx.Done()
	return nil
}

// run plays the flow on the server at url (an embedded one when empty),
// recording into tel's providers; it prints what they exported at the
// end, even when the flow failed.
func run(ctx context.Context, out io.Writer, url string, tel *telemetry) (err error) {
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, tel.finish(fctx, out))
	}()
	if url == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		url = "redis://" + mr.Addr() + "/0"
		fmt.Fprintf(out, "REDIS_URL is not set: using an embedded in-process server (miniredis) at %s\n", mr.Addr())
	} else {
		fmt.Fprintln(out, "using the Redis server at REDIS_URL")
	}

	ds, err := runtime.New(runtime.Options{URL: url, MeterProvider: tel.meters, TracerProvider: tel.traces})
	if err != nil {
		return err
	}
	defer ds.Close()
	s := generated.New(ds)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	// The flow: node_5 (a QueueWriter) feeds node_8 (a QueueReader).
	const runID = "run-1"
	edge := s.Queues.NodeEdge("node_5", "node_8")
	if _, err := edge.PopMany(ctx, 1000, 0); err != nil { // a clean start
		return err
	}
	fmt.Fprintf(out, "queue %s\n", edge.Key())

	var wg sync.WaitGroup
	var readErr error
	received := make(chan generated.NodeMessage, 3)
	wg.Add(1)
	go func() { // the QueueReader's loop
		defer wg.Done()
		defer close(received)
		for range 3 {
			msg, ok, err := edge.Pop(ctx, 5*time.Second)
			switch {
			case err != nil:
				readErr = fmt.Errorf("reader: %w", err)
				return
			case !ok:
				readErr = errors.New("reader: nothing came within 5s")
				return
			}
			received <- msg
		}
	}()

	for i := range 3 { // the QueueWriter's loop
		msg := generated.NodeMessage{
			RunID: runID, SourceID: "node_5", Port: "out",
			Data:   map[string]any{"row": i + 1},
			SentAt: time.Now().UTC(),
		}
		if err := edge.Push(ctx, msg); err != nil {
			return err
		}
		fmt.Fprintf(out, "writer node_5 → pushed row %d\n", i+1)
	}

	for msg := range received {
		fmt.Fprintf(out, "reader node_8 ← popped row %v from %s (run %s)\n", msg.Data["row"], msg.SourceID, msg.RunID)
		// The node's "work" is passing the row on; its duration is the
		// message's time from the writer's push to this point.
		output := generated.NodeOutput{
			NodeID: "node_8", Status: "succeeded",
			Data:       map[string]any{"last_row": msg.Data["row"]},
			DurationMs: float64(time.Since(msg.SentAt).Microseconds()) / 1000,
		}
		cache := s.Caches.NodeOutput("node_8")
		if err := cache.Set(ctx, output); err != nil {
			return err
		}
	}
	wg.Wait()
	if readErr != nil {
		return readErr
	}

	// Step-by-step execution: the next node reads node_8's cached output.
	cache := s.Caches.NodeOutput("node_8")
	got, ok, err := cache.Get(ctx)
	if err != nil || !ok {
		return errors.Join(err, errors.New("node_8's output is not cached"))
	}
	ttl, err := cache.TTL(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cache %s = {status: %s, last_row: %v}, expires in %s\n", cache.Key(), got.Status, got.Data["last_row"], ttl.Round(time.Minute))

	attempt := s.Caches.AttemptLog(runID, 1)
	if err := attempt.Set(ctx, got); err != nil {
		return err
	}
	ttl, err = attempt.TTL(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cache %s kept for %s\n", attempt.Key(), ttl.Round(time.Hour))

	if _, ok, err := s.Caches.NodeOutput("node_9").Get(ctx); err != nil || ok {
		return errors.Join(err, errors.New("node_9 should have no output yet"))
	}
	fmt.Fprintln(out, "cache node_9: no output yet (a miss, not an error)")
	// settings is a local cache: Gets are answered from memory while Redis
	// tracks the key (on miniredis, which has no CLIENT TRACKING, every Get
	// goes to the server). This process's own Set is seen at once.
	settings := s.Caches.Settings("flow_7")
	var seen []int
	for _, n := range []int{4, 8} {
		if err := settings.Set(ctx, generated.FlowSettings{MaxParallel: n}); err != nil {
			return err
		}
		for range 2 {
			got, ok, err := settings.Get(ctx)
			if err != nil || !ok {
				return errors.Join(err, errors.New("flow_7's settings are missing"))
			}
			seen = append(seen, got.MaxParallel)
		}
	}
	fmt.Fprintf(out, "cache %s (local) read max_parallel %v\n", settings.Key(), seen)
	if _, err := settings.Delete(ctx); err != nil {
		return err
	}
	if _, err := cache.Delete(ctx); err != nil {
		return err
	}
	if _, err := attempt.Delete(ctx); err != nil {
		return err
	}
	if err := runJobs(ctx, out, s, tel.tracer); err != nil {
		return err
	}
	fmt.Fprintln(out, "done")
	return nil
}

// runJobs sends a flow run through the at-least-once jobs queue: pushed
// twice under one ID (stored once), failed by the executor on its first
// delivery, and run on its second. The scheduler's step and each of the
// executor's are spans of tracer: the runtime's push spans are children
// of the scheduler's, and an executor's span is a child of the span
// Consume gives the handler's ctx when the runtime has a TracerProvider.
func runJobs(ctx context.Context, out io.Writer, s *generated.Store, tracer trace.Tracer) error {
	jobs := s.Queues.Jobs()
	id := fmt.Sprintf("flow_7/%d", time.Now().UnixNano()) // unique per demo run
	job := generated.JobRequest{FlowID: "flow_7", Inputs: map[string]any{"rows": 3}, Priority: 1}
	if err := schedule(ctx, tracer, jobs, id, job); err != nil {
		return err
	}
	fmt.Fprintf(out, "queue %s: job pushed twice under one ID\n", jobs.Key())

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var counters runtime.Counters
	var ran int
	err := jobs.Consume(ctx, func(ctx context.Context, d *generated.JobsDelivery) (err error) {
		if d.ID != id {
			return nil // a job left over from an earlier run of the demo
		}
		_, span := tracer.Start(ctx, "executor run flow", trace.WithAttributes(attribute.String("flow.id", d.Value.FlowID), attribute.Int("delivery.attempt", d.Attempt)))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, "executor busy")
			}
			span.End()
		}()
		if d.Attempt == 1 {
			fmt.Fprintf(out, "executor ← job %s, delivery %d: fails (executor busy); it comes back\n", d.Value.FlowID, d.Attempt)
			return errors.New("executor busy")
		}
		ran++
		fmt.Fprintf(out, "executor ← job %s, delivery %d: ran with %v rows\n", d.Value.FlowID, d.Attempt, d.Value.Inputs["rows"])
		stop() // the demo is done; Consume returns once this handler has
		return nil
	}, runtime.ConsumeOptions{Concurrency: 2, RetryBackoff: 100 * time.Millisecond, Counters: &counters})
	if err != nil {
		return err
	}
	if ran != 1 {
		return fmt.Errorf("the job ran %d times, want once", ran)
	}
	fmt.Fprintf(out, "consumer: received %d, acked %d, nacked %d\n", counters.Received.Load(), counters.Acked.Load(), counters.Nacked.Load())
	return nil
}

// schedule is the scheduler's step: it pushes job under id twice, as a
// client retrying its request would, in a span of its own: the push's
// trace context travels beside the item to the executor's span.
func schedule(ctx context.Context, tracer trace.Tracer, jobs runtime.ReliableQueue[generated.JobRequest], id string, job generated.JobRequest) error {
	ctx, span := tracer.Start(ctx, "scheduler submit flow", trace.WithAttributes(attribute.String("flow.id", job.FlowID)))
	defer span.End()
	for range 2 {
		if err := jobs.PushID(ctx, id, job); err != nil {
			span.SetStatus(codes.Error, "push failed")
			return err
		}
	}
	return nil
}
