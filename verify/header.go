package verify

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/authres"
)

// Header returns the Authentication-Results field (RFC 8601) recording r, with authServID (our
// host name) as the authserv-id: one result per line, CRLF-terminated, ready to put on top of
// the message.
func (r Result) Header(authServID string) string {
	var results []authres.Result
	if len(r.DKIM) == 0 {
		results = append(results, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, d := range r.DKIM {
		params := map[string]string{
			"reason":   clean(d.Reason),
			"header.d": clean(d.Domain),
			"header.s": clean(d.Selector), // header.s and header.a: RFC 8601 §2.7.1
			"header.a": clean(d.Algorithm),
		}
		if d.Identifier != "@"+d.Domain {
			params["header.i"] = clean(d.Identifier) // only when not the default
		}
		results = append(results, &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(d.Result), Params: params})
	}
	spfResult := func(s SPFResult) authres.Result {
		res := &authres.SPFResult{Value: authres.ResultValue(s.Result), Reason: clean(s.Reason)}
		if s.Identity == "helo" {
			res.Helo = clean(s.Domain)
		} else {
			res.From = clean(s.Domain)
		}
		return res
	}
	if r.SPF.Result != "" {
		results = append(results, spfResult(r.SPF))
	}
	// With the null sender the MAIL FROM check was the HELO check: say it once.
	if r.HeloSPF.Result != "" && r.SPF.Identity != "helo" {
		results = append(results, spfResult(r.HeloSPF))
	}
	dmarcValue := authres.ResultValue(r.DMARC.Result)
	if dmarcValue == "" {
		dmarcValue = authres.ResultNone // a Result that Verify did not make
	}
	results = append(results, &authres.DMARCResult{Value: dmarcValue, Reason: clean(r.DMARC.Reason), From: clean(r.FromDomain)})

	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(clean(stripSpace(authServID)))
	for i, res := range results {
		b.WriteString(";\r\n\t")
		// authres.Format does the quoting; formatting one result at a time keeps the result
		// boundaries, where the field is folded.
		s := strings.TrimSpace(strings.TrimPrefix(authres.Format("", []authres.Result{res}), ";"))
		if _, ok := res.(*authres.DMARCResult); ok && r.DMARC.Policy != "" {
			// A comment for people: the policy the domain asks for (as Gmail and others write).
			comment := "(p=" + r.DMARC.Policy
			if r.DMARC.Percent != 100 {
				comment += " pct=" + strconv.Itoa(r.DMARC.Percent)
			}
			comment += ")"
			method, rest, _ := strings.Cut(s, " ")
			s = strings.TrimSpace(method + " " + comment + " " + rest)
		}
		if _, ok := res.(*authres.SPFResult); ok && r.Relay != nil {
			// The check was of the client the trusted relay saw, not of the relay: say so.
			method, rest, _ := strings.Cut(s, " ")
			s = method + " (client " + r.Client.String() + " as recorded by trusted relay " + r.Relay.String() + ") " + rest + " policy.iprev=" + r.Client.String()
		}
		writeFolded(&b, s)
		if i == len(results)-1 {
			b.WriteString("\r\n")
		}
	}
	return b.String()
}

// writeFolded writes one result (after a tab), folding where a line would pass 78 characters
// (RFC 5322 §2.1.1): before one of its spaces, which starts the next line. Unfolding (taking the
// CRLFs out) gives back s exactly, so the fold may fall inside a quoted reason as well
// (RFC 5322 §3.2.4).
func writeFolded(b *strings.Builder, s string) {
	col := 1 // the tab
	for i, w := range strings.Split(s, " ") {
		if i > 0 {
			if w != "" && col > 1 && col+1+len(w) > 78 {
				b.WriteString("\r\n")
				col = 0
			}
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
}

// clean makes a value safe to write in a header field: valid UTF-8, no control characters, no
// backslash (authres quotes but does not escape it), at most 200 bytes. Domains, selectors and
// reasons come from senders and their DNS.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\r' || r == '\n':
			return ' '
		case r == '\\' || unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func stripSpace(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// StripOurs removes from the header of msg every Authentication-Results field whose
// authserv-id is authServID (RFC 8601 §5: a field claiming to be ours that we did not write is
// a forgery). Every other byte is left as it was; msg itself is returned when nothing is
// removed.
func StripOurs(msg []byte, authServID string) []byte {
	want := strings.TrimSuffix(authServID, ".")
	out, _ := FilterResults(msg, func(id string) bool { return !strings.EqualFold(id, want) })
	return out
}

type span struct{ start, end int }

// headerFields returns where each header field of msg lies, continuation lines and line ending
// included. The header ends at the first empty line (or the end of msg). A line starting with a
// space or tab continues the field before it; at the very top it is a field of its own.
func headerFields(msg []byte) []span {
	var fields []span
	for pos := 0; pos < len(msg); {
		end := len(msg)
		if i := bytes.IndexByte(msg[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		line := msg[pos:end]
		if string(line) == "\r\n" || string(line) == "\n" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].end = end
		} else {
			fields = append(fields, span{pos, end})
		}
		pos = end
	}
	return fields
}

// servID returns the authserv-id of an Authentication-Results field value (RFC 8601 §2.2: a
// token or quoted-string, after optional comments and folding white space).
func servID(v string) string {
	v = strings.NewReplacer("\r", "", "\n", "").Replace(v)
	v = skipCFWS(v)
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			switch v[i] {
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			case '"':
				return b.String()
			default:
				b.WriteByte(v[i])
			}
		}
		return b.String()
	}
	end := strings.IndexAny(v, " \t;(")
	if end < 0 {
		end = len(v)
	}
	return v[:end]
}

// skipCFWS skips white space and (nested) comments.
func skipCFWS(v string) string {
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0, c == ' ', c == '\t':
		default:
			return v[i:]
		}
	}
	return ""
}

// FilterResults removes from the header of msg every Authentication-Results field whose
// authserv-id keep does not accept, and returns the fields it kept (unfolded, without their
// name). Every other byte is left as it was; msg itself is returned when nothing is removed.
func FilterResults(msg []byte, keep func(authServID string) bool) ([]byte, []string) {
	var out []byte
	var kept []string
	done, removed := 0, false // msg[:done] has been dealt with
	for _, f := range headerFields(msg) {
		name, value, ok := bytes.Cut(msg[f.start:f.end], []byte(":"))
		if !ok || !strings.EqualFold(string(bytes.TrimRight(name, " \t")), "Authentication-Results") {
			continue
		}
		if keep(strings.ToLower(strings.TrimSuffix(servID(string(value)), "."))) {
			kept = append(kept, strings.Join(strings.Fields(string(value)), " "))
			continue
		}
		out = append(out, msg[done:f.start]...)
		done, removed = f.end, true
	}
	if !removed {
		return msg, kept
	}
	return append(out, msg[done:]...), kept
}
