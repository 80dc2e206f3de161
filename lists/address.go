package lists

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ParseAddress normalizes an email address once, at the edge: the angle brackets go, the
// domain becomes lowercase ASCII (IDNA A-labels, RFC 5891) and the local part lowercase, since
// members expect Alice@ and alice@ to be the same person.
func ParseAddress(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not an email address: it is not valid UTF-8", s)
	}
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", fmt.Errorf("%q is not an email address", s)
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 || strings.ContainsAny(local, " \t\r\n<>,;\"\\") {
		return "", fmt.Errorf("%q is not an email address", s)
	}
	ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil || !validDomain(ascii) {
		return "", fmt.Errorf("%q does not have a valid domain", s)
	}
	return strings.ToLower(local) + "@" + strings.ToLower(ascii), nil
}

// validDomain checks a domain in ASCII form: dot-separated labels of letters, digits and inner
// hyphens (RFC 5321 §4.1.2), at least two of them unless it is localhost.
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

// splitAddress splits a normalized address into local part and domain.
func splitAddress(addr string) (local, domain string) {
	at := strings.LastIndexByte(addr, '@')
	return addr[:at], addr[at+1:]
}
