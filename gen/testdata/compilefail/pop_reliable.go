// An at-least-once queue has no Pop: items are received and acked.
package main

import (
	"context"
	"time"

	"github.com/storagegen/storagegen/generated"
)

func main() {
	s := generated.New(nil)
	_, _, _ = s.Queues.Jobs().Pop(context.Background(), time.Second) // ERROR `s.Queues.Jobs\(\).Pop undefined`
}
