// Package smtpd owns crewmail's inbound SMTP server: the go-smtp backend and sessions, the
// checks made at RCPT and DATA (routing, size, SMTP smuggling), the Received trace header, and
// turning domain outcomes into SMTP replies.
package smtpd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/internal/metrics"
	"crewmail/internal/vocab"
	"crewmail/lists"
	"crewmail/verify"
)

// Domain is what the SMTP server needs from the domain layer.
type Domain interface {
	Route(rcpt string) (lists.Target, error)
	// Admit says whether the envelope sender may send to a target at RCPT (a private reply
	// address takes only the list's members, within their rate).
	Admit(from string, t lists.Target) error
	Accept(env lists.Envelope, raw []byte) (lists.Result, error)
}

// Config is the SMTP listener's settings.
type Config struct {
	Hostname        string
	MaxMessageBytes int64
	MaxRecipients   int
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	TLS             *tls.Config // nil: no STARTTLS
	// Verifier checks DKIM, SPF and DMARC of every message; nil: nothing is verified.
	Verifier *verify.Verifier
	Limits   Limits
	// TrustedRelays are the MTAs in front of this server: for their sessions SPF is checked
	// for the client and HELO recorded in the topmost Received field, the one the relay added.
	TrustedRelays []netip.Prefix
	// TrustedAuthServIDs: Authentication-Results fields of these authserv-ids are kept on mail
	// from a trusted relay and recorded as evidence; all others are removed.
	TrustedAuthServIDs []string
}

// Server is the inbound SMTP server.
type Server struct {
	smtp   *smtp.Server
	domain Domain
	cfg    Config
	log    *slog.Logger
	// Now is the clock used in Received headers and rate limits; tests replace it.
	Now func() time.Time
	// Sleep slows clients down (unknown recipients); tests replace it.
	Sleep func(time.Duration)

	conns              connCount
	rateIP, rateSender rate
	dataSlots          chan struct{} // one per large message being received (Limits.MaxConcurrentData)
}

// New returns a Server that hands mail to domain.
func New(cfg Config, domain Domain, log *slog.Logger) *Server {
	cfg.Limits.defaults()
	if cfg.Limits.UnknownDelay == 0 {
		cfg.Limits.UnknownDelay = time.Second
	}
	s := &Server{domain: domain, cfg: cfg, log: log, Now: time.Now, Sleep: time.Sleep,
		dataSlots: make(chan struct{}, cfg.Limits.MaxConcurrentData)}
	s.rateIP.now = func() time.Time { return s.Now() }
	s.rateSender.now = func() time.Time { return s.Now() }
	srv := smtp.NewServer(s)
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout = cfg.ReadTimeout
	srv.WriteTimeout = cfg.WriteTimeout
	srv.EnableSMTPUTF8 = true
	srv.MaxLineLength = transportLine
	srv.TLSConfig = cfg.TLS
	srv.ErrorLog = slogAdapter{log}
	s.smtp = srv
	return s
}

// Serve accepts connections on l until Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.smtp.Serve(limitedListener{Listener: l, srv: s})
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for the ones open to finish (a DATA in
// progress completes and gets its reply) or for the deadline; then it closes the rest.
func (s *Server) Shutdown(deadline time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if err := s.smtp.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			s.log.Info("closing SMTP connections still open at shutdown", "err", err)
			_ = s.smtp.Close()
		}
	}()
	<-done
}

// NewSession implements smtp.Backend; go-smtp calls it at HELO/EHLO.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	sess := &session{srv: s, conn: c, id: hex.EncodeToString(id)}
	sess.log = s.log.With("conn", sess.id, "remote", c.Conn().RemoteAddr().String())
	return sess, nil
}

type session struct {
	srv  *Server
	conn *smtp.Conn
	id   string
	log  *slog.Logger

	from    string
	utf8    bool
	rcpts   []string
	targets []lists.Target
	n       int // transactions in this session
	unknown int // unknown recipients tried
}

func (s *session) Reset() {
	s.from, s.utf8, s.rcpts, s.targets = "", false, nil, nil
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	if w, ok := s.conn.Conn().(dotCRWatcher); ok {
		w.takeDotCR() // what came before this transaction is not its message
	}
	if hasControl(from) {
		s.log.Info("sender refused", "reason", "control character in the address")
		return errControlInAddress
	}
	if err := s.checkRate(from); err != nil {
		return err
	}
	s.from = from
	s.utf8 = opts != nil && opts.UTF8
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if hasControl(to) {
		s.log.Info("recipient refused", "from", s.from, "reason", "control character in the address")
		return errControlInAddress
	}
	t, err := s.srv.domain.Route(to)
	if err != nil {
		s.log.Info("recipient refused", "from", s.from, "rcpt", to, "reason", err)
		if r, ok := lists.IsRefusal(err); ok && r.Enhanced == [3]int{5, 1, 1} {
			if err := s.unknownRecipient(); err != nil {
				return err
			}
		}
		return smtpError(err)
	}
	if err := s.srv.domain.Admit(s.from, t); err != nil {
		s.log.Info("recipient refused for this sender", "from", s.from, "rcpt", to, "reason", err)
		return smtpError(err)
	}
	s.rcpts = append(s.rcpts, to)
	s.targets = append(s.targets, t)
	return nil
}

func (s *session) Data(r io.Reader) (reply error) {
	defer func() { metrics.Messages.WithLabelValues(outcome(reply)).Inc() }()
	start := time.Now()
	s.n++
	txid := fmt.Sprintf("%s.%d", s.id, s.n)
	var body bytes.Buffer
	_, err := io.CopyN(&body, r, smallMessage)
	if err == nil { // more to come: a large message, which waits for its turn
		if err := s.dataTurn(txid); err != nil {
			return err // go-smtp reads the rest of the body and throws it away
		}
		defer func() { <-s.srv.dataSlots }()
		_, err = body.ReadFrom(r)
	} else if err == io.EOF {
		err = nil
	}
	raw := body.Bytes()
	if errors.Is(err, smtp.ErrTooLongLine) || err == nil && longestLine(raw) > maxLine {
		// Lines up to the transport limit are read whole, so the refusal arrives while the
		// connection is in step; beyond it go-smtp ends the connection.
		s.log.Info("message refused", "tx", txid, "from", s.from, "reason", "line too long")
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: fmt.Sprintf("Message refused: a line is longer than %d characters (RFC 5321 section 4.5.3.1.6 allows 1000)", maxLine)}
	}
	if err != nil {
		s.log.Info("DATA not received", "tx", txid, "from", s.from, "err", err)
		return smtpError(err)
	}
	// SMTP smuggling (CVE-2023-51766 and kin): a bare LF or CR lets a sender hide a second
	// message behind an end-of-data that other servers see differently. RFC 5321 §2.3.8 allows
	// CR and LF only together, so refuse anything else.
	if i := bareCRorLF(raw); i >= 0 {
		s.log.Info("message refused", "tx", txid, "from", s.from, "reason", "bare CR or LF", "offset", i)
		return errBareCRorLF
	}
	// go-smtp drops a line-leading ".\r" without a trace, so the CR is not in raw: the
	// connection saw it go by (plain connections only; see watchedConn).
	if w, ok := s.conn.Conn().(dotCRWatcher); ok && w.takeDotCR() {
		s.log.Info("message refused", "tx", txid, "from", s.from, "reason", "a line starts with a dot and a bare CR")
		return errBareCRorLF
	}
	if n, max := headerSize(raw), s.srv.cfg.Limits.MaxHeaderBytes; n > max {
		s.log.Info("message refused", "tx", txid, "from", s.from, "reason", "header too large", "bytes", n)
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: fmt.Sprintf("Message refused: its header is %d bytes, more than the %d this server takes", n, max)}
	}
	auth, err := s.verify(raw)
	switch {
	case err != nil:
		metrics.Verifications.WithLabelValues("temperror").Inc()
	case auth.Pass:
		metrics.Verifications.WithLabelValues(string(auth.Method)).Inc()
	case s.srv.cfg.Verifier != nil:
		metrics.Verifications.WithLabelValues("fail").Inc()
	}
	if err != nil {
		s.log.Info("message deferred", "tx", txid, "from", s.from, "reason", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
			Message: "Temporary DNS failure while checking who sent this; please try again later"}
	}
	if auth.Header != "" {
		// RFC 8601 §5: only results from the trusted relay's own checkers are kept; one in
		// our name, or from anyone else, is removed before members see it.
		raw, _ = verify.FilterResults(raw, s.trustedAuthServ)
	}
	env := lists.Envelope{From: s.from, Targets: s.targets, Received: s.received(txid), Auth: auth}
	res, err := s.srv.domain.Accept(env, raw)
	attrs := []any{"tx", txid, "from", s.from, "rcpts", strings.Join(s.rcpts, ","), "size", len(raw), "ms", time.Since(start).Milliseconds()}
	if err != nil {
		s.log.Info("message refused", append(attrs, "reason", err)...)
		return smtpError(err)
	}
	for _, p := range res.Posts {
		attrs = append(attrs, "msgid", p.MessageID, "archived", fmt.Sprintf("%s#%d", p.List, p.Seq))
	}
	s.log.Info("message accepted", append(attrs, "posts", len(res.Posts), "held", res.Held, "duplicates", len(res.Duplicates), "queued", res.Queued)...)
	if res.Held > 0 && len(res.Posts) == 0 {
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
			Message: "OK: held until its author confirms it or a moderator approves it; nothing was sent to the list yet"}
	}
	if len(res.Duplicates) > 0 && len(res.Posts) == 0 {
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
			Message: "OK: this message was already posted; it is not sent again"}
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + txid}
}

var (
	errBareCRorLF = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Message refused: it contains a bare CR or LF; lines must end with CRLF (RFC 5321 section 2.3.8)"}
	// RFC 5321 §4.1.2: a path is printable characters; a CR or LF in one can only be an attempt
	// to break a header or log line that quotes it.
	errControlInAddress = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2},
		Message: "Syntax error: the address contains a control character such as a bare CR (RFC 5321 section 4.1.2)"}
)

// hasControl reports whether s holds an ASCII control character (CR, LF, NUL, DEL...).
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// smallMessage: a message up to this size is read without waiting for a turn among the large
// ones; the connection limits bound how many of these are held at once.
const smallMessage = 1 << 20

// dataTurn waits for one of the slots that bound how many large messages are held in memory at
// once (each costs several times its size while it is checked and archived); after
// Limits.DataWait without one, the client is asked to come back later.
func (s *session) dataTurn(txid string) error {
	select {
	case s.srv.dataSlots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(s.srv.cfg.Limits.DataWait)
	defer t.Stop()
	select {
	case s.srv.dataSlots <- struct{}{}:
		return nil
	case <-t.C:
		s.log.Warn("message deferred: too many messages being received at once", "tx", txid, "from", s.from, "limit", s.srv.cfg.Limits.MaxConcurrentData)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
			Message: "Too many messages are being received at once; please try again later"}
	}
}

// outcome is the metrics label of a DATA reply.
func outcome(reply error) string {
	var se *smtp.SMTPError
	if !errors.As(reply, &se) {
		return "error"
	}
	if se.Code == 250 {
		switch {
		case strings.Contains(se.Message, "held"):
			return "held"
		case strings.Contains(se.Message, "already posted"):
			return "duplicate"
		}
		return "accepted"
	}
	return fmt.Sprintf("%d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
}

// verify authenticates the message (RFC 6376 DKIM, RFC 7208 SPF, RFC 7489 DMARC). Only a
// temporary DNS failure that leaves the outcome open is an error: the sender retries later,
// and nothing is accepted unverified.
func (s *session) verify(raw []byte) (lists.Auth, error) {
	v := s.srv.cfg.Verifier
	if v == nil {
		return lists.Auth{}, nil
	}
	in := verify.Input{Helo: s.conn.Hostname(), MailFrom: s.from, Message: raw}
	if a, ok := s.conn.Conn().RemoteAddr().(*net.TCPAddr); ok {
		in.RemoteIP = a.IP
	}
	if s.fromRelay() {
		// go-smtp answers XCLIENT and XFORWARD with 500, so what the relay knows about its
		// client is read from the Received field it put on top (RFC 5321 §4.4).
		if v, ok := verify.TopReceived(raw); ok {
			if hop, ok := verify.ParseReceived(v); ok {
				in.Relay, in.RemoteIP, in.Helo = in.RemoteIP, hop.IP, hop.Helo
			} else {
				s.log.Warn("trusted relay's Received field not understood; SPF is checked for the relay", "received", oneLine(v))
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := v.Verify(ctx, in)
	if errors.Is(err, verify.ErrTemporary) {
		return lists.Auth{}, err
	}
	auth := lists.Auth{
		Evidence:    s.evidence(raw),
		Pass:        res.Pass(),
		Method:      vocab.Verified(res.DMARC.Aligned), // DMARC names the aligned method as vocab does: dkim or spf
		Domain:      res.DMARC.AlignedDomain,
		DKIMAligned: res.DKIMAligned(),
		DMARCPolicy: res.DMARC.Policy,
		Header:      res.Header(s.srv.cfg.Hostname),

		DKIMRecipients: res.DKIMRecipients(),
		SPFDomain:      res.SPFAligned(),
	}
	if !auth.Pass {
		auth.Reason = fmt.Sprintf("dmarc=%s, spf=%s", res.DMARC.Result, res.SPF.Result)
		for _, d := range res.DKIM {
			auth.Reason += fmt.Sprintf(", dkim=%s (%s)", d.Result, d.Domain)
		}
	}
	return auth, nil
}

// fromRelay reports whether the client is one of the trusted relays.
func (s *session) fromRelay() bool {
	a, ok := s.conn.Conn().RemoteAddr().(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	return slices.ContainsFunc(s.srv.cfg.TrustedRelays, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// trustedAuthServ reports whether an Authentication-Results field of authserv-id id is kept:
// one of the trusted ids, on mail from a trusted relay, and never our own.
func (s *session) trustedAuthServ(id string) bool {
	if strings.EqualFold(id, strings.TrimSuffix(s.srv.cfg.Hostname, ".")) || !s.fromRelay() {
		return false
	}
	return slices.ContainsFunc(s.srv.cfg.TrustedAuthServIDs, func(t string) bool {
		return strings.EqualFold(strings.TrimSuffix(t, "."), id)
	})
}

// evidence is the Authentication-Results fields of raw that are kept (see trustedAuthServ).
func (s *session) evidence(raw []byte) []string {
	_, kept := verify.FilterResults(raw, s.trustedAuthServ)
	return kept
}

// received is the trace field RFC 5321 §4.4 asks every SMTP server to add.
func (s *session) received(txid string) string {
	helo := sanitize(s.conn.Hostname())
	ip := "unknown"
	if a, ok := s.conn.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ip = a.IP.String()
		if a.IP.To4() == nil {
			ip = "IPv6:" + ip // RFC 5321 §4.1.3: an IPv6 address literal is tagged
		}
	}
	// RFC 3848 protocol names: ESMTP, with S for TLS; UTF8SMTP for SMTPUTF8 (RFC 6531 §3.7.3).
	proto := "ESMTP"
	if s.utf8 {
		proto = "UTF8SMTP"
	}
	if _, ok := s.conn.TLSConnectionState(); ok {
		proto += "S"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (crewmail) with %s id %s", helo, ip, s.srv.cfg.Hostname, proto, txid)
	if len(s.rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitize(s.rcpts[0]))
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", s.srv.Now().Format(time.RFC1123Z))
	return b.String()
}

// maxLine is the longest line a message may have, CRLF included: RFC 5321 §4.5.3.1.6 sets 1000,
// and real mail (long encoded headers, HTML on one line) needs a little more slack.
// transportLine is what go-smtp reads before it gives up on the connection.
const (
	maxLine       = 2000
	transportLine = 64 << 10
)

// longestLine is the length of the longest line of b, its CRLF included.
func longestLine(b []byte) int {
	longest, start := 0, 0
	for i, c := range b {
		if c == '\n' {
			longest = max(longest, i+1-start)
			start = i + 1
		}
	}
	return max(longest, len(b)-start)
}

// bareCRorLF returns the offset of the first CR not followed by LF or LF not preceded by CR,
// or -1.
func bareCRorLF(b []byte) int {
	for i, c := range b {
		switch c {
		case '\r':
			if i+1 >= len(b) || b[i+1] != '\n' {
				return i
			}
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return i
			}
		}
	}
	return -1
}

// sanitize keeps what a client said about itself from breaking the Received field.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == '(' || r == ')' || r == ';' || r == '\\' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// oneLine keeps a reply on one line of printable text: a refusal may quote what the sender
// wrote (a header that does not parse), and a line break there would end the reply early or
// start a reply line of the sender's making.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// smtpError turns a domain outcome into the reply go-smtp sends. go-smtp uses a type assertion,
// so the *smtp.SMTPError goes back bare, not wrapped. Anything that is not a deliberate refusal
// is a temporary local problem: 451, never a permanent code.
func smtpError(err error) error {
	if r, ok := lists.IsRefusal(err); ok {
		return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: oneLine(r.Message)}
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary local problem; please try again later"}
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.log.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.log.Warn(fmt.Sprint(v...)) }
