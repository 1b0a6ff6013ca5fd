package redistest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// MoveSlot moves slot, with its keys, from the primary that serves it to
// the primary to, as redis-cli --cluster reshard does (redis-cli need not
// be installed): CLUSTER SETSLOT IMPORTING on to, MIGRATING on the owner;
// then MIGRATE of batch keys at a time (CLUSTER GETKEYSINSLOT) until the
// owner has none left; then SETSLOT NODE on to, on the owner and on the
// other primaries. Clients that use the slot meanwhile get ASK for keys
// already moved and TRYAGAIN for multi-key commands whose keys are split
// between the two, and MOVED once it is done. It returns how many keys it
// moved. The loop is bounded: at most 100,000 MIGRATE calls.
func (c *Cluster) MoveSlot(ctx context.Context, slot int, to *Node, batch int) (moved int, err error) {
	from, err := c.Owner(ctx, slot)
	if err != nil {
		return 0, err
	}
	if from == to {
		return 0, nil
	}
	src := from.client.Load()
	step := func(n *Node, args ...any) error {
		if err := n.client.Load().Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("redistest: cluster node %s: %v: %w", n.Addr, args, err)
		}
		return nil
	}
	if err := step(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", from.ID); err != nil {
		return 0, err
	}
	if err := step(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", to.ID); err != nil {
		return 0, err
	}
	for range 100_000 {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, batch).Result()
		if err != nil {
			return moved, fmt.Errorf("redistest: cluster node %s: CLUSTER GETKEYSINSLOT %d: %w", from.Addr, slot, err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", "127.0.0.1", strconv.Itoa(to.Port), "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			return moved, fmt.Errorf("redistest: cluster node %s: MIGRATE of %d keys to %s: %w", from.Addr, len(keys), to.Addr, err)
		}
		moved += len(keys)
	}
	// The new owner first, then the old one, then every other primary,
	// as redis-cli does.
	if err := step(to, "CLUSTER", "SETSLOT", slot, "NODE", to.ID); err != nil {
		return moved, err
	}
	if err := step(from, "CLUSTER", "SETSLOT", slot, "NODE", to.ID); err != nil {
		return moved, err
	}
	for _, n := range c.Nodes() {
		if n == from || n == to || n.Down() {
			continue
		}
		if role, err := n.Role(ctx); err == nil && role == "master" {
			if err := step(n, "CLUSTER", "SETSLOT", slot, "NODE", to.ID); err != nil {
				return moved, err
			}
		}
	}
	return moved, nil
}

// Sleep makes the node do nothing for d (DEBUG SLEEP; the node must have
// been started with --enable-debug-command yes, see WithArgs): a replica
// then acknowledges no replication, as one that is slow or cut off.
func (n *Node) Sleep(ctx context.Context, d time.Duration) error {
	// Its own connection: DEBUG SLEEP holds the reply until the end.
	cl := redis.NewClient(&redis.Options{Addr: n.Addr, ReadTimeout: d + 5*time.Second, MaxRetries: -1, PoolSize: 1, Protocol: 2})
	defer cl.Close()
	return cl.Do(ctx, "DEBUG", "SLEEP", strconv.FormatFloat(d.Seconds(), 'f', 3, 64)).Err()
}
