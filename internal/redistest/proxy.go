package redistest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy is a TCP proxy on a free loopback port in front of a server, for
// fault tests. It forwards both ways, except:
//
//   - in blackhole mode it keeps every connection open but drops the
//     server's bytes, as a silent network cut does;
//   - once DropNextReply is armed, the next bytes the server sends on any
//     connection are dropped and that connection is closed on both sides:
//     the command was applied, and the client never hears so.
type Proxy struct {
	Addr      string
	target    string
	l         net.Listener
	blackhole atomic.Bool
	dropNext  atomic.Bool
	dropped   atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port).
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Blackhole starts (true) or stops (false) dropping the server's replies.
func (p *Proxy) Blackhole(on bool) { p.blackhole.Store(on) }

// DropNextReply arms the proxy to drop the next reply and close its
// connection.
func (p *Proxy) DropNextReply() { p.dropNext.Store(true) }

// Dropped returns how many replies DropNextReply has dropped.
func (p *Proxy) Dropped() int64 { return p.dropped.Load() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(server, client)
			server.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer client.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := server.Read(buf)
				if err != nil {
					return
				}
				if p.blackhole.Load() {
					continue
				}
				if p.dropNext.CompareAndSwap(true, false) {
					p.dropped.Add(1)
					server.Close()
					return
				}
				if _, err := client.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// Cut closes every connection through the proxy, both sides, as a lost
// network or a restarted server does; new connections are still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() error {
	err := p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
