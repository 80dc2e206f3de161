package dsn

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fields is one group of a report's fields (RFC 3464 §2.1): names in lower case, each with its
// first value, unfolded.
type fields map[string]string

const (
	maxGroups     = 1000 // groups read from one part
	maxFieldValue = 4096 // bytes kept of one value: a Diagnostic-Code is a few hundred
)

// groups returns the groups of fields in the body of a report part: a per-message group and a
// group for each recipient, separated by blank lines (RFC 3464 §2.1). Lines that are not
// fields are passed over; a field met a second time in a group begins a new group, for
// mailers that leave out the blank line.
func groups(b []byte) []fields {
	var (
		out  []fields
		cur  fields
		last string // the field a continuation line continues
	)
	end := func() {
		if cur != nil {
			out = append(out, cur)
		}
		cur, last = nil, ""
	}
	text := strings.ToValidUTF8(string(b), "\uFFFD")
	for line := range strings.Lines(text) {
		if len(out) >= maxGroups {
			break
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.TrimSpace(line) == "":
			end()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" && len(cur[last]) < maxFieldValue {
				cur[last] += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			name = strings.ToLower(strings.TrimSpace(name))
			if !ok || name == "" || len(name) > 80 || strings.ContainsAny(name, " \t") {
				last = ""
				continue
			}
			if _, dup := cur[name]; dup {
				end()
			}
			if cur == nil {
				cur = fields{}
			}
			cur[name] = clip(strings.TrimSpace(value), maxFieldValue)
			last = name
		}
	}
	end()
	return out
}

// readStatus reads the status parts of a DSN (RFC 3464 §2, RFC 6533 §3) and reports on the
// first recipient that failed, else the first that was delayed, else the first delivered.
// text is the human text of the report, for the words of the remote server when no
// Diagnostic-Code gives them. ok is false when no recipient group says what happened; the
// Report then holds what the parts did say.
func readStatus(parts [][]byte, text string) (r Report, ok bool) {
	var all []fields
	for _, p := range parts {
		all = append(all, groups(p)...)
	}
	best, kind := -1, Unknown
	for i, g := range all {
		if r.Reporter == "" && g["reporting-mta"] != "" {
			r.Reporter = clip(flat(typed(g["reporting-mta"])), maxAddress)
		}
		if r.Recipient == "" {
			r.Recipient = recipient(g)
		}
		if k := groupKind(g); k != Unknown && (best < 0 || rank(k) < rank(kind)) {
			best, kind = i, k
		}
	}
	if best < 0 {
		return r, false
	}
	g := all[best]
	r.Kind = kind
	if rcpt := recipient(g); rcpt != "" {
		r.Recipient = rcpt
	}
	diag := typed(g["diagnostic-code"])
	r.Status = findStatus(g["status"])
	if r.Status == "" {
		r.Status = findStatus(diag)
	}
	r.Diagnostic = oneLine(diag)
	if r.Diagnostic == "" {
		r.Diagnostic = textDiagnostic(text, r.Status)
		diag = r.Diagnostic
	}
	if r.Kind == Failed && policy(r.Status, diag) {
		r.Kind = Policy
	}
	return r, true
}

// rank orders what recipient groups report: the one with the lowest rank is reported.
func rank(k Kind) int {
	switch k {
	case Failed:
		return 0
	case Delayed:
		return 1
	}
	return 2
}

// groupKind returns what a recipient group reports: by its Action (RFC 3464 §2.3.3), else,
// from a mailer that leaves it out, by the class of its Status (RFC 3463 §3.1).
func groupKind(g fields) Kind {
	switch strings.ToLower(firstWord(g["action"])) {
	case "failed":
		return Failed
	case "delayed":
		return Delayed
	case "delivered", "relayed", "expanded":
		return Delivered
	}
	if g["final-recipient"] == "" && g["original-recipient"] == "" && g["action"] == "" {
		return Unknown // a per-message group
	}
	return classKind(findStatus(g["status"]), Delivered)
}

// statusCandidates returns those of the text/plain parts of a delivery-status report that hold
// recipient groups: a broken mailer's status part.
func statusCandidates(parts [][]byte) [][]byte {
	var out [][]byte
	for _, p := range parts {
		for _, g := range groups(p) {
			if g["action"] != "" || g["status"] != "" && (g["final-recipient"] != "" || g["original-recipient"] != "") {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// readMDN reads a message disposition notification (RFC 8098): a read receipt, or the notice
// that a message was deleted unread. It is no bounce.
func readMDN(b []byte, from string) Report {
	r := Report{Kind: AutoReply, Reporter: from}
	for _, g := range groups(b) {
		if r.Recipient == "" {
			r.Recipient = recipient(g)
		}
		if r.Diagnostic == "" && g["disposition"] != "" {
			r.Diagnostic = oneLine(g["disposition"])
		}
	}
	return r
}

// readFeedback reads an abuse feedback report (RFC 5965): a recipient complained about a copy,
// which is the list's problem.
func readFeedback(b []byte, from string) Report {
	r := Report{Kind: Policy, Reporter: from, Diagnostic: "spam complaint"}
	for _, g := range groups(b) {
		if r.Recipient == "" && g["original-rcpt-to"] != "" {
			r.Recipient = address(g["original-rcpt-to"])
		}
		if g["reporting-mta"] != "" {
			r.Reporter = clip(flat(typed(g["reporting-mta"])), maxAddress)
		}
		// RFC 5965 §7.3: abuse, fraud, virus and other are complaints; auth-failure
		// (RFC 6591) and not-spam are not, and are named as what they are.
		switch t := strings.ToLower(firstWord(g["feedback-type"])); t {
		case "", "abuse", "fraud", "virus", "other":
		default:
			r.Diagnostic = oneLine("feedback report: " + t)
		}
	}
	return r
}

// recipient returns the recipient a group names: its Final-Recipient, else its
// Original-Recipient (RFC 3464 §2.3.1, §2.3.2).
func recipient(g fields) string {
	for _, key := range []string{"final-recipient", "original-recipient"} {
		if a := address(g[key]); a != "" {
			return a
		}
	}
	return ""
}

// address returns the address of a field of the form "address-type; address", lowercased.
// RFC 6533 §3: an address of type utf-8 writes some characters as \x{HEX}.
func address(v string) string {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok {
		typ, addr = "", v
	}
	if strings.EqualFold(strings.TrimSpace(typ), "utf-8") {
		addr = unescapeUnicode(addr)
	}
	addr, _, _ = strings.Cut(flat(addr), " ")
	return clip(strings.ToLower(strings.Trim(addr, "<>\"")), maxAddress)
}

var embeddedUnicode = regexp.MustCompile(`\\x\{([0-9A-Fa-f]{1,6})\}`)

// unescapeUnicode undoes RFC 6533's EmbeddedUnicodeChar: \x{HEXPOINT}.
func unescapeUnicode(s string) string {
	return embeddedUnicode.ReplaceAllStringFunc(s, func(m string) string {
		n, err := strconv.ParseUint(m[3:len(m)-1], 16, 32)
		if err != nil || !utf8.ValidRune(rune(n)) {
			return "\uFFFD"
		}
		return string(rune(n))
	})
}

// typed returns the value of a field of the form "type; value" (Reporting-MTA: "dns; host",
// Diagnostic-Code: "smtp; 550 …") without its type.
func typed(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 && i < 40 && !strings.ContainsAny(strings.TrimSpace(v[:i]), " \t") {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// firstWord returns the first word of a field's value: "failed" of "failed (bad mailbox)".
func firstWord(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t(;"); i >= 0 {
		v = v[:i]
	}
	return v
}
