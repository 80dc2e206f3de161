package verify

import (
	"bytes"
	"net"
	"strings"
)

// Hop is what a relay recorded in a Received field (RFC 5321 §4.4) about the client it took a
// message from.
type Hop struct {
	IP   net.IP // the client's address, from the bracketed address literal
	Helo string // the name the client gave in EHLO/HELO
	By   string // the relay's own name, from the "by" clause; "" when absent
}

// maxReceived bounds the length of a Received field ParseReceived reads; real ones are a few
// hundred bytes.
const maxReceived = 4096

// ParseReceived reads the "from" clause of a Received field value (the text after the colon,
// folded or not) in the forms the common MTAs write:
//
//	Postfix:  from helo.example (rdns.example [192.0.2.1]) by mx.example (Postfix) ...
//	          from helo.example (unknown [IPv6:2001:db8::1]) by ...
//	Exim:     from rdns.example ([192.0.2.1] helo=helo.example) by ...
//	          from [192.0.2.1] (helo=helo.example) by ...
//	          from helo.example ([192.0.2.1]:4711) by ...   (HELO matched the reverse name)
//	crewmail: from helo.example ([192.0.2.1]) by lists.example (crewmail) ...
//
// ok is false when the field names no client address.
func ParseReceived(value string) (hop Hop, ok bool) {
	if len(value) > maxReceived {
		return Hop{}, false
	}
	v := strings.Join(strings.Fields(value), " ")
	rest, found := cutWordFold(v, "from")
	if !found {
		return Hop{}, false
	}
	// The first word after "from" is the HELO name (Postfix, crewmail) or the reverse name or
	// an address literal (Exim).
	first, rest, _ := strings.Cut(strings.TrimSpace(rest), " ")
	var comment string
	if strings.HasPrefix(rest, "(") {
		comment, rest = balanced(rest)
	}
	if by, found := cutWordFold(rest, "by"); found {
		name, _, _ := strings.Cut(strings.TrimSpace(by), " ")
		hop.By = strings.TrimSuffix(name, ";")
	}
	helo := first
	if ip, lit := literal(first); lit {
		hop.IP, helo = ip, ""
	}
	if hop.IP == nil {
		hop.IP = bracketed(comment)
	}
	// Exim names the HELO after "helo=" when it is not the name it found for the address.
	if i := indexFold(comment, "helo="); i >= 0 {
		h := comment[i+len("helo="):]
		if j := strings.IndexAny(h, " )"); j >= 0 {
			h = h[:j]
		}
		helo = h
	}
	if hop.IP == nil {
		return Hop{}, false
	}
	hop.Helo = strings.Trim(helo, "[]")
	if _, lit := literal(helo); lit {
		hop.Helo = helo // an address literal stays one: SPF checks no HELO for it
	}
	return hop, true
}

// cutWordFold finds word (case-insensitive) as a whole word in s and returns what follows it.
func cutWordFold(s, word string) (string, bool) {
	for i := 0; i+len(word) <= len(s); i++ {
		if !strings.EqualFold(s[i:i+len(word)], word) {
			continue
		}
		if (i == 0 || s[i-1] == ' ' || s[i-1] == ')') && (i+len(word) == len(s) || s[i+len(word)] == ' ') {
			return s[i+len(word):], true
		}
	}
	return "", false
}

func indexFold(s, sub string) int {
	return strings.Index(strings.ToLower(s), sub)
}

// balanced splits s, which starts with "(", after its matching ")": the comment's inside and
// what follows. An unclosed comment takes the rest of s.
func balanced(s string) (inside, rest string) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[1:i], strings.TrimSpace(s[i+1:])
			}
		}
	}
	return s[1:], ""
}

// literal reads an address literal, "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3),
// with a ":port" after it as Exim may write.
func literal(s string) (net.IP, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return nil, false
	}
	in := s[1:end]
	if len(in) > 5 && strings.EqualFold(in[:5], "IPv6:") {
		in = in[5:]
	}
	ip := net.ParseIP(in)
	return ip, ip != nil
}

// bracketed finds the first address literal in a comment.
func bracketed(comment string) net.IP {
	for {
		i := strings.IndexByte(comment, '[')
		if i < 0 {
			return nil
		}
		comment = comment[i:]
		if ip, ok := literal(comment); ok {
			return ip
		}
		comment = comment[1:]
	}
}

// TopReceived returns the value of the first Received field in the header of msg: the one the
// last relay added.
func TopReceived(msg []byte) (string, bool) {
	for _, f := range headerFields(msg) {
		name, value, ok := bytes.Cut(msg[f.start:f.end], []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimRight(name, " \t")), "Received") {
			return string(value), true
		}
	}
	return "", false
}
