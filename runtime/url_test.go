package runtime

import (
	"crypto/tls"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUnixSocketURLs: a unix socket's path may hold an '@' of its own; the
// user info of a unix URL ends before the path.
func TestUnixSocketURLs(t *testing.T) {
	for _, tc := range []struct{ url, addr, user, pass string }{
		{"unix:///tmp/redis@1.sock", "/tmp/redis@1.sock", "", ""},
		{"unix://u:p%40ss@/tmp/redis@1.sock?db=2", "/tmp/redis@1.sock", "u", "p@ss"},
	} {
		ro, err := parseURL(tc.url, false)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if ro.Network != "unix" || ro.Addr != tc.addr || ro.Username != tc.user || ro.Password != tc.pass {
			t.Errorf("%s: %s %s %q %q; want unix %s %q %q", tc.url, ro.Network, ro.Addr, ro.Username, ro.Password, tc.addr, tc.user, tc.pass)
		}
	}
}

// TestTopologyURLs: cluster and Sentinel URLs make the options that
// Options.Addrs and Options.MasterName make, with the URL's user info as
// the data nodes' credentials, query options read as go-redis reads them,
// Options.PoolSize over pool_size, and TLS for the rediss+ forms.
func TestTopologyURLs(t *testing.T) {
	pw := url.UserPassword("app", "p@ss/w#rd?").String()
	co, err := Options{URL: "redis+cluster://" + pw + "@10.0.0.1:7000?addr=10.0.0.2:7001&addr=[::1]:7002&dial_timeout=3s&pool_size=7"}.redisOptions()
	if err != nil {
		t.Fatal(err)
	}
	c := co.cluster
	if c == nil || !slices.Equal(c.Addrs, []string{"10.0.0.1:7000", "10.0.0.2:7001", "[::1]:7002"}) ||
		c.Username != "app" || c.Password != "p@ss/w#rd?" || c.DialTimeout != 3*time.Second || c.PoolSize != 7 || c.TLSConfig != nil {
		t.Errorf("cluster URL: %+v", c)
	}
	// Options.PoolSize wins; the default applies without either; Addrs
	// makes the same options.
	for _, tc := range []struct {
		o    Options
		want int
	}{
		{Options{URL: "redis+cluster://10.0.0.1:7000?pool_size=7", PoolSize: 3}, 3},
		{Options{URL: "redis+cluster://10.0.0.1:7000"}, DefaultPoolSize},
		{Options{URL: "redis+sentinel://10.0.0.1:26379?master_name=m&pool_size=7"}, 7},
		{Options{URL: "redis+sentinel://10.0.0.1:26379?master_name=m&pool_size=7", PoolSize: 3}, 3},
		{Options{URL: "redis://10.0.0.1:6379/0?pool_size=7"}, 7},
		{Options{URL: "redis://10.0.0.1:6379/0?pool_size=7", PoolSize: 3}, 3},
		{Options{URL: "redis://10.0.0.1:6379/0"}, DefaultPoolSize},
		{Options{Addrs: []string{"10.0.0.1:7000"}}, DefaultPoolSize},
	} {
		co, err := tc.o.redisOptions()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		switch {
		case co.cluster != nil:
			got = co.cluster.PoolSize
		case co.failover != nil:
			got = co.failover.PoolSize
		default:
			got = co.single.PoolSize
		}
		if got != tc.want {
			t.Errorf("%+v: pool size %d; want %d", tc.o, got, tc.want)
		}
	}

	co, err = Options{URL: "REDISS+Sentinel://" + pw + "@10.0.0.1:26379/3?master_name=mymaster&addr=10.0.0.2:26379&read_timeout=2s",
		SentinelUsername: "sentinel-user", SentinelPassword: "sentinel-pw"}.redisOptions()
	if err != nil {
		t.Fatal(err)
	}
	f := co.failover
	if f == nil || f.MasterName != "mymaster" || !slices.Equal(f.SentinelAddrs, []string{"10.0.0.1:26379", "10.0.0.2:26379"}) ||
		f.DB != 3 || f.Username != "app" || f.Password != "p@ss/w#rd?" || f.SentinelUsername != "sentinel-user" ||
		f.SentinelPassword != "sentinel-pw" || f.ReadTimeout != 2*time.Second {
		t.Errorf("sentinel URL: %+v", f)
	}
	if f.TLSConfig == nil || f.TLSConfig.ServerName != "" || f.TLSConfig.InsecureSkipVerify {
		t.Errorf("rediss+sentinel: TLS %+v; want TLS with each node's own host checked", f.TLSConfig)
	}
	// A caller's TLSConfig replaces the URL's, and turns TLS on for redis+.
	own := &tls.Config{ServerName: "own"}
	for _, u := range []string{"redis+cluster://10.0.0.1:7000", "rediss+cluster://10.0.0.1:7000"} {
		co, err := Options{URL: u, TLSConfig: own}.redisOptions()
		if err != nil || co.cluster.TLSConfig == nil || co.cluster.TLSConfig.ServerName != "own" || co.cluster.TLSConfig == own {
			t.Errorf("%s with TLSConfig: %+v, %v; want a copy of the caller's", u, co.cluster, err)
		}
	}
	// A Sentinel URL without user info: no credentials anywhere.
	co, err = Options{URL: "redis+sentinel://10.0.0.1:26379?master_name=m"}.redisOptions()
	if err != nil || co.failover.Username != "" || co.failover.Password != "" || co.failover.SentinelPassword != "" || co.failover.DB != 0 {
		t.Errorf("sentinel URL without user info: %+v, %v", co.failover, err)
	}
}

// TestTopologyURLRefusals: what a cluster or Sentinel URL may not say,
// each refused with an error that says why and never shows the password.
func TestTopologyURLRefusals(t *testing.T) {
	const ui = "app:hunter2"
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{URL: "redis+cluster://" + ui + "@h:1?password=x"}, "query option password: credentials never go in a query string"},
		{Options{URL: "redis+cluster://" + ui + "@h:1?username=x"}, "query option username"},
		{Options{URL: "redis+sentinel://" + ui + "@h:1?master_name=m&password=x"}, "Options.SentinelUsername and SentinelPassword the sentinels'"},
		{Options{URL: "redis+sentinel://" + ui + "@h:1?master_name=m&sentinel_password=x"}, "query option sentinel_password"},
		{Options{URL: "redis+sentinel://" + ui + "@h:1?master_name=m&sentinel_username=x"}, "query option sentinel_username"},
		{Options{URL: "rediss+cluster://" + ui + "@h:1?skip_verify=true"}, "skip_verify turns off TLS certificate verification"},
		{Options{URL: "rediss+sentinel://" + ui + "@h:1?master_name=m&skip_verify=true"}, "skip_verify"},
		{Options{URL: "redis+cluster://" + ui + "@h:1?read_only=true"}, "query option read_only: it sends commands to replicas"},
		{Options{URL: "redis+cluster://" + ui + "@h:1?route_randomly=true"}, "query option route_randomly"},
		{Options{URL: "redis+sentinel://" + ui + "@h:1?master_name=m&replica_only=true"}, "query option replica_only"},
		{Options{URL: "redis+sentinel://" + ui + "@h:1?master_name=m&route_by_latency=true"}, "query option route_by_latency"},
		{Options{URL: "redis+cluster://" + ui + "@h:1/3"}, `path "/3": a cluster has database 0 only`},
		{Options{URL: "redis+cluster://" + ui + "@h:1?addr=nohost"}, "unable to parse addr param"},
		{Options{URL: "redis+cluster://" + ui + "@h:1?pool_size=many"}, "invalid pool_size number"},
		{Options{URL: "redis+cluster://" + ui + "@h:1?db=1"}, "unexpected option: db"},
		{Options{URL: "redis+sentinel://" + ui + "@h:1"}, "no master_name"},
		{Options{URL: "redis+sentinel://" + ui + "@h:1/x?master_name=m"}, "invalid database number"},
		{Options{URL: "redis+sentinel://" + ui + "@h:1/0?master_name=m&no_such=1"}, "unexpected option: no_such"},
		{Options{URL: "redis+sentinel://" + ui + "@h:notaport?master_name=m"}, `invalid port ":notaport"`},
		{Options{URL: "redis+cluster://" + ui + "@h:1", Username: "u"}, "URL is set together with Addr, Username"},
		{Options{URL: "redis+cluster://" + ui + "@h:1", Addrs: []string{"h:2"}}, "set together with URL"},
		{Options{URL: "redis+cluster://" + ui + "@h:1", SentinelPassword: "x"}, "SentinelUsername or SentinelPassword without a Sentinel group"},
		{Options{URL: "redis://" + ui + "@h:1/0", SentinelPassword: "x"}, "SentinelUsername or SentinelPassword without a Sentinel group"},
		{Options{URL: "redis+cluster://app:hunter2/x@h:1"}, "percent-encoded"},
		{Options{URL: "redis://h:1/0?password=hunter2"}, "query option password: credentials never go in a query string"},
		{Options{URL: "redis://h:1/0?PassWord=hunter2&dial_timeout=1s#f"}, "query option PassWord"},
		{Options{URL: "redis+cluster://h:1/%zz?addr=h:2&password=hunter2"}, "query option password"},
		{Options{URL: "redis+sentinel://h:1?master_name=m&sentinel_password=hunter2&no_such=1"}, "query option sentinel_password"},
	} {
		_, err := New(tc.o)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v; want ErrInvalidArgument with %q", tc.o.URL, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%s): the error carries the password: %v", tc.o.URL, err)
		}
		if err != nil && strings.Contains(tc.o.URL, "@") && !strings.Contains(err.Error(), "xxxxx@") && !strings.Contains(err.Error(), "(the rest not shown)") &&
			strings.Contains(err.Error(), "URL redis") {
			t.Errorf("New(%s): the error does not show the URL without its user info: %v", tc.o.URL, err)
		}
	}
}
