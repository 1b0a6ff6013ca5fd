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
// with a timeout, so the blocking path is what is measured).
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
}
