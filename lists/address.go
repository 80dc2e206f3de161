package lists

import "crewmail/internal/mailaddr"

// ParseAddress is the normal form of an address (mailaddr.Normalize): the form lists keeps
// members, owners and lists under, and looks them up by.
func ParseAddress(s string) (string, error) {
	return mailaddr.Normalize(s)
}

// splitAddress splits a normalized address into local part and domain.
func splitAddress(addr string) (local, domain string) {
	local, domain, _ = mailaddr.Split(addr)
	return local, domain
}
