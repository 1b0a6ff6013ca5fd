package runtime

import (
	"context"
	"fmt"
	"log"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// capturedLogger keeps what go-redis logs, and passes it on to stderr.
type capturedLogger struct {
	mu    sync.Mutex
	lines []string
	out   *log.Logger
}

func (l *capturedLogger) Printf(_ context.Context, format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	l.out.Print(s)
}

func (l *capturedLogger) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestNoSecretAtDialTime: URLs of every form whose password (with every
// character URLs make hard, percent-encoded) the servers refuse, or that
// name servers of the wrong kind or none: no error of a Ping, Push, Pop,
// Get or Set, and no line go-redis logs (captured with redis.SetLogger),
// holds a piece of the password.
func TestNoSecretAtDialTime(t *testing.T) {
	redistest.SingleOnly(t, "servers of its own with a password; the same whatever the run's topology")
	srv, err := redistest.Start("--requirepass", "the-real-one")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tlsSrv, _, err := redistest.StartTLS()
	if err != nil {
		t.Fatal(err)
	}
	defer tlsSrv.Close()

	logs := &capturedLogger{out: log.New(os.Stderr, "redis: ", log.LstdFlags)}
	redis.SetLogger(logs)
	defer redis.SetLogger(&capturedLogger{out: log.New(os.Stderr, "redis: ", log.LstdFlags|log.Lshortfile)})

	secret := fuzzSecret("p@ss:w/rd?#%zz [x] \u00e9\n&;") // every 3 bytes hold a 'Q' or a 'J'
	ui := url.UserPassword("app", secret).String()
	for _, u := range []string{
		"redis://" + ui + "@" + srv.Addr + "/0",
		"redis://" + ui + "@127.0.0.1:1/0?dial_timeout=200ms",
		"rediss://" + ui + "@" + tlsSrv.Addr + "/0",
		"redis+cluster://" + ui + "@" + srv.Addr + "?addr=127.0.0.1:1&dial_timeout=200ms",
		"redis+cluster://" + ui + "@127.0.0.1:1?dial_timeout=200ms",
		"rediss+cluster://" + ui + "@" + tlsSrv.Addr,
		"redis+sentinel://" + ui + "@" + srv.Addr + "/0?master_name=" + url.QueryEscape("m a@s#ter") + "&dial_timeout=200ms",
		"redis+sentinel://" + ui + "@127.0.0.1:1/0?master_name=m&dial_timeout=200ms",
		"rediss+sentinel://" + ui + "@" + tlsSrv.Addr + "/0?master_name=m",
	} {
		ds, err := New(Options{URL: u, Prefix: "test:dial:", PoolSize: 1, BlockingPoolSize: 1})
		if err != nil {
			t.Fatalf("New(%s): %v", u, err)
		}
		var errs []error
		call := func(f func(ctx context.Context) error) {
			ctx, cancel := context.WithTimeout(bg, 2*time.Second)
			defer cancel()
			errs = append(errs, f(ctx))
		}
		call(ds.Connection.Ping)
		call(func(ctx context.Context) error { return ds.Queue.Push(ctx, "q", 1) })
		call(func(ctx context.Context) error {
			_, err := ds.Queue.Pop(ctx, "q", 100*time.Millisecond, new(int))
			return err
		})
		call(func(ctx context.Context) error { return ds.Cache.Set(ctx, "k", 1, time.Minute) })
		call(func(ctx context.Context) error { _, err := ds.Cache.Get(ctx, "k", new(int)); return err })
		ds.Close()
		for _, err := range errs {
			if err == nil {
				t.Errorf("%s: a call succeeded; no server here takes this password", u)
				continue
			}
			if p := secretPiece(err.Error(), secret); p != "" {
				t.Errorf("%s: the error holds %q of the password: %v", u, p, err)
			}
		}
	}
	text := logs.text()
	if p := secretPiece(text, secret); p != "" {
		t.Errorf("go-redis logged %q of the password:\n%s", p, text)
	}
	// The capture works: the failover clients logged their failed lookups.
	if !strings.Contains(text, "sentinel:") {
		t.Errorf("go-redis logged no sentinel line; the capture missed them:\n%s", text)
	}
}
