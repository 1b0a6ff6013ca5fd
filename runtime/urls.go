package runtime

import (
	"crypto/tls"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// topologyScheme returns the kind of client a URL's scheme names,
// "cluster" (redis+cluster://, rediss+cluster://) or "sentinel"
// (redis+sentinel://, rediss+sentinel://), and the scheme go-redis reads
// for it, "redis" or "rediss"; "" for any other URL.
func topologyScheme(u string) (kind, scheme string) {
	s, _, ok := strings.Cut(u, "://")
	if !ok {
		return "", ""
	}
	scheme, kind, ok = strings.Cut(strings.ToLower(s), "+")
	if !ok || (scheme != "redis" && scheme != "rediss") || (kind != "cluster" && kind != "sentinel") {
		return "", ""
	}
	return kind, scheme
}

// refusedQuery are the query options that a cluster or Sentinel URL may
// not carry, although go-redis's ParseClusterURL or ParseFailoverURL
// would read them, each with why.
var refusedQuery = map[string]map[string]string{
	"cluster": {
		"read_only":                  routedToReplicas,
		"route_by_latency":           routedToReplicas,
		"route_by_latency_tolerance": routedToReplicas,
		"route_randomly":             routedToReplicas,
	},
	"sentinel": {
		"replica_only":               routedToReplicas,
		"use_disconnected_replicas":  routedToReplicas,
		"route_by_latency":           routedToReplicas,
		"route_by_latency_tolerance": routedToReplicas,
		"route_randomly":             routedToReplicas,
	},
}

const routedToReplicas = "it sends commands to replicas, which may not have a write yet and refuse writes; " +
	"the DataStore sends every command to the primary"

// parseTopologyURL reads a cluster or Sentinel URL (see Options.URL) as
// go-redis's ParseClusterURL or ParseFailoverURL reads the same URL with
// the scheme redis:// or rediss://, with these differences: the user info
// is taken apart first, as parseURL does, and is the data nodes'
// credentials in both forms (ParseFailoverURL would give it to the
// sentinels); credentials in the query string, skip_verify, and options
// that route commands to replicas are refused; a cluster URL's path may
// name database 0 only; a Sentinel URL must name its master.
// Options.TLSConfig, when set, replaces the URL's TLS (Options.finish).
func parseTopologyURL(u string) (*clientOptions, error) {
	kind, scheme := topologyScheme(u)
	rest, user, bad, err := cutUserinfo(u)
	if err != nil {
		return nil, err
	}
	// url.Parse's errors quote rest, with its own scheme.
	parsed, err := url.Parse(rest)
	if err != nil {
		return nil, bad("%s", err)
	}
	query := parsed.Query()
	if query.Has("skip_verify") {
		return nil, bad("skip_verify turns off TLS certificate verification; set TLSConfig with InsecureSkipVerify if that is really meant")
	}
	for _, k := range slices.Sorted(maps.Keys(query)) {
		if why, ok := refusedQuery[kind][k]; ok {
			return nil, bad("query option %s: %s", k, why)
		}
	}
	// go-redis reads the same URL under its plain scheme.
	plain := scheme + rest[strings.Index(rest, "://"):]
	username, password := credentials(user)
	var co clientOptions
	switch kind {
	case "cluster":
		if p := strings.Trim(parsed.Path, "/"); p != "" && p != "0" {
			return nil, bad("path %q: a cluster has database 0 only; leave the path out", parsed.Path)
		}
		if co.cluster, err = redis.ParseClusterURL(plain); err != nil {
			return nil, bad("%s", err)
		}
		co.cluster.Username, co.cluster.Password = username, password
		if co.cluster.TLSConfig != nil {
			co.cluster.TLSConfig = nodesTLS()
		}
	case "sentinel":
		if co.failover, err = redis.ParseFailoverURL(plain); err != nil {
			return nil, bad("%s", err)
		}
		if co.failover.MasterName == "" {
			return nil, bad("no master_name: a Sentinel URL names its group's primary, as in ?master_name=mymaster")
		}
		// ParseFailoverURL gives the user info to the sentinels: here it
		// is the data nodes', as in every other URL.
		co.failover.SentinelUsername, co.failover.SentinelPassword = "", ""
		co.failover.Username, co.failover.Password = username, password
		if co.failover.TLSConfig != nil {
			co.failover.TLSConfig = nodesTLS()
		}
	}
	return &co, nil
}

// nodesTLS is the TLS configuration of a rediss+cluster:// or
// rediss+sentinel:// URL: with no ServerName, go-redis's dialer checks
// each node's certificate against the host it dials, where go-redis's
// parsers would check every node against the URL's first host.
func nodesTLS() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
