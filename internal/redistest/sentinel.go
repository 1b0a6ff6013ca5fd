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
)

// SentinelGroup is a primary with one replica, watched by three
// sentinels (redis-server --sentinel), all on 127.0.0.1.
type SentinelGroup struct {
	MasterName string
	// Primary and Replica as started; a failover swaps their roles: Master
	// and a node's Role ask the servers.
	Primary, Replica *Node
	Sentinels        []*Node
	// TLS holds the certificates of a group started WithTLS (the data
	// nodes and the sentinels share them); nil otherwise.
	TLS *TLS
}

// Nodes returns the data nodes: the primary and the replica as started.
func (g *SentinelGroup) Nodes() []*Node { return []*Node{g.Primary, g.Replica} }

// Addrs returns the sentinels' addresses, for a failover client.
func (g *SentinelGroup) Addrs() []string { return addrsOf(g.Sentinels) }

// StartSentinel starts a primary, a replica of it and three sentinels
// that monitor it under the name "redistest" with a quorum of 2, and
// returns once every sentinel names that primary, knows its replica with
// its link up and knows the other two sentinels (see Wait). A sentinel
// takes a data node for down after WithNodeTimeout (2s by default);
// failover-timeout is five times that.
func StartSentinel(opts ...Option) (*SentinelGroup, error) {
	o := newTopoOptions(opts)
	bin, err := execLookPath()
	if err != nil {
		return nil, err
	}
	g := &SentinelGroup{MasterName: "redistest"}
	if g.TLS, err = o.newTLS(); err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			g.Close()
		}
	}()
	data := func(more ...string) (*Node, error) {
		s, err := startWith(bin, func(port int) ([]string, error) {
			args := append(listenArgs(g.TLS, port), dataArgs...)
			return append(append(args, more...), o.args...), nil
		}, harnessTLS(g.TLS))
		if err != nil {
			return nil, err
		}
		return newNode(s), nil
	}
	if g.Primary, err = data(); err != nil {
		return nil, fmt.Errorf("redistest: sentinel group's primary: %w", err)
	}
	if g.Replica, err = data("--replicaof", "127.0.0.1", strconv.Itoa(g.Primary.Port)); err != nil {
		return nil, fmt.Errorf("redistest: sentinel group's replica: %w", err)
	}
	// A sentinel learns the replicas from the primary's INFO, which it
	// asks at once and then every 10s: the replica must be attached first.
	err = waitFor("sentinel group's replication", o.wait, func(ctx context.Context) error {
		return replicates(ctx, g.Replica, g.Primary)
	})
	if err != nil {
		return nil, err
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
		"sentinel down-after-milliseconds %[1]s %[3]s\n"+
		"sentinel failover-timeout %[1]s %[4]s\n"+
		"sentinel parallel-syncs %[1]s 1\n",
		g.MasterName, g.Primary.Port, ms(o.nodeTimeout), ms(5*o.nodeTimeout))
	for i := range 3 {
		n, err := startSentinel(bin, conf, g.TLS)
		if err != nil {
			return nil, fmt.Errorf("redistest: sentinel %d of 3: %w", i+1, err)
		}
		g.Sentinels = append(g.Sentinels, n)
	}
	if err := g.Wait(o.wait); err != nil {
		return nil, err
	}
	started = true
	return g, nil
}

func startSentinel(bin, conf string, t *TLS) (*Node, error) {
	dir, err := os.MkdirTemp("", "redistest-sentinel-")
	if err != nil {
		return nil, err
	}
	// The sentinel rewrites its file with what it learns, so that a
	// Restart keeps it.
	file := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s, err := startIn(bin, dir, []string{file}, func(port int) ([]string, error) {
		return append(listenArgs(t, port), "--sentinel"), nil
	}, harnessTLS(t))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n := newNode(s)
	n.onStart = sentinelPeriods
	if err := n.onStart(n); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

// sentinelPeriods shortens a sentinel's periods (SENTINEL DEBUG, Redis 7.0
// and later; they last until the process ends): it asks the data nodes'
// INFO every second, not every 10s, so that it sees a demoted primary
// become a replica within a second or two, and announces itself to the
// other sentinels twice a second, not every 2s. A sentinel whose timer
// runs late (a loaded machine) stops acting for tilt-period: 5s, not 30s.
func sentinelPeriods(n *Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := n.client.Load().Do(ctx, "SENTINEL", "DEBUG", "info-period", 1000, "publish-period", 500, "tilt-period", 5000).Err()
	if err != nil {
		return fmt.Errorf("sentinel %s: SENTINEL DEBUG (Redis 7.0 or later): %w", n.Addr, err)
	}
	return nil
}

// replicates checks that replica's link to primary is up, as both see it.
func replicates(ctx context.Context, replica, primary *Node) error {
	r, err := replica.role(ctx)
	if err != nil {
		return err
	}
	if r.kind != "slave" || r.masterAddr != primary.Addr || r.state != "connected" {
		return fmt.Errorf("replica %s: role %s of %q, link %q; want slave of %s, connected", replica.Addr, r.kind, r.masterAddr, r.state, primary.Addr)
	}
	p, err := primary.role(ctx)
	if err != nil {
		return err
	}
	if p.kind != "master" || !slices.Contains(p.replicas, replica.Addr) {
		return fmt.Errorf("primary %s: role %s with replicas %v; want master with %s", primary.Addr, p.kind, p.replicas, replica.Addr)
	}
	return nil
}

// Wait waits, at most timeout, until the group is whole again (after a
// failover or a Restart): exactly one running data node is a master, every
// other running one replicates it with its link up, and every running
// sentinel names that master, sees it and its running replicas up (flags
// exactly "master" and "slave", link ok) and sees the other running
// sentinels. Its error says which node is in which state.
func (g *SentinelGroup) Wait(timeout time.Duration) error {
	return waitFor("sentinel group", timeout, g.check)
}

func (g *SentinelGroup) check(ctx context.Context) error {
	var master *Node
	var replicas []*Node
	for _, n := range g.Nodes() {
		if n.Down() {
			continue
		}
		r, err := n.role(ctx)
		if err != nil {
			return err
		}
		switch {
		case r.kind != "master":
			replicas = append(replicas, n)
		case master != nil:
			return fmt.Errorf("two masters: %s and %s", master.Addr, n.Addr)
		default:
			master = n
		}
	}
	if master == nil {
		return errors.New("no running data node is a master")
	}
	for _, r := range replicas {
		if err := replicates(ctx, r, master); err != nil {
			return err
		}
	}
	for _, s := range g.Sentinels {
		if s.Down() {
			continue
		}
		if err := g.checkSentinel(ctx, s, master, replicas); err != nil {
			return err
		}
	}
	return nil
}

func (g *SentinelGroup) checkSentinel(ctx context.Context, s, master *Node, replicas []*Node) error {
	addr, err := s.client.Load().Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.MasterName).StringSlice()
	if err != nil {
		return fmt.Errorf("sentinel %s: SENTINEL GET-MASTER-ADDR-BY-NAME: %w", s.Addr, err)
	}
	if len(addr) != 2 || addr[0]+":"+addr[1] != master.Addr {
		return fmt.Errorf("sentinel %s names master %v; the master is %s", s.Addr, addr, master.Addr)
	}
	m, err := sentinelMaps(ctx, s, "MASTER", g.MasterName)
	if err != nil {
		return err
	}
	if m[0]["flags"] != "master" {
		return fmt.Errorf("sentinel %s sees master %s with flags %q", s.Addr, master.Addr, m[0]["flags"])
	}
	reps, err := sentinelMaps(ctx, s, "REPLICAS", g.MasterName)
	if err != nil {
		return err
	}
	for _, r := range replicas {
		i := slices.IndexFunc(reps, func(m map[string]string) bool { return m["name"] == r.Addr })
		if i < 0 {
			return fmt.Errorf("sentinel %s does not know replica %s yet", s.Addr, r.Addr)
		}
		if m := reps[i]; m["flags"] != "slave" || m["master-link-status"] != "ok" || m["master-host"]+":"+m["master-port"] != master.Addr {
			return fmt.Errorf("sentinel %s sees replica %s with flags %q, link %q, of master %s:%s", s.Addr, r.Addr, m["flags"], m["master-link-status"], m["master-host"], m["master-port"])
		}
	}
	others, err := sentinelMaps(ctx, s, "SENTINELS", g.MasterName)
	if err != nil {
		return err
	}
	for _, o := range g.Sentinels {
		if o == s || o.Down() {
			continue
		}
		i := slices.IndexFunc(others, func(m map[string]string) bool { return m["ip"]+":"+m["port"] == o.Addr })
		if i < 0 {
			return fmt.Errorf("sentinel %s does not know sentinel %s yet", s.Addr, o.Addr)
		}
		if f := others[i]["flags"]; f != "sentinel" {
			return fmt.Errorf("sentinel %s sees sentinel %s with flags %q", s.Addr, o.Addr, f)
		}
	}
	return nil
}

// sentinelMaps sends SENTINEL <sub> <master name> to s and returns its
// reply as field maps: one for MASTER, one per node for REPLICAS and
// SENTINELS.
func sentinelMaps(ctx context.Context, s *Node, sub, name string) ([]map[string]string, error) {
	v, err := s.client.Load().Do(ctx, "SENTINEL", sub, name).Slice()
	if err != nil {
		return nil, fmt.Errorf("sentinel %s: SENTINEL %s: %w", s.Addr, sub, err)
	}
	pairs := func(v []any) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(v); i += 2 {
			m[fmt.Sprint(v[i])] = fmt.Sprint(v[i+1])
		}
		return m
	}
	if sub == "MASTER" {
		return []map[string]string{pairs(v)}, nil
	}
	var out []map[string]string
	for _, e := range v {
		f, _ := e.([]any)
		out = append(out, pairs(f))
	}
	return out, nil
}

// Master returns the data node that the first running sentinel to answer
// names as master now.
func (g *SentinelGroup) Master(ctx context.Context) (*Node, error) {
	var errs []error
	for _, s := range g.Sentinels {
		if s.Down() {
			continue
		}
		addr, err := s.client.Load().Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.MasterName).StringSlice()
		if err != nil || len(addr) != 2 {
			errs = append(errs, fmt.Errorf("%s: %v %w", s.Addr, addr, err))
			continue
		}
		for _, n := range g.Nodes() {
			if n.Addr == strings.Join(addr, ":") {
				return n, nil
			}
		}
		return nil, fmt.Errorf("redistest: sentinel %s names master %v, not a node of this group", s.Addr, addr)
	}
	return nil, fmt.Errorf("redistest: no sentinel answers: %w", errors.Join(errs...))
}

// Close stops the sentinels and the data nodes and removes their
// directories.
func (g *SentinelGroup) Close() error {
	err := closeNodes(append(slices.Clone(g.Sentinels), g.Primary, g.Replica))
	g.TLS.remove()
	return err
}
