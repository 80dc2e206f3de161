package smtpd

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// writesListener records every write the server makes on the connections it accepts.
type writesListener struct {
	net.Listener
	mu     sync.Mutex
	writes []string
}

func (l *writesListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writesConn{Conn: c, l: l}, nil
}

func (l *writesListener) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

type writesConn struct {
	net.Conn
	l *writesListener
}

func (c *writesConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, string(p))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// TestPipelinedRepliesLeaveTogether: a client that pipelines (RFC 2920) MAIL, RCPT and DATA
// gets the three replies, in order, in one write: one packet, not three; so are the lines of
// the EHLO reply. Every reply still comes before the server waits for the client.
func TestPipelinedRepliesLeaveTogether(t *testing.T) {
	d := &fakeDomain{}
	s := New(Config{Hostname: "mx.example.test", MaxMessageBytes: 1 << 20, MaxRecipients: 10,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute}, d, slog.New(slog.DiscardHandler))
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &writesListener{Listener: tcp}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(time.Second) })

	conn, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	r := textproto.NewReader(bufio.NewReader(conn))
	expect := func(code int) string {
		t.Helper()
		_, msg, err := r.ReadResponse(code)
		if err != nil {
			t.Fatalf("want %d: %v", code, err)
		}
		return msg
	}
	send := func(s string) {
		t.Helper()
		if _, err := fmt.Fprint(conn, s); err != nil {
			t.Fatal(err)
		}
	}
	expect(220)
	send("EHLO client.example.test\r\n")
	if ehlo := expect(250); !strings.Contains(ehlo, "PIPELINING") {
		t.Fatalf("EHLO reply %q does not offer PIPELINING", ehlo)
	}
	for range 2 {
		send("MAIL FROM:<a@example.test>\r\nRCPT TO:<crew@example.test>\r\nDATA\r\n")
		expect(250)
		expect(250)
		expect(354)
		send("From: a@example.test\r\n\r\n..hi\r\n.\r\n")
		expect(250)
	}
	send("QUIT\r\n")
	expect(221)

	if len(d.got) != 2 || !strings.HasSuffix(string(d.got[1]), "\r\n.hi\r\n") {
		t.Errorf("messages accepted: %q", d.got)
	}
	writes := ln.all()
	var groups, ehlo int
	for _, w := range writes {
		if strings.Contains(w, "354 ") {
			groups++
			if !strings.HasPrefix(w, "250 2.0.0 ") || strings.Count(w, "\r\n") != 3 {
				t.Errorf("the replies to MAIL, RCPT and DATA left as %q, want the three in one write", w)
			}
		}
		if strings.Contains(w, "PIPELINING") {
			ehlo++
			if !strings.HasPrefix(w, "250-mx.example.test Hello") || !strings.HasSuffix(w, "\r\n") || strings.Count(w, "250 ") != 1 {
				t.Errorf("the EHLO reply left as %q, want it whole in one write, our name first", w)
			}
		}
	}
	if groups != 2 || ehlo != 1 {
		t.Errorf("server writes %q: want two with the group's replies and one with the EHLO reply", writes)
	}
}
