// A typo in a cache name does not compile.
package main

import (
	"context"

	"github.com/storagegen/storagegen/generated"
)

func main() {
	s := generated.New(nil)
	_, _, _ = s.Caches.NodeOuptut("node_1").Get(context.Background()) // ERROR `s.Caches.NodeOuptut undefined`
}
