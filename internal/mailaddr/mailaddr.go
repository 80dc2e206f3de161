// Package mailaddr owns what an email address is: where its domain begins, its normal form
// (the one crewmail stores and looks up), and its ASCII and Unicode spellings. Every edge that
// takes an address from outside (SMTP, IMAP login, the command line, headers) reads it here.
package mailaddr

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address is an email address in its normal form: the local part lowercase, the domain
// lowercase ASCII (IDNA A-labels, RFC 5891) without a final dot. Two addresses are the same
// mailbox exactly when they are equal (==); the zero Address is no address.
type Address struct {
	local, domain string
}

// Parse reads an address as a person or a mail client writes it: surrounding white space and
// angle brackets go, the domain may be in Unicode (U-labels) or ASCII, in any case. The local
// part is lowercased too, since members expect Alice@ and alice@ to be the same person
// (RFC 5321 §2.4 leaves its case to the receiving server).
func Parse(s string) (Address, error) {
	if !utf8.ValidString(s) {
		return Address{}, fmt.Errorf("%q is not an email address: it is not valid UTF-8", s)
	}
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	local, domain, ok := Split(s)
	if !ok || local == "" || domain == "" {
		return Address{}, fmt.Errorf("%q is not an email address", s)
	}
	// RFC 5321 §4.5.3.1.1: a local part has at most 64 octets. Quoting is not supported: the
	// characters that would need it are refused.
	if len(local) > 64 || strings.ContainsAny(local, " \t\r\n<>,;\"\\") {
		return Address{}, fmt.Errorf("%q is not an email address", s)
	}
	ascii, err := ParseDomain(domain)
	if err != nil {
		return Address{}, fmt.Errorf("%q does not have a valid domain", s)
	}
	return Address{local: strings.ToLower(local), domain: ascii}, nil
}

// Normalize is Parse(s).String(): the normal form of s, as crewmail stores it.
func Normalize(s string) (string, error) {
	a, err := Parse(s)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// String is the normal form, local@domain with the domain in A-labels: the form crewmail
// stores, looks up and sends to peers.
func (a Address) String() string {
	if a.IsZero() {
		return ""
	}
	return a.local + "@" + a.domain
}

// Local is the local part, lowercase.
func (a Address) Local() string { return a.local }

// Domain is the domain in lowercase ASCII (A-labels), as DNS spells it.
func (a Address) Domain() string { return a.domain }

// UnicodeDomain is the domain with its A-labels turned back into U-labels (bücher.example for
// xn--bcher-kva.example), as people write it.
func (a Address) UnicodeDomain() string {
	if u, err := idna.Lookup.ToUnicode(a.domain); err == nil {
		return u
	}
	return a.domain
}

// Unicode is the address as people write it: the domain in U-labels.
func (a Address) Unicode() string {
	if a.IsZero() {
		return ""
	}
	return a.local + "@" + a.UnicodeDomain()
}

// IsZero reports whether a is no address.
func (a Address) IsZero() bool { return a == Address{} }

// Split splits s at its last "@" into local part and domain; ok is false, and local is s,
// when s has no "@". The last one, because a quoted local part may hold "@" and a domain never
// does (RFC 5321 §4.1.2). It is the rule for addresses that are not parsed: the normal forms
// crewmail stores, and addresses from outside that a check must read as they are.
func Split(s string) (local, domain string, ok bool) {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s, "", false
	}
	return s[:at], s[at+1:], true
}

// ASCIIDomain is domain in lowercase A-labels (RFC 5891) without a final dot; an error when
// it has no such form. It does not check that domain could be a host's name (see ParseDomain).
func ASCIIDomain(domain string) (string, error) {
	ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil {
		return "", fmt.Errorf("the domain %q has no ASCII form: %w", domain, err)
	}
	return strings.ToLower(ascii), nil
}

// ParseDomain is domain as ASCIIDomain gives it, checked to be a mail domain: dot-separated
// labels of letters, digits and inner hyphens (RFC 5321 §4.1.2), at least two of them unless it
// is localhost.
func ParseDomain(domain string) (string, error) {
	ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil {
		return "", fmt.Errorf("the domain %q has no ASCII form: %w", domain, err)
	}
	if !validDomain(ascii) {
		return "", fmt.Errorf("%q is not a valid mail domain", domain)
	}
	return strings.ToLower(ascii), nil
}

func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 && !strings.EqualFold(d, "localhost") {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !(c >= 'a' && c <= 'z' || l[i] >= '0' && l[i] <= '9' || l[i] == '-') {
				return false
			}
		}
	}
	return true
}

// ToASCII is s, an address as stored or configured, with its domain in A-labels, for a peer
// without SMTPUTF8. A non-ASCII local part has no ASCII form (RFC 6531 §3.2): that is an error.
// The local part is left as it is: it is the receiving server's to interpret.
func ToASCII(s string) (string, error) {
	local, domain, ok := Split(s)
	if !ok {
		return "", fmt.Errorf("%q is not an address", s)
	}
	for i := 0; i < len(local); i++ {
		if local[i] >= 0x80 {
			return "", fmt.Errorf("the address %s has a non-ASCII local part", s)
		}
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("the domain of %s has no ASCII form: %w", s, err)
	}
	return local + "@" + ascii, nil
}
