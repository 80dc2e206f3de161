package digest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	Hostname  string           // for Message-IDs
	MaxBytes  int              // a digest larger than this is split into parts; 0: 2 MiB
	Now       func() time.Time // Date field; tests replace it
	NewID     func() string    // Message-ID (without <>); tests replace it
}

// defaultMaxBytes keeps a digest well under the 10 MB or more most providers accept, and
// small enough for a phone to open at once.
const defaultMaxBytes = 2 << 20

// Text returns the plain-text body of d (without its Subject line), for
// `crewmail digest preview`.
func (r *Renderer) Text(d Digest) (string, error) {
	_, body, err := r.Templates.Render("digest", inZone(d))
	return body, err
}

// HTML returns the HTML body of d, for `crewmail digest preview`.
func (r *Renderer) HTML(d Digest) (string, error) {
	return r.Templates.RenderHTML("digest", inZone(d))
}

// Build returns the digest d as one or more complete messages (RFC 5322, CRLF line endings):
// multipart/alternative with text/plain (UTF-8, quoted-printable) and text/html (UTF-8,
// quoted-printable), and the fields From ("ListName" <From>), To, Reply-To, Subject, Date,
// Message-ID, MIME-Version, List-Id, List-Post, List-Help, List-Unsubscribe, Precedence: list,
// Auto-Submitted: auto-generated (RFC 3834). When the whole is larger than MaxBytes it is split
// between threads into parts whose subjects say "(part N of M)"; a single thread larger than
// MaxBytes is split between its messages; nothing is ever dropped. A part holding a single
// message may still be larger than MaxBytes.
func (r *Renderer) Build(d Digest, a Addresses) ([][]byte, error) {
	if r.Templates == nil {
		return nil, errors.New("digest: renderer without templates")
	}
	d = inZone(d)
	d.Part, d.Parts, d.Messages = 0, 0, countMessages(d.Threads)
	id := r.newID(a)
	msg, err := r.message(d, a, id)
	if err != nil {
		return nil, err
	}
	if len(msg) <= r.maxBytes() || len(d.Threads) == 0 {
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
		for i, g := range groups {
			m, err := r.message(partOf(d, g, i+1, len(groups)), a, id)
			if err != nil {
				return nil, err
			}
			if len(m) > r.maxBytes() {
				if halves, ok := halve(g); ok {
					groups, settled = slices.Replace(groups, i, i+1, halves...), false
					break
				}
			}
			msgs = append(msgs, m)
		}
	}
	// Part 1 keeps the Message-ID drawn first; the others get theirs now.
	for i := 1; i < len(groups); i++ {
		if msgs[i], err = r.message(partOf(d, groups[i], i+1, len(groups)), a, r.newID(a)); err != nil {
			return nil, err
		}
	}
	return msgs, nil
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

// message renders d into one mail with the Message-ID id.
func (r *Renderer) message(d Digest, a Addresses, id string) ([]byte, error) {
	subject, text, err := r.Templates.Render("digest", d)
	if err != nil {
		return nil, err
	}
	if subject == "" { // an operator's template without a Subject line
		subject = d.Subject
	}
	html, err := r.Templates.RenderHTML("digest", d)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	for _, p := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", html}} {
		var ph message.Header
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		ph.Set("Content-Type", p.typ+"; charset=utf-8")
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write([]byte(p.body)); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write digest: %w", err)
	}
	return buf.Bytes(), nil
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

// partOf is d with only the threads of group, as part n of parts.
func partOf(d Digest, group []piece, n, parts int) Digest {
	d.Threads = make([]Thread, len(group))
	for i, p := range group {
		d.Threads[i] = p.thread()
	}
	d.Part, d.Parts, d.Messages = n, parts, countMessages(d.Threads)
	d.Subject = fmt.Sprintf("%s (part %d of %d)", d.Subject, n, parts)
	return d
}

// A piece is a thread, or a run of its messages when the thread alone is too large for a part.
type piece struct {
	t        Thread
	from, to int // t.Messages[from:to]
}

func whole(t Thread) piece { return piece{t: t, to: len(t.Messages)} }

// thread is the piece as the templates see it. A run of messages that does not start the
// thread says it continues one, and gets an anchor of its own.
func (p piece) thread() Thread {
	t := p.t
	if p.from == 0 && p.to == len(t.Messages) {
		return t
	}
	t.Messages = t.Messages[p.from:p.to]
	t.Count = len(t.Messages)
	t.Participants = nil
	seen := map[string]bool{}
	for _, m := range t.Messages {
		if !seen[m.Author] {
			seen[m.Author] = true
			t.Participants = append(t.Participants, m.Author)
		}
	}
	if p.from > 0 {
		t.Subject += " (continued)"
		t.Anchor += "-" + strconv.Itoa(p.from+1)
	}
	return t
}

// halve splits a group that rendered too large in two: between its pieces if it has several,
// else between the messages of its one piece. It reports false for a single message.
func halve(g []piece) ([][]piece, bool) {
	if len(g) > 1 {
		return [][]piece{g[:len(g)/2], g[len(g)/2:]}, true
	}
	p := g[0]
	if p.to-p.from < 2 {
		return nil, false
	}
	mid := p.from + (p.to-p.from)/2
	a, b := p, p
	a.to, b.from = mid, mid
	return [][]piece{{a}, {b}}, true
}

// pack groups d's threads into parts from estimates: what a part costs without any thread,
// and what each thread (or, for a thread too large alone, each message) adds to it. Threads
// keep their order and a part is filled before the next begins.
func (r *Renderer) pack(d Digest, a Addresses, id string) ([][]piece, error) {
	limit := r.maxBytes()
	// Render the estimates as part 999 of 999, so the real numbers are never longer.
	size := func(ps ...piece) (int, error) {
		m, err := r.message(partOf(d, ps, 999, 999), a, id)
		return len(m), err
	}
	base, err := size()
	if err != nil {
		return nil, err
	}
	type costed struct {
		p    piece
		cost int
	}
	var pieces []costed
	for _, t := range d.Threads {
		n, err := size(whole(t))
		if err != nil {
			return nil, err
		}
		if n <= limit || len(t.Messages) < 2 {
			pieces = append(pieces, costed{whole(t), n - base})
			continue
		}
		// Too large alone: runs of messages. A run costs the thread's heading (measured
		// as a continuation, the longer one) and what each of its messages adds.
		head, err := size(piece{t: t, from: 1, to: 1})
		if err != nil {
			return nil, err
		}
		run := costed{p: piece{t: t}, cost: head - base}
		for i := range t.Messages {
			n, err := size(piece{t: t, from: i, to: i + 1})
			if err != nil {
				return nil, err
			}
			if run.p.to > run.p.from && base+run.cost+n-head > limit {
				pieces = append(pieces, run)
				run = costed{p: piece{t: t, from: i, to: i}, cost: head - base}
			}
			run.p.to, run.cost = i+1, run.cost+n-head
		}
		pieces = append(pieces, run)
	}
	var groups [][]piece
	var g []piece
	cost := 0
	for _, c := range pieces {
		if len(g) > 0 && base+cost+c.cost > limit {
			groups, g, cost = append(groups, g), nil, 0
		}
		g, cost = append(g, c.p), cost+c.cost
	}
	return append(groups, g), nil
}
