package lists

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"crewmail/internal/listcopy"
	"crewmail/internal/token"
	"crewmail/internal/vocab"
	"crewmail/store"
	"crewmail/templates"
)

// notice is a mail crewmail writes to one person from a template.
type notice struct {
	to       string
	template string
	data     templates.Notice
	// inReplyTo is the Message-ID of the mail this answers; empty for a notice nobody's mail
	// asked for (RFC 3834 §5: Auto-Submitted is then auto-generated, not auto-replied).
	inReplyTo string
	replied   bool   // it answers someone's mail even without a Message-ID to cite
	attach    []byte // a message to attach whole (message/rfc822), for moderators
	// files are attachments (a member's export): such a notice is never folded into the
	// results of a mail to crew-request@ and goes to the address on file on its own.
	files []file
	// note is a paragraph put above the signature: what an answer adds about the answers
	// themselves (see noteDeferred).
	note string
}

// noticeData is what every notice has: the list's addresses and settings. Each notice fills
// in what it is about.
func (s *Service) noticeData(l store.List) templates.Notice {
	d := templates.Notice{
		ListName: l.Name, List: l.Address, Post: l.Address,
		Help: s.address(l.Address, "help"), Unsubscribe: s.address(l.Address, "unsubscribe"),
		Subscribe: s.address(l.Address, "subscribe"), Owner: s.address(l.Address, "owner"),
		Request: requestAddress(l.Address),
		Each:    s.address(l.Address, string(vocab.Each)), Daily: s.address(l.Address, string(vocab.Daily)),
		Weekly: s.address(l.Address, string(vocab.Weekly)), Nomail: s.address(l.Address, string(vocab.NoMail)),
		NewPassword: s.address(l.Address, "password"),
		Policy:      l.Post, Join: l.Join, Moderated: l.Moderated, ArchiveURL: l.ArchiveURL,
		Hostname: s.cfg.Hostname, Description: l.Description,
	}
	if s.cfg.BaseURL != "" {
		d.Guide = s.cfg.BaseURL + "/guide?list=" + url.QueryEscape(l.Address)
	}
	if s.cfg.DailyAt != "" {
		zone := s.cfg.Zone
		if l.Timezone != "" {
			zone = l.Timezone
		}
		d.DailyAt, d.WeeklyOn, d.Zone = s.cfg.DailyAt, s.cfg.WeeklyOn, zone
	}
	return d
}

func day(t time.Time) string { return t.UTC().Format("Monday 2 January 2006") }

func moment(t time.Time) string { return t.UTC().Format("Monday 2 January 2006, 15:04 MST") }

// enqueueNotice renders n into a mail from the list and puts it in the outbox. Notices are
// automatic mail (RFC 3834 §5) sent with the null return path, so they never cause more.
// A notice that asks for a confirmation comes from its confirm address, so a reply reaches it
// even from a client that ignores Reply-To; any other from the help address.
func (s *Service) enqueueNotice(tx store.Tx, l store.List, n notice, res *Result) error {
	// Values a sender wrote go into notices as single lines (see foldNotice), folded
	// before anything renders them, the one answer collected for a mail included.
	n.data = foldNotice(n.data)
	if ok, err := s.passAnswer(tx, l, &n, res); err != nil || !ok {
		return err
	}
	// Every mail that still reaches a member whose delivery is paused says so, and how to
	// resume (the notice of the pause says it itself).
	if n.template != "bounce-paused" {
		note, err := s.pausedNote(tx, l, n.to)
		if err != nil {
			return err
		}
		if note != "" {
			n.note = strings.TrimSpace(n.note + "\n\n" + note)
		}
	}
	subject, body, err := s.tpl.Render(n.template, n.data)
	if err != nil {
		return err
	}
	if n.note != "" {
		text, sig, ok := strings.Cut(body, "\n-- \n")
		body = strings.TrimRight(text, "\n") + "\n\n" + n.note + "\n"
		if ok {
			body += "\n-- \n" + sig
		}
	}
	if body, err = s.signInLine(tx, l, n, body); err != nil {
		return err
	}
	// Wrapped only now, with every address filled in, and flowed (RFC 3676), so a phone
	// rewraps it to its screen.
	body = templates.Flow(body)
	from := s.address(l.Address, "help")
	if n.data.Confirm != "" {
		from = n.data.Confirm
	}
	auto := "auto-generated"
	if n.inReplyTo != "" || n.replied {
		auto = "auto-replied"
	}
	// Each Set puts its field on top: set them in reverse of the order a reader expects.
	var h mail.Header
	if n.attach == nil && n.files == nil {
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		h.Set("Content-Type", "text/plain; charset=utf-8; format=flowed")
	} else {
		h.SetContentType("multipart/mixed", map[string]string{"boundary": newBoundary()})
	}
	h.Set("MIME-Version", "1.0")
	listcopy.Block{Name: l.Name, Address: l.Address, Loop: true}.Add(&h.Header.Header)
	h.Set("Auto-Submitted", auto)
	if n.inReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{n.inReplyTo})
		h.SetMsgIDList("References", []string{n.inReplyTo})
	}
	h.SetMessageID(s.newMessageID())
	h.SetDate(s.Now())
	h.SetSubject(subject)
	if from != s.address(l.Address, "help") {
		h.SetAddressList("Reply-To", []*mail.Address{{Address: from}})
	} else if replyToOwners[n.template] && len(l.Owners) > 0 {
		// A reply to these is a question for people: the help robot would answer it with
		// the help text, and nobody would read it.
		h.SetAddressList("Reply-To", []*mail.Address{{Address: s.address(l.Address, "owner")}})
	}
	h.SetAddressList("To", []*mail.Address{{Address: n.to}})
	h.SetAddressList("From", []*mail.Address{{Name: l.Name, Address: from}})
	var buf bytes.Buffer
	switch {
	case n.files != nil:
		err = writeWithFiles(&buf, h, body, n.files)
	case n.attach == nil:
		err = writeSingle(&buf, h, body)
	default:
		err = writeWithMessage(&buf, h, body, n.attach)
	}
	if err != nil {
		return fmt.Errorf("write notice %s: %w", n.template, err)
	}
	if _, err := tx.Enqueue(store.Delivery{List: l.Address, Message: buf.Bytes(), To: n.to, Created: s.Now().UTC()}); err != nil {
		return err
	}
	res.Queued++
	return nil
}

// signInLine ends body, a notice to n.to, with a line that signs her in to the web reader
// (Config.SignIn) when she is a member of l: not for a stranger, nor for someone asked to
// confirm her joining, nor for one who just left; the web sign-in mail has its own link.
func (s *Service) signInLine(tx store.Members, l store.List, n notice, body string) (string, error) {
	if s.cfg.SignIn == nil || n.template == "web-signin" {
		return body, nil
	}
	if _, err := tx.Member(l.Address, n.to); errors.Is(err, store.ErrNotFound) {
		return body, nil
	} else if err != nil {
		return "", err
	}
	return strings.TrimRight(body, "\n") + "\nRead and search the archive: " + s.cfg.SignIn(n.to, s.Now()) + "\n", nil
}

// replyToOwners are the notices that invite a reply from a person: their Reply-To is
// crew+owner@.
var replyToOwners = map[string]bool{
	"welcome": true, "goodbye": true, "left": true, "join-declined": true, "join-waiting": true, "post-rejected": true,
	"held-expired": true, "administrivia": true, "nothing-done": true, "question-forwarded": true,
}

func writeSingle(buf *bytes.Buffer, h mail.Header, body string) error {
	w, err := mail.CreateSingleInlineWriter(buf, h)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

// file is an attachment of a notice.
type file struct {
	name, contentType string
	data              []byte
}

// writeWithFiles writes body followed by files, each an attachment in base64 (RFC 2183).
func writeWithFiles(buf *bytes.Buffer, h mail.Header, body string, files []file) error {
	mw, err := message.CreateWriter(buf, h.Header)
	if err != nil {
		return err
	}
	var th message.Header
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	th.Set("Content-Type", "text/plain; charset=utf-8; format=flowed")
	tw, err := mw.CreatePart(th)
	if err != nil {
		return err
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	for _, f := range files {
		var ah message.Header
		ah.Set("Content-Transfer-Encoding", "base64")
		ah.SetContentDisposition("attachment", map[string]string{"filename": f.name})
		ah.SetContentType(f.contentType, map[string]string{"name": f.name})
		aw, err := mw.CreatePart(ah)
		if err != nil {
			return err
		}
		if _, err := aw.Write(f.data); err != nil {
			return err
		}
		if err := aw.Close(); err != nil {
			return err
		}
	}
	return mw.Close()
}

// writeWithMessage writes body followed by msg attached whole (RFC 2046 §5.2.1: a
// message/rfc822 part is never encoded, so it is 7bit or 8bit as it is). h carries the
// multipart/mixed Content-Type with its boundary, so the fields stay in the order set.
func writeWithMessage(buf *bytes.Buffer, h mail.Header, body string, msg []byte) error {
	mw, err := message.CreateWriter(buf, h.Header)
	if err != nil {
		return err
	}
	var th message.Header
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	th.Set("Content-Type", "text/plain; charset=utf-8; format=flowed")
	tw, err := mw.CreatePart(th)
	if err != nil {
		return err
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	enc := "7bit"
	for _, c := range msg {
		if c >= 0x80 {
			enc = "8bit"
			break
		}
	}
	var ah message.Header
	ah.Set("Content-Transfer-Encoding", enc)
	ah.Set("Content-Disposition", "inline")
	ah.Set("Content-Type", "message/rfc822")
	aw, err := mw.CreatePart(ah)
	if err != nil {
		return err
	}
	if _, err := aw.Write(msg); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	return mw.Close()
}

func newBoundary() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return "=_" + token.Encode(b)
}

// mayAnswer reports whether an answer may go to addr now: at most one an hour to an address
// that did not prove who it is, so nobody can mail-bomb a stranger through the list. It
// records the answer it allows.
func (s *Service) mayAnswer(tx store.Tx, l store.List, addr string) (bool, error) {
	now := s.Now().UTC()
	if p, err := tx.PendingFor(l.Address, store.PendingNotice, addr); err == nil && now.Before(p.Expires) {
		return false, nil
	}
	_, err := tx.PutPending(l.Address, store.Pending{Kind: store.PendingNotice, Address: addr, Created: now, Sent: now, Expires: now.Add(answerEvery)})
	return err == nil, err
}

// answerEvery is how often an address that did not prove itself may get an answer.
const answerEvery = time.Hour
