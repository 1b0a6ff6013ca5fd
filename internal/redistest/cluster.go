package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three primaries and three replicas on
// 127.0.0.1, each node a redis-server with its own directory and
// nodes.conf. It is formed with the cluster's own commands (CLUSTER
// ADDSLOTS, MEET, REPLICATE), as redis-cli --cluster create does, so
// that no other binary is needed.
type Cluster struct {
	// Primaries and Replicas as formed: Primaries[i] serves the slots
	// Slots(i) and Replicas[i] replicates it. A failover swaps roles: a
	// node's Role and Owner ask the servers.
	Primaries []*Node
	Replicas  []*Node
	// TLS holds the certificates of a cluster started WithTLS; nil
	// otherwise.
	TLS *TLS
}

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Slots returns the first and last slot that primary i served when the
// cluster was formed.
func (c *Cluster) Slots(i int) (first, last int) {
	return i * clusterSlots / 3, (i+1)*clusterSlots/3 - 1
}

// Nodes returns every node: the primaries as formed, then the replicas.
func (c *Cluster) Nodes() []*Node { return append(slices.Clone(c.Primaries), c.Replicas...) }

// Addrs returns every node's address, for a cluster client's seeds.
func (c *Cluster) Addrs() []string { return addrsOf(c.Nodes()) }

// StartCluster starts six cluster nodes on free loopback ports, forms a
// cluster of three primaries (a third of the slots each) with one replica
// each, and returns once every node says cluster_state:ok with every slot
// served, every replica's link is up and every node sees the same slot
// owners and replicas (see Wait).
func StartCluster(opts ...Option) (*Cluster, error) {
	o := newTopoOptions(opts)
	bin, err := execLookPath()
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	if c.TLS, err = o.newTLS(); err != nil {
		return nil, err
	}
	formed := false
	defer func() {
		if !formed {
			c.Close()
		}
	}()
	for i := range 6 {
		n, err := startClusterNode(bin, o, c.TLS)
		if err != nil {
			return nil, fmt.Errorf("redistest: cluster node %d of 6: %w", i+1, err)
		}
		if i < 3 {
			c.Primaries = append(c.Primaries, n)
		} else {
			c.Replicas = append(c.Replicas, n)
		}
	}
	if err := c.form(o); err != nil {
		return nil, err
	}
	if err := c.Wait(o.wait); err != nil {
		return nil, err
	}
	formed = true
	return c, nil
}

func startClusterNode(bin string, o topoOptions, t *TLS) (*Node, error) {
	dir, err := os.MkdirTemp("", "redistest-cluster-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nodes.conf")
	s, err := startIn(bin, dir, nil, func(port int) ([]string, error) {
		// The bus port is given rather than port+10000, which may
		// be taken or above 65535.
		bus, err := freePortNot(port)
		if err != nil {
			return nil, err
		}
		os.Remove(conf) // from an attempt on a port that was taken
		args := listenArgs(t, port)
		if t != nil {
			args = append(args, "--tls-cluster", "yes")
		}
		return append(append(args,
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-enabled", "yes", "--cluster-config-file", conf,
			"--cluster-node-timeout", strconv.FormatInt(o.nodeTimeout.Milliseconds(), 10),
			// A replica may always take over (the default refuses one
			// that lost its link for long, which a slow machine makes
			// likely), and replicas stay where they were put.
			"--cluster-replica-validity-factor", "0",
			"--cluster-allow-replica-migration", "no",
		), append(dataArgs, o.args...)...), nil
	}, harnessTLS(t))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return newNode(s), nil
}

func freePortNot(port int) (int, error) {
	for range 10 {
		p, err := freePort()
		if err != nil || p != port {
			return p, err
		}
	}
	return 0, fmt.Errorf("redistest: no free port other than %d", port)
}

// busPort returns the node's cluster bus port, from its command line.
func (n *Node) busPort() string {
	if i := slices.Index(n.args, "--cluster-port"); i >= 0 && i+1 < len(n.args) {
		return n.args[i+1]
	}
	return ""
}

func (c *Cluster) form(o topoOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.wait)
	defer cancel()
	nodes := c.Nodes()
	for i, n := range nodes {
		cl := n.client.Load()
		id, err := cl.ClusterMyID(ctx).Result()
		if err != nil {
			return fmt.Errorf("redistest: cluster node %s: CLUSTER MYID: %w", n.Addr, err)
		}
		n.ID = id
		// Distinct epochs from the start, as redis-cli gives them: no
		// collisions for the nodes to resolve.
		if err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("redistest: cluster node %s: CLUSTER SET-CONFIG-EPOCH: %w", n.Addr, err)
		}
	}
	for i, p := range c.Primaries {
		first, last := c.Slots(i)
		if err := p.client.Load().ClusterAddSlotsRange(ctx, first, last).Err(); err != nil {
			return fmt.Errorf("redistest: cluster node %s: CLUSTER ADDSLOTS %d-%d: %w", p.Addr, first, last, err)
		}
	}
	for _, n := range nodes[1:] {
		if err := nodes[0].client.Load().Do(ctx, "CLUSTER", "MEET", "127.0.0.1", n.Port, n.busPort()).Err(); err != nil {
			return fmt.Errorf("redistest: cluster node %s: CLUSTER MEET %s: %w", nodes[0].Addr, n.Addr, err)
		}
	}
	err := waitFor("cluster handshake", o.wait, func(ctx context.Context) error {
		for _, n := range nodes {
			if err := n.knowsAll(ctx, nodes); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, r := range c.Replicas {
		if err := r.client.Load().ClusterReplicate(ctx, c.Primaries[i].ID).Err(); err != nil {
			return fmt.Errorf("redistest: cluster node %s: CLUSTER REPLICATE %s (%s): %w", r.Addr, c.Primaries[i].ID, c.Primaries[i].Addr, err)
		}
	}
	return nil
}

// knowsAll checks that n's CLUSTER NODES lists every node of nodes,
// connected and out of handshake.
func (n *Node) knowsAll(ctx context.Context, nodes []*Node) error {
	out, err := n.client.Load().ClusterNodes(ctx).Result()
	if err != nil {
		return fmt.Errorf("cluster node %s: CLUSTER NODES: %w", n.Addr, err)
	}
	lines := map[string][]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) >= 8 {
			lines[f[0]] = f
		}
	}
	for _, m := range nodes {
		f, ok := lines[m.ID]
		switch {
		case !ok:
			return fmt.Errorf("cluster node %s does not know node %s (%s) yet", n.Addr, m.Addr, m.ID)
		case strings.Contains(f[2], "handshake") || strings.Contains(f[2], "fail") || strings.Contains(f[2], "noaddr"):
			return fmt.Errorf("cluster node %s sees node %s with flags %s", n.Addr, m.Addr, f[2])
		case m != n && f[7] != "connected":
			return fmt.Errorf("cluster node %s: its link to node %s is %s", n.Addr, m.Addr, f[7])
		}
	}
	return nil
}

// Wait waits, at most timeout, until the cluster is whole again (after a
// failover or a Restart): every node not killed says cluster_state:ok
// with every slot served; every replica's link to its primary is up; and
// every node's CLUSTER SLOTS names the same primaries, each a running
// node whose ROLE is master, with exactly the running replicas of each.
// Its error says which node is in which state.
func (c *Cluster) Wait(timeout time.Duration) error {
	return waitFor("cluster", timeout, c.check)
}

func (c *Cluster) check(ctx context.Context) error {
	var live []*Node
	for _, n := range c.Nodes() {
		if !n.Down() {
			live = append(live, n)
		}
	}
	roles := map[string]roleReply{}
	for _, n := range live {
		r, err := n.role(ctx)
		if err != nil {
			return fmt.Errorf("cluster node %w", err)
		}
		if r.kind == "slave" && r.state != "connected" {
			return fmt.Errorf("cluster replica %s: its link to %s is %q", n.Addr, r.masterAddr, r.state)
		}
		roles[n.Addr] = r
	}
	var want string // the first node's view of the slots
	for _, n := range live {
		info, err := n.client.Load().ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("cluster node %s: CLUSTER INFO: %w", n.Addr, err)
		}
		fields := map[string]string{}
		for line := range strings.SplitSeq(info, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				fields[k] = v
			}
		}
		if fields["cluster_state"] != "ok" || fields["cluster_slots_ok"] != strconv.Itoa(clusterSlots) || fields["cluster_known_nodes"] != "6" {
			return fmt.Errorf("cluster node %s: cluster_state:%s, cluster_slots_ok:%s of %d, cluster_slots_pfail:%s, cluster_slots_fail:%s, cluster_known_nodes:%s of 6",
				n.Addr, fields["cluster_state"], fields["cluster_slots_ok"], clusterSlots, fields["cluster_slots_pfail"], fields["cluster_slots_fail"], fields["cluster_known_nodes"])
		}
		view, err := n.slotView(ctx, roles)
		if err != nil {
			return err
		}
		if want == "" {
			want = view
		} else if view != want {
			return fmt.Errorf("cluster nodes disagree on the slots: %s sees %s; %s sees %s", live[0].Addr, want, n.Addr, view)
		}
	}
	return nil
}

// slotView returns n's CLUSTER SLOTS as text, after checking it against
// the nodes' roles: every primary named is a master, and each has exactly
// the replicas that say they replicate it.
func (n *Node) slotView(ctx context.Context, roles map[string]roleReply) (string, error) {
	slots, err := n.client.Load().ClusterSlots(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("cluster node %s: CLUSTER SLOTS: %w", n.Addr, err)
	}
	slices.SortFunc(slots, func(a, b redis.ClusterSlot) int { return a.Start - b.Start })
	var b strings.Builder
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			return "", fmt.Errorf("cluster node %s: slots %d-%d have no node", n.Addr, s.Start, s.End)
		}
		primary := s.Nodes[0].Addr
		if r, ok := roles[primary]; !ok || r.kind != "master" {
			return "", fmt.Errorf("cluster node %s: slots %d-%d are served by %s, which is not a running master (role %q)", n.Addr, s.Start, s.End, primary, r.kind)
		}
		var got, exp []string
		for _, rep := range s.Nodes[1:] {
			got = append(got, rep.Addr)
		}
		for addr, r := range roles {
			if r.kind == "slave" && r.masterAddr == primary {
				exp = append(exp, addr)
			}
		}
		slices.Sort(got)
		slices.Sort(exp)
		if !slices.Equal(got, exp) {
			return "", fmt.Errorf("cluster node %s: slots %d-%d of %s list replicas %v; the replicas of %s are %v", n.Addr, s.Start, s.End, primary, got, primary, exp)
		}
		fmt.Fprintf(&b, "%d-%d %s %v; ", s.Start, s.End, primary, got)
	}
	return b.String(), nil
}

// Owner returns the node that serves slot now, as the first running node
// that answers CLUSTER SLOTS says.
func (c *Cluster) Owner(ctx context.Context, slot int) (*Node, error) {
	var errs []error
	for _, n := range c.Nodes() {
		if n.Down() {
			continue
		}
		slots, err := n.client.Load().ClusterSlots(ctx).Result()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Addr, err))
			continue
		}
		for _, s := range slots {
			if s.Start <= slot && slot <= s.End && len(s.Nodes) > 0 {
				for _, m := range c.Nodes() {
					if m.Addr == s.Nodes[0].Addr {
						return m, nil
					}
				}
				return nil, fmt.Errorf("redistest: slot %d is served by %s, not a node of this cluster", slot, s.Nodes[0].Addr)
			}
		}
		return nil, fmt.Errorf("redistest: cluster node %s: slot %d is not served", n.Addr, slot)
	}
	return nil, fmt.Errorf("redistest: no cluster node answers CLUSTER SLOTS: %w", errors.Join(errs...))
}

// Close stops every node and removes their directories and the
// certificates.
func (c *Cluster) Close() error {
	err := closeNodes(c.Nodes())
	c.TLS.remove()
	return err
}
