// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and stops them when the test binary is done with them.
// On Linux a server also dies with the test process when that process ends
// without cleaning up (a panic), by a parent-death signal.
package redistest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server is one redis-server process listening on 127.0.0.1.
type Server struct {
	Addr string
	Port int
	dir  string
	args []string    // the whole command line but the binary
	tls  *tls.Config // for the readiness check of a TLS-only server
	more []string    // more directories to remove on Close
	cmd  *exec.Cmd
}

// ErrNoServer says how to get a server when none can be started.
var ErrNoServer = errors.New("redistest: redis-server is not installed and REDIS_URL is not set; " +
	"run ./scripts/test.sh (it installs redis-server with apt-get), or apt-get install -y redis-server, or set REDIS_URL=redis://127.0.0.1:6379/0")

func execLookPath() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", ErrNoServer
	}
	return bin, nil
}

// Start starts redis-server on a free loopback port with extra args
// (such as "--appendonly", "yes") and waits until it answers PING.
func Start(args ...string) (*Server, error) {
	bin, err := execLookPath()
	if err != nil {
		return nil, err
	}
	return startWith(bin, func(port int) ([]string, error) {
		return append([]string{"--port", strconv.Itoa(port)}, args...), nil
	}, nil)
}

// startWith starts redis-server with the arguments portArgs gives for a
// free port, in a new directory.
func startWith(bin string, portArgs func(port int) ([]string, error), tlsConf *tls.Config) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	s, err := startIn(bin, dir, nil, portArgs, tlsConf)
	if err != nil {
		os.RemoveAll(dir)
	}
	return s, err
}

// startIn starts redis-server in dir with the arguments lead (such as a
// configuration file, which must come first) and those portArgs gives for
// a free port, trying a few ports: one may be taken between probing and
// binding.
func startIn(bin, dir string, lead []string, portArgs func(port int) ([]string, error), tlsConf *tls.Config) (*Server, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		more, err := portArgs(port)
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, dir: dir, tls: tlsConf}
		s.args = append(append(append([]string(nil), lead...),
			"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
			"--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
		), more...)
		if lastErr = s.start(bin); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(bin string) error {
	s.cmd = exec.Command(bin, s.args...)
	if err := startCmd(s.cmd); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redistest: redis-server on port %d exited: %v; log: %s", s.Port, err, s.logTail())
		default:
		}
		if s.ping() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	return fmt.Errorf("redistest: redis-server on port %d did not answer within 10s; log: %s", s.Port, s.logTail())
}

// ping sends PING over a raw socket and waits for +PONG, or -NOAUTH from a
// server that wants a password: either way it is up.
func (s *Server) ping() error {
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 200 * time.Millisecond}
	if s.tls != nil {
		c, err = tls.DialWithDialer(d, "tcp", s.Addr, s.tls)
	} else {
		c, err = d.Dial("tcp", s.Addr)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

func (s *Server) logTail() string { return s.LogTail(2000) }

// LogTail returns the last n bytes of the server's log, for a test's
// failure message.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// URL returns the server's redis:// URL for database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

// Kill ends the server with SIGKILL, as a crash would.
func (s *Server) Kill() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	err := s.cmd.Process.Kill()
	// Wait until the port is free again.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && s.ping() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// Restart starts the server again on the same port and directory, after
// Kill.
func (s *Server) Restart() error {
	bin, err := execLookPath()
	if err != nil {
		return err
	}
	return s.start(bin)
}

// Close kills the server and removes its directory.
func (s *Server) Close() error {
	err := s.Kill()
	for _, dir := range append(s.more, s.dir) {
		os.RemoveAll(dir)
	}
	return err
}
