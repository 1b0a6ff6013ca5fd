// A payload of the wrong type does not compile, on push or on set.
package main

import (
	"context"

	"github.com/storagegen/storagegen/generated"
)

func main() {
	ctx := context.Background()
	s := generated.New(nil)
	_ = s.Queues.NodeEdge("a", "b").Push(ctx, generated.NodeOutput{}) // ERROR `cannot use generated.NodeOutput{} .* as generated.NodeMessage value`
	_ = s.Caches.NodeOutput("n").Set(ctx, generated.NodeMessage{})    // ERROR `cannot use generated.NodeMessage{} .* as generated.NodeOutput value`
	_ = s.Queues.Jobs().Push(ctx, map[string]any{"flow_id": "f"})     // ERROR `cannot use map\[string\]any{…} .* as generated.JobRequest value`
	var out generated.NodeMessage
	out, _, _ = s.Caches.NodeOutput("n").Get(ctx) // ERROR `cannot use s.Caches.NodeOutput\("n"\).Get\(ctx\) .* as generated.NodeMessage value`
	_ = out
}
