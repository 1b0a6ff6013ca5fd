package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Option configures StartCluster and StartSentinel.
type Option func(*topoOptions)

type topoOptions struct {
	args        []string
	nodeTimeout time.Duration
	wait        time.Duration
	tls         bool     // WithTLS
	tlsNames    []string // the names of the servers' certificate
}

func newTopoOptions(opts []Option) topoOptions {
	o := topoOptions{nodeTimeout: 2 * time.Second, wait: 60 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithArgs adds redis-server arguments (such as "--appendonly", "yes") to
// every data node; sentinels do not get them.
func WithArgs(args ...string) Option {
	return func(o *topoOptions) { o.args = append(o.args, args...) }
}

// WithNodeTimeout sets how long a node may be unreachable before it is
// taken for down: cluster-node-timeout in a cluster, down-after-milliseconds
// in a Sentinel group. The default, 2s, keeps a loaded machine from
// failing over by accident; failover tests that kill a node may lower it.
func WithNodeTimeout(d time.Duration) Option {
	return func(o *topoOptions) { o.nodeTimeout = d }
}

// WithStartTimeout bounds how long StartCluster and StartSentinel wait for
// the topology to form (default 60s, for a loaded machine; it usually
// takes a few seconds).
func WithStartTimeout(d time.Duration) Option {
	return func(o *topoOptions) { o.wait = d }
}

// WithTLS makes every node and sentinel of the topology speak TLS only,
// with the certificates of a NewTLS(names...) that the topology's TLS
// field holds: every server requires a client certificate signed by the CA
// (tls-auth-clients yes); a cluster's bus and every replication link run
// over TLS too (tls-cluster, tls-replication), and sentinels reach the
// data nodes and each other over TLS. Redis checks the chain of a
// certificate presented to it, not its names, so a certificate whose
// names do not match 127.0.0.1 still forms the topology: a test of name
// checks gives names here. The harness's own connections use the
// certificate's first name as their server name.
func WithTLS(names ...string) Option {
	return func(o *topoOptions) {
		o.tls = true
		o.tlsNames = append(o.tlsNames, names...)
	}
}

// newTLS makes the topology's certificates, nil without WithTLS.
func (o topoOptions) newTLS() (*TLS, error) {
	if !o.tls {
		return nil, nil
	}
	return NewTLS(o.tlsNames...)
}

// listenArgs are the arguments that make a topology's server listen on
// port: in plain text, or with TLS only (t not nil) and replication over
// TLS.
func listenArgs(t *TLS, port int) []string {
	if t == nil {
		return []string{"--port", strconv.Itoa(port)}
	}
	return append(t.serverArgs(port), "--tls-replication", "yes")
}

// harnessTLS is the configuration of the harness's connections to a
// topology's servers: nil in plain text.
func harnessTLS(t *TLS) *tls.Config {
	if t == nil {
		return nil
	}
	return t.harnessConfig()
}

// dataArgs are the arguments of every data node of a topology: a primary
// sends its data to a new replica at once (the default waits 5s for more
// replicas to share the transfer), and pings its replicas every second,
// not 10: a cluster lists a replica in CLUSTER SLOTS only once its
// replication offset is not 0, which an idle primary's pings make so.
var dataArgs = []string{"--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1"}

// Node is one redis-server of a topology: a cluster node, a data node or
// a sentinel of a Sentinel group. Its role may change (a failover); Role
// asks the server.
type Node struct {
	*Server
	ID      string // the cluster node ID; empty outside a cluster
	client  atomic.Pointer[redis.Client]
	down    atomic.Bool
	onStart func(*Node) error // settings that do not outlive the process
}

func newNode(s *Server) *Node {
	n := &Node{Server: s}
	n.client.Store(nodeClient(s.Addr, s.tls))
	return n
}

// nodeClient is the harness's own connection to a node, for its checks:
// short timeouts, no retries, and TLS when tlsConf is not nil.
func nodeClient(addr string, tlsConf *tls.Config) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, TLSConfig: tlsConf, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRetries: -1, PoolSize: 2, Protocol: 2,
	})
}

// Kill ends the node with SIGKILL, as a crash would; the topology's Wait
// leaves it out until Restart.
func (n *Node) Kill() error {
	n.down.Store(true)
	return n.Server.Kill()
}

// Restart starts the node again on the same port and directory (a cluster
// node keeps its nodes.conf, so its identity), after Kill.
func (n *Node) Restart() error {
	if err := n.Server.Restart(); err != nil {
		return err
	}
	n.client.Swap(nodeClient(n.Addr, n.Server.tls)).Close() // drop the connections to the killed process
	n.down.Store(false)
	if n.onStart != nil {
		return n.onStart(n)
	}
	return nil
}

// Down reports whether the node was killed and not restarted.
func (n *Node) Down() bool { return n.down.Load() }

// Role returns the node's role as its ROLE command says now: "master",
// "slave" or "sentinel".
func (n *Node) Role(ctx context.Context) (string, error) {
	r, err := n.role(ctx)
	if err != nil {
		return "", err
	}
	return r.kind, nil
}

type roleReply struct {
	kind       string // master, slave, sentinel
	masterAddr string // of a slave
	state      string // of a slave: connected when its link is up
	replicas   []string
}

func (n *Node) role(ctx context.Context) (roleReply, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := n.client.Load().Do(ctx, "ROLE").Slice()
	if err != nil {
		return roleReply{}, fmt.Errorf("%s: ROLE: %w", n.Addr, err)
	}
	if len(v) == 0 {
		return roleReply{}, fmt.Errorf("%s: ROLE: empty reply", n.Addr)
	}
	var r roleReply
	r.kind, _ = v[0].(string)
	switch r.kind {
	case "master":
		if len(v) >= 3 {
			reps, _ := v[2].([]any)
			for _, rep := range reps {
				f, _ := rep.([]any)
				if len(f) >= 2 {
					r.replicas = append(r.replicas, fmt.Sprintf("%v:%v", f[0], f[1]))
				}
			}
		}
	case "slave":
		if len(v) >= 4 {
			r.masterAddr = fmt.Sprintf("%v:%v", v[1], v[2])
			r.state, _ = v[3].(string)
		}
	}
	return r, nil
}

func (n *Node) close() error {
	n.client.Load().Close()
	return n.Server.Close()
}

func closeNodes(nodes []*Node) error {
	var errs []error
	for _, n := range nodes {
		if n == nil {
			continue
		}
		if err := n.close(); err != nil && !n.Down() {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitFor calls check until it returns nil or timeout passes, and then
// returns check's last error: it says which node is in which state.
func waitFor(what string, timeout time.Duration, check func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var err error
	for i := 0; ; i++ {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err = check(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: %s not ready after %v: %w", what, timeout, err)
		}
		time.Sleep(min(50*time.Millisecond*time.Duration(i+1), 250*time.Millisecond))
	}
}

// addrsOf returns the nodes' addresses.
func addrsOf(nodes []*Node) []string {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	return addrs
}
