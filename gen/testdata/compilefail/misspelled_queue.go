// A typo in a queue name does not compile.
package main

import (
	"context"

	"github.com/storagegen/storagegen/generated"
)

func main() {
	s := generated.New(nil)
	_ = s.Queues.NodeEgde("node_5", "node_8").Push(context.Background(), generated.NodeMessage{}) // ERROR `s.Queues.NodeEgde undefined`
}
