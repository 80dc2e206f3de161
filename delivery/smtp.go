package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"crewmail/internal/mailaddr"
)

// TLS modes of an outbound SMTP connection.
const (
	TLSNone          = "none"          // plain text
	TLSOpportunistic = "opportunistic" // STARTTLS when offered, unauthenticated (RFC 7435); plain otherwise
	TLSStartTLS      = "starttls"      // STARTTLS required, certificate verified
	TLSImplicit      = "tls"           // TLS from the first byte, certificate verified
)

// client holds what every outbound SMTP session needs, and the sessions kept open between
// messages: most mail goes to a few places (the smarthost, a few big providers), and a new TCP
// connection, greeting and EHLO per message cost more than the message.
type client struct {
	hostname string         // our EHLO name
	tlsMode  string         // one of the TLS modes
	roots    *x509.CertPool // nil: the system's
	auth     func() sasl.Client

	mu   sync.Mutex
	idle map[string][]*session // by address
}

// A session is an open SMTP connection between transactions.
type session struct {
	c    *smtp.Client
	used int       // transactions sent on it
	last time.Time // when it was last put back
}

// Limits on keeping sessions open (Postfix's smtp_connection_reuse_* say the same).
const (
	maxIdle      = 30 * time.Second
	maxReuse     = 100
	maxIdlePerTo = 16
)

// get returns an idle session to addr, or nil.
func (c *client) get(addr string) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	for list := c.idle[addr]; len(list) > 0; list = c.idle[addr] {
		s := list[len(list)-1]
		c.idle[addr] = list[:len(list)-1]
		if time.Since(s.last) < maxIdle {
			return s
		}
		s.c.Close()
	}
	return nil
}

// put keeps s open for the next message to addr, or retires it.
func (c *client) put(addr string, s *session) {
	c.mu.Lock()
	if s.used < maxReuse && len(c.idle[addr]) < maxIdlePerTo {
		if c.idle == nil {
			c.idle = map[string][]*session{}
		}
		s.last = time.Now()
		c.idle[addr] = append(c.idle[addr], s)
		s = nil
	}
	c.mu.Unlock()
	if s != nil {
		go quit(s.c)
	}
}

// close ends every idle session.
func (c *client) close() {
	c.mu.Lock()
	var all []*session
	for addr, list := range c.idle {
		all = append(all, list...)
		delete(c.idle, addr)
	}
	c.mu.Unlock()
	for _, s := range all {
		go quit(s.c)
	}
}

// quit says goodbye politely but waits at most a few seconds for the answer: the messages
// the session carried are delivered already.
func quit(sc *smtp.Client) {
	sc.CommandTimeout = 5 * time.Second
	if sc.Quit() != nil {
		sc.Close()
	}
}

// send delivers msg to to through the SMTP server at addr (host:port); serverName is the name
// its certificate must carry. It reuses an idle session to addr when there is one.
func (c *client) send(ctx context.Context, addr, serverName, from, to string, msg []byte) error {
	if s := c.get(addr); s != nil {
		err := c.transaction(ctx, s, addr, from, to, msg)
		if err == nil || isReply(err) && !isClosing(err) {
			c.finish(addr, s, err)
			return err
		}
		// The server closed the idle connection, or is closing it (421, RFC 5321 §3.8): that
		// is no failure of this message; a new connection carries it.
		s.c.Close()
	}
	sc, err := c.dial(ctx, addr, serverName, c.tlsMode)
	if err != nil && c.tlsMode == TLSOpportunistic {
		// The peer offered no STARTTLS, or the handshake failed: opportunistic TLS falls back
		// to plain text rather than not delivering at all (RFC 7435 §1.3).
		sc, err = c.dial(ctx, addr, serverName, TLSNone)
	}
	if err != nil {
		return err
	}
	if c.auth != nil {
		_, isTLS := sc.TLSConnectionState()
		// A refused or unsafe login is a fault in our own configuration, not in the message:
		// the mail waits until the operator fixes it (as Postfix's smtp_sasl_auth_soft_bounce).
		if !isTLS && !isLoopback(addr) {
			sc.Close()
			return Temporary(fmt.Errorf("%s: refusing to send the password without TLS", addr))
		}
		if err := sc.Auth(c.auth()); err != nil {
			sc.Close()
			return Temporary(fmt.Errorf("%s: AUTH: %w", addr, err))
		}
	}
	s := &session{c: sc}
	err = c.transaction(ctx, s, addr, from, to, msg)
	c.finish(addr, s, err)
	return err
}

// finish keeps a session that is still in a known state, and closes any other.
func (c *client) finish(addr string, s *session, err error) {
	switch {
	case err == nil:
		c.put(addr, s)
	case isReply(err) && !isClosing(err) && s.c.Reset() == nil:
		// A refused transaction leaves the session usable once reset.
		c.put(addr, s)
	default:
		s.c.Close()
	}
}

// isClosing reports whether err is a 421: the server is closing the connection.
func isClosing(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code == 421
}

// isReply reports whether err is the server's answer (the session is still in step) rather
// than a broken connection.
func isReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// transaction sends one message on an open session.
func (c *client) transaction(ctx context.Context, s *session, addr, from, to string, msg []byte) error {
	sc := s.c
	if deadline, ok := ctx.Deadline(); ok {
		sc.CommandTimeout = time.Until(deadline)
		sc.SubmissionTimeout = time.Until(deadline)
	}
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	defer stop()
	s.used++

	utf8, _ := sc.Extension("SMTPUTF8")
	opts := &smtp.MailOptions{}
	sender, rcpt := from, to
	if needsUTF8(from) || needsUTF8(to) {
		if utf8 {
			opts.UTF8 = true
		} else {
			// A peer without SMTPUTF8 gets A-label domains; a non-ASCII local part has no
			// ASCII form (RFC 6531 §3.2).
			var err error
			if rcpt, err = mailaddr.ToASCII(to); err != nil {
				return Permanent(fmt.Errorf("%s does not support SMTPUTF8 and %w", addr, err))
			}
			if from == "" {
				// the null sender has nothing to convert
			} else if sender, err = mailaddr.ToASCII(from); err != nil {
				return Permanent(fmt.Errorf("%s does not support SMTPUTF8 and %w", addr, err))
			}
		}
	}
	if err := sc.Mail(sender, opts); err != nil {
		return fmt.Errorf("%s: MAIL FROM: %w", addr, err)
	}
	if err := sc.Rcpt(rcpt, nil); err != nil {
		return fmt.Errorf("%s: RCPT TO: %w", addr, err)
	}
	w, err := sc.Data()
	if err != nil {
		return fmt.Errorf("%s: DATA: %w", addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return fmt.Errorf("%s: DATA: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: DATA: %w", addr, err)
	}
	return nil
}

// dial connects and greets, with TLS as mode says.
func (c *client) dial(ctx context.Context, addr, serverName, mode string) (*smtp.Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	// The dial, greeting and TLS handshake must finish within the attempt's time; after
	// them the client's command timeouts apply.
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
		defer conn.SetDeadline(time.Time{})
	}
	tc := &tls.Config{ServerName: serverName, RootCAs: c.roots}
	var sc *smtp.Client
	switch mode {
	case TLSImplicit:
		tconn := tls.Client(conn, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		sc = smtp.NewClient(tconn)
	case TLSStartTLS, TLSOpportunistic:
		if mode == TLSOpportunistic {
			tc.InsecureSkipVerify = true // encryption without authentication: RFC 7435
		}
		if sc, err = smtp.NewClientStartTLS(conn, tc); err != nil {
			conn.Close()
			return nil, fmt.Errorf("STARTTLS with %s: %w", addr, err)
		}
	default:
		sc = smtp.NewClient(conn)
	}
	if err := sc.Hello(c.hostname); err != nil {
		sc.Close()
		return nil, fmt.Errorf("EHLO to %s: %w", addr, err)
	}
	return sc, nil
}

func needsUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Smarthost relays everything through one SMTP server.
type Smarthost struct {
	Addr string // host:port
	c    client
}

// NewSmarthost returns a transport relaying through addr. user and password, when set, are
// sent with AUTH PLAIN, only over TLS or to a loopback address.
func NewSmarthost(addr, hostname, tlsMode, user, password string, roots *x509.CertPool) *Smarthost {
	s := &Smarthost{Addr: addr, c: client{hostname: hostname, tlsMode: tlsMode, roots: roots}}
	if user != "" {
		s.c.auth = func() sasl.Client { return sasl.NewPlainClient("", user, password) }
	}
	return s
}

// Send implements Transport.
func (s *Smarthost) Send(ctx context.Context, from, to string, msg []byte) error {
	host, _, _ := net.SplitHostPort(s.Addr)
	return s.c.send(ctx, s.Addr, host, from, to, msg)
}

// Close ends the sessions kept open to the smarthost.
func (s *Smarthost) Close() error {
	s.c.close()
	return nil
}

// MX delivers to the recipient domain's mail exchangers, found through resolver.
type MX struct {
	Resolver *net.Resolver
	Port     string // "25" except in tests
	c        client
}

// NewMX returns a transport that looks up MX records with resolver and delivers with
// opportunistic STARTTLS.
func NewMX(resolver *net.Resolver, port int, hostname string) *MX {
	return &MX{Resolver: resolver, Port: fmt.Sprint(port), c: client{hostname: hostname, tlsMode: TLSOpportunistic}}
}

// Send implements Transport: each MX in order of preference, each of its addresses, until one
// takes the message or refuses it for good.
func (m *MX) Send(ctx context.Context, from, to string, msg []byte) error {
	_, domain, ok := mailaddr.Split(to)
	if !ok {
		return Permanent(fmt.Errorf("%q is not an address", to))
	}
	domain, err := mailaddr.ASCIIDomain(domain)
	if err != nil {
		return Permanent(fmt.Errorf("the domain of %s is not valid: %w", to, err))
	}
	hosts, err := m.exchangers(ctx, domain)
	if err != nil {
		return err
	}
	var last error
	for _, host := range hosts {
		addrs, err := m.Resolver.LookupHost(ctx, host)
		if err != nil {
			last = fmt.Errorf("look up %s (MX of %s): %w", host, domain, err)
			continue
		}
		for _, ip := range addrs {
			err := m.c.send(ctx, net.JoinHostPort(ip, m.Port), host, from, to, msg)
			if err == nil || IsPermanent(err) {
				return err
			}
			last = err
		}
	}
	return last
}

// Close ends the sessions kept open to mail exchangers.
func (m *MX) Close() error {
	m.c.close()
	return nil
}

// exchangers returns the hosts to try for domain, best first. RFC 5321 §5.1: with no MX
// records the domain itself is the exchanger; RFC 7505: a null MX means no mail is accepted.
func (m *MX) exchangers(ctx context.Context, domain string) ([]string, error) {
	mxs, err := m.Resolver.LookupMX(ctx, domain)
	var dnsErr *net.DNSError
	if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return nil, fmt.Errorf("look up MX of %s: %w", domain, err)
	}
	if len(mxs) == 0 {
		if _, err := m.Resolver.LookupHost(ctx, domain); err != nil {
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				return nil, Permanent(fmt.Errorf("the domain %s does not exist", domain))
			}
			return nil, fmt.Errorf("look up %s: %w", domain, err)
		}
		return []string{domain}, nil
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, Permanent(fmt.Errorf("the domain %s accepts no mail (null MX)", domain))
	}
	hosts := make([]string, 0, len(mxs))
	for _, mx := range mxs { // LookupMX sorts by preference
		hosts = append(hosts, strings.TrimSuffix(mx.Host, "."))
	}
	return hosts, nil
}

// NewResolver returns a resolver that asks the DNS server at addr (host:port), or the system
// resolver when addr is empty.
func NewResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}
