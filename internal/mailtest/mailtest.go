// Package mailtest owns the test doubles of the outside world that crewmail's tests talk to
// over real sockets on loopback: an SMTP server that captures what it receives, and a DNS
// server with the records a test gives it; and what tests read of this process (ProcStatus).
package mailtest

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message a Sink received.
type Message struct {
	From string
	To   []string
	Data []byte
	TLS  bool // it came over TLS (STARTTLS)
}

// Sink is an SMTP server on 127.0.0.1 that keeps every message it accepts.
type Sink struct {
	Addr string
	// Reject, when set, is asked about every message before it is kept; a non-nil error is the
	// reply (e.g. &smtp.SMTPError{Code: 451, ...}).
	Reject func(m Message) error

	mu     sync.Mutex
	msgs   []Message
	notify chan struct{}
	srv    *smtp.Server
	hold   chan struct{}
	held   int
}

// NewSink starts a Sink; it stops when the test ends.
func NewSink(t testing.TB) *Sink {
	t.Helper()
	return NewSinkAt(t, "127.0.0.1:0")
}

// NewTLSSink starts a Sink that offers STARTTLS with cfg.
func NewTLSSink(t testing.TB, cfg *tls.Config) *Sink {
	t.Helper()
	return newSink(t, "127.0.0.1:0", cfg)
}

// NewSinkAt starts a Sink listening on addr (a smarthost that comes back where it was).
func NewSinkAt(t testing.TB, addr string) *Sink {
	t.Helper()
	return newSink(t, addr, nil)
}

func newSink(t testing.TB, addr string, tlsConfig *tls.Config) *Sink {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{Addr: ln.Addr().String(), notify: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s, conn: c}, nil }))
	s.srv.TLSConfig = tlsConfig
	s.srv.Domain = "sink.test"
	s.srv.EnableSMTPUTF8 = true
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = nopLogger{}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Hold makes every DATA wait until the returned function is called: a delivery then stays in
// flight for as long as the test needs.
func (s *Sink) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Held is how many DATA commands have been held so far (see Hold).
func (s *Sink) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Messages returns what the sink has kept so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait blocks until the sink has kept at least n messages and returns them. It fails the test
// after a generous deadline, which only a broken build ever reaches.
func (s *Sink) Wait(t testing.TB, n int) []Message {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		if msgs := s.Messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("sink %s: got %d messages, want %d", s.Addr, len(s.Messages()), n)
		}
	}
}

type sinkSession struct {
	sink *Sink
	conn *smtp.Conn
	from string
	to   []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }
func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.sink
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		s.mu.Lock()
		s.held++
		s.mu.Unlock()
		<-hold
	}
	_, isTLS := ss.conn.TLSConnectionState()
	m := Message{From: ss.from, To: append([]string(nil), ss.to...), Data: data, TLS: isTLS}
	if s.Reject != nil {
		if err := s.Reject(m); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// Body returns what follows the header of a message: everything after the first empty line.
func Body(data []byte) []byte {
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		return data[i+4:]
	}
	if i := bytes.Index(data, []byte("\n\n")); i >= 0 {
		return data[i+2:]
	}
	return nil
}

// ErrTemporary is a 451 reply for Sink.Reject.
var ErrTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

// ErrPermanent is a 550 reply for Sink.Reject.
var ErrPermanent = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}

// ProcStatus is a size field of this process's /proc/self/status ("VmHWM", "RssFile", …) in
// bytes; 0 when the system has no such field.
func ProcStatus(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
