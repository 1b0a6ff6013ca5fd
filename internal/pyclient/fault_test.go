package pyclient

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// Fault tests of the Python runtime: gen/python/tests/test_faults.py runs
// against a real redis-server, through redistest's Proxy where replies are
// lost, and asks this process, over a line protocol on a loopback control
// port, to drop a reply, cut every connection, blackhole the server, or
// kill the server with SIGKILL and start it again on the same port.

// faultRun is one fault test's server, proxy and control port.
type faultRun struct {
	t     *testing.T
	srv   *redistest.Server
	proxy *redistest.Proxy
	ctl   net.Listener
}

// newFaultRun starts a server with args and a proxy in front of it, and
// the control port.
func newFaultRun(t *testing.T, args ...string) *faultRun {
	t.Helper()
	srv, err := redistest.Start(append([]string{"--save", ""}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	proxy, err := redistest.NewProxy(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &faultRun{t: t, srv: srv, proxy: proxy, ctl: l}
	t.Cleanup(func() { l.Close() })
	go f.serve()
	return f
}

func (f *faultRun) serve() {
	for {
		c, err := f.ctl.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for range 1000 {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				c.Write([]byte(f.do(strings.TrimSpace(line)) + "\n"))
			}
		}()
	}
}

// do runs one control command and returns its answer: "ok", "ok <n>" or
// "err <why>".
func (f *faultRun) do(cmd string) string {
	switch cmd {
	case "drop":
		f.proxy.DropNextReply()
	case "dropped":
		return "ok " + strconv.FormatInt(f.proxy.Dropped(), 10)
	case "cut":
		f.proxy.Cut()
	case "blackhole on":
		f.proxy.Blackhole(true)
	case "blackhole off":
		f.proxy.Blackhole(false)
	case "kill":
		if err := f.srv.Kill(); err != nil {
			return "err " + err.Error()
		}
	case "restart":
		if err := f.srv.Restart(); err != nil {
			return "err " + err.Error()
		}
	default:
		return "err unknown command " + strconv.Quote(cmd)
	}
	return "ok"
}

// python runs the test_faults.py tests named by pattern (unittest's -k)
// with env, and logs their output.
func (f *faultRun) python(pattern string, env ...string) {
	t := f.t
	t.Helper()
	py := Python(t)
	dir := t.TempDir()
	Assemble(t, dir, "pyrt", "teststore.py")
	CopyTest(t, dir, "test_faults.py")
	env = append(env,
		"STORAGEGEN_TEST_REDIS="+f.proxy.Addr,
		"STORAGEGEN_DIRECT_REDIS="+f.srv.Addr,
		"STORAGEGEN_FAULT_CTL="+f.ctl.Addr().String(),
	)
	out := runPython(t, py, dir, env, 2*time.Minute, "-m", "unittest", "-v", "-k", pattern, "test_faults")
	t.Logf("%s", out)
}

// TestPythonRepliesLost loses the reply of each Python operation (the
// proxy drops it and closes the connection) and cuts every connection
// under blocked pops and receives: the errors name the operation and key
// and hold no payload, an at-most-once push, a cache set and an ack or
// nack are UnknownOutcome and applied once, an at-least-once push is sent
// again and stored once (its marker), a lost take is given back uncounted,
// and the same client goes on.
func TestPythonRepliesLost(t *testing.T) {
	newFaultRun(t).python("RepliesLost")
}

// TestPythonBlackhole blackholes the server under Python calls run with
// asyncio.wait_for: each returns (a command already sent is given up
// after a grace period, the pool's socket_timeout or 3 s), and what the
// server applied is there once afterwards; blocked pops and receives
// cancelled so lose nothing.
func TestPythonBlackhole(t *testing.T) {
	newFaultRun(t).python("Blackhole")
}

// TestPythonServerRestart kills the server (SIGKILL) and starts it again on
// the same port, with appendfsync always, while Python producers push_id
// and consumers receive and ack on an at-least-once queue: nothing pushed
// successfully is lost, every acked item was handled, and the same
// clients resume. test_faults.py prints the figures.
func TestPythonServerRestart(t *testing.T) {
	newFaultRun(t, "--appendonly", "yes", "--appendfsync", "always").python("ServerRestart")
}

// TestPythonWithoutClientCommand runs blocking pops and receives as an ACL
// user of the README's least-privilege line without CLIENT ID and CLIENT
// UNBLOCK: they wait in 50 ms slices, and cancels lose nothing.
func TestPythonWithoutClientCommand(t *testing.T) {
	f := newFaultRun(t)
	const password = "s3cret-Pa55word"
	rules := slices.DeleteFunc(redistest.AppUserRules("pyt:"), func(r string) bool {
		return strings.HasPrefix(r, "+client|")
	})
	admin := redis.NewClient(&redis.Options{Addr: f.srv.Addr})
	defer admin.Close()
	args := []any{"ACL", "SETUSER", "pyapp", "on", ">" + password}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := admin.Do(context.Background(), args...).Err(); err != nil {
		t.Fatal(err)
	}
	f.python("NoClientCommand", "STORAGEGEN_TEST_USER=pyapp", "STORAGEGEN_TEST_PASSWORD="+password)
}

// TestPythonPoolExhausted runs blocking pops on clients whose pool has one
// or two connections (redis-py's max_connections, and a
// BlockingConnectionPool): no deadlock, cancels end the waits, and a call
// that finds no connection fails with an error that says so.
func TestPythonPoolExhausted(t *testing.T) {
	newFaultRun(t).python("PoolExhausted")
}
