package runtime

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
)

// Hostile checks of riding through failovers (issue 9).

// TestDroppedBlockingPoolsCloseTheirConnections: on a cluster, the
// blocking pool of a node whose pop failed with a network error is
// dropped, and the README says its idle connections are closed. They must
// really be closed, not kept open in the dropped pool's client until
// Close: a process that meets many such errors (a flaky link, repeated
// failovers, MOVED during slot migrations) must not pile up connections
// to the node beyond BlockingPoolSize.
func TestDroppedBlockingPoolsCloseTheirConnections(t *testing.T) {
	redistest.SingleOnly(t, "starts a cluster of its own, the same whatever the run's topology")
	c, err := redistest.StartCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const poolSize = 4
	ds := newStore(t, Options{Addrs: c.Addrs(), Prefix: "drop:", BlockingPoolSize: poolSize})
	q := testQueue[int](t, ds, "dq")
	owner, err := c.Owner(bg, keyspace.Slot(q.Key()))
	if err != nil {
		t.Fatal(err)
	}
	node := redis.NewClient(&redis.Options{Addr: owner.Addr})
	defer node.Close()

	// clients returns the IDs of the node's clients whose last command
	// was cmd, and which of them are blocked in it.
	clients := func(cmd string) (all, blocked []string) {
		list, err := node.ClientList(bg).Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(list), "\n") {
			f := map[string]string{}
			for kv := range strings.FieldsSeq(line) {
				k, v, _ := strings.Cut(kv, "=")
				f[k] = v
			}
			if f["cmd"] != cmd {
				continue
			}
			all = append(all, f["id"])
			if strings.Contains(f["flags"], "b") {
				blocked = append(blocked, f["id"])
			}
		}
		return all, blocked
	}

	const rounds = 6
	for round := range rounds {
		// Three pops at once that time out: three blocking connections,
		// idle in the pool afterwards.
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if _, ok, err := q.Pop(bg, 200*time.Millisecond); ok || err != nil {
					t.Errorf("Pop on an empty queue = %v, %v", ok, err)
				}
			})
		}
		wg.Wait()
		// One more pop, whose connection the server kills while it
		// waits: a network error, so the node's pool is dropped.
		done := make(chan error, 1)
		go func() {
			_, _, err := q.Pop(bg, 20*time.Second)
			done <- err
		}()
		var blocked []string
		for i := 0; i < 2000 && len(blocked) == 0; i++ {
			_, blocked = clients("brpop")
			if len(blocked) == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if len(blocked) != 1 {
			t.Fatalf("round %d: %d blocked pops on the node; want 1", round, len(blocked))
		}
		if err := node.Do(bg, "client", "kill", "id", blocked[0]).Err(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil || errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("round %d: the pop whose connection was killed returned %v; want a network error", round, err)
		}
	}
	// PING the node on a fresh connection so that it has handled the
	// closes the client sent before (each connection's FIN came first).
	if err := node.Ping(bg).Err(); err != nil {
		t.Fatal(err)
	}
	all, _ := clients("brpop")
	if len(all) > poolSize {
		t.Errorf("after %d dropped pools the node has %d connections that ran BRPOP (%v); BlockingPoolSize is %d",
			rounds, len(all), all, poolSize)
	}
}
