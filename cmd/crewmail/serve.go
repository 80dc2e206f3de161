package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"crewmail/config"
	"crewmail/delivery"
	"crewmail/digest"
	"crewmail/docs"
	"crewmail/imapd"
	"crewmail/internal/chore"
	"crewmail/internal/guide"
	"crewmail/internal/metrics"
	"crewmail/internal/mtasts"
	"crewmail/lists"
	"crewmail/smtpd"
	"crewmail/store"
	"crewmail/templates"
	"crewmail/verify"
	"crewmail/web"
)

func cmdServe(c *cmd) error {
	c.params = "[-config FILE] [-log-json]"
	c.help = "Runs the server until SIGINT or SIGTERM. Without a config file: the trial setup on loopback."
	logJSON := c.flag.Bool("log-json", false, "log in JSON instead of text (also: [log] format = \"json\")")
	if _, err := c.parse(0, 0); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	if *logJSON {
		cfg.Log.Format = "json"
	}
	logOut := newLogBuffer(c.stderr)
	if cl, ok := logOut.(io.Closer); ok {
		defer cl.Close()
	}
	log := newLogger(cfg.Log, logOut)
	srv, err := startServer(cfg, log)
	if err != nil {
		return err
	}
	return srv.run(c.ctx)
}
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// server is a running crewmail: every listener bound, the store open.
type server struct {
	cfg     *config.Config
	log     *slog.Logger
	st      store.Backend
	svc     *lists.Service
	guide   *guide.Guide
	smtp    *smtpd.Server
	queue   *delivery.Queue
	digests *digest.Scheduler
	ctl     *ctlServer
	http    *http.Server
	web     *web.Reader // the members' web reader, under [http] base_url

	imap                            *imapd.Server
	smtpLn, httpLn, imapLn, imapsLn net.Listener
	// stopGrace is how long stopping may take before run returns all the same; 0: 2 minutes.
	stopGrace time.Duration
	// SMTPAddr and HTTPAddr are where the listeners are bound (the port chosen when the
	// configuration said 0).
	SMTPAddr, HTTPAddr, IMAPAddr, IMAPSAddr string
}

// startServer opens the store and binds every listener, so that a misconfiguration stops
// start-up with an error instead of a half-running server.
func startServer(cfg *config.Config, log *slog.Logger) (_ *server, err error) {
	s := &server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if s.st, err = openStore(cfg); err != nil {
		return nil, err
	}
	// The data folder holds the control socket, keys and templates whatever the backend.
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", cfg.DataDir, err)
	}
	tpl, err := templates.New(templatesDir(cfg))
	if err != nil {
		return nil, err
	}
	lcfg := listsConfig(cfg, s.st)
	if cfg.HTTP.Listen != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
			return nil, fmt.Errorf("key http.listen: %w", err)
		}
		s.HTTPAddr = s.httpLn.Addr().String()
		if lcfg.BaseURL == "" {
			lcfg.BaseURL = "http://" + s.HTTPAddr
		}
	}
	if err := s.bindIMAP(cfg); err != nil {
		return nil, err
	}
	lcfg.IMAPServer = imapServer(cfg, s.IMAPAddr, s.IMAPSAddr)
	s.svc = lists.New(s.st, tpl, lcfg, log)
	if s.guide, err = guide.New(docs.Member); err != nil {
		return nil, err
	}

	transport, err := newTransport(cfg, log)
	if err != nil {
		return nil, err
	}
	s.queue = delivery.New(s.st, s.svc, transport, delivery.Config{
		Workers: cfg.Delivery.Workers,
		MaxAge:  cfg.Delivery.MaxAge.Duration,
		Signer:  delivery.NewSigner(dkimDir(cfg)),
		Failed:  s.svc.DeliveryFailed,

		MaxConnectionsPerDestination: cfg.Delivery.MaxConnectionsPerDomain,
		MessagesPerMinute:            cfg.Delivery.MessagesPerMinutePerDomain,
	}, log.With("component", "delivery"))
	s.svc.Enqueued = s.queue.Wake

	scfg := smtpd.Config{
		Hostname:           cfg.Hostname,
		MaxMessageBytes:    cfg.SMTP.MaxMessageBytes,
		MaxRecipients:      cfg.SMTP.MaxRecipients,
		ReadTimeout:        cfg.SMTP.ReadTimeout.Duration,
		WriteTimeout:       cfg.SMTP.WriteTimeout.Duration,
		TrustedRelays:      cfg.SMTP.Relays(),
		TrustedAuthServIDs: cfg.SMTP.TrustedAuthServIDs,
		Limits: smtpd.Limits{
			MaxConnections:          cfg.SMTP.MaxConnections,
			MaxConcurrentData:       cfg.SMTP.MaxConcurrentData,
			ConnectionsPerIP:        cfg.SMTP.MaxConnectionsPerIP,
			MessagesPerMinuteIP:     cfg.SMTP.MaxMessagesPerMinute,
			MessagesPerMinuteSender: cfg.SMTP.MaxMessagesPerMinuteSender,
			MaxHeaderBytes:          cfg.SMTP.MaxHeaderBytes,
			UnknownRecipients:       cfg.SMTP.MaxUnknownRecipients,
			Loopback:                cfg.SMTP.LimitLoopback,
		},
	}
	if cfg.SMTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.SMTP.TLSCert, cfg.SMTP.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("key smtp.tls_cert: %w", err)
		}
		scfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	scfg.Verifier = &verify.Verifier{Resolver: verify.NewResolver(cfg.DNS.Resolver)}
	s.smtp = smtpd.New(scfg, s.svc, log.With("component", "smtp"))
	if s.smtpLn, err = net.Listen("tcp", cfg.SMTP.Listen); err != nil {
		return nil, fmt.Errorf("key smtp.listen: %w", err)
	}
	s.SMTPAddr = s.smtpLn.Addr().String()
	if s.httpLn != nil {
		zone, _ := time.LoadLocation(cfg.Digest.Timezone) // checked by config.Validate
		if s.web, err = web.New(s.st, s.svc, web.Config{BaseURL: lcfg.BaseURL, Zone: zone, Log: log.With("component", "web")}); err != nil {
			return nil, fmt.Errorf("key http.base_url: %w", err)
		}
		// Slow clients (slow-loris) and idle ones are dropped, and at most max_connections are
		// open: the rest wait in the kernel's queue. Only small forms are ever posted.
		s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 20 * time.Second,
			WriteTimeout: time.Minute, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
			ErrorLog: slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelInfo)}
		s.httpLn = netutil.LimitListener(s.httpLn, cfg.HTTP.MaxConnections)
	}
	if err := s.listenIMAP(cfg, scfg.TLS, log); err != nil {
		return nil, err
	}
	if s.imap != nil {
		s.svc.Enqueued = func() { s.queue.Wake(); s.imap.Notify() } // IDLE sessions see new posts
	}
	s.digests = newScheduler(cfg, s.st, tpl, s.svc, log.With("component", "digest"))
	s.digests.Enqueued = s.queue.Wake
	s.watch()
	if s.ctl, err = listenCtl(ctlPath(cfg), &backend{svc: s.svc, digests: s.digests, st: s.st, queue: s.queue}, log.With("component", "ctl")); err != nil {
		return nil, err
	}
	return s, nil
}

// watch makes what other nodes commit on a shared backend reach this one as its own commits
// do: new deliveries wake the workers, new posts and flag changes the IMAP IDLE sessions.
func (s *server) watch() {
	w, ok := s.st.(store.Watcher)
	if !ok {
		return
	}
	w.Watch(func(c store.Change) {
		switch c.Kind {
		case store.ChangeOutbox:
			s.queue.Wake()
		case store.ChangePost:
			if s.imap != nil {
				s.imap.Notify()
			}
		case store.ChangeFlags:
			if s.imap != nil {
				s.imap.FlagsChanged(c.List, c.Member)
			}
		}
	})
}

// bindIMAP binds the IMAP listeners of the configuration (plain with STARTTLS, implicit TLS).
func (s *server) bindIMAP(cfg *config.Config) error {
	if cfg.IMAP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.IMAP.Listen)
		if err != nil {
			return fmt.Errorf("key imap.listen: %w", err)
		}
		s.imapLn, s.IMAPAddr = ln, ln.Addr().String()
	}
	if cfg.IMAP.ListenTLS != "" {
		ln, err := net.Listen("tcp", cfg.IMAP.ListenTLS)
		if err != nil {
			return fmt.Errorf("key imap.listen_tls: %w", err)
		}
		s.imapsLn, s.IMAPSAddr = ln, ln.Addr().String()
	}
	return nil
}

// listenIMAP makes the IMAP server for the bound listeners. Logins without TLS are allowed only
// on a loopback listener.
func (s *server) listenIMAP(cfg *config.Config, smtpTLS *tls.Config, log *slog.Logger) error {
	if s.imapLn == nil && s.imapsLn == nil {
		return nil
	}
	tlsCfg := smtpTLS
	if cfg.IMAP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.IMAP.TLSCert, cfg.IMAP.TLSKey)
		if err != nil {
			return fmt.Errorf("key imap.tls_cert: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	insecure := false
	if s.imapLn != nil {
		if a, ok := s.imapLn.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			insecure = true
		}
	}
	if s.imapsLn != nil && tlsCfg == nil {
		return fmt.Errorf("key imap.listen_tls: implicit TLS needs a certificate (imap.tls_cert or smtp.tls_cert)")
	}
	s.imap = imapd.New(s.st, imapd.Config{TLS: tlsCfg, InsecureAuth: insecure, Log: log.With("component", "imap"),
		MaxConnections: cfg.IMAP.MaxConnections, MaxConnectionsPerIP: cfg.IMAP.MaxConnectionsPerIP})
	return nil
}

func listsConfig(cfg *config.Config, st store.Backend) lists.Config {
	var signIn func(addr string, now time.Time) string
	if base := cfg.HTTP.BaseURL; base != "" { // digests and notices to members sign them in to the reader
		signIn = func(addr string, now time.Time) string { return web.MemberSignInURL(base, st.Secret(), addr, now) }
	}
	return lists.Config{SignIn: signIn, Hostname: cfg.Hostname, Separator: cfg.Separator, Postmaster: cfg.Postmaster, ConfirmWithin: cfg.ConfirmWithin.Duration,
		BaseURL: cfg.HTTP.BaseURL, ArchiveURL: cfg.HTTP.BaseURL, IMAPServer: imapServer(cfg, cfg.IMAP.Listen, cfg.IMAP.ListenTLS), BounceThreshold: cfg.Bounces.Threshold, BouncePeriod: cfg.Bounces.Period.Duration,
		DailyAt: cfg.Digest.DailyAt, WeeklyOn: weekdayName(cfg.Digest.WeeklyOn), Zone: zoneName(cfg.Digest.Timezone)}
}

// weekdayName is the configured weekday as members read it: "Monday".
func weekdayName(s string) string {
	if d, ok := config.ParseWeekday(s); ok {
		return d.String()
	}
	return s
}

// zoneName names the digests' time zone: the configured one, or else the server's own by its
// abbreviation ("UTC", "CET"), since "Local" tells a member nothing.
func zoneName(tz string) string {
	if tz != "" && tz != "Local" {
		return tz
	}
	name, _ := time.Now().Zone()
	return name
}

// imapServer says how a member's mail program reaches the IMAP archive at the listen addresses
// plain and implicit (as bound, when the server runs).
func imapServer(cfg *config.Config, plain, implicit string) string {
	host := cfg.IMAP.Host
	if host == "" {
		host = cfg.Hostname
	}
	port := func(addr string) string {
		_, p, _ := net.SplitHostPort(addr)
		return p
	}
	tls := cfg.IMAP.TLSCert != "" || cfg.SMTP.TLSCert != ""
	switch {
	case implicit != "":
		return host + ", port " + port(implicit) + ", SSL/TLS"
	case plain != "" && tls:
		return host + ", port " + port(plain) + ", STARTTLS"
	case plain != "":
		return host + ", port " + port(plain) + ", no encryption (works on this machine only)"
	}
	return host + " (IMAP is not switched on yet; ask the list's owners)"
}

// newScheduler makes the digest scheduler of the configuration.
func newScheduler(cfg *config.Config, st store.Backend, tpl *templates.Set, svc *lists.Service, log *slog.Logger) *digest.Scheduler {
	zone, _ := time.LoadLocation(cfg.Digest.Timezone) // checked by config.Validate
	weekday, _ := config.ParseWeekday(cfg.Digest.WeeklyOn)
	r := &digest.Renderer{Templates: tpl, Hostname: cfg.Hostname, MaxBytes: cfg.Digest.MaxBytes, MaxHTMLBytes: cfg.Digest.MaxHTMLBytes}
	s := digest.NewScheduler(st, r, svc, digest.Schedule{DailyAt: cfg.Digest.DailyAt, WeeklyOn: weekday, Zone: zone}, log)
	if base := cfg.HTTP.BaseURL; base != "" { // the web reader is there: digests link to it
		s.Web = digest.Web{
			Conversation: func(list string, thread uint64) string { return web.ConversationURL(base, list, thread) },
			Message:      func(list string, seq uint64) string { return web.MessageURL(base, list, seq) },
			Attachment: func(list string, seq uint64, n int, name string) string {
				return web.AttachmentURL(base, list, seq, n, name)
			},
			List:   func(list string) string { return web.ListURL(base, list) },
			SignIn: true, // lists.Config.SignIn (listsConfig) puts each member's link in
		}
	}
	// A round over thousands of lists reads the whole archive through the store's memory map:
	// the server gives the pages back as the round goes, so its resident set stays what it holds.
	if m, ok := st.(store.Maintenance); ok { // a backend with a memory map of its own
		s.Chores = chore.NewMappedPages(m, log)
	}
	return s
}

// templatesDir is where the operator's templates are.
func templatesDir(cfg *config.Config) string {
	if cfg.TemplatesDir != "" {
		return cfg.TemplatesDir
	}
	return filepath.Join(cfg.DataDir, "templates")
}

func newTransport(cfg *config.Config, log *slog.Logger) (delivery.Transport, error) {
	d := cfg.Delivery
	switch d.Mode {
	case "smarthost":
		log.Info("outbound mail goes through the smarthost", "smarthost", d.Smarthost, "tls", d.SmarthostTLS)
		var roots *x509.CertPool
		if d.SmarthostCA != "" {
			pem, err := os.ReadFile(d.SmarthostCA)
			if err != nil {
				return nil, fmt.Errorf("key delivery.smarthost_ca: %w", err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("key delivery.smarthost_ca: %s holds no PEM certificate", d.SmarthostCA)
			}
		}
		// The smarthost's name is looked up through [dns] resolver like every other name.
		var resolver *net.Resolver
		if cfg.DNS.Resolver != "" {
			resolver = delivery.NewResolver(cfg.DNS.Resolver)
		}
		sh := delivery.NewSmarthost(d.Smarthost, cfg.Hostname, d.SmarthostTLS, d.Username, d.Password, roots, resolver)
		sh.SetSource(net.ParseIP(d.SourceIPv4), net.ParseIP(d.SourceIPv6))
		return sh, nil
	case "mx":
		log.Info("outbound mail goes to each recipient's MX", "resolver", orDefault(cfg.DNS.Resolver, "system"), "ip_preference", d.IPPreference)
		resolver := delivery.NewResolver(cfg.DNS.Resolver)
		mx := delivery.NewMX(resolver, d.MXPort, cfg.Hostname)
		mx.IPPreference = d.IPPreference
		mx.SetSource(net.ParseIP(d.SourceIPv4), net.ParseIP(d.SourceIPv6))
		// MTA-STS policies are fetched with the system's authorities, the names looked up
		// through the same resolver.
		dialer := &net.Dialer{Resolver: resolver, Timeout: 30 * time.Second}
		mx.STS = mtasts.NewLookup(resolver, &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			DialContext: dialer.DialContext, TLSHandshakeTimeout: 30 * time.Second}})
		mx.Log = log.With("component", "delivery")
		return mx, nil
	default:
		dir := d.Maildir
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "maildir")
		}
		abs, _ := filepath.Abs(dir)
		log.Info("outbound mail is written to a Maildir, not sent to the internet (set [delivery] mode to send it)", "maildir", abs)
		return delivery.NewMaildir(dir, cfg.Hostname)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.queue.Health(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.queue.Gauges()...)
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{metrics.Registry, reg}, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /guide", s.guidePage)
	mux.HandleFunc("GET /u/{token}", s.unsubscribePage)
	mux.HandleFunc("POST /u/{token}", s.unsubscribeNow)
	// The reader's pages are under the base URL's path; at the root, the paths above stay
	// the server's own (ServeMux prefers the longer pattern).
	mux.Handle(s.web.Prefix()+"/", s.web)
	return mux
}

// run serves until ctx is done, then stops gracefully: no new connections, SMTP transactions
// in progress finish, deliveries in flight finish, the database is closed.
func (s *server) run(ctx context.Context) error {
	s.log.Info("crewmail started", "version", version(), "store", s.cfg.Store.Backend, "smtp", s.SMTPAddr, "http", s.HTTPAddr, "imap", s.IMAPAddr, "imaps", s.IMAPSAddr, "data", s.cfg.DataDir, "hostname", s.cfg.Hostname)
	var wg sync.WaitGroup
	errs := make(chan error, 8) // one per goroutine that sends, so none blocks
	qctx, stopQueue := context.WithCancel(context.Background())
	defer stopQueue()
	wg.Go(func() {
		if err := s.queue.Run(qctx); err != nil {
			errs <- err
		}
	})
	wg.Go(func() {
		if err := s.smtp.Serve(s.smtpLn); err != nil {
			errs <- fmt.Errorf("SMTP: %w", err)
		}
	})
	if s.http != nil {
		wg.Go(func() {
			if err := s.http.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("HTTP: %w", err)
			}
		})
	}
	if s.imapLn != nil {
		wg.Go(func() {
			if err := s.imap.Serve(s.imapLn); err != nil {
				errs <- fmt.Errorf("IMAP: %w", err)
			}
		})
	}
	if s.imapsLn != nil {
		wg.Go(func() {
			if err := s.imap.ServeTLS(s.imapsLn); err != nil {
				errs <- fmt.Errorf("IMAP (TLS): %w", err)
			}
		})
	}
	wg.Go(s.ctl.serve)
	stopSweeper := make(chan struct{})
	wg.Go(func() { s.svc.RunSweeper(stopSweeper, 10*time.Minute) })
	wg.Go(func() { s.digests.Run(qctx, time.Minute) })
	if s.web != nil {
		wg.Go(func() { s.web.Run(qctx, time.Hour) })
	}

	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("stopping: finishing SMTP transactions and deliveries in progress")
	case runErr = <-errs:
		s.log.Error("stopping after an error", "err", runErr)
	}
	// Stopping must not hang for good on something stuck (a client that reads nothing, a
	// command that does not end): after stopGrace the process ends all the same. Every commit
	// is atomic, so nothing written is lost.
	stopped := make(chan error, 1)
	go func() {
		s.smtp.Shutdown(30 * time.Second)
		// go-smtp closes only the listeners its Serve has registered: a stop that comes before
		// the Serve goroutine got that far (a server stopped right after it started) would
		// leave Serve waiting in Accept for good. Closing the listener here ends it either way.
		_ = s.smtpLn.Close()
		if s.http != nil {
			hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.http.Shutdown(hctx)
			_ = s.http.Close()
			cancel()
		}
		if s.imap != nil {
			_ = s.imap.Close()
		}
		_ = s.ctl.close()
		close(stopSweeper)
		stopQueue()
		wg.Wait()
		if err := s.st.Close(); err != nil {
			stopped <- fmt.Errorf("close database: %w", err)
			return
		}
		stopped <- nil
	}()
	grace := s.stopGrace
	if grace == 0 {
		grace = 2 * time.Minute
	}
	select {
	case err := <-stopped:
		if runErr == nil {
			runErr = err
		}
		s.log.Info("crewmail stopped")
	case <-time.After(grace):
		s.log.Error("stopping without waiting longer: something in progress did not end", "waited", grace)
		if runErr == nil {
			runErr = fmt.Errorf("stopped after %s without waiting for everything in progress to end", grace)
		}
	}
	return runErr
}

// closeAll releases what startServer got before it failed.
func (s *server) closeAll() {
	for _, ln := range []net.Listener{s.smtpLn, s.httpLn, s.imapLn, s.imapsLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	if s.ctl != nil {
		_ = s.ctl.close()
	}
	if s.st != nil {
		_ = s.st.Close()
	}
}
