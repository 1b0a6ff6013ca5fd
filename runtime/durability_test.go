package runtime

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
)

func TestWaitOptionsChecked(t *testing.T) {
	for _, o := range []Options{
		{WaitReplicas: -1},
		{WaitTimeout: -time.Second, WaitReplicas: 1},
		{WaitTimeout: time.Second},
		{WaitReplicas: 1, WaitTimeout: time.Microsecond},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(WaitReplicas %d, WaitTimeout %v) = %v; want ErrInvalidArgument", o.WaitReplicas, o.WaitTimeout, err)
		}
	}
	if w := (Options{WaitReplicas: 2}).waitSetting(); w.timeout != DefaultWaitTimeout {
		t.Errorf("default WaitTimeout = %v", w.timeout)
	}
}

// TestWaitWithoutReplicas: on the test server, which has no replica, every
// durable write is applied and fails with ErrNotReplicated, "0 of 1",
// positioned at its op and key: pushes alone and coalesced, at-least-once
// pushes, acks and nacks, cache Sets.
func TestWaitWithoutReplicas(t *testing.T) {
	redistest.SingleOnly(t, "the one server has no replica (the other topologies' primaries have one)")
	for _, noCoalescing := range []bool{false, true} {
		t.Run(fmt.Sprint("NoCoalescing=", noCoalescing), func(t *testing.T) {
			ds := newStore(t, Options{WaitReplicas: 1, WaitTimeout: 20 * time.Millisecond, NoCoalescing: noCoalescing})
			notReplicated := func(what string, err error, op string) {
				t.Helper()
				var e *Error
				if !errors.Is(err, ErrNotReplicated) || !errors.As(err, &e) || e.Op != op || e.Key == "" ||
					!strings.Contains(err.Error(), "0 of 1 replicas") || !strings.Contains(err.Error(), "applied on the primary") {
					t.Fatalf("%s = %v; want an *Error for %s wrapping ErrNotReplicated, 0 of 1", what, err, op)
				}
			}
			q := testQueue[int](t, ds, "q")
			notReplicated("Push", q.Push(bg, 1), "push")
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for i := range 20 {
				wg.Go(func() { errs <- q.PushMany(bg, 100+i, 200+i) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				notReplicated("concurrent PushMany", err, "push")
			}
			if n, err := q.Len(bg); n != 41 || err != nil {
				t.Fatalf("Len = %d, %v; want 41: the pushes were applied", n, err)
			}

			r := testReliable[int](ds, "r", time.Minute, 0)
			notReplicated("reliable Push", r.Push(bg, 1), "push")
			notReplicated("PushID", r.PushID(bg, "x", 2), "push")
			notReplicated("PushID again", r.PushID(bg, "x", 2), "push") // stored once; the fence is replicated, not the item
			ds2, err := r.ReceiveMany(bg, 2, 0)
			if err != nil || len(ds2) != 2 {
				t.Fatalf("ReceiveMany = %d, %v", len(ds2), err)
			}
			notReplicated("Ack", ds2[0].Ack(bg), "ack")
			if err := ds2[0].Ack(bg); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("second Ack = %v; want ErrLeaseLost: the first was applied", err)
			}
			notReplicated("Nack", ds2[1].Nack(bg, 0), "nack")
			if s, err := r.Stats(bg); err != nil || s.Ready != 1 || s.InFlight != 0 {
				t.Fatalf("Stats = %+v, %v; want 1 ready (the nacked one), none in flight", s, err)
			}

			c := testCache[int](ds, "c", time.Minute)
			notReplicated("Set", c.Set(bg, 7), "set")
			if v, ok, err := c.Get(bg); v != 7 || !ok || err != nil {
				t.Fatalf("Get = %v, %v, %v; want the value set", v, ok, err)
			}
		})
	}
}

// TestWaitTimeoutBelowReadTimeout: a WaitTimeout that leaves less than a
// second of the client's ReadTimeout fails before anything is sent.
func TestWaitTimeoutBelowReadTimeout(t *testing.T) {
	cl := testClient(t, "read_timeout=1s")
	ds := newStore(t, Options{Client: cl, WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond})
	q := testQueue[int](t, ds, "q")
	if err := q.Push(bg, 1); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "ReadTimeout") {
		t.Fatalf("Push = %v; want ErrInvalidArgument naming ReadTimeout", err)
	}
	if n, err := q.Len(bg); n != 0 || err != nil {
		t.Fatalf("Len = %d, %v; want nothing written", n, err)
	}
}

// TestWaitOnCluster: on a cluster, the WAIT goes to the primary that took
// the write. With the replica of one primary asleep (DEBUG SLEEP), pushes
// to a queue on that primary fail with ErrNotReplicated, 0 of 1, while
// pushes to queues on the other primaries, in the same coalesced batches,
// succeed: a WAIT sent anywhere else would have found a replica.
func TestWaitOnCluster(t *testing.T) {
	redistest.SingleOnly(t, "starts a cluster of its own, the same whatever the run's topology")
	c, err := redistest.StartCluster(redistest.WithArgs("--enable-debug-command", "yes"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, noCoalescing := range []bool{false, true} {
		t.Run(fmt.Sprint("NoCoalescing=", noCoalescing), func(t *testing.T) {
			ds := newStore(t, Options{Addrs: c.Addrs(), Prefix: fmt.Sprintf("w%v:", noCoalescing), WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond, NoCoalescing: noCoalescing})
			var queues []Queue[int]
			var reliables []ReliableQueue[int]
			for _, name := range namesOnPrimaries(t, c, ds, "q") {
				queues = append(queues, testQueue[int](t, ds, name))
			}
			for _, name := range namesOnPrimaries(t, c, ds, "r") {
				reliables = append(reliables, testReliable[int](ds, name, time.Minute, 0))
			}
			push := func() []error {
				errs := make([]error, 2*len(queues))
				var wg sync.WaitGroup
				for i, q := range queues {
					wg.Go(func() { errs[i] = q.Push(bg, i) })
					wg.Go(func() { errs[len(queues)+i] = reliables[i].Push(bg, i) })
				}
				wg.Wait()
				return errs
			}
			for i, err := range push() {
				if err != nil {
					t.Fatalf("push %d with every replica up: %v", i, err)
				}
			}
			// The replica of the first queue's primary sleeps.
			slept := make(chan error, 1)
			go func() { slept <- c.Replicas[0].Sleep(bg, 2*time.Second) }()
			time.Sleep(100 * time.Millisecond)
			errs := push()
			for i, err := range errs {
				q := i % len(queues)
				if q == 0 {
					if !errors.Is(err, ErrNotReplicated) || !strings.Contains(err.Error(), "0 of 1") {
						t.Errorf("push %d to the primary whose replica sleeps = %v; want ErrNotReplicated, 0 of 1", i, err)
					}
				} else if err != nil {
					t.Errorf("push %d to another primary = %v; want nil", i, err)
				}
			}
			if err := <-slept; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// namesOnPrimaries returns a queue name (stem and a number) for each
// primary of c: the queue's keys are on c.Primaries[i] as formed.
func namesOnPrimaries(t *testing.T, c *redistest.Cluster, ds *DataStore, stem string) []string {
	t.Helper()
	names := make([]string, len(c.Primaries))
	found := 0
	for i := 0; found < len(names) && i < 1000; i++ {
		name := fmt.Sprintf("%s%d", stem, i)
		slot := keyspace.Slot(testQueue[int](t, ds, name).Key())
		for p := range c.Primaries {
			if first, last := c.Slots(p); first <= slot && slot <= last && names[p] == "" {
				names[p] = name
				found++
			}
		}
	}
	if found != len(names) {
		t.Fatalf("found queues on %d primaries", found)
	}
	return names
}
