package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Durability: Options.WaitReplicas.
//
// Redis replicates asynchronously: a write is acknowledged by its primary
// before any replica has it, and a replica promoted after the primary dies
// lacks what had not reached it. With WaitReplicas set, every push, ack,
// nack and cache Set is followed by WAIT numreplicas timeout, which
// returns how many replicas have acknowledged everything the connection
// wrote so far. So the WAIT must go on the very connection that sent the
// write: it is sent in the same pipeline, on one connection of the
// primary's own client (for a cluster, the node client MasterForKey
// returns: a keyless WAIT in a ClusterClient pipeline would go wherever
// go-redis's shard picker or the command's routing policy sends it, not
// to the node of the write). Redirects (MOVED, ASK), TRYAGAIN, CLUSTERDOWN,
// READONLY, LOADING and NOSCRIPT are replies to a command that did not
// run, so the write is sent again, to the node they name, up to
// durableTries times; a write whose reply is lost is not sent again
// (ErrUnknownOutcome), since a second run that finds its work done writes
// nothing, and a WAIT after it would prove nothing about the first.

// ErrNotReplicated means a write (a push, an ack or nack, a cache Set) was
// applied on the primary, but fewer than Options.WaitReplicas replicas
// acknowledged it within Options.WaitTimeout, or the WAIT's reply was
// lost. The write stands on the primary; it is lost only if the primary
// fails before it reaches a replica that is then promoted. An
// at-least-once push may be sent again with the same ID (PushID): it is
// stored once.
var ErrNotReplicated = errors.New("not replicated")

const (
	// DefaultWaitTimeout is Options.WaitTimeout's default.
	DefaultWaitTimeout = time.Second
	// waitMargin is how much of the client's ReadTimeout a WAIT leaves for
	// the round trip.
	waitMargin = time.Second
	// durableTries bounds the runs of one durable write whose replies say
	// it did not run (redirects, TRYAGAIN, CLUSTERDOWN, NOSCRIPT, …).
	durableTries = 6
)

// waitSetting is Options.WaitReplicas and WaitTimeout, checked and
// defaulted.
type waitSetting struct {
	replicas int
	timeout  time.Duration
}

func (w waitSetting) on() bool { return w.replicas > 0 }

func (o Options) waitSetting() waitSetting {
	w := waitSetting{replicas: o.WaitReplicas, timeout: o.WaitTimeout}
	if w.replicas > 0 && w.timeout == 0 {
		w.timeout = DefaultWaitTimeout
	}
	return w
}

// checkWait reports, through bad, what is wrong with the durability
// options.
func (o Options) checkWait(bad func(string, ...any)) {
	switch {
	case o.WaitReplicas < 0:
		bad("WaitReplicas %d is negative", o.WaitReplicas)
	case o.WaitTimeout < 0:
		bad("WaitTimeout %v is negative", o.WaitTimeout)
	case o.WaitTimeout > 0 && o.WaitReplicas == 0:
		bad("WaitTimeout %v without WaitReplicas", o.WaitTimeout)
	case o.WaitTimeout > 0 && o.WaitTimeout < time.Millisecond:
		bad("WaitTimeout %v is below 1ms (WAIT 0 waits forever)", o.WaitTimeout)
	}
}

// durableWrite is one write sent with a WAIT after it.
type durableWrite struct {
	key    string        // a key the write touches: its slot names the primary
	cmds   []redis.Cmder // sent in order before the WAIT; cmds[0] is the write
	script *script       // cmds[0] runs it with EVALSHA; loaded on NOSCRIPT

	unsent error // why nothing was sent (cmds[0] has no reply then)
	err    error // after a successful write: why it is not known to be replicated (ErrNotReplicated)

	node *redis.Client // where the next run goes; nil: the key's primary
	ask  bool          // the next run is preceded by ASKING (an ASK redirect)
}

// outcome is the error for the write's caller: sent turns the write's own
// error into the caller's (sentError); then unsent, then err.
func (w *durableWrite) outcome(sent func(error) error) error {
	if w.unsent != nil {
		return w.unsent
	}
	if err := sent(w.cmds[0].Err()); err != nil {
		return err
	}
	return w.err
}

// onceCmd is a script's command that must not be sent twice.
type onceCmd struct{ *redis.Cmd }

func (onceCmd) NoRetry() bool { return true }

// runDurable runs s as a durable write (EVALSHA, then fences, then WAIT)
// and returns its command, whose reply is set when the script ran, and the
// error for the caller: wrapping ErrNotReplicated when it ran and fewer
// replicas acknowledged it.
func (c *Connection) runDurable(ctx context.Context, cl redis.UniversalClient, s *script, keys []string, args []any, fences ...redis.Cmder) (*redis.Cmd, error) {
	rs := s.shebang
	if c.shebangRefused.Load() {
		rs = s.noFlags
	}
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", rs.Hash(), len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	cmd := redis.NewCmd(ctx, cmdArgs...)
	w := &durableWrite{key: keys[0], cmds: append([]redis.Cmder{onceCmd{cmd}}, fences...), script: s}
	c.sendDurable(ctx, cl, []*durableWrite{w})
	return cmd, w.outcome(sentError)
}

// runSettling runs s, an ack or nack script, as s.run does, or with
// WaitReplicas as a durable write. The command's own error is in cmd; the
// second result, apart, wraps ErrNotReplicated when the script ran and
// fewer replicas acknowledged it.
func (c *Connection) runSettling(ctx context.Context, cl redis.UniversalClient, s *script, keys []string, args []any) (cmd *redis.Cmd, notReplicated error) {
	if !c.wait.on() {
		return s.run(ctx, c, cl, keys, args...), nil
	}
	cmd, err := c.runDurable(ctx, cl, s, keys, args)
	if err != nil && !errors.Is(err, ErrNotReplicated) {
		cmd.SetErr(err) // not run, or its reply lost
		return cmd, nil
	}
	return cmd, err
}

// sendWrites sends cmds, which write keys[i] each and must not be sent
// twice, on cl: as sendBatch does, or, with WaitReplicas, as durable
// writes. It returns nil, or, for each command, the error to give its
// callers after its own (sentError of its reply): why it was not sent, or
// why it is not known to be replicated.
func (c *Connection) sendWrites(ctx context.Context, cl redis.UniversalClient, keys []string, cmds []redis.Cmder) []error {
	if !c.wait.on() {
		sendBatch(ctx, cl, cmds)
		return nil
	}
	ws := make([]*durableWrite, len(cmds))
	for i, cmd := range cmds {
		ws[i] = &durableWrite{key: keys[i], cmds: []redis.Cmder{cmd}}
	}
	c.sendDurable(ctx, cl, ws)
	errs := make([]error, len(ws))
	for i, w := range ws {
		errs[i] = w.unsent
		if errs[i] == nil && w.cmds[0].Err() == nil {
			errs[i] = w.err
		}
	}
	return errs
}

// sendDurable sends ws, grouped by the primary that takes them, each group
// as one pipeline on one connection with one WAIT at its end; groups on
// several primaries go at once. Writes refused with a reply that says
// they did not run are sent again where the reply says, up to
// durableTries runs.
func (c *Connection) sendDurable(ctx context.Context, cl redis.UniversalClient, ws []*durableWrite) {
	pending := ws
	for try := 1; ; try++ {
		groups := map[*redis.Client][]*durableWrite{}
		var nodes []*redis.Client
		for _, w := range pending {
			node := w.node
			if node == nil {
				var err error
				if node, err = primaryFor(ctx, cl, w.key); err != nil {
					w.unsent = err
					c.sawError(err)
					continue
				}
			}
			if groups[node] == nil {
				nodes = append(nodes, node)
			}
			groups[node] = append(groups[node], w)
		}
		var mu sync.Mutex
		var again []*durableWrite
		backoff := false
		send := func(node *redis.Client) {
			retry, slow := c.sendDurableOn(ctx, cl, node, groups[node])
			mu.Lock()
			again, backoff = append(again, retry...), backoff || slow
			mu.Unlock()
		}
		if len(nodes) == 1 {
			send(nodes[0])
		} else {
			var wg sync.WaitGroup
			for _, node := range nodes {
				wg.Go(func() { send(node) })
			}
			wg.Wait()
		}
		if len(again) == 0 || try == durableTries || ctx.Err() != nil {
			return // the last refusal stays in each command
		}
		if backoff {
			sleep(ctx, min(10*time.Millisecond<<try, 500*time.Millisecond))
		}
		pending = again
	}
}

// primaryFor returns the client of the server that takes writes to key:
// cl itself, or for a cluster the node client of the key's primary.
func primaryFor(ctx context.Context, cl redis.UniversalClient, key string) (*redis.Client, error) {
	switch cl := cl.(type) {
	case *redis.ClusterClient:
		return cl.MasterForKey(ctx, key)
	case *redis.Client:
		return cl, nil
	}
	return nil, fmt.Errorf("%w: a %T cannot take durable writes", ErrInvalidArgument, cl)
}

// sendDurableOn sends group, whose writes all go to node, as one
// pipeline: each write (after ASKING, for an ASK redirect), then WAIT. It
// returns the writes to send again, and whether to back off first.
func (c *Connection) sendDurableOn(ctx context.Context, cl redis.UniversalClient, node *redis.Client, group []*durableWrite) (again []*durableWrite, backoff bool) {
	if rt := node.Options().ReadTimeout; rt > 0 && c.wait.timeout+waitMargin > rt {
		err := fmt.Errorf("%w: WaitTimeout %v must be at least %v below the client's ReadTimeout %v, within which WAIT's reply must come",
			ErrInvalidArgument, c.wait.timeout, waitMargin, rt)
		for _, w := range group {
			w.unsent = err
		}
		return nil, false
	}
	ms := max((c.wait.timeout+time.Millisecond-1)/time.Millisecond, 1)
	pipe := node.Pipeline()
	for _, w := range group {
		w.err = nil
		for _, cmd := range w.cmds {
			if w.ask {
				_ = pipe.Process(ctx, redis.NewStatusCmd(ctx, "asking"))
			}
			_ = pipe.Process(ctx, cmd)
		}
	}
	wait := redis.NewIntCmd(ctx, "wait", c.wait.replicas, int64(ms))
	_ = pipe.Process(ctx, wait)
	_, _ = pipe.Exec(ctx)

	for _, w := range group {
		err := w.cmds[0].Err()
		if err == nil {
			n, werr := wait.Result()
			switch {
			case werr != nil:
				c.sawError(werr)
				w.err = fmt.Errorf("%w: the write was applied on the primary, and its WAIT failed: %w", ErrNotReplicated, mapErr(werr))
			case n < int64(c.wait.replicas):
				w.err = fmt.Errorf("%w: %d of %d replicas acknowledged the write within %v; it was applied on the primary",
					ErrNotReplicated, n, c.wait.replicas, c.wait.timeout)
			}
			continue
		}
		if !isServerError(err) {
			c.sawError(err) // lost after sending: not sent again
			continue
		}
		moved, ask := redirect(err)
		switch {
		case moved != "" || ask != "":
			addr := moved + ask
			c.sawError(err)
			if w.node, w.ask = nodeAt(ctx, cl, addr), ask != ""; w.node == nil {
				w.ask, backoff = false, true // not in the map yet: the key's primary, after the reload
			}
		case strings.HasPrefix(err.Error(), "NOSCRIPT") && w.script != nil:
			if lerr := c.loadScript(ctx, node, w); lerr != nil {
				w.unsent = lerr
				continue
			}
			w.node = node // ASK stays as it was
		case notRun(err):
			c.sawError(err)
			w.node, w.ask, backoff = nil, false, true
		default:
			continue // refused for good: the reply goes to the caller
		}
		again = append(again, w)
	}
	return again, backoff
}

// redirect returns the address of a MOVED or of an ASK reply.
func redirect(err error) (moved, ask string) {
	if addr, ok := redis.IsMovedError(err); ok {
		return addr, ""
	}
	if addr, ok := redis.IsAskError(err); ok {
		return "", addr
	}
	return "", ""
}

// notRun reports replies to a command that did not run and may run if
// sent again, soon or to another node: TRYAGAIN (a multi-key command on a
// slot being migrated, with its keys split between the nodes; Redis
// refuses it before running it), CLUSTERDOWN, READONLY (a primary turned
// replica), MASTERDOWN and LOADING.
func notRun(err error) bool {
	return redis.IsTryAgainError(err) || redis.IsClusterDownError(err) || redis.IsReadOnlyError(err) ||
		redis.IsMasterDownError(err) || redis.IsLoadingError(err)
}

// nodeAt returns the cluster's node client for addr, after reloading the
// slot map (ForEachShard reloads it before it runs), or nil.
func nodeAt(ctx context.Context, cl redis.UniversalClient, addr string) *redis.Client {
	cc, ok := cl.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	var mu sync.Mutex
	var found *redis.Client
	_ = cc.ForEachShard(ctx, func(_ context.Context, n *redis.Client) error {
		if n.Options().Addr == addr {
			mu.Lock()
			found = n
			mu.Unlock()
		}
		return nil
	})
	return found
}

// loadScript loads w's script on node, in the form node accepts (see
// script.run), and points w's EVALSHA at it.
func (c *Connection) loadScript(ctx context.Context, node *redis.Client, w *durableWrite) error {
	if !c.shebangRefused.Load() {
		err := w.script.shebang.Load(ctx, node).Err()
		if err == nil || !isShebangRefusal(err) {
			return mapErr(err)
		}
		c.shebangRefused.Store(true)
	}
	w.cmds[0].Args()[1] = w.script.noFlags.Hash()
	return mapErr(w.script.noFlags.Load(ctx, node).Err())
}
