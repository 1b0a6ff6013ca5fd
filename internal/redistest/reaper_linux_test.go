package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperPanicWithServer is run as a child process by
// TestServerDiesWithTestProcess: it starts a server, reports its pid and
// address, and panics, so that no cleanup of any kind runs.
func TestHelperPanicWithServer(t *testing.T) {
	if os.Getenv("REDISTEST_PANIC_CHILD") != "1" {
		t.Skip("run by TestServerDiesWithTestProcess")
	}
	// Start from a goroutine that locks its thread and ends, as a test
	// may: the Go runtime then ends that thread (unless it is the main
	// thread, which it keeps: so not that one), which must not take the
	// server with it.
	var s *Server
	var err error
	hold := make(chan struct{})
	defer close(hold)
	for started := false; !started; {
		res := make(chan bool)
		go func() {
			runtime.LockOSThread()
			if syscall.Gettid() == os.Getpid() {
				res <- false
				<-hold // keep the main thread busy, so the next try gets another
				return
			}
			s, err = Start()
			res <- true
		}()
		started = <-res
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // a panic in another goroutine skips even this
	time.Sleep(200 * time.Millisecond)
	if err := s.ping(); err != nil {
		t.Fatalf("the server died when the thread that started it ended: %v", err)
	}
	fmt.Printf("server %d %s\n", s.cmd.Process.Pid, s.Addr)
	os.Stdout.Sync()
	done := make(chan struct{})
	go func() { panic("a test goroutine panics with a redis-server running") }()
	<-done
}

// TestServerDiesWithTestProcess: a test process that panics takes its
// redis-server with it, within a bounded time, although nothing of the
// harness's cleanup ran.
func TestServerDiesWithTestProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPanicWithServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REDISTEST_PANIC_CHILD=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var addr string
	var stdout strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "server %d %s", &pid, &addr); err == nil {
			break
		}
		stdout.WriteString(sc.Text() + "\n")
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for sc.Scan() {
		}
	}()
	<-drained
	err = cmd.Wait()
	if pid == 0 {
		t.Fatalf("the child reported no server (exit: %v); its output:\n%s%s", err, stdout.String(), stderr.String())
	}
	if err == nil {
		t.Fatal("the child did not fail; it should have panicked")
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (alive(pid) || listening(addr)) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) || listening(addr) {
		syscall.Kill(pid, syscall.SIGKILL) // do not leak it from this test either
		t.Fatalf("redis-server pid %d on %s still runs 5s after its test process panicked", pid, addr)
	}
}

// alive reports whether pid is a running process (not gone, not a zombie
// waiting for a reaper).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
