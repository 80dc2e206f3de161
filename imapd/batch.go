package imapd

import (
	"net"
	"sync"
	"time"
)

// batchConn collects what the server writes while it works on a command and sends it when the
// server next reads (it then waits for the client), when much is collected, or when the
// connection closes. The library flushes its buffer after every response line, so a FETCH 1:*
// of a 100,000-message mailbox was 100,000 writes; it is now a few hundred.
//
// What the server writes while it waits in a read goes out at once: those are the updates IDLE
// sends from a goroutine of its own (RFC 9051 §6.3.13), and the client is waiting for them.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	buf      []byte
	reading  bool      // a Read is waiting for the client
	deadline time.Time // the write deadline the library set last
	err      error     // the first failed write: every later write fails with it
}

const (
	// batchFlushAt: what is collected goes out once it is this large.
	batchFlushAt = 64 << 10
	// batchWriteTimeout bounds a write of what was collected when the library has no write
	// deadline set (it sets one only while it writes a response).
	batchWriteTimeout = time.Minute
	// batchCloseTimeout bounds the last write, when the connection closes (as crypto/tls
	// bounds its close_notify).
	batchCloseTimeout = 5 * time.Second
)

func (c *batchConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.flushLocked(false)
	c.reading = err == nil
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reading = false
	c.mu.Unlock()
	return n, err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.buf = append(c.buf, p...)
	if c.reading || len(c.buf) >= batchFlushAt {
		if err := c.flushLocked(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flushLocked sends what was collected, under the library's write deadline or, when it has
// none set or closing is true, batchWriteTimeout (a client that reads nothing must not hold
// the session forever).
func (c *batchConn) flushLocked(closing bool) error {
	if c.err != nil || len(c.buf) == 0 {
		return c.err
	}
	// The library sets a deadline before each response and clears it after: twice per message
	// of a FETCH. It is kept here and given to the connection only when something is written.
	deadline := c.deadline
	if deadline.IsZero() || closing {
		timeout := batchWriteTimeout
		if closing {
			timeout = batchCloseTimeout
		}
		deadline = time.Now().Add(timeout)
	}
	_ = c.Conn.SetWriteDeadline(deadline)
	_, c.err = c.Conn.Write(c.buf)
	if cap(c.buf) > 4*batchFlushAt {
		c.buf = nil // one huge literal need not stay allocated for the session
	} else {
		c.buf = c.buf[:0]
	}
	return c.err
}

// SetWriteDeadline keeps t for the next write (flushLocked): every write goes through it.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *batchConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// Close sends what was collected (LOGOUT's BYE and OK, the BYE that refuses a connection
// beyond the limits, TLS's close_notify) and closes the connection. The deadline set last is
// not the one to honour here: crypto/tls sets it to now after its close_notify, which it
// believes sent.
func (c *batchConn) Close() error {
	c.mu.Lock()
	_ = c.flushLocked(true)
	c.mu.Unlock()
	return c.Conn.Close()
}

// NetConn is the connection underneath (overLimit looks for the countedConn there).
func (c *batchConn) NetConn() net.Conn { return c.Conn }
