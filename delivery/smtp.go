package delivery

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"crewmail/internal/mailaddr"
	"crewmail/internal/metrics"
	"crewmail/internal/mtasts"
	"crewmail/internal/outcome"
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
	resolver *net.Resolver // looks up the names dialled; nil: the system's
	// source4 and source6, when set, are the local addresses connections leave from.
	source4, source6 net.IP
	// idleFor is how long a session may wait for its next message; 0: maxIdle.
	idleFor time.Duration

	mu   sync.Mutex
	idle map[string][]*session // by address
}

// A session is an open SMTP connection between transactions.
type session struct {
	c        *smtp.Client // greets, says EHLO, logs in; closes the connection
	w        *wire        // everything after: the mail transactions, RSET, QUIT
	used     int          // transactions sent on it
	last     time.Time    // when it was last put back
	tls      string       // the TLS version in use; "" for plain text
	fallback string       // why opportunistic TLS fell back to plain text
	local    net.Addr     // the address it leaves from
	conn     net.Conn     // the connection c was made on (TLS, plain, or resumed after the greeting)
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
		if time.Since(s.last) < c.maxIdle() {
			return s
		}
		go quit(s)
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
		idle := s
		// A session nobody takes again is ended with QUIT, not left for the server to time out.
		time.AfterFunc(c.maxIdle(), func() { c.retire(addr, idle) })
		s = nil
	}
	c.mu.Unlock()
	if s != nil {
		go quit(s)
	}
}

func (c *client) maxIdle() time.Duration { return cmp.Or(c.idleFor, maxIdle) }

// retire ends s with QUIT if it is still idle and has been for maxIdle.
func (c *client) retire(addr string, s *session) {
	c.mu.Lock()
	list := c.idle[addr]
	i := slices.Index(list, s)
	if i < 0 || time.Since(s.last) < c.maxIdle() {
		c.mu.Unlock()
		return
	}
	c.idle[addr] = slices.Delete(list, i, i+1)
	c.mu.Unlock()
	quit(s)
}

// close ends every idle session with QUIT.
func (c *client) close() {
	c.mu.Lock()
	var all []*session
	for addr, list := range c.idle {
		all = append(all, list...)
		delete(c.idle, addr)
	}
	c.mu.Unlock()
	// The QUITs go out together and are waited for (a few seconds at most, quit's bound), so
	// that a stopping server says goodbye before it exits.
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { quit(s) })
	}
	wg.Wait()
}

// quit says goodbye politely but waits at most a few seconds for the answer: the messages
// the session carried are delivered already.
func quit(s *session) {
	if s.w == nil {
		s.c.CommandTimeout = 5 * time.Second
		if s.c.Quit() != nil {
			s.c.Close()
		}
		return
	}
	_ = s.w.command("QUIT", 221, 5*time.Second)
	s.c.Close()
}

// TLSPolicy is what one destination requires of a session's encryption: a parameter of every
// dial, so that each destination (a smarthost, an MX host set with or without a published
// policy) can ask for its own.
type TLSPolicy struct {
	Mode       string         // one of the TLS modes
	ServerName string         // the name the certificate must carry when it is verified
	Roots      *x509.CertPool // nil: the system's
	// Verify, when set, does the whole check of the peer instead of the usual verification
	// (MTA-STS: a chain to the roots and the MX name, RFC 8461 §4.2); its error ends the
	// handshake.
	Verify func(tls.ConnectionState) error
	// OnPlain, when set, is told that opportunistic TLS went on in plain text, and why.
	OnPlain func(error)
	// OnRefused, when set, is told that TLS failed before any certificate was checked: no
	// STARTTLS offered or accepted, or a handshake that broke.
	OnRefused func(error)
}

// required reports whether the policy never accepts plain text.
func (p TLSPolicy) required() bool { return p.Mode == TLSStartTLS || p.Mode == TLSImplicit }

func (p TLSPolicy) config() *tls.Config {
	tc := &tls.Config{ServerName: p.ServerName, RootCAs: p.Roots, MinVersion: tls.VersionTLS12}
	if p.Mode == TLSOpportunistic {
		// Encryption without authentication (RFC 7435); older servers still speak TLS 1.0.
		tc.InsecureSkipVerify = true
		tc.MinVersion = tls.VersionTLS10
	}
	if p.Verify != nil {
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = p.Verify
	}
	return tc
}

// send delivers msg to to through the SMTP server at addr (host:port) under policy pol. It
// reuses an idle session to addr when there is one.
func (c *client) send(ctx context.Context, addr string, pol TLSPolicy, from, to string, msg []byte) error {
	// Sessions opened under another requirement than the transport's own are kept apart: an
	// unverified session never carries mail that needs a verified one.
	key := addr
	if pol.Mode != c.tlsMode || pol.Verify != nil {
		key = pol.Mode + "+verified " + addr
	}
	if s := c.get(key); s != nil {
		err := c.transaction(ctx, s, addr, from, to, msg)
		if err == nil || isReply(err) && !isClosing(err) || Outcome(err).RateLimited() {
			noteSession(ctx, addr, s)
			c.finish(key, s, err)
			return err
		}
		// The server closed the idle connection, or is closing it (421, RFC 5321 §3.8): that
		// is no failure of this message; a new connection carries it. Unless the 421 says we
		// send too fast: then a new connection would only be refused again.
		s.c.Close()
	}
	checked := false
	if verify := pol.Verify; verify != nil {
		pol.Verify = func(cs tls.ConnectionState) error { checked = true; return verify(cs) }
	}
	s, err := c.dial(ctx, addr, pol)
	if err != nil {
		if !checked && pol.OnRefused != nil && Outcome(err).Step == outcome.TLS {
			pol.OnRefused(err)
		}
		return err
	}
	if s.fallback != "" && pol.OnPlain != nil {
		pol.OnPlain(errors.New(s.fallback))
	}
	noteSession(ctx, addr, s)
	if c.auth != nil {
		// A refused or unsafe login is a fault in our own configuration, not in the message:
		// the mail waits until the operator fixes it (as Postfix's smtp_sasl_auth_soft_bounce).
		if s.tls == "" && !isLoopback(addr) {
			quit(s)
			return Temporary(stepErr(outcome.Hello, addr, errors.New("refusing to send the password without TLS")))
		}
		if err := s.c.Auth(c.auth()); err != nil {
			s.c.Close()
			return Temporary(stepErr(outcome.Hello, addr, fmt.Errorf("AUTH: %w", err)))
		}
	}
	s.w = newWire(s.c, s.conn)
	err = c.transaction(ctx, s, addr, from, to, msg)
	c.finish(key, s, err)
	return err
}

// finish keeps a session that is still in a known state, and closes any other.
func (c *client) finish(addr string, s *session, err error) {
	switch {
	case err == nil:
		c.put(addr, s)
	case isReply(err) && !isClosing(err) && s.w.reset() == nil:
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
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	defer stop()
	s.used++

	sender, rcpt := from, to
	utf8 := false
	if needsUTF8(from) || needsUTF8(to) {
		if s.w.utf8 {
			utf8 = true
		} else {
			// A peer without SMTPUTF8 gets A-label domains; a non-ASCII local part has no
			// ASCII form (RFC 6531 §3.2).
			var err error
			if rcpt, err = mailaddr.ToASCII(to); err != nil {
				return Permanent(stepErr(outcome.Rcpt, addr, fmt.Errorf("the server does not support SMTPUTF8 and %w", err)))
			}
			if from == "" {
				// the null sender has nothing to convert
			} else if sender, err = mailaddr.ToASCII(from); err != nil {
				return Permanent(stepErr(outcome.Mail, addr, fmt.Errorf("the server does not support SMTPUTF8 and %w", err)))
			}
		}
	}
	return s.w.transaction(ctx, addr, sender, rcpt, utf8, msg)
}

// dial opens one session to addr: connect, read the greeting, EHLO with our own name,
// STARTTLS on that same connection when pol asks for it and the server offers it, EHLO again.
// Required TLS never falls back to plain text; opportunistic TLS falls back only when the
// handshake itself fails, on a new connection (the old one is in an unknown state), and the
// session says so.
func (c *client) dial(ctx context.Context, addr string, pol TLSPolicy) (*session, error) {
	conn, err := c.connect(ctx, addr)
	if err != nil {
		return nil, err
	}
	// The dial, greeting and TLS handshake must finish within the attempt's time; after
	// them the client's command timeouts apply.
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
		defer conn.SetDeadline(time.Time{})
	}
	if pol.Mode == TLSImplicit {
		tconn := tls.Client(conn, pol.config())
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, stepErr(outcome.TLS, addr, err)
		}
		return c.hello(tconn, conn, addr, tlsName(tconn))
	}
	if pol.Mode == TLSNone {
		return c.hello(conn, conn, addr, "")
	}
	// go-smtp's own STARTTLS path greets as "localhost"; the greeting, the first EHLO and
	// STARTTLS are spoken here, and the client takes over from the second EHLO.
	br := bufio.NewReader(conn)
	tp := textproto.NewReader(br)
	if _, _, err := tp.ReadResponse(220); err != nil {
		conn.Close()
		return nil, stepErr(outcome.Connect, addr, replyError(err))
	}
	if _, err := fmt.Fprintf(conn, "EHLO %s\r\n", c.hostname); err != nil {
		conn.Close()
		return nil, stepErr(outcome.Hello, addr, err)
	}
	_, ext, err := tp.ReadResponse(250)
	if err != nil {
		conn.Close()
		return nil, stepErr(outcome.Hello, addr, replyError(err))
	}
	if !offers(ext, "STARTTLS") {
		if pol.required() {
			quitRaw(conn, tp)
			return nil, stepErr(outcome.TLS, addr, errors.New("the server does not offer STARTTLS and TLS is required"))
		}
		if pol.OnPlain != nil {
			pol.OnPlain(errors.New("the server does not offer STARTTLS"))
		}
		return c.hello(resumed(conn, br), conn, addr, "")
	}
	if _, err := fmt.Fprintf(conn, "STARTTLS\r\n"); err != nil {
		conn.Close()
		return nil, stepErr(outcome.TLS, addr, err)
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		var te *textproto.Error
		if pol.required() || !errors.As(err, &te) {
			conn.Close()
			return nil, stepErr(outcome.TLS, addr, replyError(err))
		}
		// STARTTLS refused with a reply: the session goes on in plain text (RFC 3207 §4).
		s, err := c.hello(resumed(conn, br), conn, addr, "")
		if s != nil {
			s.fallback = "STARTTLS refused: " + te.Error()
		}
		return s, err
	}
	tconn := tls.Client(conn, pol.config())
	if herr := tconn.HandshakeContext(ctx); herr != nil {
		conn.Close()
		if pol.required() {
			return nil, stepErr(outcome.TLS, addr, herr)
		}
		// The handshake itself failed: opportunistic TLS delivers in plain text rather than
		// not at all (RFC 7435 §1.3), on a new connection that does not ask for TLS.
		s, err := c.dial(ctx, addr, TLSPolicy{Mode: TLSNone})
		if s != nil {
			s.fallback = "TLS handshake failed: " + herr.Error()
		}
		return s, err
	}
	return c.hello(resumed(tconn, nil), conn, addr, tlsName(tconn))
}

// hello sends EHLO with our own name on a new client, made on the connection on, and makes the
// session; conn is the TCP connection under it.
func (c *client) hello(on net.Conn, conn net.Conn, addr, tlsVersion string) (*session, error) {
	sc := smtp.NewClient(on)
	if err := sc.Hello(c.hostname); err != nil {
		sc.Close()
		step := outcome.Hello
		if !isReply(err) {
			step = outcome.Connect // no greeting
		}
		return nil, stepErr(step, addr, err)
	}
	return &session{c: sc, conn: on, tls: tlsVersion, local: conn.LocalAddr()}, nil
}

// connect opens the TCP connection, from the configured source address of addr's family.
func (c *client) connect(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Resolver: c.resolver}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil {
			if ip.To4() != nil && c.source4 != nil {
				d.LocalAddr = &net.TCPAddr{IP: c.source4}
			} else if ip.To4() == nil && c.source6 != nil {
				d.LocalAddr = &net.TCPAddr{IP: c.source6}
			}
		}
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, stepErr(outcome.Connect, addr, err)
	}
	return conn, nil
}

// offers reports whether an EHLO reply's text (first line the greeting, then one extension a
// line) lists the extension ext.
func offers(ehlo, ext string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, l := range lines[1:] {
		kw, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		if strings.EqualFold(kw, ext) {
			return true
		}
	}
	return false
}

// quitRaw ends a session not yet handed to go-smtp.
func quitRaw(conn net.Conn, tp *textproto.Reader) {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "QUIT\r\n"); err == nil {
		_, _, _ = tp.ReadResponse(221)
	}
	conn.Close()
}

// resumed hands a connection whose greeting was already read to go-smtp, which reads a
// greeting before its first command: it is given one that stands for the real one, then
// whatever br had buffered (nothing, unless the server spoke out of turn), then the
// connection.
func resumed(conn net.Conn, br *bufio.Reader) net.Conn {
	rest := io.Reader(conn)
	if br != nil {
		rest = br
	}
	return &resumedConn{Conn: conn, r: io.MultiReader(strings.NewReader("220 greeted\r\n"), rest)}
}

type resumedConn struct {
	net.Conn
	r io.Reader
}

func (c *resumedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func tlsName(c *tls.Conn) string {
	return tls.VersionName(c.ConnectionState().Version)
}

// replyError turns a textproto reply error into the *smtp.SMTPError go-smtp returns for the
// same reply, enhanced status code included.
func replyError(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	se := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	if code, text, ok := strings.Cut(te.Msg, " "); ok {
		if ec, ok := parseEnhanced(code); ok {
			// RFC 2034 §4 repeats the status on every line of a reply: kept once.
			se.EnhancedCode, se.Message = ec, strings.ReplaceAll(text, "\n"+code+" ", "\n")
		}
	}
	return se
}

func parseEnhanced(s string) (smtp.EnhancedCode, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return smtp.EnhancedCode{}, false
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return smtp.EnhancedCode{}, false
		}
		ec[i] = n
	}
	if ec[0] != 2 && ec[0] != 4 && ec[0] != 5 {
		return smtp.EnhancedCode{}, false
	}
	return ec, true
}

// stsResult is the RFC 8460 result type of a failed STARTTLS that no certificate check
// explains: a handshake that broke (validation-failure), or no TLS at all.
func stsResult(err error) string {
	var alert tls.AlertError
	var record tls.RecordHeaderError
	var op *net.OpError
	if errors.As(err, &alert) || errors.As(err, &record) || errors.As(err, &op) {
		return mtasts.ResultValidation
	}
	return mtasts.ResultStartTLS
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
func NewSmarthost(addr, hostname, tlsMode, user, password string, roots *x509.CertPool, resolver *net.Resolver) *Smarthost {
	s := &Smarthost{Addr: addr, c: client{hostname: hostname, tlsMode: tlsMode, roots: roots, resolver: resolver}}
	if user != "" {
		s.c.auth = func() sasl.Client { return sasl.NewPlainClient("", user, password) }
	}
	return s
}

// Send implements Transport.
func (s *Smarthost) Send(ctx context.Context, from, to string, msg []byte) error {
	host, _, _ := net.SplitHostPort(s.Addr)
	return s.c.send(ctx, s.Addr, TLSPolicy{Mode: s.c.tlsMode, ServerName: host, Roots: s.c.roots}, from, to, msg)
}

// Destination implements Router: everything goes to the one smarthost, the operator's own
// relay: held when it asks us to slow down, but not kept to the per-domain caps.
func (s *Smarthost) Destination(context.Context, string) (string, bool) { return s.Addr, false }

// SetSource makes connections leave from these local addresses (nil: the system's choice).
func (s *Smarthost) SetSource(v4, v6 net.IP) { s.c.source4, s.c.source6 = v4, v6 }

// Close ends the sessions kept open to the smarthost.
func (s *Smarthost) Close() error {
	s.c.close()
	return nil
}

// Address families outbound connections may use ([delivery] ip_preference).
const (
	IPBoth = "both" // IPv4 addresses first, then IPv6
	IPv4   = "ipv4" // IPv4 only
	IPv6   = "ipv6" // IPv6 first, then IPv4
)

// MX delivers to the recipient domain's mail exchangers, found through resolver.
type MX struct {
	Resolver *net.Resolver
	Port     string // "25" except in tests
	// STS, when set, finds the recipient domain's MTA-STS policy (RFC 8461): "enforce" means
	// only MX hosts the policy names, over TLS with a certificate verified against Roots and
	// the MX name; "testing" delivers as usual and reports what would have failed.
	STS *mtasts.Lookup
	// Roots are the authorities MX certificates are verified against under MTA-STS; nil: the
	// system's.
	Roots *x509.CertPool
	// Log receives the TLS failures MTA-STS reveals (a TLS-RPT summary, RFC 8460); nil: none.
	Log *slog.Logger
	// IPPreference is IPBoth (the default), IPv4 or IPv6.
	IPPreference string
	c            client

	mu     sync.Mutex
	v4Only map[string]bool // MX hosts that refused us over IPv6 for want of what IPv4 has
}

// NewMX returns a transport that looks up MX records with resolver and delivers with
// opportunistic STARTTLS.
func NewMX(resolver *net.Resolver, port int, hostname string) *MX {
	return &MX{Resolver: resolver, Port: fmt.Sprint(port), c: client{hostname: hostname, tlsMode: TLSOpportunistic}}
}

// SetSource makes connections leave from these local addresses (nil: the system's choice).
func (m *MX) SetSource(v4, v6 net.IP) { m.c.source4, m.c.source6 = v4, v6 }

// Send implements Transport: each MX in order of preference, each of its addresses in the
// order of the IP preference, until one takes the message or refuses it for good. A refusal
// over IPv6 that IPv4 would not get (5.7.25, no reverse DNS) goes on to the IPv4 addresses,
// and later mail to that host skips IPv6.
func (m *MX) Send(ctx context.Context, from, to string, msg []byte) error {
	domain, err := recipientDomain(to)
	if err != nil {
		return err
	}
	hosts, err := m.exchangers(ctx, domain)
	if err != nil {
		return err
	}
	pol := m.policy(ctx, domain)
	if pol.EffectiveMode() == mtasts.Enforce {
		if hosts = matching(pol, hosts); len(hosts) == 0 {
			err := fmt.Errorf("no MX host of %s is named in its MTA-STS policy (mx %s)", domain, strings.Join(pol.MX, ", "))
			m.tlsFailure(domain, "", pol, mtasts.ResultValidation, err)
			return Temporary(stepErr(outcome.TLS, "", err))
		}
	}
	var last error
	for _, host := range hosts {
		ips, err := m.Resolver.LookupIPAddr(ctx, host)
		if err != nil {
			last = stepErr(outcome.Connect, "", fmt.Errorf("look up %s (MX of %s): %w", host, domain, err))
			continue
		}
		ips = m.order(host, ips)
		if len(ips) == 0 {
			last = stepErr(outcome.Connect, "", fmt.Errorf("%s (MX of %s) has no address of the family allowed (ip_preference %s)", host, domain, m.IPPreference))
			continue
		}
		for _, ip := range ips {
			err := m.c.send(ctx, net.JoinHostPort(ip.IP.String(), m.Port), m.tlsPolicy(domain, host, pol), from, to, msg)
			if err != nil && ip.IP.To4() == nil && Outcome(err).IPv4Only() {
				m.mu.Lock()
				if m.v4Only == nil {
					m.v4Only = map[string]bool{}
				}
				m.v4Only[host] = true
				m.mu.Unlock()
				last = err
				continue
			}
			if err == nil || IsPermanent(err) {
				return err
			}
			last = err
		}
	}
	return last
}

// order sorts the addresses of host by the IP preference, leaving out what it excludes.
func (m *MX) order(host string, ips []net.IPAddr) []net.IPAddr {
	m.mu.Lock()
	v4Only := m.v4Only[host]
	m.mu.Unlock()
	var v4, v6 []net.IPAddr
	for _, ip := range ips {
		if ip.IP.To4() != nil {
			v4 = append(v4, ip)
		} else if !v4Only {
			v6 = append(v6, ip)
		}
	}
	switch m.IPPreference {
	case IPv4:
		return v4
	case IPv6:
		return append(v6, v4...)
	}
	return append(v4, v6...)
}

// Destination implements Router: the set of MX hosts of the recipient's domain, so that
// domains served by the same exchangers are paced together.
func (m *MX) Destination(ctx context.Context, to string) (string, bool) {
	domain, err := recipientDomain(to)
	if err != nil {
		return "", false
	}
	hosts, err := m.exchangers(ctx, domain)
	if err != nil {
		return "domain " + domain, true
	}
	hosts = slices.Clone(hosts)
	slices.Sort(hosts)
	return "mx " + strings.Join(hosts, ","), true
}

func recipientDomain(to string) (string, error) {
	_, domain, ok := mailaddr.Split(to)
	if !ok {
		return "", Permanent(stepErr(outcome.Rcpt, "", fmt.Errorf("%q is not an address", to)))
	}
	domain, err := mailaddr.ASCIIDomain(domain)
	if err != nil {
		return "", Permanent(stepErr(outcome.Rcpt, "", fmt.Errorf("the domain of %s is not valid: %w", to, err)))
	}
	return domain, nil
}

// policy is domain's MTA-STS policy; none without m.STS. A policy that cannot be fetched is
// reported and delivery goes on as though there were none (RFC 8461 §3.3).
func (m *MX) policy(ctx context.Context, domain string) mtasts.Policy {
	if m.STS == nil {
		return mtasts.Policy{}
	}
	pol, err := m.STS.Policy(ctx, domain)
	if err != nil {
		m.tlsFailure(domain, "", pol, mtasts.ResultType(err), err)
	}
	return pol
}

// matching are the hosts pol allows, in their order (RFC 8461 §4.1).
func matching(pol mtasts.Policy, hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if pol.Match(h) {
			out = append(out, h)
		}
	}
	return out
}

// tlsPolicy is the TLS an MX host of domain gets under pol: enforce requires STARTTLS and a
// certificate verified for host; testing verifies the same way but only reports, and delivers
// over whatever TLS (or plain text) the host offers; no policy is opportunistic TLS.
func (m *MX) tlsPolicy(domain, host string, pol mtasts.Policy) TLSPolicy {
	mode := pol.EffectiveMode()
	if mode != mtasts.Enforce && mode != mtasts.Testing {
		return TLSPolicy{Mode: m.c.tlsMode, ServerName: host}
	}
	verify := func(cs tls.ConnectionState) error {
		err := mtasts.Verify(cs, m.Roots, host)
		if err != nil {
			m.tlsFailure(domain, host, pol, mtasts.ResultType(err), err)
			if mode == mtasts.Testing {
				return nil
			}
		}
		return err
	}
	if mode == mtasts.Enforce {
		// RFC 8461 §5: no plain text; a server that offers no STARTTLS gets no mail.
		return TLSPolicy{Mode: TLSStartTLS, ServerName: host, Verify: verify, OnRefused: func(err error) {
			m.tlsFailure(domain, host, pol, stsResult(err), err)
		}}
	}
	return TLSPolicy{Mode: TLSOpportunistic, ServerName: host, Verify: verify, OnPlain: func(err error) {
		m.tlsFailure(domain, host, pol, mtasts.ResultStartTLS, err)
	}}
}

// tlsFailure counts and logs one TLS failure under domain's policy: the TLS-RPT summary
// (RFC 8460 §4.3 result types) in /metrics and the log.
func (m *MX) tlsFailure(domain, host string, pol mtasts.Policy, result string, err error) {
	metrics.TLSFailures.WithLabelValues(domain, result).Inc()
	if m.Log == nil {
		return
	}
	what := "delivered anyway"
	switch pol.EffectiveMode() {
	case mtasts.Enforce:
		what = "not delivered there; retried later"
	case mtasts.None:
		what = "delivered as though the domain had no policy"
	}
	m.Log.Warn("MTA-STS: TLS failure", "domain", domain, "mx", host, "policy", pol.EffectiveMode(), "result", result,
		"outcome", what, "error", err)
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
