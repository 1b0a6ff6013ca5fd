package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Connection manages the Redis clients of a DataStore: one pool for
// ordinary commands and, apart from it, one for blocking pops (for a
// cluster, one per primary, made when a pop first needs it). They are made
// on first use, not by New, so that building a DataStore never fails for
// want of a server, and none dials before a command needs it.
type Connection struct {
	make     func() redis.UniversalClient // makes the client the options name; nil when the caller brought one
	own      redis.UniversalClient        // the caller's Client
	blockMax int

	open    sync.Once // makes the clients on first use
	client  redis.UniversalClient
	cluster *redis.ClusterClient // client, when it is a cluster's
	pool    *blockPool           // the blocking pool, when client is not a cluster's
	poolsMu sync.Mutex           // guards pools
	pools   map[string]*blockPool
	slots   chan struct{} // one token per dedicated connection in use; cap blockMax

	mu       sync.RWMutex // calls hold it shared to register; Close exclusively
	closed   bool
	inflight sync.WaitGroup
	done     func() // inflight.Done, bound once: acquire is on every call's path

	closing context.Context // done once Close has begun
	close   context.CancelFunc

	retryOnce sync.Once     // computes retry, from the command client's options
	retry     time.Duration // retryWindow

	local   localCaches // localcache.go
	noLocal bool        // Options.DisableLocalCaches

	wait    waitSetting  // Options.WaitReplicas and WaitTimeout (durability.go)
	dropped []*blockPool // pools of nodes that stopped being primaries, closed by Close (failover.go); guarded by poolsMu

	unblock        unblockSupport
	shebangRefused atomic.Bool // the server refused #!lua (scripts.go)
}

func newConnection(o Options, co *clientOptions) *Connection {
	c := &Connection{make: o.clientMaker(co), own: o.Client, blockMax: o.BlockingPoolSize, noLocal: o.DisableLocalCaches,
		wait: o.waitSetting()}
	if c.blockMax == 0 {
		c.blockMax = DefaultBlockingPoolSize
	}
	c.closing, c.close = context.WithCancel(context.Background())
	c.done = c.inflight.Done
	return c
}

// retryWindow is how long go-redis may go on sending one command again
// after losing its reply: every try may wait for a pooled connection,
// dial one, and wait out the write and read timeouts, then a back-off. It
// is read from the options of the command client as go-redis filled them
// in (defaults applied: in v9.23, a 6 s pool timeout, a 5 s dial timeout,
// 5 s read and write timeouts, 3 retries and a back-off of up to 1 s, so
// 88 s). A timeout of zero
// or less there means none, taken as a minute: a receipt (reliable.go)
// must outlive the window, and cannot live forever. The clients must have
// been made (acquire).
func (c *Connection) retryWindow() time.Duration {
	c.retryOnce.Do(func() {
		cl, ok := c.client.(*redis.Client)
		if !ok {
			c.retry = 2 * time.Minute
			return
		}
		o := cl.Options()
		timeout := func(d time.Duration) time.Duration {
			if d <= 0 {
				return time.Minute
			}
			return d
		}
		tries := time.Duration(max(o.MaxRetries, 0) + 1)
		try := timeout(o.PoolTimeout) + timeout(o.DialTimeout) + timeout(o.WriteTimeout) + timeout(o.ReadTimeout) + max(o.MaxRetryBackoff, 0)
		c.retry = min(tries*try, 2*time.Minute)
	})
	return c.retry
}

// acquire returns the command client for one operation and registers the
// operation, so that Close waits for it. release must be called when the
// operation ends.
func (c *Connection) acquire() (redis.UniversalClient, func(), error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, nil, ErrClosed
	}
	c.open.Do(c.makeClients)
	c.inflight.Add(1)
	return c.client, c.done, nil
}

func (c *Connection) makeClients() {
	c.slots = make(chan struct{}, c.blockMax)
	cl := c.own
	if cl == nil {
		cl = c.make()
	}
	switch cl := cl.(type) {
	case *redis.ClusterClient:
		c.client, c.cluster = cl, cl
		c.pools = map[string]*blockPool{}
	case *redis.Client:
		c.client = cl
		c.pool = c.newBlockPool(cl)
	}
}

// blockPool is the dedicated connections for blocking pops on one server:
// the only one, or one primary of a cluster.
type blockPool struct {
	addr    string          // the server's address
	dropped atomic.Bool     // the node failed: no connection goes back to free (failover.go)
	client  *redis.Client   // makes the connections: the server's options, PoolSize blockMax, no retries
	unblock *redis.Client   // the server's command client, which sends CLIENT UNBLOCK
	free    chan *blockConn // idle connections, up to blockMax
}

func (c *Connection) newBlockPool(cmd *redis.Client) *blockPool {
	bo := *cmd.Options()
	return &blockPool{addr: bo.Addr, client: c.newBlockingClient(&bo), unblock: cmd, free: make(chan *blockConn, c.blockMax)}
}

// poolFor returns the blocking pool of the server that holds key: the one
// server, or the cluster primary that owns key's slot. The clients must
// have been made (acquire).
func (c *Connection) poolFor(ctx context.Context, key string) (*blockPool, error) {
	if c.cluster == nil {
		return c.pool, nil
	}
	node, err := c.cluster.MasterForKey(ctx, key)
	if err != nil {
		return nil, err
	}
	addr := node.Options().Addr
	c.poolsMu.Lock()
	defer c.poolsMu.Unlock()
	p := c.pools[addr]
	if p == nil {
		p = c.newBlockPool(node)
		c.pools[addr] = p
	}
	return p, nil
}

// untilClose returns ctx, also cancelled when Close begins, for waits that
// Close must end: blocking pops.
func (c *Connection) untilClose(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.closing, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

func (c *Connection) newBlockingClient(o *redis.Options) *redis.Client {
	o.PoolSize = c.blockMax
	// A BRPOP that go-redis retried after a network error would run on a
	// new connection, which CLIENT UNBLOCK does not know, and wait its whole
	// timeout again: the error goes to the caller instead.
	o.MaxRetries = -1
	// The maintenance-notification handshake writes the shared options of
	// every per-pop *redis.Conn without a common lock (a data race under
	// -race); blocking connections have no use for it.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// Idle blocking connections are kept in c.free; the pool itself keeps
	// none of its own beyond them.
	o.MinIdleConns = 0
	return redis.NewClient(o)
}

// call runs one operation's commands through fn with the command client,
// registered so that Close waits for it, and returns fn's error as an *Error
// for op and key. fn reports a miss (redis.Nil) itself, not as an error.
func (c *Connection) call(op, key string, fn func(redis.UniversalClient) error) error {
	cl, release, err := c.acquire()
	if err != nil {
		return opError(op, key, err)
	}
	defer release()
	err = fn(cl)
	c.sawError(err)
	return opError(op, key, mapErr(err))
}

// Ping connects if needed and checks that the server answers, as the
// Python storage layer's ensure_connection does. It is never required
// before other calls; its errors read "storagegen: ping: …".
func (c *Connection) Ping(ctx context.Context) error {
	return c.call("ping", "", func(cl redis.UniversalClient) error { return cl.Ping(ctx).Err() })
}

// Close ends blocked pops (they return ErrClosed), waits for calls in
// flight, and closes the clients the DataStore made. It is idempotent.
func (c *Connection) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.close()
	c.inflight.Wait()

	errs := []error{c.closeLocal()}
	pools := []*blockPool{c.pool}
	c.poolsMu.Lock()
	for _, p := range c.pools {
		pools = append(pools, p)
	}
	pools = append(pools, c.dropped...)
	c.poolsMu.Unlock()
	for _, p := range pools {
		if p == nil {
			continue
		}
		close(p.free)
		for bc := range p.free {
			errs = append(errs, bc.conn.Close())
		}
		errs = append(errs, p.client.Close())
	}
	if c.client != nil && c.own == nil {
		errs = append(errs, c.client.Close())
	}
	return errors.Join(errs...)
}

// mapErr turns errors from a closing go-redis client into ErrClosed, a
// server's OOM reply into one that also wraps ErrOutOfMemory, and a
// permission refusal into one that also wraps ErrPermission.
func mapErr(err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return ErrClosed
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return err
	}
	switch msg := re.Error(); {
	case strings.HasPrefix(msg, "OOM ") && !errors.Is(err, ErrOutOfMemory):
		return fmt.Errorf("%w: %w", ErrOutOfMemory, err)
	case (strings.HasPrefix(msg, "NOPERM") || strings.HasPrefix(msg, "ERR The user executing the script can't")) &&
		!errors.Is(err, ErrPermission):
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

// unfixableReplies start the error replies that a retry of the same call,
// with the same credentials, cannot change: a wrong password, a missing
// AUTH, a permission the ACL user lacks (Redis 7 words it differently
// inside a script), a command the server does not know or has renamed away.
var unfixableReplies = []string{
	"WRONGPASS", "NOAUTH", "NOPERM",
	"ERR The user executing the script can't",
	"ERR unknown command", "ERR Unknown Redis command called from script",
}

// isUnfixable reports whether err is such a reply.
func isUnfixable(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	for _, p := range unfixableReplies {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// isServerError reports whether err is an error reply from Redis, after
// which the connection is still usable.
func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.Nil)
}
