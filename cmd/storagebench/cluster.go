package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/runtime"
)

// benchClient is the plain side's client: a *redis.Client on one server,
// a *redis.ClusterClient with -cluster.
type benchClient interface {
	redis.UniversalClient
	AutoPipeline() (*redis.AutoPipeliner, error)
}

// clients makes the typed side's DataStore and the plain side's client,
// both with pool size -c, and names the server for the table's header.
// typedOptions are the typed side's DataStore options.
func typedOptions(cfg config) runtime.Options {
	if cfg.cluster {
		return runtime.Options{Addrs: cfg.addrs, PoolSize: cfg.c, BlockingPoolSize: cfg.c}
	}
	return runtime.Options{URL: cfg.url, PoolSize: cfg.c, BlockingPoolSize: cfg.c, WaitReplicas: cfg.wait}
}

func clients(cfg config) (*runtime.DataStore, benchClient, string, error) {
	if cfg.cluster {
		ds, err := runtime.New(typedOptions(cfg))
		if err != nil {
			return nil, nil, "", err
		}
		plain := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cfg.addrs, PoolSize: cfg.c})
		return ds, plain, "a cluster of 3 primaries and 3 replicas (" + strconv.Itoa(len(cfg.addrs)) + " nodes on loopback)", nil
	}
	// The runtime checks the URL first: its errors never show a password,
	// and go-redis's parse errors quote the whole URL.
	ds, err := runtime.New(typedOptions(cfg))
	if err != nil {
		return nil, nil, "", err
	}
	ropts, err := redis.ParseURL(cfg.url)
	if err != nil {
		ds.Close()
		return nil, nil, "", errors.New("-redis: not a URL go-redis reads")
	}
	ropts.PoolSize = cfg.c
	return ds, redis.NewClient(ropts), ropts.Addr, nil
}

// eachServer runs fn on every server the plain client talks to: the one,
// or every primary of the cluster, concurrently.
func (e *env) eachServer(ctx context.Context, fn func(ctx context.Context, c *redis.Client) error) error {
	if cc, ok := e.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, fn)
	}
	return fn(ctx, e.rdb.(*redis.Client))
}

// clearServer deletes the keys under keyPrefix on one server: SCAN and
// UNLINK, one key a command on a cluster node (keys of several slots
// cannot share one), bounded.
func clearServer(ctx context.Context, c *redis.Client, oneByOne bool) error {
	err := scanKeys(ctx, c, func(keys []string) error {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			if !oneByOne {
				p.Unlink(ctx, keys...)
				return nil
			}
			for _, k := range keys {
				p.Unlink(ctx, k)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("clearing %s*: %w", keyPrefix, err)
	}
	return nil
}

// scanKeys calls fn with each non-empty batch of the keys under keyPrefix
// that SCAN finds on c's server, bounded.
func scanKeys(ctx context.Context, c redis.Cmdable, fn func(keys []string) error) error {
	var cursor uint64
	for range 1_000_000 {
		keys, next, err := c.Scan(ctx, cursor, keyPrefix+"*", 1000).Result()
		if err != nil {
			return fmt.Errorf("SCAN: %w", err)
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
	return fmt.Errorf("SCAN %s* did not end", keyPrefix)
}

// sumStats adds up the servers' INFO commandstats and CPU seconds.
// per keeps each server's own, by address, to show how the work spread.
type sumStats struct {
	mu    sync.Mutex
	stats map[string]cmdStat
	per   map[string]map[string]cmdStat
	cpu   float64
}

func (s *sumStats) add(addr string, st map[string]cmdStat, cpu float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats == nil {
		s.stats, s.per = map[string]cmdStat{}, map[string]map[string]cmdStat{}
	}
	s.per[addr] = st
	for k, v := range st {
		t := s.stats[k]
		t.Calls += v.Calls
		t.Usec += v.Usec
		s.stats[k] = t
	}
	s.cpu += cpu
}

// busiestShare returns the largest share of the servers' time that one
// server spent between before and after: 1 on one server, about 1/N when
// the work spread evenly over N primaries. 0 with no time spent.
func busiestShare(before, after map[string]map[string]cmdStat) float64 {
	var sum, most int64
	for addr, st := range after {
		u := serverUsec(statsDelta(before[addr], st))
		sum += u
		most = max(most, u)
	}
	if sum == 0 {
		return 0
	}
	return float64(most) / float64(sum)
}
