package dsn

import (
	"bytes"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

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
	parts      int      // parts met so far
	size       int      // bytes of human text kept so far
}

// walk visits the part with header h and the given body, in a multipart of type parent (""
// at the top), depth multiparts down.
//
// It reads the MIME tree itself rather than with message.Entity.Walk so as to go on past
// what the latter stops at: a multipart whose boundary parameter does not parse, or whose
// boundary never appears.
func (w *walker) walk(h message.Header, body io.Reader, parent string, depth int, r role) {
	w.parts++
	t, params := contentType(h, parent)
	if strings.HasPrefix(t, "multipart/") {
		b := boundary(h, params)
		if depth >= maxDepth || b == "" {
			// RFC 2046 §5.1.1: the boundary is required; without it the parts cannot be
			// found, but their text can still be read.
			if r == roleHuman {
				w.addText(readPart(h, body, false), false)
			}
			return
		}
		if t == "multipart/report" && w.reportType == "" {
			w.reportType = strings.ToLower(strings.TrimSpace(param(h, params, "report-type")))
		}
		// The first bytes are kept for when the boundary never appears.
		head := &capped{max: maxPart}
		if r == roleHuman {
			body = io.TeeReader(body, head)
		}
		mr := textproto.NewMultipartReader(body, b)
		n := 0
		for w.parts < maxParts {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			child := r
			if t == "multipart/report" && n > 0 {
				child = roleReport
			}
			w.walk(message.Header{Header: p.Header}, p, t, depth+1, child)
			n++
		}
		if n == 0 && r == roleHuman {
			// The declared boundary never appears: the body is all there is to read.
			w.addText(head.Bytes(), false)
		}
		return
	}

	switch {
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

// capped keeps the first max bytes written to it.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// contentType returns the media type of a part in lower case, and its parameters. RFC 2045
// §5.2: a part without a Content-Type, or with one that does not parse, is text/plain; RFC 2046
// §5.1.5: in a multipart/digest it is message/rfc822. A type whose parameters do not parse
// keeps its type, with no parameters.
func contentType(h message.Header, parent string) (string, map[string]string) {
	v := strings.TrimSpace(h.Get("Content-Type"))
	if v == "" {
		if parent == "multipart/digest" {
			return "message/rfc822", nil
		}
		return "text/plain", nil
	}
	t, params, err := h.ContentType()
	if err != nil {
		t, _, _ = strings.Cut(v, ";")
		params = nil
	}
	t = strings.ToLower(strings.TrimSpace(t))
	if _, _, err := mime.ParseMediaType(t); err != nil || !strings.Contains(t, "/") {
		return "text/plain", nil
	}
	return t, params
}

// boundary returns the boundary of a multipart.
func boundary(h message.Header, params map[string]string) string {
	return param(h, params, "boundary")
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
