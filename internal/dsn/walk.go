package dsn

import (
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"crewmail/internal/mimetree"
	"crewmail/internal/rawmsg"
)

// role is what a part is for in the report it belongs to.
type role int

const (
	roleHuman  role = iota // text for people: the first part of a report, or any part of other mail
	roleReport             // a later part of a multipart/report (RFC 6522 §3): machine-readable
)

// walker gathers, from the MIME tree of a message, the parts that say what happened. It does
// not go into a returned message (message/rfc822 and its kin): what that says is not the
// report's.
type walker struct {
	reportType string   // the report-type of the first multipart/report met, lower case
	plain      []string // the human text of text/plain parts, each cut where a returned message begins
	html       []string // the same of text/html parts, as text: used when there is no plain text
	status     [][]byte // message/delivery-status and message/global-delivery-status parts
	candidates [][]byte // text/plain parts of a multipart/report after its first: a broken mailer's status part
	mdn        []byte   // the message/disposition-notification part, if any
	feedback   []byte   // the message/feedback-report part, if any
	size       int      // bytes of human text kept so far
}

// walk visits the parts of msg as mimetree finds them, within its limits on depth and parts. A
// multipart whose boundary parameter does not parse, or whose boundary never appears, is read
// as text.
func (w *walker) walk(msg []byte) {
	mw := mimetree.Walker{
		Limits: mimetree.Default,
		Descend: func(p *mimetree.Part) bool {
			if p.Type == "multipart/report" && w.reportType == "" {
				w.reportType = strings.ToLower(strings.TrimSpace(param(p.Header, p.Params, "report-type")))
			}
			return strings.HasPrefix(p.Type, "multipart/")
		},
		Leaf: func(p *mimetree.Part, body io.Reader) error {
			w.leaf(p, body, roleOf(p))
			return nil
		},
	}
	_, _ = mw.Walk(msg) // only a header that cannot be read fails, and Parse has read it
}

// roleOf is what p is for: a part of a multipart/report after its first (RFC 6522 §3), or
// inside one, is for machines.
func roleOf(p *mimetree.Part) role {
	for q := p; q.Parent != nil; q = q.Parent {
		if q.Parent.Type == "multipart/report" && q.Index > 0 {
			return roleReport
		}
	}
	return roleHuman
}

// leaf reads one leaf of the message.
func (w *walker) leaf(p *mimetree.Part, body io.Reader, r role) {
	h, t := p.Header, p.Type
	switch {
	case p.Broken:
		// RFC 2046 §5.1.1: the boundary is required; without it the parts cannot be found,
		// but their text can still be read.
		if r == roleHuman {
			w.addText(readPart(h, body, false), false)
		}
	case t == "message/rfc822", t == "message/global", strings.HasSuffix(t, "-headers"),
		t == "message/partial", t == "message/external-body":
		// The returned message, or its header (text/rfc822-headers, RFC 6522 §4).
	case strings.HasSuffix(t, "/delivery-status") || strings.HasSuffix(t, "/global-delivery-status"):
		w.status = append(w.status, readPart(h, body, false))
	case t == "message/disposition-notification" || t == "message/global-disposition-notification":
		if w.mdn == nil {
			w.mdn = readPart(h, body, false)
		}
	case t == "message/feedback-report":
		if w.feedback == nil {
			w.feedback = readPart(h, body, false)
		}
	case r == roleReport:
		// Some mailers type the status part of a report text/plain.
		if t == "text/plain" && len(w.candidates) < 10 {
			w.candidates = append(w.candidates, readPart(h, body, true))
		}
	case (t == "text/plain" || t == "text/html") && !attachment(h):
		w.addText(readPart(h, body, true), t == "text/html")
	}
}

// addText keeps b as human text, up to maxText in all.
func (w *walker) addText(b []byte, isHTML bool) {
	if w.size >= maxText {
		return
	}
	if len(b) > maxText-w.size {
		b = b[:maxText-w.size]
	}
	w.size += len(b)
	if isHTML {
		w.html = append(w.html, cutReturned(htmlText(b)))
		return
	}
	w.plain = append(w.plain, cutReturned(strings.ToValidUTF8(string(b), "\uFFFD")))
}

// text returns the human text of the message: that of its text/plain parts, else that of its
// text/html parts.
func (w *walker) text() string {
	parts := w.plain
	if strings.TrimSpace(strings.Join(parts, "")) == "" {
		parts = w.html
	}
	text := strings.Join(parts, "\n\n")
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(text)
}

// readPart returns the first maxPart bytes of a part's body with its transfer encoding undone
// and, when text is set, its charset converted to UTF-8. An unknown transfer encoding or
// charset, or an encoding broken part way, gives what could be read.
func readPart(h message.Header, body io.Reader, text bool) []byte {
	var hh message.Header
	hh.Set("Content-Transfer-Encoding", h.Get("Content-Transfer-Encoding"))
	if text {
		hh.Set("Content-Type", h.Get("Content-Type"))
	}
	e, _ := message.New(hh, body)
	b, _ := io.ReadAll(io.LimitReader(e.Body, maxPart))
	return b
}

// param returns the parameter name of h's Content-Type, read tolerantly (rawmsg.Param).
func param(h message.Header, params map[string]string, name string) string {
	return rawmsg.Param(h.Get("Content-Type"), params, name)
}

// attachment tells whether a part is an attachment by its disposition (RFC 2183 §2.2): a text
// the bounce attached, such as the returned message as a file, is not its own words.
func attachment(h message.Header) bool {
	disp, _, err := h.ContentDisposition()
	if err != nil {
		disp, _, _ = strings.Cut(h.Get("Content-Disposition"), ";")
	}
	return strings.EqualFold(strings.TrimSpace(disp), "attachment")
}

// htmlText returns the text of an HTML body, a line for each block.
func htmlText(b []byte) string {
	var out strings.Builder
	z := html.NewTokenizer(bytes.NewReader(b))
	skip := 0 // inside script or style
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return strings.ToValidUTF8(out.String(), "\uFFFD")
		case html.TextToken:
			if skip == 0 {
				out.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			switch atom.Lookup(name) {
			case atom.Script, atom.Style, atom.Title:
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case atom.Br, atom.P, atom.Div, atom.Tr, atom.Li, atom.Table, atom.Blockquote, atom.Pre,
				atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Hr:
				out.WriteString("\n")
			}
		}
	}
}

// cutReturned returns text up to where a copy of the returned message begins, as bounces
// that carry it inline mark it: what the returned message says is not what the bounce says.
func cutReturned(text string) string {
	i := 0
	for i < len(text) {
		n := strings.IndexByte(text[i:], '\n')
		end := len(text)
		if n >= 0 {
			end = i + n
		}
		if returnedMarker(text[i:end]) {
			return text[:i]
		}
		i = end + 1
	}
	return text
}

// returnedMarker tells whether line is one that bounces put before the returned message.
func returnedMarker(line string) bool {
	l := strings.ToLower(strings.Trim(line, " \t\r-=*_:.<>"))
	if l == "" || len(l) > 100 {
		return false
	}
	for _, m := range []string{
		"below this line is a copy of the message",  // qmail, Yahoo
		"this is a copy of the message",             // Exim
		"this is a copy of the body of the message", // Exim
		"this is a copy of the headers",             // Exim
		"original message follows",                  // sendmail, others
		"unsent message follows",                    // sendmail
		"returned message follows",
		"message header follows",
		"original message headers", // Exchange
		"original message header",
	} {
		if strings.HasPrefix(l, m) {
			return true
		}
	}
	switch l {
	case "original message", "the original message", "undelivered message", "returned message", "message headers":
		return true
	}
	return false
}
