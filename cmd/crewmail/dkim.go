package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"crewmail/check"
	"crewmail/config"
	"crewmail/delivery"
	"crewmail/internal/mailaddr"
	"crewmail/verify"
)

func dkimDir(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "dkim") }

// dkimCommand makes a list domain's DKIM key and tells what to publish. It needs no database,
// so it runs the same whether or not the server does; a running server starts signing with a
// new key within a minute.
func dkimCommand(cfgPath string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "keygen" && args[0] != "show") {
		fmt.Fprintln(stderr, "usage: crewmail dkim keygen DOMAIN [-selector S] [-algo rsa|ed25519] | crewmail dkim show DOMAIN")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	fs := flag.NewFlagSet("crewmail dkim "+args[0], flag.ContinueOnError)
	fs.SetOutput(stdout)
	selector := fs.String("selector", "crewmail", "the DNS label the key is published under: SELECTOR._domainkey.DOMAIN")
	algo := fs.String("algo", "rsa", "rsa (RSA-2048, understood everywhere) or ed25519 (RFC 8463; not yet checked by every receiver)")
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: crewmail dkim %s DOMAIN [flags]\n", args[0])
		if args[0] == "keygen" {
			fs.PrintDefaults()
		}
	}
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil || len(pos) != 1 {
		fmt.Fprintf(stderr, "usage: crewmail dkim %s DOMAIN\n", args[0])
		return exitUsage
	}
	domain, err := mailaddr.ParseDomain(strings.TrimSuffix(strings.TrimSpace(pos[0]), "."))
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %q is not a domain\n", pos[0])
		return exitUsage
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	var name, value string
	if args[0] == "keygen" {
		name, value, err = delivery.GenerateKey(dkimDir(cfg), domain, *selector, *algo)
	} else {
		name, value, err = delivery.RecordOf(dkimDir(cfg), domain)
	}
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	if args[0] == "keygen" {
		fmt.Fprintf(stdout, "Wrote the DKIM key of %s to %s.\nMail crewmail sends for %s is signed with it from now on. Publish this DNS record:\n\n",
			domain, delivery.KeyFile(dkimDir(cfg), domain), domain)
	}
	fmt.Fprintf(stdout, "%s. IN TXT %s\n", name, zoneStrings(value))
	return exitOK
}

// zoneStrings writes a TXT value as zone-file strings of at most 255 bytes each (RFC 1035
// §3.3.14), in parentheses when there is more than one.
func zoneStrings(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	parts = append(parts, `"`+v+`"`)
	if len(parts) == 1 {
		return parts[0]
	}
	return "( " + strings.Join(parts, " ") + " )"
}

// checkCommand looks up what DOMAIN publishes and says what to fix; exit status 1 when
// something failed.
func checkCommand(ctx context.Context, cfgPath string, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: crewmail check DOMAIN   (looks up this server's name, MX, SPF, DKIM and DMARC through the configured resolver, and checks the TLS certificate and the SMTP greeting)")
		if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	domain := strings.ToLower(strings.TrimSuffix(args[0], "."))
	setup := check.Setup{Hostname: cfg.Hostname, SMTPListen: cfg.SMTP.Listen}
	if cfg.Delivery.Mode == "smarthost" {
		setup.Smarthost = cfg.Delivery.Smarthost
	}
	if cfg.SMTP.TLSCert != "" {
		setup.Certs = append(setup.Certs, check.Cert{Use: "SMTP", CertFile: cfg.SMTP.TLSCert, KeyFile: cfg.SMTP.TLSKey, Host: cfg.Hostname})
	}
	// IMAP uses its own certificate, or the SMTP one; either must name the host members
	// put in their mail program.
	imapHost := cmp.Or(cfg.IMAP.Host, cfg.Hostname)
	switch {
	case cfg.IMAP.Listen == "" && cfg.IMAP.ListenTLS == "":
	case cfg.IMAP.TLSCert != "" && (cfg.IMAP.TLSCert != cfg.SMTP.TLSCert || imapHost != cfg.Hostname):
		setup.Certs = append(setup.Certs, check.Cert{Use: "IMAP", CertFile: cfg.IMAP.TLSCert, KeyFile: cfg.IMAP.TLSKey, Host: imapHost})
	case cfg.IMAP.TLSCert == "" && cfg.SMTP.TLSCert != "" && imapHost != cfg.Hostname:
		setup.Certs = append(setup.Certs, check.Cert{Use: "IMAP", CertFile: cfg.SMTP.TLSCert, KeyFile: cfg.SMTP.TLSKey, Host: imapHost})
	}
	if name, value, err := delivery.RecordOf(dkimDir(cfg), domain); err == nil {
		setup.DKIMName, setup.DKIMValue = name, value
	} else if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The verify resolver asks DNS itself, as receivers do: the system's lookup would read
	// /etc/hosts, where a server's own name often stands for 127.0.1.1.
	findings := check.Domain(ctx, verify.NewResolver(cfg.DNS.Resolver), domain, setup)
	check.Print(stdout, domain, findings)
	if check.Failed(findings) {
		return exitError
	}
	return exitOK
}
