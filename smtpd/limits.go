package smtpd

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Limits bound what one client can make the server do. Zero values take the defaults.
type Limits struct {
	// MaxConnections open at once, from anywhere (loopback included): each costs memory and a
	// file descriptor, which IMAP, HTTP and the control socket share. More get 421 at once.
	MaxConnections   int
	ConnectionsPerIP int // open connections from one address; more get 421 at once
	// MaxConcurrentData: messages larger than 1 MiB being received and processed at once
	// (each is held in memory whole, up to MaxMessageBytes, several times over). One more
	// waits up to DataWait for a turn, then is answered 451 4.3.2.
	MaxConcurrentData int
	DataWait          time.Duration
	// MessagesPerMinute from one address, and from one envelope sender; more get 451 4.7.1.
	MessagesPerMinuteIP     int
	MessagesPerMinuteSender int
	// MaxHeaderBytes: a header larger than this is refused with 552 5.6.0.
	MaxHeaderBytes int
	// UnknownRecipients a session may try before it is closed with 421; each costs the client
	// UnknownDelay times the count so far (a tarpit for address harvesters).
	UnknownRecipients int
	UnknownDelay      time.Duration
	// Loopback: apply the limits to clients on loopback too. Off by default: on loopback is
	// the operator's own software (an MTA in front of crewmail, a script), not the world.
	Loopback bool
}

// exempt reports whether the limits spare the client at addr.
func (l *Limits) exempt(ip string) bool {
	a := net.ParseIP(ip)
	return !l.Loopback && a != nil && a.IsLoopback()
}

func (l *Limits) defaults() {
	if l.MaxConnections == 0 {
		l.MaxConnections = 100
	}
	if l.MaxConcurrentData == 0 {
		l.MaxConcurrentData = 4
	}
	if l.DataWait == 0 {
		l.DataWait = 30 * time.Second
	}
	if l.ConnectionsPerIP == 0 {
		l.ConnectionsPerIP = 20
	}
	if l.MessagesPerMinuteIP == 0 {
		l.MessagesPerMinuteIP = 120
	}
	if l.MessagesPerMinuteSender == 0 {
		l.MessagesPerMinuteSender = 60
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 1 << 20
	}
	if l.UnknownRecipients == 0 {
		l.UnknownRecipients = 10
	}
}

// limitedListener refuses connections beyond the global and the per-address limits with a 421
// line, before any session starts (RFC 5321 §3.8: a server may close with 421 at any time).
// Every connection it lets through is watched for what go-smtp's DATA reader hides (see
// watchedConn).
type limitedListener struct {
	net.Listener
	srv *Server
}

func (l limitedListener) Accept() (net.Conn, error) {
	lim := l.srv.cfg.Limits
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		if !l.srv.conns.add("", lim.MaxConnections) {
			l.refuse(c, "connection refused: too many open connections", lim.MaxConnections, "too many connections, try again later")
			continue
		}
		if lim.exempt(ip) {
			return &countedConn{watchedConn: watchedConn{Conn: c, hostname: l.srv.cfg.Hostname}, done: func() { l.srv.conns.remove("") }}, nil
		}
		if l.srv.conns.add(ip, lim.ConnectionsPerIP) {
			return &countedConn{watchedConn: watchedConn{Conn: c, hostname: l.srv.cfg.Hostname}, done: func() { l.srv.conns.remove(ip); l.srv.conns.remove("") }}, nil
		}
		l.srv.conns.remove("")
		l.refuse(c, "connection refused: too many from one address", lim.ConnectionsPerIP, "Too many connections from your address; try again later")
	}
}

// refuse answers c with 421 and closes it, without waiting long for a client that reads nothing.
func (l limitedListener) refuse(c net.Conn, why string, limit int, reply string) {
	l.srv.log.Warn(why, "remote", c.RemoteAddr().String(), "limit", limit)
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "421 4.7.0 %s %s\r\n", l.srv.cfg.Hostname, reply)
	c.Close()
}

type countedConn struct {
	watchedConn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.done)
	return c.watchedConn.Close()
}

func remoteIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// connCount counts open connections per address; "" counts them all.
type connCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *connCount) add(ip string, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if c.n[ip] >= limit {
		return false
	}
	c.n[ip]++
	return true
}

func (c *connCount) remove(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip]--; c.n[ip] <= 0 {
		delete(c.n, ip)
	}
}

// rate counts events per key in the last minute, in one-second slots, with bounded memory:
// keys not seen for a minute are forgotten.
type rate struct {
	mu   sync.Mutex
	keys map[string]*window
	now  func() time.Time
	last time.Time
}

type window struct {
	start int64 // unix second of slots[0]
	slots [60]uint16
	seen  time.Time
}

// allow records one event for key and reports whether it stays within limit per minute.
func (r *rate) allow(key string, limit int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.keys == nil {
		r.keys = map[string]*window{}
	}
	if now.Sub(r.last) > time.Minute { // forget the quiet ones
		for k, w := range r.keys {
			if now.Sub(w.seen) > time.Minute {
				delete(r.keys, k)
			}
		}
		r.last = now
	}
	w, ok := r.keys[key]
	if !ok {
		w = &window{start: now.Unix()}
		r.keys[key] = w
	}
	sec := now.Unix()
	if shift := sec - 59 - w.start; shift > 0 {
		if shift >= 60 {
			w.slots = [60]uint16{}
		} else {
			copy(w.slots[:], w.slots[shift:])
			for i := 60 - shift; i < 60; i++ {
				w.slots[i] = 0
			}
		}
		w.start += shift
	}
	total := 0
	for _, n := range w.slots {
		total += int(n)
	}
	w.seen = now
	if total >= limit {
		return false
	}
	if i := sec - w.start; i >= 0 && i < 60 && w.slots[i] < ^uint16(0) {
		w.slots[i]++
	}
	return true
}

// checkRate is called at MAIL: a client over its message rate is asked to come back later.
func (s *session) checkRate(from string) error {
	lim := s.srv.cfg.Limits
	ip := remoteIP(s.conn.Conn().RemoteAddr())
	if lim.exempt(ip) {
		return nil
	}
	if !s.srv.rateIP.allow(ip, lim.MessagesPerMinuteIP) {
		s.log.Warn("message deferred: too many from this address", "from", from, "limit", lim.MessagesPerMinuteIP)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
			Message: fmt.Sprintf("Too many messages from your address (more than %d a minute); try again later", lim.MessagesPerMinuteIP)}
	}
	if from != "" && !s.srv.rateSender.allow(from, lim.MessagesPerMinuteSender) {
		s.log.Warn("message deferred: too many from this sender", "from", from, "limit", lim.MessagesPerMinuteSender)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
			Message: fmt.Sprintf("Too many messages from %s (more than %d a minute); try again later", from, lim.MessagesPerMinuteSender)}
	}
	return nil
}

// unknownRecipient slows a client that tries addresses that do not exist, and ends its session
// after too many.
func (s *session) unknownRecipient() error {
	lim := s.srv.cfg.Limits
	if lim.exempt(remoteIP(s.conn.Conn().RemoteAddr())) {
		return nil
	}
	s.unknown++
	if s.unknown >= lim.UnknownRecipients {
		s.log.Warn("session closed: too many unknown recipients", "count", s.unknown)
		// go-smtp keeps a session open after any reply; this one ends it (RFC 5321 §3.8).
		c := s.conn.Conn()
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "421 4.7.0 %s Too many unknown recipients; closing the connection\r\n", s.srv.cfg.Hostname)
		c.Close()
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
			Message: "Too many unknown recipients; closing the connection"}
	}
	s.srv.Sleep(time.Duration(s.unknown) * lim.UnknownDelay)
	return nil
}

// headerSize is the length of the header block of raw (up to and including the empty line).
func headerSize(raw []byte) int {
	for i := 0; i+3 < len(raw); i++ {
		if raw[i] == '\r' && raw[i+1] == '\n' && raw[i+2] == '\r' && raw[i+3] == '\n' {
			return i + 4
		}
	}
	return len(raw)
}
