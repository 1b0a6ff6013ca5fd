package inspect

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
)

// errEnough ends a walk that found what it needed.
var errEnough = errors.New("enough")

// walk runs SCAN MATCH glob COUNT ScanCount on every primary (the one
// server, a Sentinel group's current primary, or each primary of a
// cluster, concurrently) and calls visit with each key, one call at a
// time. visit returns false to stop the walk. It stops by itself after
// MaxKeys keys and then reports complete = false.
func (in *Inspector) walk(ctx context.Context, glob string, visit func(key string) bool) (complete bool, err error) {
	var (
		mu    sync.Mutex
		seen  int
		full  bool // MaxKeys reached
		ended bool // visit said stop
	)
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, glob, in.opts.ScanCount).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			for _, k := range keys {
				if ended || full {
					break
				}
				if seen >= in.opts.MaxKeys {
					full = true
					break
				}
				seen++
				if !visit(k) {
					ended = true
				}
			}
			stop := ended || full
			mu.Unlock()
			if stop {
				return errEnough
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	err = in.ds.Do("scan", glob, func(cl redis.UniversalClient) error {
		var err error
		if cc, ok := cl.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
		} else {
			err = scan(ctx, cl)
		}
		if errors.Is(err, errEnough) {
			return nil
		}
		return err
	})
	return !full, err
}
