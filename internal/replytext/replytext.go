// Package replytext owns finding what a person wrote themselves in a mail: the lines typed at
// the top of a reply (to a notice, or commands to a -request address), and the whole of a
// post's own text for digests (Body), without the quoted, forwarded and signature material
// around them. Flowed text (RFC 3676) is joined back into the lines typed first.
package replytext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // non-UTF-8 bodies decode instead of staying raw

	"crewmail/internal/mimetree"
)

// maxText bounds how much of one text part is read: commands sit at the top, and a bound
// keeps a huge or hostile body from costing more than this.
const maxText = 1 << 20

// errFound ends the walk over the parts once the text/plain part has been read.
var errFound = errors.New("text/plain part found")

// Lines returns the lines a person wrote themselves at the top of msg (a whole RFC 5322 message,
// header and body, as received), at most max of them, trimmed, empty lines dropped.
//
// The text is the first text/plain part that is not an attachment, else the first text/html
// one. A message go-message only partly understands (an unknown charset or transfer
// encoding, a broken multipart) gives what could be read; the error is for a message that
// gives no text at all because it could not be read. A message without any text part, or
// with an empty one, gives no lines and no error.
func Lines(msg []byte, max int) ([]string, error) {
	if max <= 0 {
		return nil, nil
	}
	text, ok, err := bodyText(skipBlankLines(msg))
	if !ok {
		if err != nil {
			return nil, fmt.Errorf("no readable text: %w", err)
		}
		return nil, nil
	}
	// A part without a charset, or with one it does not keep to, can hold any bytes.
	return ownLines(strings.ToValidUTF8(text, "\uFFFD"), max), nil
}

// skipBlankLines drops the lines of only spaces and tabs that some mail software writes
// before the header. rawmsg.ReadHeader skips the same lines, and Lines must too: otherwise a
// message the server accepted would have no readable text here.
func skipBlankLines(msg []byte) []byte {
	for {
		line, rest, ok := bytes.Cut(msg, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if !ok || len(line) == 0 || len(bytes.Trim(line, " \t")) != 0 {
			return msg
		}
		msg = rest
	}
}

// bodyText returns the text of the part Lines reads, as UTF-8 with flowed lines joined and
// HTML rendered, and whether there was such a part. err is the first problem met on the way,
// which matters only when there was none. The parts are those mimetree finds within its limits:
// a text nested deeper than real mail nests is not read, and the walk costs at most a few
// passes over msg however it nests.
func bodyText(msg []byte) (text string, ok bool, err error) {
	var (
		html    []byte
		hasHTML bool
		plain   string
		first   error
	)
	note := func(err error) {
		if first == nil {
			first = err
		}
	}
	w := mimetree.Walker{Limits: mimetree.Default, Leaf: func(p *mimetree.Part, body io.Reader) error {
		if p.Broken {
			// RFC 2046 §5.1.1: a multipart without its boundary has no parts to read.
			note(errors.New("a multipart whose parts cannot be found"))
			return nil
		}
		if isAttachment(p.Header) || (p.Type != "text/plain" && p.Type != "text/html") {
			return nil
		}
		e, err := message.New(p.Header, body)
		if err != nil {
			// An unknown charset or transfer encoding: the part reads as it was sent, which
			// for a command in ASCII is still right.
			note(err)
		}
		if e == nil {
			return nil
		}
		_, params, _ := p.Header.ContentType()
		b, err := io.ReadAll(io.LimitReader(e.Body, maxText))
		if err != nil {
			note(fmt.Errorf("reading a %s part: %w", p.Type, err))
			if len(b) == 0 {
				return nil
			}
		}
		if p.Type == "text/plain" {
			plain = string(b)
			if strings.EqualFold(params["format"], "flowed") {
				plain = unflow(plain, strings.EqualFold(params["delsp"], "yes"))
			}
			return errFound
		}
		if !hasHTML {
			html, hasHTML = b, true
		}
		return nil
	}, Descend: func(p *mimetree.Part) bool {
		// A message carried inside (message/rfc822) is not what the person wrote.
		return strings.HasPrefix(p.Type, "multipart/")
	}}
	root, walkErr := w.Walk(msg)
	switch {
	case root == nil:
		return "", false, fmt.Errorf("reading the message header: %w", walkErr)
	case errors.Is(walkErr, errFound):
		return plain, true, nil
	}
	if hasHTML {
		return htmlText(html, false), true, nil
	}
	return "", false, first
}

// isAttachment reports whether the part is an attachment (RFC 2183 §2.2): something the person
// attached, not what they wrote.
func isAttachment(h message.Header) bool {
	disp, _, _ := h.ContentDisposition()
	disp, _, _ = strings.Cut(disp, ";")
	return strings.EqualFold(strings.TrimSpace(disp), "attachment")
}
