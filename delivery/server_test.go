package delivery_test

import (
	"bytes"
	"cmp"
	"crewmail/internal/mailtest"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testCert is a self-signed certificate for 127.0.0.1, ::1, localhost and the .test names the
// MX tests use, and a pool that trusts it.
type testCert struct {
	cert tls.Certificate
	pool *x509.CertPool
}

func newTestCert(t testing.TB) testCert {
	cert, pool := mailtest.NewCert(t, "mx.tls.test")
	return testCert{cert: cert, pool: pool}
}

func (c testCert) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.cert}}
}

// received is one message a testServer accepted, with what the session saw.
type received struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool   // the session ran over TLS (STARTTLS or implicit)
	UTF8     bool   // MAIL FROM carried SMTPUTF8
	AuthUser string // who authenticated, "" for nobody
	Helo     string
}

// serverOptions configure a testServer.
type serverOptions struct {
	startTLS *tls.Config // offer STARTTLS with this config
	implicit *tls.Config // TLS from the first byte with this config
	smtputf8 bool        // advertise SMTPUTF8
	// users enables AUTH PLAIN with these user → password pairs and then requires it.
	users map[string]string
	// insecureAuth allows AUTH without TLS (loopback smarthosts).
	insecureAuth bool
	// readTimeout is the server's idle timeout (default ten minutes); when it runs out the
	// server answers 421 and closes the connection, as Postfix and go-smtp do.
	readTimeout time.Duration
	// reject, when set, answers each message's DATA: a non-nil error refuses it.
	reject func(to string) error
	// holdQuit, when set, keeps the reply to QUIT from going out until it is closed; quits
	// receives a value as each such reply is held.
	holdQuit chan struct{}
	quits    chan struct{}
	// fqdnHelo refuses an EHLO name without a dot, as Postfix's reject_non_fqdn_helo_hostname.
	fqdnHelo bool
	// rcpt, when set, answers each RCPT TO: a non-nil error refuses it.
	rcpt func(to string) error
	// listen is the address to listen on; default 127.0.0.1:0.
	listen string
}

// testServer is a go-smtp server on 127.0.0.1 with the TLS, SMTPUTF8 and AUTH features a test
// asks for. Like a strict MTA, it refuses non-ASCII addresses unless SMTPUTF8 was given.
type testServer struct {
	Addr string
	opts serverOptions

	mu       sync.Mutex
	msgs     []received
	mails    []string // every MAIL FROM address received, accepted or not
	open     map[*countingConn]bool
	helos    []string // every EHLO name a session began with
	rcpts    int      // RCPT TO commands received
	accepted int      // TCP connections accepted
	closed   int      // TCP connections closed, by either side
}

func newTestServer(t testing.TB, opts serverOptions) *testServer {
	t.Helper()
	s := &testServer{opts: opts, open: map[*countingConn]bool{}}
	tcp, err := net.Listen("tcp", cmp.Or(opts.listen, "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = tcp.Addr().String()
	var ln net.Listener = &countingListener{Listener: tcp, srv: s}
	if opts.implicit != nil {
		ln = tls.NewListener(ln, opts.implicit)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.helos = append(s.helos, c.Hostname())
		s.mu.Unlock()
		if opts.fqdnHelo && !strings.Contains(c.Hostname(), ".") {
			return nil, &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Helo command rejected: need fully-qualified hostname"}
		}
		base := &plainSession{srv: s, conn: c}
		if opts.users != nil {
			return &authSession{plainSession: base}, nil
		}
		return base, nil
	}))
	srv.Domain = "server.test"
	srv.TLSConfig = opts.startTLS
	srv.EnableSMTPUTF8 = opts.smtputf8
	srv.AllowInsecureAuth = opts.insecureAuth
	// Longer than any wait in these tests: a connection closes only when a test makes it.
	srv.ReadTimeout = 10 * time.Minute
	if opts.readTimeout != 0 {
		srv.ReadTimeout = opts.readTimeout
	}
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = discardLogger{}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// Messages returns what the server has accepted so far.
func (s *testServer) Messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// Conns returns how many TCP connections the server has accepted and how many of them are closed.
func (s *testServer) Conns() (accepted, closed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted, s.closed
}

// DropAll closes every open connection without a word, as a server that restarts or a NAT box
// that forgets does.
func (s *testServer) DropAll() {
	s.mu.Lock()
	conns := make([]*countingConn, 0, len(s.open))
	for c := range s.open {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// waitClosed waits until n connections to s are closed.
func (s *testServer) waitClosed(t testing.TB, n int) {
	t.Helper()
	waitFor(t, "the server's connections to close", func() bool {
		_, closed := s.Conns()
		return closed >= n
	})
}

type countingListener struct {
	net.Listener
	srv *testServer
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c, srv: l.srv}
	l.srv.mu.Lock()
	l.srv.accepted++
	l.srv.open[cc] = true
	l.srv.mu.Unlock()
	return cc, nil
}

type countingConn struct {
	net.Conn
	srv  *testServer
	once sync.Once
}

func (c *countingConn) Write(p []byte) (int, error) {
	if hold := c.srv.opts.holdQuit; hold != nil && bytes.HasPrefix(p, []byte("221 ")) {
		select {
		case c.srv.opts.quits <- struct{}{}:
		default:
		}
		<-hold
	}
	return c.Conn.Write(p)
}

func (c *countingConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.srv.mu.Lock()
		c.srv.closed++
		delete(c.srv.open, c)
		c.srv.mu.Unlock()
	})
	return err
}

// Helos returns the EHLO name of every session, and the RCPT TO commands received.
func (s *testServer) Helos() (helos []string, rcpts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.helos...), s.rcpts
}

// MailFroms returns every MAIL FROM address the server was given, accepted or not.
func (s *testServer) MailFroms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mails...)
}

type plainSession struct {
	srv  *testServer
	conn *smtp.Conn
	user string
	from string
	utf8 bool
	to   []string
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

var errNeedsUTF8 = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "non-ASCII address without SMTPUTF8"}

func (ss *plainSession) Reset()        { ss.from, ss.utf8, ss.to = "", false, nil }
func (ss *plainSession) Logout() error { return nil }

func (ss *plainSession) Mail(from string, opts *smtp.MailOptions) error {
	ss.srv.mu.Lock()
	ss.srv.mails = append(ss.srv.mails, from)
	ss.srv.mu.Unlock()
	if ss.srv.opts.users != nil && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if !opts.UTF8 && !isASCII(from) {
		return errNeedsUTF8
	}
	ss.from, ss.utf8 = from, opts.UTF8
	return nil
}

func (ss *plainSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.srv.mu.Lock()
	ss.srv.rcpts++
	ss.srv.mu.Unlock()
	if !ss.utf8 && !isASCII(to) {
		return errNeedsUTF8
	}
	if ss.srv.opts.rcpt != nil {
		if err := ss.srv.opts.rcpt(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *plainSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 0, 0}, Message: err.Error()}
	}
	if ss.srv.opts.reject != nil {
		for _, to := range ss.to {
			if err := ss.srv.opts.reject(to); err != nil {
				return err
			}
		}
	}
	_, isTLS := ss.conn.TLSConnectionState()
	m := received{From: ss.from, To: append([]string(nil), ss.to...), Data: data, TLS: isTLS,
		UTF8: ss.utf8, AuthUser: ss.user, Helo: ss.conn.Hostname()}
	ss.srv.mu.Lock()
	ss.srv.msgs = append(ss.srv.msgs, m)
	ss.srv.mu.Unlock()
	return nil
}

// authSession adds AUTH PLAIN to plainSession.
type authSession struct{ *plainSession }

func (as *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (as *authSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if want, ok := as.srv.opts.users[username]; !ok || want != password || (identity != "" && identity != username) {
			return smtp.ErrAuthFailed
		}
		as.user = username
		return nil
	}), nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
