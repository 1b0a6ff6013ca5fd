package pyclient

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagegen/storagegen/internal/pyinterop"
	"github.com/storagegen/storagegen/runtime"
)

// The mixed crash test: Python producers and Go consumers, and Go
// producers and Python consumers, on one at-least-once queue (tasks) and
// on a sharded one (jobs, 2 shards), with consumers killed by SIGKILL while
// they work (between logging a delivery and acking it) and started again.
// Every consumer is a process of its own: a Go consumer is this test
// binary run again (TestCrashConsumerProcess), a Python one xlang.py.
// At the end every pushed ID was handled at least once (lost = 0) and the
// queue is settled (every delivery acked, none in flight, none dead); the
// duplicates that at-least-once allows are counted and logged.

const (
	crashItems     = 240
	crashConsumers = 2
	crashKills     = 3
)

// consumerEnv names the queue a re-run test binary consumes as a Go
// consumer process.
const consumerEnv = "STORAGEGEN_XLANG_CONSUMER"

// TestCrashConsumerProcess is the Go consumer of TestMixedCrash: it does
// nothing unless the test binary was started by TestMixedCrash with
// consumerEnv=ADDR,QUEUE,LOG. It receives, appends "<id> <attempt>" to LOG
// (synced), works for 10 ms and acks, until it is killed (or for 60 s).
func TestCrashConsumerProcess(t *testing.T) {
	spec := os.Getenv(consumerEnv)
	if spec == "" {
		t.Skip("the Go consumer process of TestMixedCrash")
	}
	parts := strings.SplitN(spec, ",", 3)
	ds, err := runtime.New(runtime.Options{Addr: parts[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	s := pyinterop.New(ds)
	f, err := os.OpenFile(parts[2], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	handle := func(id string, attempt int, ack func(context.Context) error) {
		if _, err := fmt.Fprintf(f, "%s %d\n", id, attempt); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if err := ack(ctx); err != nil {
			t.Logf("ack %s: %v", id, err) // a lease lost to a reclaim: the item is delivered again
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		switch parts[1] {
		case "tasks":
			d, ok, err := s.Queues.Tasks("crash").Receive(ctx, 500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				handle(d.ID, d.Attempt, d.Ack)
			}
		case "jobs":
			d, ok, err := s.Queues.Jobs("crash").Receive(ctx, 500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				handle(d.ID, d.Attempt, d.Ack)
			}
		default:
			t.Fatalf("unknown queue %q", parts[1])
		}
	}
}

func TestMixedCrash(t *testing.T) {
	py := Python(t)
	for _, producer := range []string{"python", "go"} {
		for _, queue := range []string{"tasks", "jobs"} {
			t.Run(producer+"-producers/"+queue, func(t *testing.T) {
				t.Parallel()
				crash(t, py, producer, queue)
			})
		}
	}
}

// crash runs one scenario: producers in one language, consumers in the other.
func crash(t *testing.T, py, producer, queue string) {
	srv := startServer(t)
	_, s := newXlangStore(t, srv.Addr)
	ctx := context.Background()
	dir := t.TempDir()
	testdata := filepath.Join(Root(), "internal", "pyclient", "testdata")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logs := make([]string, crashConsumers)
	procs := make([]*exec.Cmd, crashConsumers)
	start := func(i int) {
		var cmd *exec.Cmd
		if producer == "python" { // Go consumers
			cmd = exec.Command(exe, "-test.run=^TestCrashConsumerProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), consumerEnv+"="+srv.Addr+","+queue+","+logs[i])
		} else {
			cmd = exec.Command(py, "xlang.py", srv.Addr, "consume", queue, logs[i], "0.01")
			cmd.Dir = testdata
			cmd.Env = append(os.Environ(), xlangEnv()...)
		}
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
	}
	stop := func(i int) {
		_ = procs[i].Process.Kill() // SIGKILL
		_ = procs[i].Wait()
	}
	for i := range logs {
		logs[i] = filepath.Join(dir, fmt.Sprintf("consumer-%d.log", i))
		start(i)
	}
	defer func() {
		for i := range procs {
			stop(i)
		}
	}()

	// Producers: two at once, each pushing half of the IDs.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for p := range 2 {
		first, n := p*crashItems/2, crashItems/2
		wg.Add(1)
		go func() {
			defer wg.Done()
			if producer == "python" {
				cmd := exec.Command(py, "xlang.py", srv.Addr, "produce", queue, strconv.Itoa(first), strconv.Itoa(n))
				cmd.Dir = testdata
				cmd.Env = append(os.Environ(), xlangEnv()...)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("python producer: %v\n%s", err, out)
				}
				return
			}
			for i := first; i < first+n; i++ {
				id := fmt.Sprintf("id-%d", i)
				var err error
				if queue == "tasks" {
					err = s.Queues.Tasks("crash").PushID(ctx, id, pyinterop.Envelope{RunID: "go", Row: int64(i)})
				} else {
					err = s.Queues.Jobs("crash").PushID(ctx, id, pyinterop.Scalars{Text: "go", I64: int64(i)})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}

	// Kill a consumer while it works, each time a further quarter of the
	// items has been handled, and start it again.
	kills := 0
	deadline := time.Now().Add(45 * time.Second)
	var handled map[string]int
	var lines int
	for time.Now().Before(deadline) {
		handled, lines = readLogs(t, logs)
		if kills < crashKills && lines >= (kills+1)*crashItems/(crashKills+1) {
			i := kills % crashConsumers
			stop(i)
			start(i)
			kills++
		}
		if len(handled) >= crashItems && kills == crashKills {
			st, err := statsOf(ctx, s, queue)
			if err != nil {
				t.Fatal(err)
			}
			if st.Ready == 0 && st.InFlight == 0 && st.Delayed == 0 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	handled, lines = readLogs(t, logs)
	var lost []string
	for i := range crashItems {
		if handled[fmt.Sprintf("id-%d", i)] == 0 {
			lost = append(lost, fmt.Sprintf("id-%d", i))
		}
	}
	dups := 0
	for _, n := range handled {
		dups += n - 1
	}
	consumer := map[string]string{"python": "Go", "go": "Python"}[producer]
	t.Logf("%s producers, %s consumers, queue %s: pushed %d, consumers SIGKILLed %d times: lost %d, duplicated %d (%d deliveries handled)",
		producer, consumer, queue, crashItems, kills, len(lost), dups, lines)
	if len(lost) > 0 || kills != crashKills {
		st, err := statsOf(ctx, s, queue)
		t.Fatalf("lost %d of %d items (%.10q…) after %d kills; queue stats %+v, %v", len(lost), crashItems, lost, kills, st, err)
	}
	if len(handled) != crashItems {
		t.Fatalf("consumers handled %d distinct IDs, %d were pushed", len(handled), crashItems)
	}
	// A consumer logs a delivery before it acks it, so the log alone would
	// count an item whose consumer was killed as handled even if it were
	// never delivered again: the queue must also have settled, every item
	// acked (by the consumer that logged it, or after a reclaim by another).
	if st, err := statsOf(ctx, s, queue); err != nil || st != (runtime.Stats{}) {
		t.Fatalf("queue not settled after the consumers handled every ID: %+v, %v", st, err)
	}
}

func statsOf(ctx context.Context, s *pyinterop.Store, queue string) (runtime.Stats, error) {
	if queue == "tasks" {
		return s.Queues.Tasks("crash").Stats(ctx)
	}
	return s.Queues.Jobs("crash").Stats(ctx)
}

// readLogs counts the deliveries the consumers' logs hold, by ID. A line
// cut short by a kill is not counted.
func readLogs(t *testing.T, logs []string) (map[string]int, int) {
	t.Helper()
	handled := map[string]int{}
	lines := 0
	for _, name := range logs {
		f, err := os.Open(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			id, attempt, ok := strings.Cut(sc.Text(), " ")
			if _, err := strconv.Atoi(attempt); ok && err == nil && strings.HasPrefix(id, "id-") {
				handled[id]++
				lines++
			}
		}
		f.Close()
	}
	return handled, lines
}
