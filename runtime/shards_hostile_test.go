package runtime

import (
	"testing"
	"time"
)

// Hostile checks of sharded queues (issue 9).

// TestShardSweepTakesFromEveryShard: a PopMany or ReceiveMany that wants
// more than the first shard of its sweep holds takes the items of every
// other shard that has some, in the same call, without waiting (the
// README: "then, if more are wanted, every shard that a pipelined LLEN
// finds non-empty, in turn"). A sweep that stopped after its first shard
// would return 2 of the 8.
func TestShardSweepTakesFromEveryShard(t *testing.T) {
	ds := newStore(t, Options{})
	q := shardedQueue[int](ds, "sweep", 4)
	if err := q.PushMany(bg, 0, 1, 2, 3, 4, 5, 6, 7); err != nil { // 2 on each shard
		t.Fatal(err)
	}
	vs, err := q.PopMany(bg, 8, 0)
	if err != nil || len(vs) != 8 {
		t.Fatalf("PopMany(8, 0) over 4 shards of 2 items = %v, %v; want all 8", vs, err)
	}

	r := shardedReliable[int](ds, "sweepr", 4, time.Minute, 5)
	for i := range 8 {
		if err := r.Push(bg, i); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := r.Len(bg); n != 8 || err != nil {
		t.Fatalf("Len = %d, %v", n, err)
	}
	shards := map[string]bool{}
	for _, key := range r.ShardKeys() {
		if n, _ := rawClient(t).LLen(bg, key).Result(); n > 0 {
			shards[key] = true
		}
	}
	if len(shards) < 2 {
		t.Skipf("8 random IDs fell on %d shard; the check needs two", len(shards))
	}
	ds2, err := r.ReceiveMany(bg, 8, 0)
	if err != nil || len(ds2) != 8 {
		t.Fatalf("ReceiveMany(8, 0) over %d non-empty shards = %d deliveries, %v; want all 8", len(shards), len(ds2), err)
	}
	for _, d := range ds2 {
		if err := d.Ack(bg); err != nil {
			t.Fatal(err)
		}
	}
}
