// Accessors take exactly the key's placeholders, with their types.
package main

import "github.com/storagegen/storagegen/generated"

func main() {
	s := generated.New(nil)
	_ = s.Queues.NodeEdge("node_5")       // ERROR `not enough arguments in call to s.Queues.NodeEdge`
	_ = s.Queues.Jobs("extra")            // ERROR `too many arguments in call to s.Queues.Jobs`
	_ = s.Caches.AttemptLog("run-1", "3") // ERROR `cannot use "3" \(untyped string constant\) as int value`
	_ = s.Caches.Settings(42)             // ERROR `cannot use 42 \(untyped int constant\) as string value`
}
