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

// redisURL is the server every test of this package uses: REDIS_URL, or
// a redis-server that TestMain starts on a free loopback port.
var redisURL string

func TestMain(m *testing.M) {
	redistest.Main(m, &redisURL)
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
		raw := rawClient(t)
		keys, err := raw.Keys(bg, opts.Prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			raw.Del(bg, keys...)
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

// rawClient is a plain go-redis client on the test server, for looking
// behind the API.
func rawClient(t testing.TB) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
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
