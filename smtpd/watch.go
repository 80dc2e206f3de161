package smtpd

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
)

// watchedConn notes, in the bytes a client sends, a line that starts with a dot and a bare CR.
// go-smtp's DATA reader drops the dot and the CR of such a line without a trace (".\rX" reaches
// the session as "X"), so the check for bare CRs in the message cannot see it; RFC 5321 §4.5.2
// removes only the leading dot of a line, and §2.3.8 allows CR only before LF.
//
// The client's bytes are readable here only on a plain connection: after STARTTLS go-smtp reads
// through its own tls.Conn on top of this one, and what passes here is ciphertext.
//
// It also puts this server's name first in the EHLO and HELO replies, where RFC 5321 §4.1.1.1
// wants it ("250-mx.example.org Hello client"): go-smtp writes "250-Hello client" and has no
// setting for it. go-smtp flushes each reply line on its own, so the line is one Write. After
// STARTTLS the bytes that pass here are ciphertext and the reply keeps go-smtp's form.
//
// And it holds the replies back until the server reads again: go-smtp writes every reply line
// with its own system call, so a client that pipelines (RFC 2920) MAIL, RCPT and DATA got three
// packets back. go-smtp reads through a buffer and calls Read only when that buffer is empty,
// that is when it needs more from the client; the replies written since are sent then, in one
// write, before the read that waits for the client. A reply is so never held while the server
// waits for the client, and a batch's replies leave together (RFC 2920 §3.2 lets a server
// send them so). Close sends what is held before it closes.
type watchedConn struct {
	net.Conn
	hostname string      // this server's name, for the EHLO/HELO reply
	state    uint8       // where the last byte read left the line; only Read touches it
	dotCR    atomic.Bool // such a line was read since the last takeDotCR

	mu  sync.Mutex // Close may come from another goroutine (go-smtp's Server.Close)
	out []byte     // replies written and not yet sent
}

const (
	lineStart uint8 = iota // the first state: at the start of the stream or after LF
	lineDot                // a dot at the start of a line
	lineDotCR              // a dot and a CR at the start of a line
	lineMid                // anywhere else
)

func (c *watchedConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	st := c.state
	for _, b := range p[:n] {
		switch {
		case b == '\n':
			st = lineStart
		case st == lineDotCR:
			c.dotCR.Store(true)
			st = lineMid
		case st == lineStart && b == '.':
			st = lineDot
		case st == lineDot && b == '\r':
			st = lineDotCR
		default:
			st = lineMid
		}
	}
	c.state = st
	return n, err
}

// Write holds p until the next Read or Close (see watchedConn), with hostname put into the
// EHLO and HELO replies.
func (c *watchedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hostname != "" {
		for _, prefix := range []string{"250-Hello ", "250 Hello ", "250 2.0.0 Hello "} {
			if bytes.HasPrefix(p, []byte(prefix)) {
				code, rest := prefix[:len(prefix)-len("Hello ")], p[len(prefix)-len("Hello "):]
				c.out = append(append(append(c.out, code...), c.hostname+" "...), rest...)
				return len(p), nil
			}
		}
	}
	c.out = append(c.out, p...)
	return len(p), nil
}

// flush sends the replies held.
func (c *watchedConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.out)
	if cap(c.out) > 64<<10 {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return err
}

// Close sends the replies held (a last 421, the TLS close_notify) and closes the connection.
func (c *watchedConn) Close() error {
	_ = c.flush()
	return c.Conn.Close()
}

// takeDotCR reports whether a line that starts with a dot and a bare CR was read since the last
// call.
func (c *watchedConn) takeDotCR() bool { return c.dotCR.Swap(false) }

// dotCRWatcher is what a session's connection is when its bytes can be watched (a plain
// connection from limitedListener).
type dotCRWatcher interface{ takeDotCR() bool }
