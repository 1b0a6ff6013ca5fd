package runtime_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/storagegen/storagegen/runtime"
)

// The untyped API, as the engine's Python storage layer has it: queues by name, caches by key.
func Example() {
	ctx := context.Background()
	ds, err := runtime.New(runtime.Options{URL: os.Getenv("REDIS_URL"), Prefix: "example:"})
	if err != nil {
		panic(err)
	}
	defer ds.Close()

	ds.Queue.Push(ctx, "my_queue", map[string]any{"key": "value"})
	n, _ := ds.Queue.Len(ctx, "my_queue")
	var item map[string]any
	ok, err := ds.Queue.Pop(ctx, "my_queue", 5*time.Second, &item)
	fmt.Println(n, item, ok, err)

	ds.Cache.Set(ctx, "my_key", map[string]any{"data": 123}, time.Hour)
	var value struct {
		Data int `json:"data"`
	}
	ok, _ = ds.Cache.Get(ctx, "my_key", &value)
	fmt.Println(value.Data, ok)
	deleted, _ := ds.Cache.Delete(ctx, "my_key")
	exists, _ := ds.Cache.Exists(ctx, "my_key")
	fmt.Println(deleted, exists)
	// Output:
	// 1 map[key:value] true <nil>
	// 123 true
	// true false
}
