package runtime

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// syncBuffer is a bytes.Buffer that loggers on several goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConsumeFailsFast: against a real redis-server, a wrong password, an
// ACL user without a command the queue needs, and a server without BLMOVE
// end Consume with an error wrapping the server's reply once receives have
// failed that way for the unfixable window, instead of retrying forever.
// The first case also leaves Logger nil: slog.Default() gets the log.
func TestConsumeFailsFast(t *testing.T) {
	redistest.SingleOnly(t, "servers of its own (a password, an ACL user, a renamed BLMOVE)")
	defer func(w time.Duration) { unfixableWindow = w }(unfixableWindow)
	unfixableWindow = 300 * time.Millisecond

	srv, err := redistest.Start("--requirepass", "the-real-one")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "the-real-one"})
	defer admin.Close()
	if err := admin.Do(bg, "ACL", "SETUSER", "no-blmove", "on", ">pw", "~*", "+@all", "-blmove").Err(); err != nil {
		t.Fatal(err)
	}
	renamed, err := redistest.Start("--rename-command", "BLMOVE", "")
	if err != nil {
		t.Fatal(err)
	}
	defer renamed.Close()

	for _, tc := range []struct {
		name, url, reply string
		defaultLogger    bool
		typed            error // what the error also wraps, before the reply
	}{
		{"wrong password", "redis://default:s3cret-pw@" + srv.Addr + "/0", "WRONGPASS", true, nil},
		{"ACL user without BLMOVE", "redis://no-blmove:pw@" + srv.Addr + "/0", "NOPERM", false, ErrPermission},
		{"server without BLMOVE", renamed.URL(0), "ERR unknown command", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := New(Options{URL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			var logs syncBuffer
			opts := ConsumeOptions{Concurrency: 4, BlockTimeout: time.Second}
			if tc.defaultLogger {
				defer slog.SetDefault(slog.Default())
				slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
			} else {
				opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			}
			q := testReliable[int](ds, "fails", time.Second, 0)
			ctx, cancel := context.WithTimeout(bg, 20*time.Second)
			defer cancel()
			start := time.Now()
			err = q.Consume(ctx, func(context.Context, *Delivery[int]) error { return nil }, opts)
			took := time.Since(start)
			t.Logf("Consume returned after %v: %v", took.Round(time.Millisecond), err)

			var re redis.Error
			if !errors.As(err, &re) || !strings.HasPrefix(re.Error(), tc.reply) {
				t.Fatalf("Consume = %v; want an error wrapping the %s reply", err, tc.reply)
			}
			want := `storagegen: consume "queue:{fails}": receiving failed for 300ms with replies that retrying cannot fix: `
			if tc.typed != nil {
				if !errors.Is(err, tc.typed) {
					t.Errorf("Consume = %v; want it to wrap %v", err, tc.typed)
				}
				want += tc.typed.Error() + ": "
			}
			if !strings.HasPrefix(err.Error(), want+tc.reply) {
				t.Errorf("error text: %v", err)
			}
			if took < unfixableWindow || took > unfixableWindow+3*time.Second {
				t.Errorf("Consume returned after %v; want the window, %v, plus at most a retry", took, unfixableWindow)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(logs.String(), "s3cret") {
				t.Error("the password is in the error or the log")
			}
			if !strings.Contains(logs.String(), "consume stops") {
				t.Errorf("log has no line about stopping:\n%s", logs.String())
			}
		})
	}
}

// TestUnfixableWindow: unfixable failures end Consume only after the
// window has passed with no success in between.
func TestUnfixableWindow(t *testing.T) {
	var g retryGate
	t0 := time.Now()
	if g.unfixable(t0) || g.unfixable(t0.Add(unfixableWindow-time.Millisecond)) {
		t.Fatal("gave up within the window")
	}
	g.succeeded()
	if g.unfixable(t0.Add(unfixableWindow)) {
		t.Fatal("a success did not start the window again")
	}
	if !g.unfixable(t0.Add(2 * unfixableWindow)) {
		t.Fatal("did not give up after the window")
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{redis.ErrClosed, false},
		{errors.New("NOPERM but not a reply"), false},
		{opError("receive", "k", proto("NOPERM this user has no permissions to run the 'evalsha' command")), true},
		{proto("ERR The user executing the script can't run this command or subcommand script: x"), true},
		{proto("ERR Unknown Redis command called from script script: x"), true},
		{proto("LOADING Redis is loading the dataset in memory"), false},
		{proto("READONLY You can't write against a read only replica."), false},
	} {
		if got := isUnfixable(tc.err); got != tc.want {
			t.Errorf("isUnfixable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// proto is an error reply as go-redis returns it.
type proto string

func (p proto) Error() string { return string(p) }
func (p proto) RedisError()   {}
