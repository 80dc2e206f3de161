package digest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"crewmail/internal/listcopy"
	"crewmail/templates"
)

// Addresses are the header values of a digest mail.
type Addresses struct {
	From    string // the list's address, shown with the list's name
	ReplyTo string // crew+digest@: replies to the digest itself go there
	// To is the To field; "" leaves it out, for mail many members share whose copies each
	// get their own (lists.Compose puts the member's address on top).
	To string
	// MessageID draws each part's Message-ID (without <>) when Renderer.NewID does not.
	MessageID func() string
	// List is the list's header block, written by the one writer posts and notices use, so a
	// digest's List-Id is its posts' (RFC 2919 §3).
	List listcopy.Block
}

// Renderer turns digests into mail.
type Renderer struct {
	Templates *templates.Set
	Hostname  string // for Message-IDs
	MaxBytes  int    // a digest larger than this is split into parts; 0: 2 MiB
	// MaxHTMLBytes: a digest whose HTML part is larger than this is split into parts too;
	// 0: 100,000. Gmail clips a message's HTML after about 102 KB.
	MaxHTMLBytes int
	Now          func() time.Time // Date field; tests replace it
	NewID        func() string    // Message-ID (without <>); tests replace it
}

// defaultMaxBytes keeps a digest well under the 10 MB or more most providers accept, and
// small enough for a phone to open at once.
const defaultMaxBytes = 2 << 20

// defaultMaxHTMLBytes keeps a digest's HTML under what Gmail shows before it clips.
const defaultMaxHTMLBytes = 100000

// Text returns the plain-text body of d (without its Subject line), for
// `crewmail digest preview`: as it is sent, format=flowed.
func (r *Renderer) Text(d Digest) (string, error) {
	_, body, err := r.Templates.Render("digest", withContents(inZone(d)))
	return templates.FlowDelSp(body), err
}

// HTML returns the HTML body of d, for `crewmail digest preview`.
func (r *Renderer) HTML(d Digest) (string, error) {
	return r.Templates.RenderHTML("digest", withContents(inZone(d)))
}

// withContents gives d, a digest in one part, its table of contents.
func withContents(d Digest) Digest {
	if d.Contents == nil {
		d.Contents = contents([][]piece{wholes(d.Threads)}, 0)
	}
	return d
}

// Build returns the digest d as one or more complete messages (RFC 5322, CRLF line endings):
// multipart/alternative with text/plain (UTF-8, format=flowed with delsp=yes, RFC 3676;
// quoted-printable) and text/html (UTF-8, quoted-printable), and the fields From ("ListName"
// <From>), To, Reply-To, Subject, Date, Message-ID, MIME-Version, List-Id, List-Post,
// List-Help, List-Unsubscribe, Precedence: list, Auto-Submitted: auto-generated (RFC 3834).
//
// When the whole is larger than MaxBytes, or its HTML part larger than MaxHTMLBytes, it is
// split between conversations into parts whose subjects say "(part N of M)", every
// conversation in exactly one part, and the table of contents of every part saying which
// conversations are in which part. A conversation too large for a part alone shows its first
// messages and says how many more the archive has. A part holding a single message may still
// be larger than the limits.
func (r *Renderer) Build(d Digest, a Addresses) ([][]byte, error) {
	if r.Templates == nil {
		return nil, errors.New("digest: renderer without templates")
	}
	d = inZone(d)
	d.Part, d.Parts, d.Messages = 0, 0, countMessages(d.Threads)
	id := r.newID(a)
	whole := withContents(d)
	msg, htmlLen, err := r.message(whole, a, id)
	if err != nil {
		return nil, err
	}
	if r.fits(len(msg), htmlLen) || len(d.Threads) == 0 {
		return [][]byte{msg}, nil
	}
	groups, err := r.pack(d, a, id)
	if err != nil {
		return nil, err
	}
	// The packing works from estimates: render the parts for real and split any part that
	// still came out too large, until each fits or holds a single message.
	var msgs [][]byte
	for settled := false; !settled; {
		settled, msgs = true, msgs[:0]
		for i := range groups {
			m, n, err := r.message(partOf(d, groups, i), a, id)
			if err != nil {
				return nil, err
			}
			if !r.fits(len(m), n) {
				if smaller, ok := shrink(groups, i); ok {
					groups, settled = smaller, false
					break
				}
			}
			msgs = append(msgs, m)
		}
	}
	// Part 1 keeps the Message-ID drawn first; the others get theirs now.
	for i := 1; i < len(groups); i++ {
		if msgs[i], _, err = r.message(partOf(d, groups, i), a, r.newID(a)); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

func (r *Renderer) fits(msgLen, htmlLen int) bool {
	return msgLen <= r.maxBytes() && htmlLen <= r.maxHTMLBytes()
}

func (r *Renderer) maxHTMLBytes() int {
	if r.MaxHTMLBytes > 0 {
		return r.MaxHTMLBytes
	}
	return defaultMaxHTMLBytes
}

func (r *Renderer) maxBytes() int {
	if r.MaxBytes > 0 {
		return r.MaxBytes
	}
	return defaultMaxBytes
}

func (r *Renderer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Renderer) newID(a Addresses) string {
	if r.NewID != nil {
		return r.NewID()
	}
	if a.MessageID != nil {
		return a.MessageID()
	}
	return rand.Text() + "@" + r.Hostname
}

// message renders d into one mail with the Message-ID id, and says how long its HTML part
// is (decoded).
func (r *Renderer) message(d Digest, a Addresses, id string) ([]byte, int, error) {
	subject, text, err := r.Templates.Render("digest", d)
	if err != nil {
		return nil, 0, err
	}
	if subject == "" { // an operator's template without a Subject line
		subject = d.Subject
	}
	// RFC 3676: the text part is flowed, so that a phone wraps its paragraphs to its screen,
	// and no line is longer than 78 characters; delsp=yes lets a URL longer than a line be
	// broken and joined again.
	text = templates.FlowDelSp(text)
	html, err := r.Templates.RenderHTML("digest", d)
	if err != nil {
		return nil, 0, err
	}
	// Each Set puts its field on top: set them in reverse of the order a reader expects. The
	// multipart Content-Type carries its boundary already, so CreateWriter keeps the order.
	var h mail.Header
	h.SetContentType("multipart/alternative", map[string]string{"boundary": boundary(id)})
	// RFC 3834 §5: a digest is automatic mail, which no responder should answer; Precedence
	// is not standard but is what vacation programs still look at.
	h.Set("Auto-Submitted", "auto-generated")
	a.List.Add(&h.Header.Header)
	h.Set("MIME-Version", "1.0")
	h.SetMessageID(id)
	h.SetDate(r.now())
	h.SetSubject(subject) // RFC 2047-encoded when not ASCII
	if a.ReplyTo != "" {
		h.SetAddressList("Reply-To", []*mail.Address{{Address: a.ReplyTo}})
	}
	if a.To != "" {
		h.SetAddressList("To", []*mail.Address{{Address: a.To}})
	}
	h.SetAddressList("From", []*mail.Address{{Name: d.ListName, Address: a.From}})

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, 0, err
	}
	for _, p := range []struct{ typ, body string }{
		{"text/plain; charset=utf-8; format=flowed; delsp=yes", text},
		{"text/html; charset=utf-8", html},
	} {
		var ph message.Header
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		ph.Set("Content-Type", p.typ)
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, 0, err
		}
		if _, err := pw.Write([]byte(p.body)); err != nil {
			return nil, 0, err
		}
		if err := pw.Close(); err != nil {
			return nil, 0, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, 0, fmt.Errorf("write digest: %w", err)
	}
	return buf.Bytes(), len(html), nil
}

// boundary derives the multipart boundary from the Message-ID, so that a message renders the
// same every time. "=_" never occurs in quoted-printable text (RFC 2045 §6.7 encodes every
// "="), so the boundary cannot collide with the parts.
func boundary(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "=_" + hex.EncodeToString(sum[:12])
}

// inZone shows Since and Until in the digest's time zone when the system knows it.
func inZone(d Digest) Digest {
	if d.Zone == "" {
		return d
	}
	if loc, err := time.LoadLocation(d.Zone); err == nil {
		d.Since, d.Until = d.Since.In(loc), d.Until.In(loc)
	}
	return d
}

func countMessages(threads []Thread) int {
	n := 0
	for _, t := range threads {
		n += len(t.Messages)
	}
	return n
}

// A piece is a thread, or its first messages when the thread alone is too large for a part.
type piece struct {
	t  Thread
	to int // t.Messages[:to]
}

func wholes(ts []Thread) []piece {
	ps := make([]piece, len(ts))
	for i, t := range ts {
		ps[i] = piece{t: t, to: len(t.Messages)}
	}
	return ps
}

// thread is the piece as the templates see it: a conversation cut short says how many of its
// messages are left out.
func (p piece) thread() Thread {
	t := p.t
	if p.to == len(t.Messages) {
		return t
	}
	t.Omitted = len(t.Messages) - p.to
	t.Messages = t.Messages[:p.to]
	return t
}

// contents is the table of contents of a digest in groups, as part n (0-based) sees it; n < 0
// or a single group: every entry is here, and no part is named.
func contents(groups [][]piece, n int) []Entry {
	var out []Entry
	for i, g := range groups {
		for _, p := range g {
			t := p.thread()
			e := Entry{Anchor: t.Anchor, Subject: t.Subject, New: t.New, Participants: t.Participants,
				Count: t.Count, Here: i == n || len(groups) == 1}
			if len(groups) > 1 {
				e.Part = i + 1
			}
			out = append(out, e)
		}
	}
	return out
}

// partOf is d with only the threads of groups[n], as part n+1 of len(groups).
func partOf(d Digest, groups [][]piece, n int) Digest {
	g := groups[n]
	d.Threads = make([]Thread, len(g))
	for i, p := range g {
		d.Threads[i] = p.thread()
	}
	d.Contents = contents(groups, n)
	d.Part, d.Parts, d.Messages = n+1, len(groups), countMessages(d.Threads)
	d.Subject = fmt.Sprintf("%s (part %d of %d)", d.Subject, n+1, len(groups))
	return d
}

// shrink makes groups[i], which rendered too large, smaller: it splits it in two between its
// conversations when it has several, else shows one message fewer of its one conversation.
// It reports false for a single message.
func shrink(groups [][]piece, i int) ([][]piece, bool) {
	g := groups[i]
	if len(g) > 1 {
		return slices.Replace(groups, i, i+1, g[:len(g)/2], g[len(g)/2:]), true
	}
	if g[0].to < 2 {
		return nil, false
	}
	p := g[0]
	p.to--
	return slices.Replace(groups, i, i+1, []piece{p}), true
}

// cost is what a piece adds to a part: to the whole mail and to its HTML part.
type cost struct{ msg, html int }

// pack groups d's threads into parts from estimates: what a part costs without any thread,
// and what each thread adds to it; a thread too large alone keeps the first messages that fit.
// Threads keep their order and a part is filled before the next begins.
func (r *Renderer) pack(d Digest, a Addresses, id string) ([][]piece, error) {
	// Render the estimates as part 999 of 999, so the real numbers are never longer. The
	// table of contents grows with every conversation and is in every part: it is measured
	// whole, in the base, every entry in its longer form (in another part).
	all := wholes(d.Threads)
	size := func(ps ...piece) (cost, error) {
		x := d
		x.Threads = nil
		for _, p := range ps {
			x.Threads = append(x.Threads, p.thread())
		}
		x.Contents = contents([][]piece{nil, all}, 0)
		x.Part, x.Parts, x.Messages = 999, 999, countMessages(x.Threads)
		x.Subject += " (part 999 of 999)"
		m, n, err := r.message(x, a, id)
		return cost{len(m), n}, err
	}
	base, err := size()
	if err != nil {
		return nil, err
	}
	over := func(c cost) bool { return !r.fits(base.msg+c.msg, base.html+c.html) }
	type costed struct {
		p piece
		c cost
	}
	var pieces []costed
	for _, p := range all {
		n, err := size(p)
		if err != nil {
			return nil, err
		}
		c := cost{n.msg - base.msg, n.html - base.html}
		for over(c) && p.to > 1 {
			// Too large alone: its first messages, as many as fit.
			p.to = max(1, p.to*3/4)
			if n, err = size(p); err != nil {
				return nil, err
			}
			c = cost{n.msg - base.msg, n.html - base.html}
		}
		pieces = append(pieces, costed{p, c})
	}
	var groups [][]piece
	var g []piece
	var sum cost
	for _, c := range pieces {
		if len(g) > 0 && over(cost{sum.msg + c.c.msg, sum.html + c.c.html}) {
			groups, g, sum = append(groups, g), nil, cost{}
		}
		g, sum = append(g, c.p), cost{sum.msg + c.c.msg, sum.html + c.c.html}
	}
	return append(groups, g), nil
}
