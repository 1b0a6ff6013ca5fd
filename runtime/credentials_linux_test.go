package runtime

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestWrongCredentialsFailFast: 200 DataStores with a wrong password each
// fail their first call at once, with an error that wraps the server's
// WRONGPASS and never shows the password, and leave no file descriptor
// open once closed.
func TestWrongCredentialsFailFast(t *testing.T) {
	redistest.SingleOnly(t, "a server of its own with a password")
	srv, err := redistest.Start("--requirepass", "the-real-one")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	try := func() {
		ds, err := New(Options{URL: "redis://default:s3cret-pw@" + srv.Addr + "/0", Prefix: "creds:"})
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		err = ds.Queue.Push(ctx, "q", 1)
		var re redis.Error
		if !errors.As(err, &re) || !strings.HasPrefix(re.Error(), "WRONGPASS") || ctx.Err() != nil {
			t.Fatalf("Push with a wrong password = %v; want the server's WRONGPASS at once", err)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("error carries the password: %v", err)
		}
	}
	try() // the first DataStore warms what the package keeps (scripts, pools)
	before := openFDs(t)
	for range 200 {
		try()
	}
	// A closed go-redis pool closes its sockets at once; allow for a few
	// a concurrent test of this process may hold.
	if after := openFDs(t); after > before+5 {
		t.Errorf("open file descriptors %d before 200 failed logins, %d after", before, after)
	}
}
