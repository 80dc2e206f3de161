package dsn

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"crewmail/internal/mailaddr"
)

// The wording of bounces that carry no status part, as qmail, Exim, Exchange, Gmail, Yahoo and
// older sendmail and Postfix write them, in the order it is weighed: words of a permanent
// failure, then of a delay (a delay notice also says the message "could not be delivered"
// yet), then of a failure.
var (
	permanentRE = phrases(
		"permanent error", "permanent failure", "permanent fatal error", "failed permanently",
		"permanently failed", "I've given up", "I have given up",
	)
	delayRE = phrases(
		"has been delayed", "have been delayed", "delivery delayed", "delivery is delayed",
		"message delayed", "delayed mail", "not yet been delivered", "warning message only",
		"warning only", "will retry", "will be retried", "still being retried", "will keep trying",
		"will continue trying", "will continue to try", "still trying", "temporary problem",
		"temporary failure", "temporarily deferred", "temporarily rejected", "delivery incomplete",
		"still undelivered", "notification (delay)", "Verzögerte Zustellung", "Zustellung verzögert",
	)
	failureRE = phrases(
		"could not be delivered", "couldn't be delivered", "could not deliver", "couldn't deliver",
		"cannot be delivered", "can't be delivered", "wasn't delivered", "was not delivered",
		"were not delivered", "not been delivered", "undeliverable", "undelivered", "delivery has failed",
		"delivery failed", "delivery failure", "failed delivery", "unable to deliver", "wasn't able to deliver",
		"was not able to deliver", "address not found", "does not exist", "doesn't exist", "user unknown",
		"unknown user", "no such user", "no such recipient", "no mailbox here", "mailbox unavailable",
		"mailbox not found", "recipient not found", "recipient address rejected", "address(es) failed",
		"cannot be reached", "did not reach", "returned mail", "mail delivery failed", "failure notice",
		"message not delivered", "mail system error", "notification (failure)", "non remis", "non délivré",
		"unzustellbar", "nicht zugestellt", "non recapitabile", "no se pudo entregar", "onbestelbaar",
	)
	// autoSubjectRE matches the subjects mail clients and vacation programs give an automatic
	// reply: "Automatic reply: …" (Outlook), "Auto: …" (Notes), "Abwesenheitsnotiz: …".
	autoSubjectRE = regexp.MustCompile(`(?i)^\s*(auto:|vacation|on vacation|absence|abwesend|autosvar|automaattinen vastaus|automatisch antwoord|respuesta autom[aá]tica|risposta automatica|resposta autom[aá]tica|odpowied[zź] automatyczna)|` +
		`out of (the )?office|abwesenheitsnotiz|automatic reply|automatische antwort|r[ée]ponse automatique|auto[- ]?reply|auto[- ]?response|autoresponder`)
	// policyRE matches the words of a refusal for policy or authentication rather than of a
	// bad mailbox: the list's problem, not the member's.
	policyRE = regexp.MustCompile(`(?i)dmarc|\bspf|dkim|spam|\bblocked\b|black ?list|block ?list|deny ?list|\bpolic(y|ies)\b|reputation|not authori[sz]ed|unauthenticated|\b(rbl|dnsbl)\b`)
	// responseRE matches what bounces put before the words of the remote server.
	responseRE = phrases("the response was", "remote host said", "remote server said",
		"server returned was", "the error was")
	// statusRE matches an enhanced status code (RFC 3463 §2: the subjects defined are 0 to 7);
	// codes checks its context.
	statusRE = regexp.MustCompile(`\b[245]\.[0-7]\.[0-9]{1,3}\b`)
	// replyRE matches an SMTP reply code of a failure (RFC 5321 §4.2.3) as bounces quote it:
	// "550 …", "550-…", "#550", "554: delivery error".
	replyRE = regexp.MustCompile(`(?:^|[\s#'"(<\[:;=])((?:421|45[012]|55[01234]))(?:[ \t:-]|$)`)
	// addressRE matches an email address in text.
	addressRE = regexp.MustCompile(`[\p{L}\p{N}.!#$%&'*+/=?^_{|}~-]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)+`)
	// leadRE matches the reply code that comes before an enhanced code: "550 5.1.1", "550-5.1.1".
	leadRE = regexp.MustCompile(`[245][0-9][0-9][ -]$`)
	// paraEndRE matches the end of a paragraph.
	paraEndRE = regexp.MustCompile(`\n[ \t]*\n`)
	// continuedRE matches the code that begins a multi-line SMTP reply, as a DSN quotes it in
	// one line: "550-5.1.1 The email account … 550-5.1.1 double-checking … 550 5.1.1 …".
	continuedRE = regexp.MustCompile(`^([245][0-9][0-9])[ -](?:([245]\.[0-9]{1,3}\.[0-9]{1,3}) )?`)
)

// maxWords bounds how far into the human text the words of a bounce are looked for: a bounce
// says what happened at the top, and a case-insensitive search for many phrases is not fast.
const maxWords = 64 << 10

// phrases returns a case-insensitive pattern matching any of the phrases, with any white
// space, a line end too, between their words.
func phrases(list ...string) *regexp.Regexp {
	alts := make([]string, len(list))
	for i, p := range list {
		words := strings.Fields(p)
		for j, w := range words {
			words[j] = regexp.QuoteMeta(w)
		}
		alts[i] = strings.Join(words, `\s+`)
	}
	return regexp.MustCompile(`(?i)` + strings.Join(alts, "|"))
}

// code is a status code found in text: an enhanced one ("5.1.1") or an SMTP reply code ("550").
type code struct {
	code     string
	enhanced bool
	pos      int // where it begins in the text
}

// codes returns the status codes of failures and delays in text, in order: the enhanced ones,
// then the reply codes.
func codes(text string) []code {
	var out []code
	for _, m := range statusRE.FindAllStringIndex(text, 100) {
		// Not part of a longer dotted number: a version ("3.5.1.1") or an address ("4.2.2.1").
		if m[0] > 0 && text[m[0]-1] == '.' ||
			m[1]+1 < len(text) && text[m[1]] == '.' && '0' <= text[m[1]+1] && text[m[1]+1] <= '9' {
			continue
		}
		out = append(out, code{code: text[m[0]:m[1]], enhanced: true, pos: m[0]})
	}
	for _, m := range replyRE.FindAllStringSubmatchIndex(text, 100) {
		out = append(out, code{code: text[m[2]:m[3]], pos: m[2]})
	}
	return out
}

// pick returns the code a bounce of kind k is about: the first enhanced code of its class
// (5 for Failed, 4 for Delayed, either for Unknown), else the first enhanced code of class 4 or
// 5, else the same of the reply codes.
func pick(cs []code, k Kind) (code, bool) {
	want := map[Kind]byte{Failed: '5', Delayed: '4'}[k]
	for _, enhanced := range []bool{true, false} {
		for _, match := range []bool{true, false} {
			for _, c := range cs {
				// Success codes are no news in a bounce, and "2.6.36" is more often a version.
				if c.code[0] != '2' && c.enhanced == enhanced && (!match || want == 0 || c.code[0] == want) {
					return c, true
				}
			}
		}
	}
	return code{}, false
}

// readText reads a bounce that has no status part, by its wording and the codes in its human
// text; subject is its subject. Without the words of a failure or a delay, only a bounce (by
// its sender or structure) is read by its codes. ex are addresses the bounce names that are not
// its recipient's.
func readText(subject, text string, bounce bool, ex map[string]bool) (Report, bool) {
	var (
		r     Report
		at    []int                             // where the words are in text
		words = text[:min(len(text), maxWords)] // a prefix: its indexes are text's
	)
	if at = permanentRE.FindStringIndex(words); at != nil {
		r.Kind = Failed
	} else if at = delayRE.FindStringIndex(words); at != nil || delayRE.MatchString(subject) {
		r.Kind = Delayed
	} else if at = failureRE.FindStringIndex(words); at != nil || failureRE.MatchString(subject) {
		r.Kind = Failed
	}
	c, found := pick(codes(text), r.Kind)
	switch {
	case !bounce && (r.Kind == Unknown || !found || !c.enhanced):
		// Mail from a person's address: words alone are what people write about mail too.
		return Report{}, false
	case r.Kind == Unknown && !found:
		return Report{}, false
	case r.Kind == Unknown:
		r.Kind = classKind(c.code, Unknown)
	}

	var diag string
	switch {
	case found:
		if c.enhanced {
			r.Status = c.code
		}
		diag = diagnosticAt(text, c.pos)
	case at != nil:
		diag = wordsAfter(text, at[0])
	}
	r.Diagnostic = oneLine(diag)
	from := 0
	if at != nil {
		from = at[0]
	}
	r.Recipient = firstAddress(text[from:], ex)
	if r.Recipient == "" {
		r.Recipient = firstAddress(text, ex)
	}
	if r.Kind == Failed && policy(r.Status, diag) {
		r.Kind = Policy
	}
	return r, true
}

// classKind returns what a status code of the class of c reports: 5 a failure, 4 a delay, 2
// success.
func classKind(c string, success Kind) Kind {
	if c == "" {
		return Unknown
	}
	switch c[0] {
	case '5':
		return Failed
	case '4':
		return Delayed
	case '2':
		return success
	}
	return Unknown
}

// findStatus returns the first enhanced status code in s, or "".
func findStatus(s string) string {
	for _, c := range codes(s) {
		if c.enhanced {
			return c.code
		}
	}
	return ""
}

// policy tells whether a failure with status code status and the remote server's words diag
// is a refusal for policy or authentication: RFC 3463 §3.8 gives those class X.7.X.
func policy(status, diag string) bool {
	return strings.HasPrefix(status, "5.7.") || policyRE.MatchString(diag)
}

// textDiagnostic returns the remote server's words in a report's human text: where status (or,
// without one, the first code) is.
func textDiagnostic(text, status string) string {
	for _, c := range codes(text) {
		if status == "" || c.code == status {
			return oneLine(diagnosticAt(text, c.pos))
		}
	}
	return ""
}

// diagnosticAt returns the words of the remote server whose status code begins at pos in text:
// from the reply code before it, else from the beginning of its line, to the end of the
// paragraph.
func diagnosticAt(text string, pos int) string {
	start := strings.LastIndexByte(text[:pos], '\n') + 1
	if lead := leadRE.FindStringIndex(text[max(start, pos-4):pos]); lead != nil {
		start = max(start, pos-4) + lead[0]
	}
	return text[start:paragraphEnd(text, pos)]
}

// wordsAfter returns what a bounce without a status code says went wrong, given the words of
// a failure or a delay at pos: what follows "The response was:" or "Remote host said:", else
// the paragraph of the words, with the next when it is only a heading ("** Delivery
// incomplete **") or ends in a colon ("… due to the following reason:").
func wordsAfter(text string, pos int) string {
	if m := responseRE.FindStringIndex(text[pos:min(len(text), pos+maxWords)]); m != nil {
		start := pos + m[1]
		rest := strings.TrimLeft(text[start:], " \t\r\n:")
		start = len(text) - len(rest)
		return text[start:paragraphEnd(text, start)]
	}
	words := paragraph(text, pos)
	end := paragraphEnd(text, pos)
	for range 2 {
		w := strings.TrimSpace(words)
		if len(w) >= 40 && !strings.HasSuffix(w, ":") {
			break
		}
		rest := strings.TrimLeft(text[end:], " \t\r\n")
		if rest == "" {
			break
		}
		next := len(text) - len(rest)
		end = paragraphEnd(text, next)
		words = w + "\n" + text[next:end]
	}
	return words
}

// paragraph returns the paragraph of text that pos is in.
func paragraph(text string, pos int) string {
	start := 0
	if ends := paraEndRE.FindAllStringIndex(text[:pos], -1); len(ends) > 0 {
		start = ends[len(ends)-1][1]
	}
	return text[start:paragraphEnd(text, pos)]
}

// paragraphEnd returns where the paragraph that pos is in ends, at most 4 KB on.
func paragraphEnd(text string, pos int) int {
	end := min(len(text), pos+4096)
	if m := paraEndRE.FindStringIndex(text[pos:end]); m != nil {
		return pos + m[0]
	}
	return end
}

// firstAddress returns the first address in text, lowercased, that is not one of ex nor a mail
// system's own.
func firstAddress(text string, ex map[string]bool) string {
	for _, a := range addressRE.FindAllString(text, 50) {
		a = strings.ToLower(strings.TrimLeft(a, ".'="))
		local, _, _ := mailaddr.Split(a)
		if ex[a] || daemon(a, "") || local == "" {
			continue
		}
		return clip(a, maxAddress)
	}
	return ""
}

// oneLine returns s as one line of at most maxDiagnostic characters: white space and control
// characters made single spaces, and the code repeated at the start of each line of a
// multi-line SMTP reply left out.
func oneLine(s string) string {
	s = flat(s)
	if m := continuedRE.FindStringSubmatch(s); m != nil {
		rest := s[len(m[0]):]
		if m[2] != "" {
			rest = strings.NewReplacer(" "+m[1]+"-"+m[2]+" ", " ", " "+m[1]+" "+m[2]+" ", " ").Replace(" " + rest)
			s = m[1] + " " + m[2] + " " + strings.TrimSpace(rest)
		} else {
			rest = strings.ReplaceAll(" "+rest, " "+m[1]+"-", " ")
			s = m[1] + " " + strings.TrimSpace(rest)
		}
	}
	s = strings.TrimRight(s, " #")
	return clip(s, maxDiagnostic)
}

// flat returns s as valid UTF-8 on one line: white space and control characters made single
// spaces.
func flat(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return strings.Join(strings.Fields(s), " ")
}

// clip returns the first n runes of s, trimmed of white space.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n])
	}
	return strings.TrimSpace(s)
}
