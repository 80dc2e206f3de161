// Package imapd serves the list archives over IMAP (RFC 9051, RFC 3501 IMAP4rev1): a member
// logs in with their address and app password and reads one mailbox per list they belong to.
// The archive is read-only; the only thing a member changes is their own \Seen and \Flagged
// flags, which the store keeps per member.
//
// Each list's mailbox is named by the list's address. A message's UID is the post's archive
// sequence (never reused), UIDVALIDITY is the list's creation time, INTERNALDATE is when the
// post was received, and the bytes served are exactly the archived bytes. Membership is checked
// on every command, so a member who is removed loses the mailbox at once.
package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/crypto/bcrypt"

	// Non-UTF-8 charsets in headers (ENVELOPE) and bodies (SEARCH TEXT) decode only with this.
	_ "github.com/emersion/go-message/charset"

	"crewmail/internal/metrics"
	"crewmail/store"
)

// Config is how a Server runs.
type Config struct {
	TLS *tls.Config // nil: no TLS
	// InsecureAuth allows LOGIN without TLS; the caller sets it only for loopback listeners.
	InsecureAuth bool
	Log          *slog.Logger
	Now          func() time.Time // for throttling; nil = time.Now
	// MaxConnections open at once, and MaxConnectionsPerIP from one address (an IPv6 /64);
	// beyond either a connection is answered BYE and closed. 0: 200 and 20.
	MaxConnections, MaxConnectionsPerIP int
}

// Server is the IMAP server. Its methods are safe for concurrent use.
type Server struct {
	st    store.Backend
	cfg   Config
	log   *slog.Logger
	imap  *imapserver.Server
	throt *throttle

	// pollEvery is how often an IDLE session looks for new posts without being notified.
	pollEvery time.Duration
	// sleep waits out a login delay; tests replace it so they need not wait.
	sleep func(ctx context.Context, d time.Duration) error
	// hashSlots bounds concurrent bcrypt comparisons, which cost tens of milliseconds of CPU.
	hashSlots chan struct{}

	ctx    context.Context // cancelled by Close: ends login delays and IDLE loops
	cancel context.CancelFunc
	conns  atomic.Uint64
	open   connCount // connections open now, in all and per address

	notifyMu sync.Mutex
	notifyCh chan struct{} // closed (and replaced) by Notify

	flagsMu  sync.Mutex
	flagGens map[flagsKey]uint64 // how often each member's flags on a list changed: see flagGen
	allGen   uint64              // how often everyone's flags may have changed (FlagsChanged with no list)

	dummyOnce sync.Once
	dummyHash []byte
	dummyCost int // of the dummy hash: that of real app passwords; tests lower it

	closeOnce sync.Once
	closeErr  error
}

// caps are the capabilities the library may advertise from Options.Caps. Only IMAP4rev1: the
// library adds SASL-IR, LITERAL-, STARTTLS (with TLS, before it), AUTH=PLAIN or LOGINDISABLED
// before login, and UNSELECT, ENABLE, IDLE, UTF8=ACCEPT after, which it implements itself or
// through Session methods we have. Anything else here (IMAP4rev2, NAMESPACE, MOVE, UIDPLUS…)
// would promise what this backend does not do, and some make the library panic.
var caps = imap.CapSet{imap.CapIMAP4rev1: {}}

// New makes a server that reads the archive in st.
func New(st store.Backend, cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = defaultMaxConnections
	}
	if cfg.MaxConnectionsPerIP == 0 {
		cfg.MaxConnectionsPerIP = defaultMaxConnectionsPerIP
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		st:        st,
		cfg:       cfg,
		log:       cfg.Log,
		throt:     newThrottle(),
		pollEvery: 2 * time.Second,
		sleep:     sleepCtx,
		hashSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
		dummyCost: bcrypt.DefaultCost,
		ctx:       ctx,
		cancel:    cancel,
		notifyCh:  make(chan struct{}),
		flagGens:  map[flagsKey]uint64{},
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps:       caps,
		// What the library reports is about one connection (a client that hung up, a bad
		// command): worth a line, not a warning.
		Logger:       slog.NewLogLogger(cfg.Log.With("component", "imap").Handler(), slog.LevelInfo),
		TLSConfig:    cfg.TLS,
		InsecureAuth: cfg.InsecureAuth,
	})
	return s
}

// Serve answers IMAP on ln (plain TCP; STARTTLS is offered when the Config has TLS) until
// Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	return s.imap.Serve(countedListener{Listener: ln, srv: s})
}

// ServeTLS answers IMAP over implicit TLS (port 993 style) on ln until Close.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("imapd: ServeTLS needs a TLS configuration")
	}
	return s.imap.Serve(tls.NewListener(countedListener{Listener: ln, srv: s}, s.cfg.TLS))
}

// Close stops the server: its listeners are closed and every session ends. Calling it again
// does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		if err := s.imap.Close(); err != nil {
			s.closeErr = fmt.Errorf("close imap server: %w", err)
		}
	})
	return s.closeErr
}

// Notify tells IDLE sessions that a post was archived (or flags changed). They also look every pollEvery, so a
// missed Notify delays news, it does not lose it.
func (s *Server) Notify() {
	s.notifyMu.Lock()
	close(s.notifyCh)
	s.notifyCh = make(chan struct{})
	s.notifyMu.Unlock()
}

// flagsKey names one member's flags on one list.
type flagsKey struct {
	list   string
	member uint64
}

// flagGen is how many times k's flags have changed since the server started. A session that
// has told its client the flags of generation g has nothing to tell while flagGen is g.
func (s *Server) flagGen(k flagsKey) uint64 {
	s.flagsMu.Lock()
	defer s.flagsMu.Unlock()
	return s.flagGens[k] + s.allGen
}

// flagsChanged records a committed change of k's flags and wakes the IDLE sessions, which tell
// their clients (RFC 9051 §7.5.2: a server should report flag changes made by other sessions).
// It returns the new generation.
func (s *Server) flagsChanged(k flagsKey) uint64 {
	s.flagsMu.Lock()
	s.flagGens[k]++
	g := s.flagGens[k] + s.allGen
	s.flagsMu.Unlock()
	s.Notify()
	return g
}

// FlagsChanged tells the sessions of member on list that her flags changed in another process
// sharing the database (a session on another node), so that they report them as they report
// one another's (RFC 9051 §7.5.2). An empty list means anyone's may have changed.
func (s *Server) FlagsChanged(list string, member uint64) {
	s.flagsMu.Lock()
	if list == "" {
		s.allGen++
	} else {
		s.flagGens[flagsKey{list, member}]++
	}
	s.flagsMu.Unlock()
	s.Notify()
}

// notified returns a channel closed at the next Notify.
func (s *Server) notified() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notifyCh
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	id := s.conns.Add(1)
	remote := c.NetConn().RemoteAddr()
	if overLimit(c.NetConn()) {
		s.log.Warn("imap connection refused: too many open", "remote", remote.String(),
			"max", s.cfg.MaxConnections, "max_per_ip", s.cfg.MaxConnectionsPerIP)
		return nil, nil, errTooManyConnections
	}
	sess := &session{
		srv:    s,
		remote: ipKey(remote),
		log:    s.log.With("conn", fmt.Sprintf("imap-%d", id), "remote", remote.String()),
	}
	sess.log.Debug("imap connection")
	metrics.IMAPSessions.Inc()
	return sess, nil, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
