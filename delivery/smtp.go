package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"crewmail/internal/mailaddr"
	"crewmail/internal/metrics"
	"crewmail/internal/mtasts"
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

// tlsNeed is what one destination requires of TLS, where it differs from the transport's
// mode: an MTA-STS policy (RFC 8461) asks for a verified certificate and forbids plain text.
type tlsNeed struct {
	mode string // the TLS mode for this destination
	// verify checks the peer after the handshake; with mode TLSStartTLS its error ends the
	// handshake, with TLSOpportunistic it only reports.
	verify func(tls.ConnectionState) error
	// plain, when set, is told that opportunistic TLS fell back to plain text.
	plain func(error)
	// refused, when set, is told that required STARTTLS failed before any certificate check.
	refused func(error)
}

// send delivers msg to to through the SMTP server at addr (host:port); serverName is the name
// its certificate must carry. It reuses an idle session to addr when there is one.
func (c *client) send(ctx context.Context, addr, serverName, from, to string, msg []byte) error {
	return c.sendTLS(ctx, tlsNeed{mode: c.tlsMode}, addr, serverName, from, to, msg)
}

// sendTLS is send with TLS as need says. Sessions opened under another requirement than the
// transport's own are kept apart: an unverified session never carries mail that needs a
// verified one.
func (c *client) sendTLS(ctx context.Context, need tlsNeed, addr, serverName, from, to string, msg []byte) error {
	key := addr
	if need.mode != c.tlsMode || need.verify != nil {
		key = need.mode + "+verified " + addr
	}
	if s := c.get(key); s != nil {
		err := c.transaction(ctx, s, addr, from, to, msg)
		if err == nil || isReply(err) && !isClosing(err) {
			c.finish(key, s, err)
			return err
		}
		// The server closed the idle connection, or is closing it (421, RFC 5321 §3.8): that
		// is no failure of this message; a new connection carries it.
		s.c.Close()
	}
	checked := false
	verify := need.verify
	if verify != nil {
		verify = func(cs tls.ConnectionState) error { checked = true; return need.verify(cs) }
	}
	sc, err := c.dial(ctx, addr, serverName, need.mode, verify)
	if _, ok := errors.AsType[startTLSError](err); ok && !checked && need.refused != nil {
		need.refused(err)
	}
	if err != nil && need.mode == TLSOpportunistic {
		// The peer offered no STARTTLS, or the handshake failed: opportunistic TLS falls back
		// to plain text rather than not delivering at all (RFC 7435 §1.3).
		if need.plain != nil {
			need.plain(err)
		}
		sc, err = c.dial(ctx, addr, serverName, TLSNone, nil)
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
	c.finish(key, s, err)
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

// dial connects and greets, with TLS as mode says; verify, when set, checks the peer instead
// of the usual certificate verification.
func (c *client) dial(ctx context.Context, addr, serverName, mode string, verify func(tls.ConnectionState) error) (*smtp.Client, error) {
	d := net.Dialer{Resolver: c.resolver}
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
		if verify != nil {
			// verify does the whole check (MTA-STS: a chain to the roots and the MX name).
			tc.InsecureSkipVerify = true
			tc.VerifyConnection = verify
		}
		if sc, err = smtp.NewClientStartTLS(conn, tc); err != nil {
			conn.Close()
			return nil, startTLSError{fmt.Errorf("STARTTLS with %s: %w", addr, err)}
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

// startTLSError is a failure between the greeting and the end of the TLS handshake: STARTTLS
// not offered or refused, or the handshake failed.
type startTLSError struct{ error }

func (e startTLSError) Unwrap() error { return e.error }

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
// sent with AUTH PLAIN, only over TLS or to a loopback address. roots (nil: the system's) are
// the authorities its certificate must chain to; resolver (nil: the system's) looks up its name.
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
	// STS, when set, finds the recipient domain's MTA-STS policy (RFC 8461): "enforce" means
	// only MX hosts the policy names, over TLS with a certificate verified against Roots and
	// the MX name; "testing" delivers as usual and reports what would have failed.
	STS *mtasts.Lookup
	// Roots are the authorities MX certificates are verified against under MTA-STS; nil: the
	// system's.
	Roots *x509.CertPool
	// Log receives the TLS failures MTA-STS reveals (a TLS-RPT summary, RFC 8460); nil: none.
	Log *slog.Logger
	c   client
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
	pol := m.policy(ctx, domain)
	if pol.EffectiveMode() == mtasts.Enforce {
		if hosts = matching(pol, hosts); len(hosts) == 0 {
			err := fmt.Errorf("no MX host of %s is named in its MTA-STS policy (mx %s)", domain, strings.Join(pol.MX, ", "))
			m.tlsFailure(domain, "", pol, mtasts.ResultValidation, err)
			return Temporary(err)
		}
	}
	var last error
	for _, host := range hosts {
		addrs, err := m.Resolver.LookupHost(ctx, host)
		if err != nil {
			last = fmt.Errorf("look up %s (MX of %s): %w", host, domain, err)
			continue
		}
		for _, ip := range addrs {
			err := m.c.sendTLS(ctx, m.need(domain, host, pol), net.JoinHostPort(ip, m.Port), host, from, to, msg)
			if err == nil || IsPermanent(err) {
				return err
			}
			last = err
		}
	}
	return last
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

// need is the TLS an MX host of domain gets under pol: enforce requires STARTTLS and a
// certificate verified for host; testing verifies the same way but only reports, and delivers
// over whatever TLS (or plain text) the host offers; no policy is opportunistic TLS.
func (m *MX) need(domain, host string, pol mtasts.Policy) tlsNeed {
	mode := pol.EffectiveMode()
	if mode != mtasts.Enforce && mode != mtasts.Testing {
		return tlsNeed{mode: m.c.tlsMode}
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
		return tlsNeed{mode: TLSStartTLS, verify: verify, refused: func(err error) {
			m.tlsFailure(domain, host, pol, stsResult(err), err)
		}}
	}
	return tlsNeed{mode: TLSOpportunistic, verify: verify, plain: func(err error) {
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
