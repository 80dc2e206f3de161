package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"crewmail/lists"
)

// rawClient speaks SMTP by hand, for what a well-behaved client library never sends.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{conn: conn, r: bufio.NewReader(conn)}
}

// reply reads the next reply and returns its last line, or "(connection closed)".
func (c *rawClient) reply() string {
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return "(connection closed)"
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			return line
		}
	}
}

// cmd sends line (CRLF added) and returns the reply.
func (c *rawClient) cmd(line string) string {
	io.WriteString(c.conn, line+"\r\n")
	return c.reply()
}

// transaction greets, sends the envelope and data (which must end the DATA itself), and returns
// the reply to the end of data, or the step that went wrong and its reply.
func (c *rawClient) transaction(rcpt, data string) string {
	if g := c.reply(); !strings.HasPrefix(g, "220 ") {
		return "greeting: " + g
	}
	for _, line := range []string{"EHLO client.example.test", "MAIL FROM:<a@example.test>", "RCPT TO:<" + rcpt + ">", "DATA"} {
		if r := c.cmd(line); !strings.HasPrefix(r, "250") && !strings.HasPrefix(r, "354") {
			return line + ": " + r
		}
	}
	io.WriteString(c.conn, data)
	return c.reply()
}

// TestDotBareCRRefused: go-smtp drops a line-leading dot followed by a bare CR (".\rX" reaches
// the session as "X"); such a message is refused as other bare CRs are, not archived altered.
func TestDotBareCRRefused(t *testing.T) {
	d := &fakeDomain{}
	addr := startSMTP(t, Config{}, d)
	head := "From: a@example.test\r\nSubject: dots\r\n\r\n"
	for name, data := range map[string]string{
		"dot CR X":       head + "hello\r\n.\rX\r\n.\r\n",
		"dot CR CR LF":   head + "hello\r\n.\r\r\nMAIL FROM:<x@y>\r\n.\r\n",
		"first line":     ".\rX\r\n.\r\n",
		"after CR CR LF": head + "a\r\r\n.\rX\r\n.\r\n",
	} {
		if r := dialRaw(t, addr).transaction("crew@example.test", data); !strings.HasPrefix(r, "550 5.6.0 ") {
			t.Errorf("%s: reply %q, want 550 5.6.0", name, r)
		}
	}
	// A dot-stuffed line and a lone dot ending the data are fine, in the same session as a
	// refusal.
	c := dialRaw(t, addr)
	if r := c.transaction("crew@example.test", head+"x\r\n.\rX\r\n.\r\n"); !strings.HasPrefix(r, "550 ") {
		t.Fatalf("reply %q, want 550", r)
	}
	for _, line := range []string{"MAIL FROM:<a@example.test>", "RCPT TO:<crew@example.test>", "DATA"} {
		c.cmd(line)
	}
	io.WriteString(c.conn, head+"..leading dot\r\n.\r\n")
	if r := c.reply(); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("clean message after a refusal: %q", r)
	}
	if len(d.got) != 1 || !strings.HasSuffix(string(d.got[0]), "\r\n.leading dot\r\n") {
		t.Errorf("the domain got %q, want only the clean message", d.got)
	}
}

// TestControlCharacterInAddressRefused: a bare CR inside RCPT TO:<...> or MAIL FROM:<...> is a
// syntax error, not an address.
func TestControlCharacterInAddressRefused(t *testing.T) {
	d := &fakeDomain{}
	addr := startSMTP(t, Config{}, d)
	c := dialRaw(t, addr)
	c.reply()
	c.cmd("EHLO client.example.test")
	if r := c.cmd("MAIL FROM:<a\r@example.test>"); !strings.HasPrefix(r, "501 5.5.2 ") {
		t.Errorf("MAIL FROM with a bare CR: %q, want 501 5.5.2", r)
	}
	if r := c.cmd("MAIL FROM:<a@example.test>"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("MAIL FROM: %q", r)
	}
	for _, rcpt := range []string{"<crew@example.test\r>", "<crew\r@example.test>", "<crew@example.test\x00>"} {
		if r := c.cmd("RCPT TO:" + rcpt); !strings.HasPrefix(r, "501 5.5.2 ") {
			t.Errorf("RCPT TO:%q: %q, want 501 5.5.2", rcpt, r)
		}
	}
	if r := c.cmd("RCPT TO:<crew@example.test>"); !strings.HasPrefix(r, "250 ") {
		t.Errorf("a clean RCPT after the refusals: %q", r)
	}
}

// TestConnectionCapAppliesToLoopback: beyond the global cap every connection, loopback
// included (an MTA in front of crewmail), is answered 421 and closed.
func TestConnectionCapAppliesToLoopback(t *testing.T) {
	s := New(Config{Hostname: "mx.example.test", MaxMessageBytes: 1 << 20, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		Limits: Limits{MaxConnections: 3}}, &fakeDomain{}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(time.Second) })
	var open []*rawClient
	for range 3 {
		c := dialRaw(t, ln.Addr().String())
		if g := c.reply(); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("greeting %q", g)
		}
		open = append(open, c)
	}
	for range 5 {
		c := dialRaw(t, ln.Addr().String())
		if g := c.reply(); g != "421 4.7.0 mx.example.test too many connections, try again later" {
			t.Fatalf("connection beyond the cap got %q, want 421", g)
		}
		if r := c.reply(); r != "(connection closed)" {
			t.Errorf("after the 421: %q, want the connection closed", r)
		}
	}
	// A closed connection makes room again.
	open[0].conn.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c := dialRaw(t, ln.Addr().String())
		if g := c.reply(); strings.HasPrefix(g, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection was never counted out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockingDomain holds the first two messages in Accept until release is closed, and says when
// the third arrives.
type blockingDomain struct {
	fakeDomain
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (d *blockingDomain) Accept(env lists.Envelope, raw []byte) (lists.Result, error) {
	d.mu.Lock()
	d.n++
	n := d.n
	d.mu.Unlock()
	if n <= 2 {
		d.entered <- struct{}{}
		<-d.release
	} else if n == 3 {
		d.entered <- struct{}{}
	}
	return lists.Result{}, nil
}

// TestConcurrentDataBounded: large messages held in memory at once are bounded; one more
// waits for a turn, then is asked to come back later (451 4.3.2), and is taken once a turn
// is free. Small messages do not wait.
func TestConcurrentDataBounded(t *testing.T) {
	d := &blockingDomain{entered: make(chan struct{}, 10), release: make(chan struct{})}
	addr, _, _ := startLimited(t, Limits{MaxConcurrentData: 2, DataWait: 50 * time.Millisecond}, d)
	msg := "From: a@example.test\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 12000) + ".\r\n" // 1.2 MB
	first := make(chan string, 2)
	for range 2 {
		c := dialRaw(t, addr)
		go func() { first <- c.transaction("crew@example.test", msg) }()
	}
	<-d.entered
	<-d.entered
	if r := dialRaw(t, addr).transaction("crew@example.test", msg); !strings.HasPrefix(r, "451 4.3.2 ") {
		t.Errorf("a third large message while two are being received: %q, want 451 4.3.2", r)
	}
	small, sc := make(chan string, 1), dialRaw(t, addr)
	go func() { small <- sc.transaction("crew@example.test", "From: a@example.test\r\n\r\nsmall\r\n.\r\n") }()
	<-d.entered // the small message reached the domain while both turns were taken
	close(d.release)
	if r := <-small; !strings.HasPrefix(r, "250 ") {
		t.Errorf("a small message: %q", r)
	}
	for range 2 {
		if r := <-first; !strings.HasPrefix(r, "250 ") {
			t.Errorf("a message within the bound: %q", r)
		}
	}
	if r := dialRaw(t, addr).transaction("crew@example.test", msg); !strings.HasPrefix(r, "250 ") {
		t.Errorf("the next message once a turn is free: %q", r)
	}
}

func FuzzWatchedConn(f *testing.F) {
	for _, s := range []string{"a\r\n.\rX\r\n", ".\r\n", "..\r\n", "x.\rX", "\n.\r", "\n.\r\r\n"} {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		// Reference: some line (start of input or after LF) begins with a dot, a CR and a byte
		// other than LF.
		want := false
		for i := range b {
			if (i == 0 || b[i-1] == '\n') && i+2 < len(b) && b[i] == '.' && b[i+1] == '\r' && b[i+2] != '\n' {
				want = true
			}
		}
		// Read in two pieces split anywhere: the state carries over between reads.
		k := int(cut) % (len(b) + 1)
		w := &watchedConn{Conn: &bytesConn{r: bytes.NewReader(b)}}
		buf := make([]byte, max(k, 1))
		for {
			n, err := w.Read(buf)
			if n == 0 && err != nil {
				break
			}
			buf = make([]byte, len(b)+1)
		}
		if got := w.takeDotCR(); got != want {
			t.Errorf("watchedConn on %q: %v, want %v", b, got, want)
		}
	})
}

// bytesConn is a net.Conn that reads from r.
type bytesConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *bytesConn) Read(p []byte) (int, error) { return c.r.Read(p) }
