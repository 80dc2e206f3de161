package imapd

import (
	"net"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// Open connections are counted in all and per remote address (ipKey): each costs a file
// descriptor, which SMTP, HTTP and the control socket share, and unauthenticated ones cost
// nothing to open. A connection beyond either limit is greeted with BYE and closed (RFC 9051
// §7.1.5: BYE as the greeting refuses the connection).
const (
	defaultMaxConnections      = 200
	defaultMaxConnectionsPerIP = 20
)

var errTooManyConnections = &imap.Error{
	Type: imap.StatusResponseTypeBye,
	Code: imap.ResponseCodeUnavailable,
	Text: "too many connections, try again later",
}

// connCount counts open connections per address; "" counts them all.
type connCount struct {
	mu sync.Mutex
	n  map[string]int
}

// add counts one more connection from ip, unless that would pass max in all or perIP from ip.
func (c *connCount) add(ip string, max, perIP int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if c.n[""] >= max || c.n[ip] >= perIP {
		return false
	}
	c.n[""]++
	c.n[ip]++
	return true
}

func (c *connCount) remove(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range []string{"", ip} {
		if c.n[k]--; c.n[k] <= 0 {
			delete(c.n, k)
		}
	}
}

// countedListener counts the connections it accepts; one over the limits is let through marked,
// so that the session, not the accept loop, writes the BYE (over TLS that needs a handshake).
type countedListener struct {
	net.Listener
	srv *Server
}

func (l countedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ip := ipKey(c.RemoteAddr())
	b := &batchConn{Conn: c} // under TLS too: its records are collected the same way
	if !l.srv.open.add(ip, l.srv.cfg.MaxConnections, l.srv.cfg.MaxConnectionsPerIP) {
		return &countedConn{Conn: b, over: true}, nil
	}
	return &countedConn{Conn: b, done: func() { l.srv.open.remove(ip) }}, nil
}

type countedConn struct {
	net.Conn
	over bool   // beyond the limits: refuse
	done func() // counts the connection out; nil when over
	once sync.Once
}

func (c *countedConn) Close() error {
	if c.done != nil {
		c.once.Do(c.done)
	}
	return c.Conn.Close()
}

// overLimit reports whether conn (or the connection under its TLS) was accepted beyond the
// limits.
func overLimit(conn net.Conn) bool {
	for conn != nil {
		if c, ok := conn.(*countedConn); ok {
			return c.over
		}
		u, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return false
		}
		conn = u.NetConn()
	}
	return false
}
