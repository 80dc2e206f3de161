// Package config owns crewmail's TOML configuration: the keys, their defaults (a loopback trial
// setup when no file is given) and validation that names the key at fault.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"crewmail/internal/mailaddr"
)

// Config is the whole configuration. Every key is optional.
type Config struct {
	// Hostname is the server's name in SMTP greetings, Received headers and Message-IDs.
	Hostname string `toml:"hostname"`
	// DataDir holds the database, the control socket and the trial Maildir.
	DataDir string `toml:"data_dir"`
	// Separator joins a list's local part and a command: crew+subscribe@.
	Separator string `toml:"separator"`
	// Postmaster receives mail to postmaster@ of every domain with lists (RFC 5321 §4.5.1);
	// empty: the owners of that domain's lists.
	Postmaster string `toml:"postmaster"`
	// ConfirmWithin is how long a post that could not be verified waits for its author to
	// confirm it by reply, on lists whose policy is "verified".
	ConfirmWithin Duration `toml:"confirm_within"`
	// TemplatesDir holds the operator's versions of notice templates (NAME.txt replaces the
	// built-in NAME); empty: the folder "templates" in the data folder.
	TemplatesDir string `toml:"templates_dir"`

	Store    Store    `toml:"store"`
	Log      Log      `toml:"log"`
	SMTP     SMTP     `toml:"smtp"`
	HTTP     HTTP     `toml:"http"`
	IMAP     IMAP     `toml:"imap"`
	Delivery Delivery `toml:"delivery"`
	DNS      DNS      `toml:"dns"`
	Digest   Digest   `toml:"digest"`
	Bounces  Bounces  `toml:"bounces"`
}

// Store says which database the server keeps its records in.
type Store struct {
	// Backend is "bbolt" (one file in DataDir, one process) or "postgres" (a PostgreSQL
	// database any number of crewmail processes share, at DSN).
	Backend string `toml:"backend"`
	// DSN is the PostgreSQL connection string, a postgres:// URL or key=value pairs; several
	// hosts with target_session_attrs=read-write find the primary after a failover.
	DSN string `toml:"dsn"`
}

// Bounces says when delivery to a member whose mail keeps bouncing is paused: when their
// score (a hard bounce counts 1, a soft one 0.25, a success report clears it) reaches
// Threshold after building up for at least Period.
type Bounces struct {
	Threshold float64  `toml:"threshold"`
	Period    Duration `toml:"period"`
}

// Digest says when digests go out.
type Digest struct {
	DailyAt  string `toml:"daily_at"`  // "HH:MM", local time of the list
	WeeklyOn string `toml:"weekly_on"` // a day of the week, in English
	// Timezone is an IANA zone name ("Europe/Berlin"); lists may have their own. Empty: the
	// server's local time zone.
	Timezone string `toml:"timezone"`
	// MaxBytes: a digest larger than this is sent in parts.
	MaxBytes int `toml:"max_bytes"`
	// MaxHTMLBytes: a digest whose HTML part is larger than this is sent in parts too (Gmail
	// clips a message's HTML after about 102 KB).
	MaxHTMLBytes int `toml:"max_html_bytes"`
}

// Log says how crewmail writes its log.
type Log struct {
	Format string `toml:"format"` // "text" or "json"
	Level  string `toml:"level"`  // "debug", "info", "warn", "error"
}

// SMTP is the inbound SMTP listener.
type SMTP struct {
	Listen          string   `toml:"listen"`
	MaxMessageBytes int64    `toml:"max_message_bytes"`
	MaxRecipients   int      `toml:"max_recipients"`
	TLSCert         string   `toml:"tls_cert"`
	TLSKey          string   `toml:"tls_key"`
	ReadTimeout     Duration `toml:"read_timeout"`
	WriteTimeout    Duration `toml:"write_timeout"`
	// MaxConnections open at once from anywhere, loopback included; more get 421 at once.
	MaxConnections int `toml:"max_connections"`
	// MaxConcurrentData: messages over 1 MiB received at once (each is held in memory whole);
	// one more waits a little, then gets 451 4.3.2.
	MaxConcurrentData int `toml:"max_concurrent_data"`
	// Abuse limits: open connections per client address, messages a minute per client address
	// and per envelope sender, header size, unknown recipients per session.
	MaxConnectionsPerIP        int `toml:"max_connections_per_ip"`
	MaxMessagesPerMinute       int `toml:"max_messages_per_minute"`
	MaxMessagesPerMinuteSender int `toml:"max_messages_per_minute_sender"`
	MaxHeaderBytes             int `toml:"max_header_bytes"`
	MaxUnknownRecipients       int `toml:"max_unknown_recipients"`
	// LimitLoopback applies the limits to clients on loopback too (the operator's own MTA or
	// scripts are spared by default).
	LimitLoopback bool `toml:"limit_loopback"`
	// TrustedRelays are the networks (CIDRs) of the MTAs in front of crewmail. For mail from
	// one of them SPF is checked for the client and HELO the relay recorded in the Received
	// field it added on top, not for the relay itself.
	TrustedRelays []string `toml:"trusted_relays"`
	// TrustedAuthServIDs are the authserv-ids (RFC 8601) of the front MTA's checks (OpenDKIM,
	// OpenDMARC, rspamd): their Authentication-Results fields on mail from a trusted relay are
	// kept and recorded as evidence. Every other Authentication-Results field is removed.
	TrustedAuthServIDs []string `toml:"trusted_authserv_ids"`
}

// Relays parses TrustedRelays; Validate has checked them.
func (s SMTP) Relays() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range s.TrustedRelays {
		if p, err := netip.ParsePrefix(r); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// HTTP is the HTTP listener (health now; one-click unsubscribe and metrics later).
// IMAP is where members read the archive: plain with STARTTLS, and implicit TLS.
type IMAP struct {
	Listen    string `toml:"listen"`     // "" turns plain IMAP off
	ListenTLS string `toml:"listen_tls"` // implicit TLS (993-style); needs the certificate
	// TLSCert and TLSKey: a certificate for IMAP; empty: the [smtp] one.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// Host is the name members put in their mail program; empty: hostname.
	Host string `toml:"host"`
	// MaxConnections open at once, and MaxConnectionsPerIP from one address (an IPv6 /64),
	// loopback included; more are greeted with BYE and closed.
	MaxConnections      int `toml:"max_connections"`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
}

type HTTP struct {
	Listen  string `toml:"listen"`
	BaseURL string `toml:"base_url"`
	// MaxConnections open at once; more wait in the kernel's queue until one closes.
	MaxConnections int `toml:"max_connections"`
}

// Delivery says how outbound mail leaves.
type Delivery struct {
	// Mode is "maildir" (write to a folder; the trial default), "smarthost" or "mx".
	Mode string `toml:"mode"`
	// Maildir is where maildir mode writes; default DataDir/maildir.
	Maildir string `toml:"maildir"`
	// Smarthost is host:port of the relay in smarthost mode.
	Smarthost string `toml:"smarthost"`
	// SmarthostTLS: "starttls" (required), "opportunistic" (if offered), "tls" (implicit), "none".
	SmarthostTLS string `toml:"smarthost_tls"`
	// SmarthostCA is a PEM file of the authorities the smarthost's certificate must chain to
	// (a private CA); empty: the system's.
	SmarthostCA string `toml:"smarthost_ca"`
	Username    string `toml:"username"`
	Password    string `toml:"password"`
	// MXPort is the port dialled at MX hosts; 25 except in tests.
	MXPort  int      `toml:"mx_port"`
	Workers int      `toml:"workers"`
	MaxAge  Duration `toml:"max_age"` // temporary failures are retried this long
	// MaxConnectionsPerDomain bounds the connections at once to one destination (the MX host
	// set of a domain, or the smarthost).
	MaxConnectionsPerDomain int `toml:"max_connections_per_domain"`
	// MessagesPerMinutePerDomain caps the messages a minute to one destination; 0: no cap.
	MessagesPerMinutePerDomain int `toml:"messages_per_minute_per_domain"`
	// IPPreference is "both" (IPv4 first, then IPv6), "ipv4" (IPv4 only) or "ipv6" (IPv6
	// first, then IPv4).
	IPPreference string `toml:"ip_preference"`
	// SourceIPv4 and SourceIPv6 are the local addresses outbound connections leave from.
	SourceIPv4 string `toml:"source_ipv4"`
	SourceIPv6 string `toml:"source_ipv6"`
}

// DNS selects the resolver for every lookup: DKIM, SPF and DMARC of inbound mail, MX hosts and
// crewmail check.
type DNS struct {
	// Resolver is host:port of a DNS server; empty means the system resolver.
	Resolver string `toml:"resolver"`
}

// Duration is a time.Duration written as "90s", "5m" or "120h" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"90s\" or \"5m\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default is the zero-config trial setup: everything on loopback, data in ./crewmail-data,
// outbound mail into a Maildir.
func Default() *Config {
	return &Config{
		Hostname:      "localhost",
		DataDir:       "crewmail-data",
		Separator:     "+",
		ConfirmWithin: Duration{7 * 24 * time.Hour},
		Store:         Store{Backend: "bbolt"},
		Log:           Log{Format: "text", Level: "info"},
		SMTP: SMTP{
			Listen:          "127.0.0.1:2525",
			MaxMessageBytes: 25 << 20,
			MaxRecipients:   50,
			ReadTimeout:     Duration{10 * time.Minute},
			WriteTimeout:    Duration{time.Minute},

			MaxConnections:             100,
			MaxConcurrentData:          4,
			MaxConnectionsPerIP:        20,
			MaxMessagesPerMinute:       120,
			MaxMessagesPerMinuteSender: 60,
			MaxHeaderBytes:             1 << 20,
			MaxUnknownRecipients:       10,
			TrustedRelays:              []string{},
			TrustedAuthServIDs:         []string{},
		},
		HTTP:    HTTP{Listen: "127.0.0.1:8025", MaxConnections: 100},
		IMAP:    IMAP{Listen: "127.0.0.1:1143", MaxConnections: 200, MaxConnectionsPerIP: 20},
		Digest:  Digest{DailyAt: "08:00", WeeklyOn: "monday", MaxBytes: 2 << 20, MaxHTMLBytes: 100000},
		Bounces: Bounces{Threshold: 3, Period: Duration{7 * 24 * time.Hour}},
		Delivery: Delivery{
			Mode:         "maildir",
			SmarthostTLS: "opportunistic",
			MXPort:       25,
			Workers:      8,
			MaxAge:       Duration{5 * 24 * time.Hour},

			MaxConnectionsPerDomain: 3,
			IPPreference:            "both",
		},
	}
}

// Load reads the TOML file at path over the defaults. An empty path gives the defaults.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err := c.parse(path, string(data)); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) parse(path, text string) error {
	md, err := toml.Decode(text, c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			msg := perr.Message
			if perr.LastKey != "" {
				return fmt.Errorf("config %s: key %s (line %d): %s", path, perr.LastKey, perr.Position.Line, msg)
			}
			return fmt.Errorf("config %s: line %d: %s", path, perr.Position.Line, msg)
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return fmt.Errorf("config %s: unknown key %s", path, undecoded[0])
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Validate checks every value and names the first key that is wrong.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("key %s: %s", key, fmt.Sprintf(format, args...))
	}
	if c.Hostname == "" || strings.ContainsAny(c.Hostname, " \t@<>") {
		return bad("hostname", "%q is not a host name", c.Hostname)
	}
	if c.DataDir == "" {
		return bad("data_dir", "must not be empty")
	}
	switch c.Store.Backend {
	case "bbolt":
		if c.Store.DSN != "" {
			return bad("store.dsn", "is for backend \"postgres\"; backend \"bbolt\" keeps its file in data_dir")
		}
	case "postgres":
		if !strings.HasPrefix(c.Store.DSN, "postgres://") && !strings.HasPrefix(c.Store.DSN, "postgresql://") && !strings.Contains(c.Store.DSN, "=") {
			return bad("store.dsn", "must be a PostgreSQL connection string like \"postgres://crewmail@db.example.org/crewmail\", not %q", c.Store.DSN)
		}
	default:
		return bad("store.backend", "must be \"bbolt\" or \"postgres\", not %q", c.Store.Backend)
	}
	if len(c.Separator) != 1 || !strings.Contains("+-=", c.Separator) {
		return bad("separator", "must be one of \"+\", \"-\" or \"=\", not %q", c.Separator)
	}
	if c.Postmaster != "" {
		// As written it is where postmaster mail goes, so it is not normalized; a local
		// mailbox of a smarthost (root@mailhost) is fine.
		if local, domain, _ := mailaddr.Split(c.Postmaster); local == "" || domain == "" || strings.ContainsAny(c.Postmaster, " <>,") {
			return bad("postmaster", "%q is not an email address", c.Postmaster)
		}
	}
	if c.ConfirmWithin.Duration < time.Hour {
		return bad("confirm_within", "must be at least an hour, not %s", c.ConfirmWithin.Duration)
	}
	if _, err := time.Parse("15:04", c.Digest.DailyAt); err != nil {
		return bad("digest.daily_at", "must be a time of day like \"08:00\", not %q", c.Digest.DailyAt)
	}
	if _, ok := ParseWeekday(c.Digest.WeeklyOn); !ok {
		return bad("digest.weekly_on", "must be a day of the week like \"monday\", not %q", c.Digest.WeeklyOn)
	}
	if _, err := time.LoadLocation(c.Digest.Timezone); err != nil {
		return bad("digest.timezone", "%q is not a time zone name like \"Europe/Berlin\"", c.Digest.Timezone)
	}
	if c.Digest.MaxHTMLBytes < 16<<10 {
		return bad("digest.max_html_bytes", "must be at least 16384, not %d", c.Digest.MaxHTMLBytes)
	}
	if c.Digest.MaxBytes < 64<<10 {
		return bad("digest.max_bytes", "must be at least 65536, not %d", c.Digest.MaxBytes)
	}
	// Checked in a fixed order (a slice, not a map), so that of several wrong keys the same
	// one is named every time.
	for _, k := range []struct {
		key string
		v   int
	}{
		{"smtp.max_connections", c.SMTP.MaxConnections},
		{"smtp.max_connections_per_ip", c.SMTP.MaxConnectionsPerIP},
		{"smtp.max_concurrent_data", c.SMTP.MaxConcurrentData},
		{"smtp.max_messages_per_minute", c.SMTP.MaxMessagesPerMinute},
		{"smtp.max_messages_per_minute_sender", c.SMTP.MaxMessagesPerMinuteSender},
		{"smtp.max_unknown_recipients", c.SMTP.MaxUnknownRecipients},
		{"imap.max_connections", c.IMAP.MaxConnections},
		{"imap.max_connections_per_ip", c.IMAP.MaxConnectionsPerIP},
		{"http.max_connections", c.HTTP.MaxConnections},
	} {
		if k.v < 1 {
			return bad(k.key, "must be at least 1, not %d", k.v)
		}
	}
	for _, r := range c.SMTP.TrustedRelays {
		if _, err := netip.ParsePrefix(r); err != nil {
			return bad("smtp.trusted_relays", "%q is not a network like \"192.0.2.25/32\" or \"2001:db8::/64\"", r)
		}
	}
	for _, id := range c.SMTP.TrustedAuthServIDs {
		if id == "" || strings.ContainsAny(id, " \t;()\"") {
			return bad("smtp.trusted_authserv_ids", "%q is not an authserv-id (a host name)", id)
		}
		if strings.EqualFold(strings.TrimSuffix(id, "."), c.Hostname) {
			return bad("smtp.trusted_authserv_ids", "%q is this server's own authserv-id (hostname)", id)
		}
	}
	if c.SMTP.MaxHeaderBytes < 16<<10 {
		return bad("smtp.max_header_bytes", "must be at least 16384, not %d", c.SMTP.MaxHeaderBytes)
	}
	if c.Bounces.Threshold < 1 {
		return bad("bounces.threshold", "must be at least 1, not %g", c.Bounces.Threshold)
	}
	if c.Bounces.Period.Duration < 0 {
		return bad("bounces.period", "must not be negative")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return bad("log.format", "must be \"text\" or \"json\", not %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if err := checkListen(c.SMTP.Listen); err != nil {
		return bad("smtp.listen", "%v", err)
	}
	if c.SMTP.MaxMessageBytes < 1024 {
		return bad("smtp.max_message_bytes", "must be at least 1024, not %d", c.SMTP.MaxMessageBytes)
	}
	if c.SMTP.MaxRecipients < 1 {
		return bad("smtp.max_recipients", "must be at least 1, not %d", c.SMTP.MaxRecipients)
	}
	if (c.SMTP.TLSCert == "") != (c.SMTP.TLSKey == "") {
		return bad("smtp.tls_cert", "tls_cert and tls_key go together: set both or neither")
	}
	if c.SMTP.ReadTimeout.Duration <= 0 {
		return bad("smtp.read_timeout", "must be positive")
	}
	if c.SMTP.WriteTimeout.Duration <= 0 {
		return bad("smtp.write_timeout", "must be positive")
	}
	if c.HTTP.Listen != "" {
		if err := checkListen(c.HTTP.Listen); err != nil {
			return bad("http.listen", "%v", err)
		}
	}
	for _, k := range []struct{ key, addr string }{
		{"imap.listen", c.IMAP.Listen},
		{"imap.listen_tls", c.IMAP.ListenTLS},
	} {
		if k.addr == "" {
			continue
		}
		if err := checkListen(k.addr); err != nil {
			return bad(k.key, "%v", err)
		}
	}
	if (c.IMAP.TLSCert == "") != (c.IMAP.TLSKey == "") {
		return bad("imap.tls_cert", "tls_cert and tls_key go together")
	}
	if c.IMAP.ListenTLS != "" && c.IMAP.TLSCert == "" && c.SMTP.TLSCert == "" {
		return bad("imap.listen_tls", "implicit TLS needs a certificate: set imap.tls_cert and imap.tls_key (or smtp's)")
	}
	if c.HTTP.BaseURL != "" && !strings.HasPrefix(c.HTTP.BaseURL, "http://") && !strings.HasPrefix(c.HTTP.BaseURL, "https://") {
		return bad("http.base_url", "must start with http:// or https://, not %q", c.HTTP.BaseURL)
	}
	d := c.Delivery
	switch d.Mode {
	case "maildir", "mx":
	case "smarthost":
		if d.Smarthost == "" {
			return bad("delivery.smarthost", "must be set (host:port) when delivery.mode is \"smarthost\"")
		}
	default:
		return bad("delivery.mode", "must be \"maildir\", \"smarthost\" or \"mx\", not %q", d.Mode)
	}
	if d.Smarthost != "" {
		if _, _, err := net.SplitHostPort(d.Smarthost); err != nil {
			return bad("delivery.smarthost", "%q is not host:port", d.Smarthost)
		}
	}
	switch d.SmarthostTLS {
	case "starttls", "opportunistic", "tls", "none":
	default:
		return bad("delivery.smarthost_tls", "must be starttls, opportunistic, tls or none, not %q", d.SmarthostTLS)
	}
	if (d.Username == "") != (d.Password == "") {
		return bad("delivery.username", "username and password go together: set both or neither")
	}
	if d.MXPort < 1 || d.MXPort > 65535 {
		return bad("delivery.mx_port", "must be a port number, not %d", d.MXPort)
	}
	if d.Workers < 1 || d.Workers > 256 {
		return bad("delivery.workers", "must be between 1 and 256, not %d", d.Workers)
	}
	if d.MaxAge.Duration < time.Minute {
		return bad("delivery.max_age", "must be at least a minute, not %s", d.MaxAge.Duration)
	}
	if d.MaxConnectionsPerDomain < 1 || d.MaxConnectionsPerDomain > 256 {
		return bad("delivery.max_connections_per_domain", "must be between 1 and 256, not %d", d.MaxConnectionsPerDomain)
	}
	if d.MessagesPerMinutePerDomain < 0 {
		return bad("delivery.messages_per_minute_per_domain", "must be 0 (no cap) or more, not %d", d.MessagesPerMinutePerDomain)
	}
	switch d.IPPreference {
	case "both", "ipv4", "ipv6":
	default:
		return bad("delivery.ip_preference", "must be \"both\", \"ipv4\" or \"ipv6\", not %q", d.IPPreference)
	}
	if ip := net.ParseIP(d.SourceIPv4); d.SourceIPv4 != "" && (ip == nil || ip.To4() == nil) {
		return bad("delivery.source_ipv4", "%q is not an IPv4 address", d.SourceIPv4)
	}
	if ip := net.ParseIP(d.SourceIPv6); d.SourceIPv6 != "" && (ip == nil || ip.To4() != nil) {
		return bad("delivery.source_ipv6", "%q is not an IPv6 address", d.SourceIPv6)
	}
	if c.DNS.Resolver != "" {
		if _, _, err := net.SplitHostPort(c.DNS.Resolver); err != nil {
			return bad("dns.resolver", "%q is not host:port", c.DNS.Resolver)
		}
	}
	return nil
}

func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", addr)
	}
	return nil
}

// ParseWeekday reads a day of the week in English ("monday", "Mon").
func ParseWeekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 3 {
		return 0, false
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.HasPrefix(strings.ToLower(d.String()), s) {
			return d, true
		}
	}
	return 0, false
}
