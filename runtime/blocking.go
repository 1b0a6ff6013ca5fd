package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Blocking pops: BRPOP for Queue, BLMOVE for ReliableQueue.
//
// A blocked pop is never abandoned: if the client gave up on it, an item
// the server popped would be written to a dead socket and lost. Instead,
// each blocking pop runs on a dedicated connection whose CLIENT ID is known,
// and the wait is ended from another connection with CLIENT UNBLOCK, after
// which BRPOP returns like a timeout, or with the item if it had one
// already. That happens when the caller's context ends, and also at the
// pop's own deadline: the server checks blocking timeouts only on its cron
// tick (1000/hz ms, 100 ms at the default hz 10), so a 10 ms BRPOP would
// otherwise return after up to 100 ms. Where CLIENT ID or CLIENT UNBLOCK
// is not allowed (an ACL user without either, or a server that lacks them;
// CLIENT UNBLOCK is tried once, on the new connection's own ID, before the
// first wait) the wait is cut into slices
// of pollSlice and the context is checked between them; there a timeout is
// as precise as the server's tick.
//
// go-redis sends a blocking timeout in whole seconds (200ms becomes 1s);
// Redis has taken decimal seconds since 6.0, so a hook on each dedicated
// connection rewrites the argument to the exact value.
//
// At most BlockingPoolSize dedicated connections exist; a pop that finds
// them all in use waits for one within its own timeout and context (not
// go-redis's pool timeout, which knows neither) and fails with
// ErrPoolExhausted if none frees up in time.

const pollSlice = 50 * time.Millisecond

type unblockSupport struct{ state atomic.Int32 } // 0 unknown, 1 yes, 2 no

func (u *unblockSupport) usable() bool { return u.state.Load() != 2 }

// blockConn is one dedicated connection for blocking pops.
type blockConn struct {
	pool    *blockPool // the server's, where it goes back
	conn    *redis.Conn
	id      int64  // CLIENT ID; 0 when CLIENT UNBLOCK cannot be used
	timeout string // exact timeout argument for the next blocking pop
	broken  bool   // saw a network error: closed, never reused
}

type exactTimeoutHook struct{ bc *blockConn }

func (h exactTimeoutHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h exactTimeoutHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h exactTimeoutHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); h.bc.timeout != "" && (name == "brpop" || name == "blmove") {
			args := cmd.Args()
			args[len(args)-1] = h.bc.timeout
		}
		return next(ctx, cmd)
	}
}

// getBlockConn returns a dedicated connection to the server that holds
// key, waiting until deadline or until ctx ends for one of the blockMax to
// be free. The caller gives it back with putBlockConn.
func (c *Connection) getBlockConn(ctx context.Context, key string, deadline time.Time) (*blockConn, error) {
	p, err := c.poolFor(ctx, key)
	if err != nil {
		return nil, err
	}
	select {
	case c.slots <- struct{}{}:
	default:
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, fmt.Errorf("%w: all %d blocking connections (BlockingPoolSize) were in use for the whole timeout", ErrPoolExhausted, c.blockMax)
		}
	}
	// A slot is held from here: every connection in free was put there
	// before its slot was given back, so at most blockMax connections
	// exist and the go-redis pool (of that size) never makes anyone wait.
	select {
	case bc := <-p.free:
		return bc, nil
	default:
	}
	// An ephemeral Conn: its Close closes the connection. (A Conn's Close
	// would put it back, open, in p.client's own pool, where a dropped
	// pool's connections would stay until Close.)
	bc := &blockConn{pool: p, conn: p.client.EphemeralConn()}
	bc.conn.AddHook(exactTimeoutHook{bc})
	// The connection is dialled by its first command, on the caller's
	// context (so that a cancel ends the dial at once).
	if err := c.prime(ctx, bc); err != nil {
		c.discardBlockConn(p, bc, err)
		return nil, callerEnded(ctx, err)
	}
	return bc, nil
}

// prime dials bc's connection with its first command, CLIENT ID, which
// CLIENT UNBLOCK needs. Where CLIENT cannot be used, the connection is
// dialled by the pop itself.
func (c *Connection) prime(ctx context.Context, bc *blockConn) error {
	if c.unblock.usable() {
		id, err := bc.conn.ClientID(ctx).Result()
		if err == nil && c.unblock.state.Load() != 1 {
			// CLIENT ID is not enough: a user may run it and not CLIENT
			// UNBLOCK. Unblocking a client that is not blocked does
			// nothing (it replies 0), so one try tells before any wait.
			err = bc.pool.unblock.ClientUnblock(ctx, id).Err()
		}
		switch {
		case err == nil:
			bc.id = id
			c.unblock.state.Store(1)
			return nil
		case isServerError(err):
			c.unblock.state.Store(2) // unknown command or NOPERM: slices instead
			return nil
		default:
			return err
		}
	}
	return nil
}

// discardBlockConn closes a connection that could not be dialled, gives
// its slot back, and drops its pool when err says the server may be gone.
func (c *Connection) discardBlockConn(p *blockPool, bc *blockConn, err error) {
	bc.conn.Close()
	<-c.slots
	if err != nil && mayBeStale(err) {
		c.dropPool(p)
		c.sawError(err)
	}
}

// putBlockConn keeps a healthy connection for the next pop and gives its
// slot back. A connection that saw a network error is closed: go-redis may
// have reconnected it under a new CLIENT ID.
func (c *Connection) putBlockConn(bc *blockConn) {
	defer func() { <-c.slots }()
	if !bc.broken && !bc.pool.dropped.Load() {
		select {
		case bc.pool.free <- bc:
			return
		default:
		}
	}
	bc.conn.Close()
}

// popFunc sends one blocking pop on conn with timeout (whole seconds; the
// hook sends the exact value) and returns the item, or redis.Nil.
type popFunc func(ctx context.Context, conn *redis.Conn, timeout time.Duration) (string, error)

// brpop blocks on key for up to timeout (> 0) or until ctx ends, and
// returns the popped item, or ok == false when nothing came. When ctx ends
// it returns ctx.Err(), unless an item had already been popped: then the
// item is returned and err is nil, because an item is never dropped.
func (c *Connection) brpop(ctx context.Context, key string, timeout time.Duration) (item []byte, ok bool, err error) {
	deadline := time.Now().Add(timeout)
	bc, err := c.getBlockConn(ctx, key, deadline)
	if err != nil {
		return nil, false, err
	}
	defer c.putBlockConn(bc)
	return c.popOn(ctx, bc, deadline, func(ctx context.Context, conn *redis.Conn, t time.Duration) (string, error) {
		res, err := conn.BRPop(ctx, t, key).Result()
		if err != nil {
			return "", err
		}
		return res[1], nil
	})
}

// blmove moves the tail of src to the head of dst as BLMOVE does, on bc,
// waiting like brpop, and returns the moved item.
func (c *Connection) blmove(ctx context.Context, bc *blockConn, src, dst string, timeout time.Duration) (item []byte, ok bool, err error) {
	return c.popOn(ctx, bc, time.Now().Add(timeout), func(ctx context.Context, conn *redis.Conn, t time.Duration) (string, error) {
		return conn.BLMove(ctx, src, dst, "RIGHT", "LEFT", t).Result()
	})
}

// popOn waits on bc until deadline, or until ctx ends, for pop to return
// an item.
func (c *Connection) popOn(ctx context.Context, bc *blockConn, deadline time.Time, pop popFunc) (item []byte, ok bool, err error) {
	for {
		wait := time.Until(deadline)
		if bc.id == 0 || !c.unblock.usable() {
			wait = min(wait, pollSlice)
		}
		if wait <= 0 {
			return nil, false, nil
		}
		item, ok, err = c.popOnce(ctx, bc, wait, pop)
		if err != nil && !isServerError(err) {
			bc.broken = true
		}
		if err != nil && mayBeStale(err) {
			// The node failed, or no longer serves the queue's slot.
			c.dropPool(bc.pool)
			c.sawError(err)
		}
		if ok || err != nil {
			return item, ok, err
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
	}
}

// popOnce sends one blocking pop with the exact timeout wait. If bc has a
// CLIENT ID, the wait is ended with CLIENT UNBLOCK when ctx ends or when
// wait has passed, whichever comes first.
func (c *Connection) popOnce(ctx context.Context, bc *blockConn, wait time.Duration, pop popFunc) (_ []byte, _ bool, err error) {
	bc.timeout = formatSeconds(wait)
	// go-redis derives the socket deadline (timeout + 10s) from the
	// duration it is given; a whole number of seconds also keeps it from
	// logging about truncation. The hook sends the exact value.
	rounded := (wait + time.Second - 1).Truncate(time.Second)

	if bc.id != 0 && c.unblock.usable() {
		// The server would end the wait on its next cron tick after wait,
		// up to 1000/hz ms late; the runtime ends it on time instead.
		until, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		done := make(chan struct{})
		unblocked := make(chan struct{})
		stop := context.AfterFunc(until, func() {
			defer close(unblocked)
			unblockUntil(bc.pool.unblock, bc.id, done, &c.unblock)
		})
		defer func() {
			close(done)
			if !stop() && (err == nil || isServerError(err)) {
				// The unblocker ran: let it finish before the connection
				// serves another pop, which it must never unblock. (A
				// connection with a network error is not reused, and its
				// unblocker ends within a read timeout by itself.)
				<-unblocked
			}
		}()
	}
	// The command itself must not be cut off by ctx: an item the server
	// popped would be lost with the connection.
	res, err := pop(context.WithoutCancel(ctx), bc.conn, rounded)
	if err == redis.Nil {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return []byte(res), true, nil
}

// unblockUntil sends CLIENT UNBLOCK id, through cl (the command client of
// the server the blocked connection is on), until it unblocks the client
// or done closes. A zero reply means the BRPOP has not reached the server yet (or
// has already returned), so it tries again shortly. A refusal (the
// user's rules changed since getBlockConn tried it) is not tried again:
// support records it, and later waits are cut into slices.
func unblockUntil(cl *redis.Client, id int64, done <-chan struct{}, support *unblockSupport) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n, err := cl.ClientUnblock(ctx, id).Result()
		cancel()
		if err == nil && n == 1 {
			return
		}
		if err != nil && isServerError(err) &&
			(strings.HasPrefix(err.Error(), "NOPERM") || strings.HasPrefix(err.Error(), "ERR unknown")) {
			support.state.Store(2)
			return
		}
		select {
		case <-done:
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// formatSeconds formats d as decimal seconds with millisecond precision,
// rounded up and at least 1ms (0 would block forever).
func formatSeconds(d time.Duration) string {
	ms := max((d+time.Millisecond-1)/time.Millisecond, 1)
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
}
