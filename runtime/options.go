package runtime

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Options configures a DataStore. The zero value connects to
// redis://127.0.0.1:6379/0. Zero means default for every field.
type Options struct {
	// URL names the servers, in one of three forms (rediss for TLS):
	//
	//   - one server: redis://[user:password@]host:port/db, as go-redis's
	//     ParseURL reads it, query options included; for example
	//     redis://app:secret@10.0.0.5:6379/0?dial_timeout=3s.
	//   - a Redis Cluster: redis+cluster://[user:password@]host:port
	//     ?addr=host2:port2&addr=..., some of its nodes, as ParseClusterURL
	//     reads the same URL under redis://; for example
	//     rediss+cluster://app:secret@node1:6379?addr=node2:6379&addr=node3:6379.
	//     Its path may name database 0 only.
	//   - a Sentinel group: redis+sentinel://[user:password@]host:port/db
	//     ?master_name=NAME&addr=host2:port2, some of its sentinels, as
	//     ParseFailoverURL reads the same URL under redis://; for example
	//     redis+sentinel://app:secret@sentinel1:26379/0?master_name=mymaster&addr=sentinel2:26379.
	//     The user info is the primary's and replicas' credentials, as in
	//     the other forms; the sentinels' are SentinelUsername and
	//     SentinelPassword.
	//
	// The user name and password are percent-encoded (url.UserPassword).
	// Refused in every form: skip_verify=true; username, password,
	// sentinel_username and sentinel_password query options, and any whose
	// name holds pass, user, pwd, secret, auth, token, cred or key (a query
	// string gets logged; the error shows the URL up to its scheme only);
	// an addr option with user info (user:password%40host:port). Refused in
	// a cluster or Sentinel URL: skip_verify itself, and the options that
	// send commands to replicas (read_only, replica_only, route_by_latency,
	// route_randomly, ...). Refused too: a query string that
	// url.ParseQuery cannot read (a ';' separator, a bad escape), whose
	// broken options go-redis would drop without a word. PoolSize and TLSConfig apply to every form;
	// PoolSize, when set, wins over a pool_size query option. Default
	// "redis://127.0.0.1:6379/0". Mutually exclusive with Addr, Addrs,
	// MasterName and Client.
	URL string

	// Addr is the server's host:port, an alternative to URL. Default: unset
	// (URL's default applies).
	Addr string
	// Username for AUTH with an ACL user. Default: none. With Addr, Addrs
	// or MasterName (a URL carries its own).
	Username string
	// Password for AUTH. Default: none. As Username.
	Password string
	// DB is the database number selected after connecting. Default 0.
	// With Addr or MasterName (a cluster has only 0).
	DB int

	// Addrs are the addresses (host:port) of some nodes of a Redis
	// Cluster: the DataStore makes a *redis.ClusterClient from them, with
	// Username, Password, TLSConfig and PoolSize (per node). Default: none.
	// Not with URL, Addr, DB, MasterName or Client.
	Addrs []string
	// MasterName and SentinelAddrs name a Sentinel group: the DataStore
	// makes redis.NewFailoverClient's client, which connects to the
	// group's current primary, with Username, Password, DB, TLSConfig and
	// PoolSize. SentinelUsername and SentinelPassword authenticate with
	// the sentinels themselves, when they require it. Default: none. Not
	// with URL, Addr, Addrs or Client.
	MasterName                         string
	SentinelAddrs                      []string
	SentinelUsername, SentinelPassword string

	// TLSConfig configures TLS: with a rediss:// URL (or rediss+cluster://,
	// rediss+sentinel://) it replaces go-redis's default (system roots,
	// server name from the URL), for a private CA or client certificates;
	// with a redis:// URL (or redis+cluster://, redis+sentinel://), Addr,
	// Addrs or MasterName it turns TLS on. For a cluster or a Sentinel
	// group, a clone of it serves every node of the cluster, or the
	// sentinels and the data nodes of the group alike (go-redis has one TLS
	// configuration for both): with no ServerName, each certificate is
	// checked against the host of the address dialed, as listed or as the
	// cluster or the sentinels report it; with one, every certificate is
	// checked against it. Default: nil.
	TLSConfig *tls.Config

	// PoolSize is the number of pooled connections for non-blocking commands
	// (pushes, cache calls, lengths), per node on a cluster. Default: a
	// URL's pool_size, else 10.
	PoolSize int
	// BlockingPoolSize is the number of connections kept for blocking pops,
	// apart from PoolSize so that blocked consumers never starve other
	// calls. It bounds how many Pops may block at once. Default 100.
	BlockingPoolSize int

	// Client lets you bring your own go-redis client: a *redis.Client (a
	// single server, or a Sentinel group's primary from
	// redis.NewFailoverClient) or a *redis.ClusterClient. Blocking pops
	// get pools of their own made from its options: one, or, for a
	// cluster, one per primary, on the node that owns the queue's slot.
	// The caller closes Client; DataStore.Close leaves it open. Default:
	// nil (the DataStore makes and owns its client).
	Client redis.UniversalClient

	// MaxPayloadBytes is the largest encoded payload that is written or
	// read back; larger ones fail with ErrPayloadTooLarge before anything
	// is written. Default 16 MiB (DefaultMaxPayloadBytes); at most 512 MiB,
	// Redis's own limit.
	MaxPayloadBytes int

	// DisableLocalCaches makes every local cache (the schema's `local:
	// true`) a plain one: its Gets go to Redis. Default false: local caches
	// keep entries in memory where the server supports client-side caching
	// (see the README's "Local caches").
	DisableLocalCaches bool

	// NoCoalescing sends every Push, PushMany, cache Set and Get, and the
	// non-blocking first step of a Pop as a command of its own, at once,
	// instead of folding concurrent calls into shared batches (see the
	// README's "Coalescing"). Default false: concurrent calls are
	// coalesced. Either way a write is never sent twice and ctx is honoured
	// in the same way; only the batching differs.
	NoCoalescing bool

	// Logger receives what the DataStore has to report outside a call's
	// error: today, that the server may evict the keys of at-least-once
	// queues (see the README's "Full memory"). Never payloads or
	// passwords. Default (nil): slog.Default(). Consume has its own
	// (ConsumeOptions.Logger).
	Logger *slog.Logger

	// WaitReplicas, when above 0, makes every write that carries an item
	// or settles one durable past a failover of its primary: each push
	// (Push, PushMany, PushID, coalesced or not), each ack and nack, and
	// each cache Set is followed, on the connection that sent it, by WAIT
	// WaitReplicas WaitTimeout (on a cluster, on the primary that took the
	// write; one WAIT per batch and primary). Fewer replicas acknowledging
	// in time fail the call with an error wrapping ErrNotReplicated: the
	// write DID happen on the primary. Default 0: no WAIT (Redis's
	// asynchronous replication: see the README's "Failover and
	// durability" for what a failover can lose then).
	WaitReplicas int
	// WaitTimeout bounds each WAIT: at least 1ms (WAIT 0 would block
	// forever). Default 1s (DefaultWaitTimeout) when WaitReplicas is set;
	// an error without it. It must stay 1s or more below the client's
	// ReadTimeout (go-redis's default 3s), which the WAIT's reply must
	// arrive within.
	WaitTimeout time.Duration

	// Prefix is prepended to every key the untyped QueueStore and
	// CacheStore build. Typed stores use their schema's prefix instead.
	// Default "".
	Prefix string

	// MeterProvider, when set, receives the DataStore's metrics: the
	// duration and outcome of each call of a typed queue or cache, the
	// items it carried, and the sizes of coalesced batches, with the
	// schema's declaration names as attributes (see the README's
	// "Observability"). Default nil: nothing is recorded, at no cost.
	MeterProvider metric.MeterProvider
	// TracerProvider, when set, receives a span per call of a typed queue
	// or cache ("push jobs", "get node_output") and Consume's handler
	// spans ("process jobs"), linked to the span that pushed the item; an
	// at-least-once push then carries its trace context beside the item
	// (see the README's "Observability"). Default nil: no span, at no
	// cost.
	TracerProvider trace.TracerProvider
	// StatsInterval is how often, at most, the gauge storagegen.queue.items
	// reads each queue's counts from the server (when a collection asks
	// for it and the last read is older), with a MeterProvider. A
	// collection waits for the reads at most min(StatsInterval, 2s), and
	// reports the last values read otherwise. Default 10s
	// (DefaultStatsInterval); at least 100ms.
	StatsInterval time.Duration
}

// Defaults of Options.
const (
	DefaultURL              = "redis://127.0.0.1:6379/0"
	DefaultPoolSize         = 10
	DefaultBlockingPoolSize = 100
	maxRedisValue           = 512 << 20
)

// clientOptions is what the DataStore makes its client from: exactly one
// field is set, filled from the Options fields or the URL.
type clientOptions struct {
	single   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

// redisOptions validates o and returns the go-redis options it describes
// (nil when o.Client is set).
func (o Options) redisOptions() (*clientOptions, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: options: "+format, append([]any{ErrInvalidArgument}, args...)...))
	}
	if o.PoolSize < 0 {
		bad("PoolSize %d is negative", o.PoolSize)
	}
	if o.BlockingPoolSize < 0 {
		bad("BlockingPoolSize %d is negative", o.BlockingPoolSize)
	}
	if o.MaxPayloadBytes < 0 || o.MaxPayloadBytes > maxRedisValue {
		bad("MaxPayloadBytes %d is outside 0..%d", o.MaxPayloadBytes, maxRedisValue)
	}
	o.checkWait(bad)
	if o.StatsInterval != 0 && o.StatsInterval < minStatsInterval {
		bad("StatsInterval %v is below %v", o.StatsInterval, minStatsInterval)
	}
	if err := CheckPrefix(o.Prefix); err != nil {
		bad("Prefix: %v", err)
	}
	topology := len(o.Addrs) > 0 || o.MasterName != "" || len(o.SentinelAddrs) > 0
	if topology {
		o.checkTopology(bad)
	}
	urlKind, _ := topologyScheme(o.URL)
	if (o.SentinelUsername != "" || o.SentinelPassword != "") && o.MasterName == "" && urlKind != "sentinel" {
		bad("SentinelUsername or SentinelPassword without a Sentinel group (MasterName, or a redis+sentinel:// URL)")
	}
	addrSet := !topology && (o.Addr != "" || o.Username != "" || o.Password != "" || o.DB != 0)
	switch {
	case o.Client != nil && (o.URL != "" || addrSet || o.TLSConfig != nil):
		bad("Client is set together with URL, Addr or TLSConfig fields; use one")
	case o.URL != "" && addrSet:
		bad("URL is set together with Addr, Username, Password or DB; use one")
	case o.DB < 0:
		bad("DB %d is negative", o.DB)
	}
	switch o.Client.(type) {
	case nil, *redis.Client, *redis.ClusterClient:
	default:
		// A Ring spreads keys over servers by itself, with no node to run
		// a queue's blocking pops on.
		bad("Client is a %T; want a *redis.Client or a *redis.ClusterClient", o.Client)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Client != nil {
		return nil, nil
	}
	co := &clientOptions{}
	switch {
	case len(o.Addrs) > 0:
		co.cluster = &redis.ClusterOptions{Addrs: slices.Clone(o.Addrs), Username: o.Username, Password: o.Password}
	case o.MasterName != "":
		co.failover = &redis.FailoverOptions{MasterName: o.MasterName, SentinelAddrs: slices.Clone(o.SentinelAddrs),
			Username: o.Username, Password: o.Password, DB: o.DB}
	case addrSet:
		co.single = &redis.Options{Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB}
		if co.single.Addr == "" {
			co.single.Addr = "127.0.0.1:6379"
		}
	case urlKind != "":
		var err error
		if co, err = parseTopologyURL(o.URL); err != nil {
			return nil, err
		}
	default:
		u := o.URL
		if u == "" {
			u = DefaultURL
		}
		var err error
		if co.single, err = parseURL(u, o.TLSConfig != nil); err != nil {
			return nil, err
		}
	}
	o.finish(co)
	return co, nil
}

// finish sets what every kind of client takes from o whatever named the
// servers: the sentinels' credentials, TLSConfig, and the pool size
// (o.PoolSize when set, else a URL's pool_size, else the default).
func (o Options) finish(co *clientOptions) {
	pool := func(fromURL *int) {
		switch {
		case o.PoolSize != 0:
			*fromURL = o.PoolSize
		case *fromURL == 0:
			*fromURL = DefaultPoolSize
		}
	}
	// A cluster's or a Sentinel group's nodes share one TLS configuration:
	// with no ServerName, go-redis's dialer checks each certificate
	// against the host it dials.
	var tlsConfig *tls.Config
	if o.TLSConfig != nil {
		tlsConfig = o.TLSConfig.Clone()
	}
	switch {
	case co.cluster != nil:
		pool(&co.cluster.PoolSize)
		if tlsConfig != nil {
			co.cluster.TLSConfig = tlsConfig
		}
	case co.failover != nil:
		pool(&co.failover.PoolSize)
		co.failover.SentinelUsername, co.failover.SentinelPassword = o.SentinelUsername, o.SentinelPassword
		if tlsConfig != nil {
			co.failover.TLSConfig = tlsConfig
		}
	default:
		ro := co.single
		pool(&ro.PoolSize)
		if tlsConfig != nil {
			ro.TLSConfig = tlsConfig
			if host, _, err := net.SplitHostPort(ro.Addr); err == nil && ro.TLSConfig.ServerName == "" {
				ro.TLSConfig.ServerName = host // also right for [::1]:6379
			}
		}
	}
}

// checkTopology reports, through bad, what is wrong with a cluster's or
// a Sentinel group's fields.
func (o Options) checkTopology(bad func(string, ...any)) {
	switch {
	case o.URL != "" || o.Addr != "" || o.Client != nil:
		bad("Addrs, MasterName or SentinelAddrs is set together with URL, Addr or Client; use one")
	case len(o.Addrs) > 0 && (o.MasterName != "" || len(o.SentinelAddrs) > 0):
		bad("Addrs (a cluster) is set together with MasterName or SentinelAddrs (a Sentinel group); use one")
	case len(o.Addrs) > 0 && o.DB != 0:
		bad("DB %d with Addrs: a cluster has database 0 only", o.DB)
	case o.MasterName == "" && len(o.SentinelAddrs) > 0:
		bad("SentinelAddrs without MasterName")
	case o.MasterName != "" && len(o.SentinelAddrs) == 0:
		bad("MasterName without SentinelAddrs")
	case o.DB < 0:
		bad("DB %d is negative", o.DB)
	}
	for _, a := range append(slices.Clone(o.Addrs), o.SentinelAddrs...) {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			bad("address %q is not host:port", a)
		}
	}
}

// clientMaker returns what makes the client co describes: a cluster's, a
// Sentinel group's, or one server's; nil when the options bring their
// own (co is nil).
func (o Options) clientMaker(co *clientOptions) func() redis.UniversalClient {
	switch {
	case co == nil:
		return nil
	case co.cluster != nil:
		return func() redis.UniversalClient { return redis.NewClusterClient(co.cluster) }
	case co.failover != nil:
		return func() redis.UniversalClient { return redis.NewFailoverClient(co.failover) }
	}
	return func() redis.UniversalClient { return redis.NewClient(co.single) }
}

// parseURL reads a URL as go-redis's ParseURL does, but takes its user
// info apart first, so that no error can carry any of it: url.Parse and
// ParseURL quote the URL, or the piece of it that they stumbled on, and
// an unencoded '/', '?' or '#' in a password makes them cut the URL inside
// the password, so redacting their messages afterwards misses pieces.
//
// The user info is everything between "://" (or the start) and the last
// '@'. It must be percent-encoded as RFC 3986 says (url.UserPassword does
// it); an '@' in a query option's value must be written %40, or it would
// be taken for the end of a user info. The rest of the URL goes to ParseURL
// without it, and errors show only that rest.
func parseURL(u string, ownTLS bool) (*redis.Options, error) {
	rest, user, bad, err := cutUserinfo(u)
	if err != nil {
		return nil, err
	}
	ro, err := redis.ParseURL(rest)
	if err != nil {
		return nil, bad("%s", err)
	}
	if ro.TLSConfig != nil && ro.TLSConfig.InsecureSkipVerify && !ownTLS {
		// go-redis reads ?skip_verify=true as InsecureSkipVerify: a query
		// option should not quietly turn certificate checks off.
		return nil, bad("skip_verify=true turns off TLS certificate verification; set TLSConfig with InsecureSkipVerify if that is really meant")
	}
	ro.Username, ro.Password = credentials(user)
	return ro, nil
}

// cutUserinfo takes u's user info apart (see parseURL) and returns the
// rest of the URL, the user info decoded (nil without one), and what
// makes an error that shows the URL without its user info.
//
// A credential in the query string (see queryCredential) is refused first,
// with an error that shows no part of the URL past its scheme: the
// credential's value may run on past a '&', ';', '#' or '@' (a password
// need not be encoded there), and that '@' would be taken for the end of
// a user info, what follows it for the host.
func cutUserinfo(u string) (rest string, user *url.Userinfo, bad func(string, ...any) error, err error) {
	start := 0
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + len("://")
	}
	if what := queryCredential(u[start:]); what != "" {
		where := "the URL's user info (user:password@) holds the user name and password"
		if kind, _ := topologyScheme(u); kind == "sentinel" {
			where = "the URL's user info (user:password@) holds the primary's and replicas' user name and password; " +
				"Options.SentinelUsername and SentinelPassword the sentinels'"
		}
		if strings.EqualFold(what, "addr") {
			where = "an address holds no user info (user:password@host:port); " +
				"the URL's user info holds the credentials of every node"
		}
		return "", nil, nil, fmt.Errorf("%w: options: URL %s... (the rest not shown): query option %s: "+
			"credentials never go in a query string, which gets logged; %s",
			ErrInvalidArgument, u[:start], what, where)
	}
	rest, info, hasInfo := u, "", false
	if at := userinfoEnd(u, start); at >= start {
		rest, info, hasInfo = u[:start]+u[at+1:], u[start:at], true
	}
	bad = func(format string, args ...any) error {
		return fmt.Errorf("%w: options: URL %s: "+format, append([]any{ErrInvalidArgument, shownURL(rest, hasInfo)}, args...)...)
	}
	if hasInfo {
		var ok bool
		if user, ok = parseUserinfo(info); !ok {
			return "", nil, nil, bad("the user name and password must be percent-encoded " +
				"(a character URLs do not allow there, or a %% not followed by two hex digits); " +
				"build the URL with url.UserPassword, or set Username and Password (with Addr, Addrs or MasterName) instead")
		}
	}
	// go-redis's parsers read the query with url.Query, which drops a pair
	// it cannot read (a ';' separator, a bad escape) without a word.
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		query, _, _ := strings.Cut(rest[q+1:], "#")
		if _, err := url.ParseQuery(query); err != nil {
			return "", nil, nil, bad("query string: %v", err)
		}
	}
	return rest, user, bad, nil
}

// credentials returns the user name and password of user, which may be
// nil.
func credentials(user *url.Userinfo) (username, password string) {
	if user == nil {
		return "", ""
	}
	password, _ = user.Password()
	return user.Username(), password
}

// userinfoEnd returns the index of the '@' that ends u's user info, which
// begins at start, or -1. A unix socket URL (unix://[user:pass@]/path) has
// its user info before the path's first '/', and the path may hold an '@'
// of its own (/tmp/redis@1.sock); every other URL's user info ends at its
// last '@', so that an unencoded '/', '?' or '#' in a password is still
// taken for user info, refused, and never shown.
func userinfoEnd(u string, start int) int {
	if strings.HasPrefix(u, "unix://") {
		if strings.HasPrefix(u[start:], "/") {
			return -1
		}
		if i := strings.Index(u[start:], "@/"); i >= 0 {
			return start + i
		}
	}
	return strings.LastIndex(u, "@")
}

// credentialQuery are query options that would carry a user name or a
// password: go-redis's own (username, password, sentinel_username,
// sentinel_password), and any other whose name holds one of
// credentialWords (passwd, auth, token, ...; go-redis reads none of
// those, but the value is a credential all the same). They are refused
// in every URL, and their values never shown: query strings get logged.
var (
	credentialQuery = []string{"username", "password", "sentinel_username", "sentinel_password"}
	credentialWords = []string{"pass", "user", "pwd", "secret", "auth", "token", "cred", "key"}
)

// queryCredential returns what names the first query option of u (a URL
// after its "://") that holds a credential: its name when it is one of
// credentialQuery, "addr" for an addr option whose value holds user info
// (an '@', written %40: go-redis's parsers quote a bad address whole, and
// dial errors and log lines name a good one), else a phrase that names the
// credential word its name holds (the name itself might be a password);
// "" if none. It reads u as it is written, before any parser that might
// quote it, from its first '?' or '#' (which may still be in an unencoded
// user info), and takes '&', ';' and '#' for separators: url.Query drops
// a pair with a ';' without a word.
func queryCredential(u string) string {
	q := strings.IndexAny(u, "?#")
	if q < 0 {
		return ""
	}
	for _, pair := range strings.FieldsFunc(u[q+1:], func(r rune) bool { return r == '&' || r == ';' || r == '#' }) {
		name, value, _ := strings.Cut(pair, "=")
		name, value = lenientUnescape(name), lenientUnescape(value)
		lower := strings.ToLower(name)
		switch {
		case slices.Contains(credentialQuery, lower):
			return name
		case lower == "addr" && strings.Contains(value, "@"):
			return name
		}
		for _, w := range credentialWords {
			if strings.Contains(lower, w) {
				return fmt.Sprintf("with %q in its name", w)
			}
		}
	}
	return ""
}

// lenientUnescape decodes s as a query string's name or value, as
// url.QueryUnescape does, but decodes each valid %XX even when another '%'
// of s is not followed by two hex digits (url.QueryUnescape would give up
// on all of s).
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v, _ := url.PathUnescape(s[i : i+3])
			b.WriteString(v)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// shownURL is the URL as errors show it: its user info, if it had one,
// replaced by "xxxxx".
func shownURL(rest string, hadInfo bool) string {
	if !hadInfo {
		return rest
	}
	if i := strings.Index(rest, "://"); i >= 0 {
		return rest[:i+3] + "xxxxx@" + rest[i+3:]
	}
	return "xxxxx@" + rest
}

// parseUserinfo decodes "user[:password]", percent-encoded as RFC 3986
// allows in a URL's user info (an '@' is let through, as net/url does).
func parseUserinfo(s string) (*url.Userinfo, bool) {
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:%@", c) >= 0:
		default:
			return nil, false
		}
	}
	name, pass, hasPass := strings.Cut(s, ":")
	name, err1 := url.PathUnescape(name)
	pass, err2 := url.PathUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	if !hasPass {
		return url.User(name), true
	}
	return url.UserPassword(name, pass), true
}
