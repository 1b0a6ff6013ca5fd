package runtime

import (
	"fmt"
	"testing"
	"time"
)

// The typed layer's cost over go-redis itself, measured side by side in
// one run against the same server:
//
//	go test -run XXX -bench . -benchmem ./runtime
//
// Each benchmark pushes one small payload and pops it again (blocking pop
// with a timeout, so the blocking path is what is measured). The
// at-least-once queue receives and acks instead of popping: what its
// guarantees cost next to Pop.
func BenchmarkPushPop(b *testing.B) {
	msg := payload{S: "node_5", I64: 1 << 60, Map: map[string]any{"row": 1.0}, List: []string{"a", "b"}}

	b.Run("go-redis LPUSH+BRPOP (baseline)", func(b *testing.B) {
		raw := rawClient(b)
		key := testPrefix(b) + "raw"
		data, _ := encode(msg, DefaultMaxPayloadBytes)
		for b.Loop() {
			if err := raw.LPush(bg, key, data).Err(); err != nil {
				b.Fatal(err)
			}
			if err := raw.BRPop(bg, time.Second, key).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Queue[T] Push+Pop", func(b *testing.B) {
		ds := newStore(b, Options{})
		q := NewQueue[payload](ds, &QueueDecl{Name: "bench", Prefix: ds.prefix, Key: MustKeyPattern("bench")})
		for b.Loop() {
			if err := q.Push(bg, msg); err != nil {
				b.Fatal(err)
			}
			if _, ok, err := q.Pop(bg, time.Second); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("Queue[T] PushMany+PopMany %d (per item)", n), func(b *testing.B) {
			ds := newStore(b, Options{})
			q := NewQueue[payload](ds, &QueueDecl{Name: "bench", Prefix: ds.prefix, Key: MustKeyPattern("bench")})
			batch := make([]payload, n)
			for i := range batch {
				batch[i] = msg
			}
			for b.Loop() {
				if err := q.PushMany(bg, batch...); err != nil {
					b.Fatal(err)
				}
				if vs, err := q.PopMany(bg, n, time.Second); len(vs) != n || err != nil {
					b.Fatal(len(vs), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
	b.Run("ReliableQueue[T] Push+Receive+Ack", func(b *testing.B) {
		ds := newStore(b, Options{})
		q := testReliable[payload](ds, "bench", 0, 0)
		for b.Loop() {
			if err := q.Push(bg, msg); err != nil {
				b.Fatal(err)
			}
			d, ok, err := q.Receive(bg, time.Second)
			if !ok || err != nil {
				b.Fatal(ok, err)
			}
			if err := d.Ack(bg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReliableQueue[T] PushMany 100+Receive+Ack (per item)", func(b *testing.B) {
		ds := newStore(b, Options{})
		q := testReliable[payload](ds, "bench", 0, 0)
		batch := make([]payload, 100)
		for i := range batch {
			batch[i] = msg
		}
		for b.Loop() {
			if err := q.PushMany(bg, batch...); err != nil {
				b.Fatal(err)
			}
			for range batch {
				d, ok, err := q.Receive(bg, time.Second)
				if !ok || err != nil {
					b.Fatal(ok, err)
				}
				if err := d.Ack(bg); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/item")
	})
}
