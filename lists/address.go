package lists

import (
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// ParseAddress normalizes an email address once, at the edge: the angle brackets go, the
// domain becomes lowercase ASCII (IDNA A-labels, RFC 5891) and the local part lowercase, since
// members expect Alice@ and alice@ to be the same person.
func ParseAddress(s string) (string, error) {
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
	if err != nil || ascii == "" || !strings.Contains(ascii, ".") && ascii != "localhost" {
		return "", fmt.Errorf("%q does not have a valid domain", s)
	}
	return strings.ToLower(local) + "@" + strings.ToLower(ascii), nil
}

// splitAddress splits a normalized address into local part and domain.
func splitAddress(addr string) (local, domain string) {
	at := strings.LastIndexByte(addr, '@')
	return addr[:at], addr[at+1:]
}
