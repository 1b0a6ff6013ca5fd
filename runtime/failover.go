package runtime

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Riding through a failover.
//
// A cluster client keeps a map of which primary serves which slot. go-redis
// reloads it on its own only after a MOVED or READONLY reply, or when it is
// older than its reload interval: after a primary is killed and its replica
// promoted, it would go on dialing the dead node. So the runtime asks for a
// reload (ReloadState: at most one at a time, each at least 200ms apart in
// go-redis) after every error that says the map may be stale: a network
// error, CLUSTERDOWN, READONLY, MASTERDOWN, TRYAGAIN, a redirect, or a
// blocking pop that the server ended because its node stopped serving the
// slot (UNBLOCKED, MOVED). And it drops the blocking pool of a node that
// failed that way: its idle connections are closed, and the next blocking
// pop makes a pool for the primary the reloaded map names. A Sentinel
// group's failover client dials the current primary for every new
// connection by itself (and go-redis closes the old primary's connections
// when the sentinels announce a switch), so there is nothing to reload.
//
// Consume logs each failure through its Logger and retries with backoff
// (see Consume); a Push, Pop or Receive returns its error, and the next
// call goes to the new primary once the map names it.

// sawError reloads a cluster's slot map after err, if err says it may be
// stale.
func (c *Connection) sawError(err error) {
	if c.cluster != nil && mayBeStale(err) {
		c.cluster.ReloadState(context.Background())
	}
}

// mayBeStale reports whether err says that the node a command went to may
// no longer serve its slot: the connection failed, or a reply says so.
func mayBeStale(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrUnknownOutcome) {
		return true
	}
	return isServerError(err) && stateReply(err)
}

// stateReply reports a reply that says the cluster's shape changed under
// the command.
func stateReply(err error) bool {
	if moved, ask := redirect(err); moved != "" || ask != "" {
		return true
	}
	var re redis.Error
	return notRun(err) || errors.As(err, &re) && strings.HasPrefix(re.Error(), "UNBLOCKED")
}

// dropPool forgets p, the blocking pool of a cluster node that failed or
// stopped serving the slot a pop waited on, and closes its idle
// connections; connections of it still in use are closed when they come
// back (putBlockConn). Close closes its client.
func (c *Connection) dropPool(p *blockPool) {
	if c.cluster == nil || p == nil {
		return
	}
	c.poolsMu.Lock()
	if c.pools[p.addr] != p {
		c.poolsMu.Unlock()
		return
	}
	delete(c.pools, p.addr)
	p.dropped.Store(true)
	c.dropped = append(c.dropped, p)
	c.poolsMu.Unlock()
	for {
		select {
		case bc := <-p.free:
			bc.conn.Close()
		default:
			return
		}
	}
}
