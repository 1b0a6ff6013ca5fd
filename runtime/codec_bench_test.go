package runtime

import (
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

// The codec's cost per call beside the JSON library's own, with
// -benchmem: what the typed layer adds (the size limit, the null check,
// the time marshaler, error rewording) on the path of every Push and Pop.
//
//	go test -run XXX -bench Codec -benchmem ./runtime
func BenchmarkCodec(b *testing.B) {
	msg := payload{S: "node_5", I64: 1 << 60, Map: map[string]any{"row": 1.0}, List: []string{"a", "b"}, At: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	data, err := encode(msg, DefaultMaxPayloadBytes)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("json.Marshal (baseline)", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := encode(msg, DefaultMaxPayloadBytes); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal (baseline)", func(b *testing.B) {
		for b.Loop() {
			var v payload
			if err := json.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := decode[payload](data, DefaultMaxPayloadBytes); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Building a key from a pattern and arguments, as every accessor call
// does, and parsing it back.
//
//	go test -run XXX -bench Keys -benchmem ./runtime
func BenchmarkKeys(b *testing.B) {
	p := MustKeyPattern("queue_{source_id}_{target_id}")
	b.Run("Expand", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Expand("node_5", "node_8"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("QueueKey", func(b *testing.B) {
		for b.Loop() {
			_ = QueueKey("flow:", "queue_node%5F5_node%5F8")
		}
	})
	b.Run("Parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Parse("queue_node%5F5_node%5F8"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
