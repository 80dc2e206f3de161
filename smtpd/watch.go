package smtpd

import (
	"bytes"
	"net"
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
type watchedConn struct {
	net.Conn
	hostname string      // this server's name, for the EHLO/HELO reply
	state    uint8       // where the last byte read left the line; only Read touches it
	dotCR    atomic.Bool // such a line was read since the last takeDotCR
}

const (
	lineStart uint8 = iota // the first state: at the start of the stream or after LF
	lineDot                // a dot at the start of a line
	lineDotCR              // a dot and a CR at the start of a line
	lineMid                // anywhere else
)

func (c *watchedConn) Read(p []byte) (int, error) {
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

// Write puts hostname into the EHLO and HELO replies (see watchedConn).
func (c *watchedConn) Write(p []byte) (int, error) {
	if c.hostname == "" {
		return c.Conn.Write(p)
	}
	for _, prefix := range []string{"250-Hello ", "250 Hello ", "250 2.0.0 Hello "} {
		if bytes.HasPrefix(p, []byte(prefix)) {
			code, rest := prefix[:len(prefix)-len("Hello ")], p[len(prefix)-len("Hello "):]
			line := append([]byte(code+c.hostname+" "), rest...)
			if _, err := c.Conn.Write(line); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// takeDotCR reports whether a line that starts with a dot and a bare CR was read since the last
// call.
func (c *watchedConn) takeDotCR() bool { return c.dotCR.Swap(false) }

// dotCRWatcher is what a session's connection is when its bytes can be watched (a plain
// connection from limitedListener).
type dotCRWatcher interface{ takeDotCR() bool }
