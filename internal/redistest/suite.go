package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TopologyEnv is the environment variable that selects what Main starts
// for a package's tests: "single" (the default), "cluster" or "sentinel".
const TopologyEnv = "STORAGEGEN_TEST_TOPOLOGY"

// Topology is the kind of deployment a package's tests run on.
type Topology string

// The topologies Main can start.
const (
	// TopologySingle is one redis-server.
	TopologySingle Topology = "single"
	// TopologyCluster is a Redis Cluster of 3 primaries and 3 replicas
	// (StartCluster), named by a redis+cluster:// URL.
	TopologyCluster Topology = "cluster"
	// TopologySentinel is a Sentinel group of a primary, a replica and 3
	// sentinels (StartSentinel), named by a redis+sentinel:// URL.
	TopologySentinel Topology = "sentinel"
)

// suite is what Main started for the package's tests.
var suite struct {
	sync.Mutex
	topology Topology
	admin    string // a URL (of the forms the runtime reads) for the admin: every key, every command
	limited  bool   // Main made the application user, whose URL the tests get
}

// topologyFromEnv reads TopologyEnv.
func topologyFromEnv() (Topology, error) {
	switch v := Topology(strings.TrimSpace(os.Getenv(TopologyEnv))); v {
	case "":
		return TopologySingle, nil
	case TopologySingle, TopologyCluster, TopologySentinel:
		return v, nil
	default:
		return "", fmt.Errorf("redistest: %s=%q: want single, cluster or sentinel", TopologyEnv, v)
	}
}

// topologyOfURL returns the topology a URL's scheme names.
func topologyOfURL(u string) Topology {
	s, _, _ := strings.Cut(strings.ToLower(u), "://")
	switch {
	case strings.HasSuffix(s, "+cluster"):
		return TopologyCluster
	case strings.HasSuffix(s, "+sentinel"):
		return TopologySentinel
	}
	return TopologySingle
}

// CurrentTopology returns the topology the package's tests run on: the one
// Main started (or REDIS_URL's), else the one TopologyEnv selects.
func CurrentTopology() Topology {
	suite.Lock()
	defer suite.Unlock()
	if suite.topology != "" {
		return suite.topology
	}
	t, err := topologyFromEnv()
	if err != nil {
		return TopologySingle
	}
	return t
}

// SingleOnly skips t, with why, unless the package's tests run on a single
// server: for a test that is about one server (it kills or restarts it,
// puts a proxy in front of its one address, changes its configuration).
// Such a test starts its own server anyway; SingleOnly keeps it from
// running once per topology.
func SingleOnly(t testing.TB, why string) {
	t.Helper()
	if tp := CurrentTopology(); tp != TopologySingle {
		t.Skipf("single server only (this run: %s): %s", tp, why)
	}
}

// ForTopology starts the topology tp on free loopback ports and returns
// the admin URL of it, in the forms the runtime reads (redis://,
// redis+cluster://, redis+sentinel://), the data nodes (to set up users
// on), and what stops it.
func ForTopology(tp Topology) (adminURL string, data []*Node, stop func(), err error) {
	switch tp {
	case TopologyCluster:
		c, err := StartCluster()
		if err != nil {
			return "", nil, nil, err
		}
		return c.URL(nil), c.Nodes(), func() { c.Close() }, nil
	case TopologySentinel:
		g, err := StartSentinel()
		if err != nil {
			return "", nil, nil, err
		}
		return g.URL(nil, 0), g.Nodes(), func() { g.Close() }, nil
	}
	s, err := Start()
	if err != nil {
		return "", nil, nil, err
	}
	return s.URL(0), []*Node{newNode(s)}, func() { s.Close() }, nil
}

// URL returns a redis+cluster:// URL of c's nodes, with user's credentials
// (nil: the default user).
func (c *Cluster) URL(user *url.Userinfo) string {
	addrs := c.Addrs()
	u := "redis+cluster://" + userinfo(user) + addrs[0]
	for i, a := range addrs[1:] {
		if i == 0 {
			u += "?"
		} else {
			u += "&"
		}
		u += "addr=" + a
	}
	return u
}

// URL returns a redis+sentinel:// URL of g's sentinels for database db,
// with user's credentials for the data nodes (nil: the default user).
func (g *SentinelGroup) URL(user *url.Userinfo, db int) string {
	addrs := g.Addrs()
	u := fmt.Sprintf("redis+sentinel://%s%s/%d?master_name=%s", userinfo(user), addrs[0], db, url.QueryEscape(g.MasterName))
	for _, a := range addrs[1:] {
		u += "&addr=" + a
	}
	return u
}

func userinfo(user *url.Userinfo) string {
	if user == nil {
		return ""
	}
	return user.String() + "@"
}

// WithUser returns u (a URL of any of the runtime's forms) with user's
// credentials instead of its own (nil: none).
func WithUser(u string, user *url.Userinfo) string {
	scheme, rest, _ := strings.Cut(u, "://")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return scheme + "://" + userinfo(user) + rest
}

// SetUser creates (or changes) an ACL user with rules (after ACL SETUSER
// name) on every data node of the package's servers, as the admin, and
// deletes it when t ends.
func SetUser(t testing.TB, name string, rules ...string) {
	t.Helper()
	admin := Admin(t)
	each := func(f func(c *redis.Client) error) error {
		if cc, ok := admin.(*redis.ClusterClient); ok {
			return cc.ForEachShard(context.Background(), func(_ context.Context, c *redis.Client) error { return f(c) })
		}
		return f(admin.(*redis.Client))
	}
	args := []any{"ACL", "SETUSER", name}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := each(func(c *redis.Client) error { return c.Do(context.Background(), args...).Err() }); err != nil {
		t.Fatalf("ACL SETUSER %s: %v", name, err)
	}
	t.Cleanup(func() {
		each(func(c *redis.Client) error { return c.Do(context.Background(), "ACL", "DELUSER", name).Err() })
	})
}

// Main runs a package's tests against a server, or a topology, and exits
// with the tests' status. Call it from TestMain:
//
//	func TestMain(m *testing.M) { redistest.Main(m, &redisURL, "test:") }
//
// With REDIS_URL set it uses that URL as it is. Otherwise it starts what
// TopologyEnv selects (one server by default), creates on every data node
// the application user of AppUserRules, whose keys are those under
// prefixes, and gives the tests that user's URL: redis:// for one server,
// redis+cluster:// or redis+sentinel:// for the others. It stores the URL
// in *url and in REDIS_URL (for Example functions, which read it as users
// would). Tests that look behind the API use Admin, which has every key
// and command.
//
// Main reads TopologyEnv, REDIS_URL and STORAGEGEN_TEST_ACL_LOG before
// m.Run, where go test does not record them: its result cache does not
// know them, so a run with another topology needs -count=1, or it reports
// the cached result of the last run.
func Main(m *testing.M, url *string, prefixes ...string) {
	u, stop, err := forPackage(prefixes)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*url = u
	os.Setenv("REDIS_URL", u)
	code := m.Run()
	stop()
	os.Exit(code)
}

func forPackage(prefixes []string) (string, func(), error) {
	tp, err := topologyFromEnv()
	if err != nil {
		return "", nil, err
	}
	if u := os.Getenv("REDIS_URL"); u != "" {
		if got := topologyOfURL(u); os.Getenv(TopologyEnv) != "" && got != tp {
			return "", nil, fmt.Errorf("redistest: %s=%s, but REDIS_URL names a %s; unset one", TopologyEnv, tp, got)
		}
		setSuite(topologyOfURL(u), u, false)
		return u, func() {}, nil
	}
	start := time.Now()
	admin, nodes, stop, err := ForTopology(tp)
	if err != nil {
		return "", nil, err
	}
	app := admin
	if len(prefixes) > 0 {
		user, err := createAppUser(nodes, prefixes)
		if err != nil {
			stop()
			return "", nil, err
		}
		app = WithUser(admin, user)
		if f := os.Getenv("STORAGEGEN_TEST_ACL_LOG"); f != "" {
			s := stop
			stop = func() { printACLLog(f, nodes); s() }
		}
	}
	if tp != TopologySingle {
		fmt.Fprintf(os.Stderr, "redistest: %s topology ready in %v\n", tp, time.Since(start).Round(time.Millisecond))
	}
	setSuite(tp, admin, len(prefixes) > 0)
	return app, stop, nil
}

func setSuite(tp Topology, admin string, limited bool) {
	suite.Lock()
	defer suite.Unlock()
	suite.topology, suite.admin, suite.limited = tp, admin, limited
}

// Limited reports whether the tests' URL is that of the application user
// Main created (AppUserRules for the package's prefixes): not with
// REDIS_URL set, nor for a package that gave Main no prefixes.
func Limited() bool {
	suite.Lock()
	defer suite.Unlock()
	return suite.limited
}

// AppUser is the name of the application user Main creates.
const AppUser = "storagegen-test"

// createAppUser creates AppUser on every node with AppUserRules for
// prefixes and a random password, and returns its credentials.
func createAppUser(nodes []*Node, prefixes []string) (*url.Userinfo, error) {
	b := make([]byte, 16)
	rand.Read(b)
	password := hex.EncodeToString(b)
	args := []any{"ACL", "SETUSER", AppUser, "reset", "on", ">" + password}
	for _, r := range AppUserRules(prefixes...) {
		args = append(args, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.client.Load().Do(ctx, args...).Err(); err != nil {
			return nil, fmt.Errorf("redistest: ACL SETUSER %s on %s: %w", AppUser, n.Addr, err)
		}
	}
	return url.UserPassword(AppUser, password), nil
}

// Admin returns a client of the package's servers as the admin (default)
// user, for tests that look behind the API: a *redis.Client on one server
// or on a Sentinel group's primary (a failover client), a
// *redis.ClusterClient on a cluster. t's cleanup closes it.
func Admin(t testing.TB) redis.UniversalClient {
	t.Helper()
	suite.Lock()
	u := suite.admin
	suite.Unlock()
	if u == "" {
		u = os.Getenv("REDIS_URL")
	}
	c, err := NewClient(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// NewClient returns a go-redis client for a URL of the forms the runtime
// reads: redis://, rediss://, redis+cluster://, redis+sentinel:// and
// their rediss+ forms (whose user info is the data nodes' credentials).
func NewClient(u string) (redis.UniversalClient, error) {
	scheme, rest, _ := strings.Cut(u, "://")
	plain, _, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch topologyOfURL(u) {
	case TopologyCluster:
		o, err := redis.ParseClusterURL(plain + "://" + rest)
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(o), nil
	case TopologySentinel:
		o, err := redis.ParseFailoverURL(plain + "://" + rest)
		if err != nil {
			return nil, err
		}
		o.Username, o.Password, o.SentinelUsername, o.SentinelPassword = o.SentinelUsername, o.SentinelPassword, "", ""
		return redis.NewFailoverClient(o), nil
	}
	o, err := redis.ParseURL(u)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}

// Keys returns the keys that match pattern, as KEYS does, on every primary
// of a cluster (KEYS on a cluster client goes to one node only).
func Keys(ctx context.Context, c redis.UniversalClient, pattern string) ([]string, error) {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return c.Keys(ctx, pattern).Result()
	}
	var mu sync.Mutex
	var all []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, err := n.Keys(ctx, pattern).Result()
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return err
	})
	slices.Sort(all)
	return all, err
}

// DeleteKeys deletes the keys that match pattern, on every primary of a
// cluster, and returns how many it deleted.
func DeleteKeys(ctx context.Context, c redis.UniversalClient, pattern string) (int, error) {
	keys, err := Keys(ctx, c, pattern)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	// One DEL per key: a cluster refuses a DEL of keys in several slots.
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	return len(keys), err
}

// printACLLog appends what the nodes' ACL LOG holds to the file named
// by STORAGEGEN_TEST_ACL_LOG: the commands and keys refused to the users
// (the application user's show what AppUserRules lacks).
func printACLLog(file string, nodes []*Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redistest:", err)
		return
	}
	defer out.Close()
	for _, n := range nodes {
		entries, err := n.client.Load().Do(ctx, "ACL", "LOG", "1000").Slice()
		if err != nil {
			fmt.Fprintf(out, "ACL LOG on %s: %v\n", n.Addr, err)
			continue
		}
		for _, e := range entries {
			f, _ := e.([]any)
			m := map[string]any{}
			for i := 0; i+1 < len(f); i += 2 {
				m[fmt.Sprint(f[i])] = f[i+1]
			}
			fmt.Fprintf(out, "%s %s: user %v, %v %v %v (count %v)\n", os.Args[0], n.Addr, m["username"], m["reason"], m["context"], m["object"], m["count"])
		}
	}
}
