package imapd

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// greet connects from the loopback address local and returns the server's first line.
func (e *env) greet(t *testing.T, local string) (net.Conn, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Skipf("cannot connect from %s: %v", local, err)
	}
	t.Cleanup(func() { conn.Close() })
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return conn, strings.TrimRight(line, "\r\n")
}

// TestConnectionCaps: beyond the connections allowed from one address, or in all, a client is
// greeted with BYE and the connection closed; the ones already open keep working, and a
// closed one makes room.
func TestConnectionCaps(t *testing.T) {
	e := newEnvWith(t, envOptions{insecureAuth: true, maxConns: [2]int{5, 3}})
	var open []net.Conn
	for _, ip := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"} {
		c, g := e.greet(t, ip)
		if !strings.HasPrefix(g, "* OK") {
			t.Fatalf("connection from %s: %q", ip, g)
		}
		open = append(open, c)
	}
	if _, g := e.greet(t, "127.0.0.1"); !strings.HasPrefix(g, "* BYE ") || !strings.Contains(g, "too many connections") {
		t.Errorf("a 4th connection from one address: %q, want BYE", g)
	}
	for range 2 {
		if _, g := e.greet(t, "127.0.0.2"); !strings.HasPrefix(g, "* OK") {
			t.Fatalf("connection from another address: %q", g)
		}
	}
	c, g := e.greet(t, "127.0.0.3")
	if !strings.HasPrefix(g, "* BYE ") {
		t.Errorf("a 6th connection in all: %q, want BYE", g)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Error("the connection stays open after BYE")
	}
	// A connection open before still works.
	io := bufio.NewReader(open[1])
	open[1].Write([]byte("a1 NOOP\r\n"))
	if line, _ := io.ReadString('\n'); !strings.HasPrefix(line, "a1 OK") {
		t.Errorf("NOOP on an open connection: %q", line)
	}
	open[0].Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, g := e.greet(t, "127.0.0.3"); strings.HasPrefix(g, "* OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection was never counted out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
