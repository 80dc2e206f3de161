package main

import (
	"cmp"
	"context"
	"fmt"
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

// cmdDKIMKeygen makes a list domain's DKIM key and tells what to publish. It needs no
// database, so it runs the same whether or not the server does; a running server starts
// signing with a new key within a minute.
func cmdDKIMKeygen(c *cmd) error {
	c.params = "DOMAIN [-selector S] [-algo rsa|ed25519]"
	c.help = "Makes a DKIM key mail for DOMAIN is signed with, and prints the DNS record to publish. Beside an existing key\nof the other algorithm it adds a second selector, and every message then carries both signatures (RFC 8463)."
	selector := c.flag.String("selector", "", "the DNS label the key is published under: SELECTOR._domainkey.DOMAIN\n(default crewmail, or crewmail-ALGO for a second key)")
	algo := c.flag.String("algo", "rsa", "rsa (RSA-2048, understood everywhere) or ed25519 (RFC 8463; not yet checked by every receiver)")
	domain, dir, err := dkimArgs(c)
	if err != nil {
		return err
	}
	k, err := delivery.AddKey(dir, domain, *selector, *algo)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Wrote the DKIM key of %s to %s.\nMail crewmail sends for %s is signed with it from now on. Publish this DNS record:\n\n",
		domain, k.Path, domain)
	fmt.Fprintf(c.stdout, "%s. IN TXT %s\n", k.Name, zoneStrings(k.Value))
	return nil
}

// cmdDKIMShow prints the DNS record of a list domain's DKIM key.
func cmdDKIMShow(c *cmd) error {
	c.params = "DOMAIN"
	c.help = "Prints the DNS records of DOMAIN's DKIM keys, one per selector."
	domain, dir, err := dkimArgs(c)
	if err != nil {
		return err
	}
	keys, err := delivery.Keys(dir, domain)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("%s has no DKIM key; \"crewmail dkim keygen %s\" makes one", domain, domain)
	}
	for _, k := range keys {
		fmt.Fprintf(c.stdout, "%s. IN TXT %s\n", k.Name, zoneStrings(k.Value))
	}
	return nil
}

// dkimArgs parses the command line of a dkim command: the domain, in its ASCII form, and the
// folder of the DKIM keys.
func dkimArgs(c *cmd) (domain, dir string, err error) {
	args, err := c.parse(1, 1)
	if err != nil {
		return "", "", err
	}
	domain, err = mailaddr.ParseDomain(strings.TrimSuffix(strings.TrimSpace(args[0]), "."))
	if err != nil {
		return "", "", usageError(fmt.Sprintf("%q is not a domain", args[0]))
	}
	cfg, err := c.config()
	if err != nil {
		return "", "", err
	}
	return domain, dkimDir(cfg), nil
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

// cmdCheck looks up what DOMAIN publishes and says what to fix; exit status 1 when something
// failed.
func cmdCheck(c *cmd) error {
	c.params = "DOMAIN"
	c.help = "Looks up this server's name, MX, SPF, DKIM and DMARC through the configured resolver, and checks the TLS\ncertificate and the SMTP greeting; exit status 1 when something failed."
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
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
	keys, err := delivery.Keys(dkimDir(cfg), domain)
	if err != nil {
		return err
	}
	for _, k := range keys {
		setup.DKIM = append(setup.DKIM, check.DKIMRecord{Name: k.Name, Value: k.Value})
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	// The verify resolver asks DNS itself, as receivers do: the system's lookup would read
	// /etc/hosts, where a server's own name often stands for 127.0.1.1.
	findings := check.Domain(ctx, verify.NewResolver(cfg.DNS.Resolver), domain, setup)
	check.Print(c.stdout, domain, findings)
	if check.Failed(findings) {
		return errSaid
	}
	return nil
}
