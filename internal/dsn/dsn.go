// Package dsn reads a mail sent to a bounce address and says what it reports about the one
// recipient it is about.
//
// crewmail sends each member's copy with a VERP return path, so whatever arrives there is
// about one known member; this package only says what happened to the copy. A delivery status
// notification is read by its structure (RFC 3464, with the enhanced status codes of RFC 3463,
// and RFC 6533's internationalized form); so are a read receipt (RFC 8098) and an abuse report
// (RFC 5965), which are no bounces. Mail servers that send no such report (qmail, Exim,
// Exchange, Gmail, Yahoo and others) are read by their wording and the status codes in it, and
// a vacation notice by the marks RFC 3834 and mail clients give it.
package dsn

import (
	"fmt"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // the charsets of human text and encoded words
	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailaddr"
	"crewmail/internal/rawmsg"
)

// Kind is what a mail to a bounce address reports.
type Kind int

const (
	Unknown   Kind = iota // not understood: kept, counted as nothing
	Failed                // permanent failure (5.x.x) of the recipient
	Delayed               // temporary (4.x.x) or "delayed" DSN
	Delivered             // a success DSN (action delivered/relayed/expanded)
	Policy                // refused for policy or authentication (5.7.x, DMARC/SPF/DKIM, spam, blocked): the list's problem, not the member's
	AutoReply             // a vacation or other auto-reply: not a bounce at all
)

func (k Kind) String() string {
	switch k {
	case Unknown:
		return "unknown"
	case Failed:
		return "failed"
	case Delayed:
		return "delayed"
	case Delivered:
		return "delivered"
	case Policy:
		return "policy"
	case AutoReply:
		return "auto-reply"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Report is what a bounce says about one recipient.
type Report struct {
	Kind       Kind
	Status     string // enhanced status code "5.1.1" when known
	Recipient  string // the Final-Recipient / Original-Recipient address, lowercased, when given
	Diagnostic string // the remote server's words (Diagnostic-Code or the human text), one line, at most 300 chars
	Reporter   string // Reporting-MTA or the From of the bounce
}

const (
	// maxPart bounds what is read of any one part, after its transfer encoding is undone. A
	// report is a few KB; the rest of a large part is the returned message or an attachment.
	maxPart = 1 << 20
	// maxText bounds the human text kept from all parts together.
	maxText = 1 << 20
	// maxDiagnostic is the most runes of Diagnostic.
	maxDiagnostic = 300
	// maxAddress bounds Recipient and Reporter: RFC 5321 §4.5.3.1.3 allows 256 octets for a
	// path, and a domain name is at most 255.
	maxAddress = 320
)

// Parse reads a whole message (RFC 5322, as received) sent to a bounce address.
//
// A message that is partly unreadable (a broken multipart, an unknown charset or transfer
// encoding) is read as far as it goes; one that says nothing understood is Unknown. The error
// is only for a header that cannot be read.
func Parse(msg []byte) (Report, error) {
	h, err := rawmsg.ReadHeader(msg)
	if err != nil {
		return Report{}, fmt.Errorf("reading the header of a mail to a bounce address: %w", err)
	}
	mh := message.Header{Header: h}
	var w walker
	w.walk(msg)
	return w.report(mh), nil
}

// report says what the parts w found report; h is the header of the whole message.
func (w *walker) report(h message.Header) Report {
	from, fromName := sender(h)
	subject, err := h.Text("Subject")
	if err != nil {
		subject = h.Get("Subject") // an unknown charset: the words as written
	}
	subject = clip(flat(subject), 1000) // a subject is a line; a longer one is no one's
	text := w.text()

	// The structure of a report comes first: a DSN carries Auto-Submitted: auto-replied
	// (RFC 3834 §5.1 asks it of any automatic response), and is no vacation notice.
	dsnReport := strings.HasSuffix(w.reportType, "delivery-status") // or RFC 6533's global-delivery-status
	if len(w.status) == 0 && dsnReport {
		w.status = statusCandidates(w.candidates)
	}
	var fromStatus Report
	if len(w.status) > 0 {
		var ok bool
		if fromStatus, ok = readStatus(w.status, text); ok {
			if fromStatus.Reporter == "" {
				fromStatus.Reporter = from
			}
			return fromStatus
		}
	}
	if w.mdn != nil || strings.HasSuffix(w.reportType, "disposition-notification") {
		return readMDN(w.mdn, from)
	}
	if w.feedback != nil || w.reportType == "feedback-report" {
		return readFeedback(w.feedback, from)
	}

	// A report without a recipient that says what happened, or no report: the words decide.
	// An auto-reply's subject repeats the subject of the post, whatever words that has.
	autoSubject := autoSubjectRE.MatchString(subject)
	bounce := len(w.status) > 0 || dsnReport || daemon(from, fromName) ||
		!autoSubject && (failureRE.MatchString(subject) || delayRE.MatchString(subject))
	var r Report
	switch {
	case bounce:
		if t, ok := readText(subject, text, true, excluded(h, from)); ok {
			r = t
		}
	case autoSubject || autoReplied(h):
		r.Kind = AutoReply
	default:
		if t, ok := readText(subject, text, false, excluded(h, from)); ok {
			r = t
		}
	}
	r.Reporter = from
	// Exim names the recipients that failed in a field of its own.
	if a := firstAddress(h.Get("X-Failed-Recipients"), nil); a != "" && r.Kind != AutoReply && r.Kind != Unknown {
		r.Recipient = a
	}
	// What a report that was not understood said still helps whoever looks at it.
	if fromStatus.Reporter != "" {
		r.Reporter = fromStatus.Reporter
	}
	if r.Recipient == "" && r.Kind != AutoReply {
		r.Recipient = fromStatus.Recipient
	}
	return r
}

// sender returns the address of the From field and its display name. A From that does not
// parse gives the first address in it, if any.
func sender(h message.Header) (addr, name string) {
	mh := mail.Header{Header: h}
	if list, err := mh.AddressList("From"); err == nil && len(list) > 0 {
		return clip(flat(list[0].Address), maxAddress), flat(list[0].Name)
	}
	raw := flat(h.Get("From"))
	if loc := addressRE.FindStringIndex(raw); loc != nil {
		return clip(raw[loc[0]:loc[1]], maxAddress), strings.Trim(raw[:loc[0]], ` "<`)
	}
	return "", raw
}

// excluded returns the addresses, lowercased, that a bounce's text names that are not the
// recipient it is about: the bounce's own sender and the address it was sent to (the VERP
// return path, which the text often names as the sender of the returned message).
func excluded(h message.Header, from string) map[string]bool {
	ex := map[string]bool{}
	if from != "" {
		ex[strings.ToLower(from)] = true
	}
	for _, key := range []string{"To", "Delivered-To", "X-Original-To", "Return-Path"} {
		for _, v := range h.Values(key) {
			for _, a := range addressRE.FindAllString(v, 10) {
				ex[strings.ToLower(a)] = true
			}
		}
	}
	return ex
}

// daemon tells whether a From is that of a mail system rather than a person: mailer-daemon,
// postmaster, "Mail Delivery System".
func daemon(addr, name string) bool {
	local, _, _ := mailaddr.Split(strings.ToLower(addr))
	switch local {
	case "mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster":
		return true
	}
	name = strings.ToLower(name)
	for _, s := range []string{"mail delivery", "mailer-daemon", "mailer daemon", "postmaster", "mail administrator"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// autoReplied tells whether a message is marked as an automatic reply: by Auto-Submitted
// (RFC 3834 §5.1) or by the fields vacation programs add. (autoSubjectRE knows the subjects
// mail clients give one.)
func autoReplied(h message.Header) bool {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); strings.HasPrefix(v, "auto-replied") {
		return true
	}
	for _, key := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autogenerated"} {
		if v := strings.ToLower(strings.TrimSpace(h.Get(key))); v != "" && v != "no" && v != "false" {
			return true
		}
	}
	if v := strings.ToLower(strings.TrimSpace(h.Get("Precedence"))); v == "auto_reply" || v == "auto-reply" {
		return true
	}
	return false
}
