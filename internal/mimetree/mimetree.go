// Package mimetree owns walking the MIME structure of a message (RFC 2045, RFC 2046): its
// multiparts and the messages it carries (message/rfc822), within limits on how deep the walk
// goes and how many parts it lists, so that no message, however it nests, costs more than a few
// passes over its bytes. Beyond a limit a part is flat: one opaque leaf, never looked into.
// Every reader of message structure (the IMAP server, reply text, digests, bounces) walks
// through here, so they all see the same parts.
package mimetree

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/rawmsg"
)

// Limits bound a walk.
type Limits struct {
	// Depth is how many levels of multiparts and carried messages are looked into: a multipart
	// or message/rfc822 part at this depth (the message itself is at 0) is flat.
	Depth int
	// Parts is how many parts are listed in all, the message itself included. A multipart
	// (or carried message) in which the count would go past it is flat, and what had been
	// listed inside it no longer counts.
	Parts int
}

// Default is what every walker uses.
//
// Real mail nests a few levels: a signed message whose text is an alternative of plain text and
// of HTML with inline images is four deep, and each message forwarded as an attachment adds its
// own two or three. Fifty leaves room for a chain of a dozen such forwards, which no mail client
// writes, while a walk costs at most fifty passes over the message. A thousand parts is more
// than any mail client sends (a mail of a few hundred attached photographs is already rare).
var Default = Limits{Depth: 50, Parts: 1000}

// Part is a part of the walked message: the message itself, a part of a multipart, or the
// message a message/rfc822 part carries.
type Part struct {
	// Header is the part's header: the message header for the message itself and for a
	// carried message, the MIME header of a body part.
	Header message.Header
	// Type is the media type the walk took the part for, in lower case: RFC 2045 §5.2, a part
	// without a Content-Type or with one that does not parse is text/plain; RFC 2046 §5.1.5, in
	// a multipart/digest it is message/rfc822. A multipart whose parts cannot be found (no
	// boundary, or one that never shows) is text/plain, and Broken.
	Type   string
	Params map[string]string // the Content-Type parameters, when they parse

	Parent *Part
	Index  int // in Parent.Children
	Depth  int // the message itself is at 0
	// Children are the parts of a multipart, or the one message a message/rfc822 part
	// carries. A flat part has none.
	Children []*Part
	// Flat is set on a multipart or a message/rfc822 part that was not looked into because it
	// lies beyond a limit (or, for a message/rfc822 part, because what it carries has no
	// readable header): it is one opaque leaf of Size bytes.
	Flat bool
	// Broken is set on a multipart whose parts could not be found: it is read as text/plain.
	Broken bool

	Size  int64  // bytes of the body as sent (transfer encoding not undone)
	Lines int64  // lines of the body ("\n" counted)
	Body  []byte // the body as sent, only for the part Walker.Keep names
}

// Multipart reports whether p is a multipart with parts listed.
func (p *Part) Multipart() bool {
	return strings.HasPrefix(p.Type, "multipart/") && !p.Flat && !p.Broken
}

// Message reports whether p is a message/rfc822 (or message/global) part whose message was
// read: it is then p.Children[0].
func (p *Part) Message() bool {
	return len(p.Children) == 1 && !strings.HasPrefix(p.Type, "multipart/")
}

// Pos is where p is in the tree: the index of each part on the way down from the top.
func (p *Part) Pos() []int {
	pos := []int{} // not nil: Keep names the message itself with it
	for q := p; q.Parent != nil; q = q.Parent {
		pos = append(pos, q.Index)
	}
	for i, j := 0, len(pos)-1; i < j; i, j = i+1, j-1 {
		pos[i], pos[j] = pos[j], pos[i]
	}
	return pos
}

// Walker walks messages.
type Walker struct {
	Limits Limits
	// Leaf, when set, is called for each leaf as it is met, in order, with its body as sent
	// (the transfer encoding is not undone); it need not read all of it. A leaf is a part that
	// is neither a listed multipart, nor a message/rfc822 part whose message was read, nor
	// flat. An error from Leaf ends the walk and is returned by Walk. A multipart that turns
	// out to have too many parts becomes flat after its leaves were met.
	Leaf func(p *Part, body io.Reader) error
	// Descend, when set, is asked of each multipart and message/rfc822 part before anything
	// else: false makes it a leaf, as for a reader of a message that does not go into the
	// messages it carries.
	Descend func(p *Part) bool
	// Keep, when not nil, names (as Pos does) the part whose body Walk keeps in Body.
	Keep []int
}

// ErrHeader is returned by Walk when the message header cannot be read.
var ErrHeader = errors.New("the message header cannot be read")

// Walk reads the structure of msg, a whole message with header; lines of only spaces and tabs
// before the header are skipped, as rawmsg.ReadHeader skips them. The tree comes back also with
// an error from Leaf, as far as it was read.
func (w *Walker) Walk(msg []byte) (*Part, error) {
	r := bufio.NewReader(bytes.NewReader(rawmsg.SkipBlankLines(msg)))
	h, err := textproto.ReadHeader(r)
	if err != nil {
		return nil, errors.Join(ErrHeader, err)
	}
	s := &state{w: w, listed: 1}
	root := s.newPart(message.Header{Header: h}, nil, 0)
	return root, s.walk(root, r)
}

// Walk walks msg with the Default limits and no Leaf.
func Walk(msg []byte) (*Part, error) {
	w := Walker{Limits: Default}
	return w.Walk(msg)
}

type state struct {
	w      *Walker
	listed int // parts listed so far
}

func (s *state) newPart(h message.Header, parent *Part, index int) *Part {
	p := &Part{Header: h, Parent: parent, Index: index}
	parentType := ""
	if parent != nil {
		p.Depth = parent.Depth + 1
		parentType = parent.Type
		parent.Children = append(parent.Children, p)
	}
	p.Type, p.Params = contentType(h, parentType)
	return p
}

// walk reads the body of p from body, to its end unless Leaf ends the walk.
func (s *state) walk(p *Part, body io.Reader) error {
	c := &counter{r: body}
	if s.w.Keep != nil && samePos(p, s.w.Keep) {
		c.keep = &bytes.Buffer{}
	}
	err := s.walkBody(p, c)
	if err != nil {
		return err
	}
	// A body that ends before its multipart does is read as far as it goes.
	_, _ = io.Copy(io.Discard, c)
	p.Size, p.Lines = c.n, c.lines
	if c.keep != nil {
		p.Body = c.keep.Bytes()
	}
	return nil
}

func (s *state) walkBody(p *Part, c *counter) error {
	lim := s.w.Limits
	switch {
	case strings.HasPrefix(p.Type, "multipart/"):
		b := rawmsg.Param(p.Header.Get("Content-Type"), p.Params, "boundary")
		if s.w.Descend != nil && !s.w.Descend(p) {
			return s.leaf(p, c)
		}
		if b == "" {
			// RFC 2046 §5.1.1: the boundary is required; without it the parts cannot be
			// found, and the body is read as text.
			p.Broken, p.Type, p.Params = true, "text/plain", nil
			return s.leaf(p, c)
		}
		if p.Depth >= lim.Depth {
			p.Flat = true
			return nil
		}
		// What the reader reads before the first part is kept, for when none shows.
		head := &bytes.Buffer{}
		c.tee = head
		mr := textproto.NewMultipartReader(c, b)
		listed := s.listed
		for {
			part, err := mr.NextPart()
			c.tee = nil
			if err != nil {
				break // io.EOF, or a multipart broken part way: what was read still counts
			}
			if s.listed >= lim.Parts {
				// Too many parts: this multipart is one leaf, and what it held is given back.
				p.Children, p.Flat = nil, true
				s.listed = listed
				return nil
			}
			s.listed++
			child := s.newPart(message.Header{Header: part.Header}, p, len(p.Children))
			if err := s.walk(child, part); err != nil {
				return err
			}
		}
		if len(p.Children) == 0 {
			// The boundary never shows: the body is all there is to read.
			p.Broken, p.Type, p.Params = true, "text/plain", nil
			return s.leaf(p, io.MultiReader(head, c))
		}
		return nil
	case (p.Type == "message/rfc822" || p.Type == "message/global") && identity(p.Header) &&
		(s.w.Descend == nil || s.w.Descend(p)):
		if p.Depth >= lim.Depth || s.listed >= lim.Parts {
			p.Flat = true
			return nil
		}
		br := bufio.NewReader(c)
		h, err := textproto.ReadHeader(br)
		if err != nil {
			p.Flat = true // not a message after all: nothing to look into
			return nil
		}
		s.listed++
		child := s.newPart(message.Header{Header: h}, p, 0)
		return s.walk(child, br)
	}
	return s.leaf(p, c)
}

func (s *state) leaf(p *Part, body io.Reader) error {
	if s.w.Leaf == nil {
		return nil
	}
	return s.w.Leaf(p, body)
}

func samePos(p *Part, pos []int) bool {
	if p.Depth != len(pos) {
		return false
	}
	for q := p; q.Parent != nil; q = q.Parent {
		if pos[q.Depth-1] != q.Index {
			return false
		}
	}
	return true
}

// identity reports whether the part's body is not transfer encoded: RFC 2046 §5.2.1, a
// message/rfc822 part is 7bit, 8bit or binary. One that is encoded anyway is a leaf.
func identity(h message.Header) bool {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// counter counts what is read through it, and keeps a copy when asked.
type counter struct {
	r     io.Reader
	n     int64
	lines int64
	keep  *bytes.Buffer // the whole body
	tee   *bytes.Buffer // until the first part of a multipart is found
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.lines += int64(bytes.Count(b[:n], []byte("\n")))
	if c.keep != nil {
		c.keep.Write(b[:n])
	}
	if c.tee != nil {
		c.tee.Write(b[:n])
	}
	return n, err
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
