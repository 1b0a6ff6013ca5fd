package runtime

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
)

// redisURL is the server (or the cluster, or the Sentinel group) every
// test of this package uses: REDIS_URL, or what TestMain starts on free
// loopback ports (redistest.Main: the topology STORAGEGEN_TEST_TOPOLOGY
// selects, and an ACL user limited to the keys under testPrefixes).
var redisURL string

// testPrefixes are the prefixes of every key the tests write through
// redisURL: newStore's (testPrefix) and the Example functions'.
var testPrefixes = []string{"test:", "example:"}

func TestMain(m *testing.M) {
	redistest.Main(m, &redisURL, testPrefixes...)
}

// newStore returns a DataStore on the test server whose keys are unique to
// the test, closed at the end of the test.
func newStore(t testing.TB, opts Options) *DataStore {
	t.Helper()
	if opts.URL == "" && opts.Addr == "" && opts.Client == nil && len(opts.Addrs) == 0 && opts.MasterName == "" {
		opts.URL = redisURL
	}
	if opts.Prefix == "" {
		opts.Prefix = testPrefix(t)
		// Keys of an earlier run (go test -count=N) must not leak in.
		if _, err := redistest.DeleteKeys(bg, rawClient(t), opts.Prefix+"*"); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds
}

func testPrefix(t testing.TB) string {
	return "test:" + strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '_' || r == '-' || keyspace.Verbatim(byte(r))) {
			return r
		}
		return '.'
	}, t.Name()) + ":"
}

// rawClient is a plain go-redis client on the test servers as the admin
// user, for looking behind the API: a *redis.ClusterClient on a cluster
// (list keys with redistest.Keys, which asks every primary).
func rawClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	return redistest.Admin(t)
}

// testClient returns a go-redis client of the test servers as the tests'
// user (redisURL), closed at the end of the test: a *redis.Client on one
// server or a Sentinel group (a failover client), a *redis.ClusterClient
// on a cluster. query adds go-redis query options (pool_timeout=300ms).
func testClient(t testing.TB, query ...string) redis.UniversalClient {
	t.Helper()
	u := redisURL
	for _, q := range query {
		if strings.Contains(u, "?") {
			u += "&" + q
		} else {
			u += "?" + q
		}
	}
	c, err := redistest.NewClient(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var bg = context.Background()

// payload is a struct with every field type a schema accepts.
type payload struct {
	S    string            `json:"s"`
	B    bool              `json:"b"`
	I    int               `json:"i"`
	I32  int32             `json:"i32"`
	I64  int64             `json:"i64"`
	U32  uint32            `json:"u32"`
	U64  uint64            `json:"u64"`
	F32  float32           `json:"f32"`
	F64  float64           `json:"f64"`
	Raw  []byte            `json:"raw"`
	At   time.Time         `json:"at"`
	Any  any               `json:"any"`
	List []string          `json:"list"`
	Map  map[string]any    `json:"map"`
	Deep map[string][]item `json:"deep"`
	Opt  string            `json:"opt,omitzero"`
}

type item struct {
	N int64 `json:"n"`
}
