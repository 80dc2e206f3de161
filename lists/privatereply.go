package lists

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/listcopy"
	"crewmail/internal/token"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// The private reply relay (crew+p-TOKEN@): a member answers the author of one archived post
// alone, without the author's address, which a list that hides addresses never shows. The
// answer goes out From the list ('"Bob via Garden crew" <crew@…>', DMARC-aligned with the
// list's own signature) with Reply-To the replier, so the author answers the replier
// directly; it is never archived.
//
// The token names the post, not the member: a digest is composed once for every member with
// the same cursor, period and mutes, so the same address is in each of their copies. What the
// token does not say, the relay asks of whoever uses it: the envelope sender at RCPT and the
// From of the mail at DATA must be members of the list, and where the list wants its posts
// proven (-post verified), the mail must be proven too (DMARC-aligned DKIM or SPF). A stranger
// who finds the address in a forwarded digest is refused, and so is a token of another list
// (or of the list's former incarnation at the same address).

// privateReplyFor is how long a private reply address works after the digest or list copy
// that carries it was written.
const privateReplyFor = 30 * 24 * time.Hour

// PrivateReplyAddress is the address that forwards a member's answer to the author of
// archived post seq of list, and to nobody else.
func (s *Service) PrivateReplyAddress(list string, seq uint64) string {
	return s.address(list, "p-"+s.tokens.PrivateReply(s.tokenList(list), seq, s.Now().Add(privateReplyFor)))
}

// routePrivateReply is where crew+p-TOKEN@ leads: a token that is not genuine for list names
// no address of it (550 5.1.1, as any unknown address); an expired one is refused with a
// sentence that says so.
func (s *Service) routePrivateReply(list, tok string) (Target, error) {
	_, err := s.tokens.ParsePrivateReply(s.tokenList(list), tok, s.Now())
	switch {
	case errors.Is(err, token.ErrExpired):
		return Target{}, refuse(550, [3]int{5, 7, 1}, "this private reply address of %s has expired (they work for %d days); answer on the list, or through the link in a newer digest", list, int(privateReplyFor/(24*time.Hour)))
	case err != nil:
		return Target{}, refuse(550, [3]int{5, 1, 1}, "%s is not an address of the list %s", s.address(list, "p-"+tok), list)
	}
	return Target{List: list, Kind: KindPrivate, Token: tok}, nil
}

// Admit says whether the envelope sender from may send to t, at RCPT: for a private reply
// address, only a member of the list may, and not beyond her rate. Every other target takes
// anyone at RCPT (the list's policy is applied to the message).
func (s *Service) Admit(from string, t Target) error {
	if t.Kind != KindPrivate {
		return nil
	}
	if from == "" {
		// RFC 3834 §2: automatic mail (what the null sender sends) is never passed on.
		return refuse(550, [3]int{5, 7, 1}, "mail from the null sender is not passed on to a post's author")
	}
	addr, err := ParseAddress(from)
	if err != nil {
		return refuse(550, [3]int{5, 7, 1}, "only members of %s can answer an author privately through it", t.List)
	}
	return s.st.View(func(tx store.Tx) error {
		_, err := s.privateReply(tx, t, addr)
		return err
	})
}

// relay is what a private reply address leads to, for one replier.
type relay struct {
	replier, author store.Member
	post            store.Post
}

// privateReply checks that member addr may send to the private reply address t now, and
// returns her, the post the address names and its author, to whom it leads.
func (s *Service) privateReply(tx store.Tx, t Target, addr string) (r relay, err error) {
	seq, err := s.tokens.ParsePrivateReply(s.tokenList(t.List), t.Token, s.Now())
	if err != nil {
		_, err = s.routePrivateReply(t.List, t.Token)
		return r, err
	}
	r.replier, err = tx.Member(t.List, addr)
	if errors.Is(err, store.ErrNotFound) {
		return r, refuse(550, [3]int{5, 7, 1}, "only members of %s can answer an author privately through it, and %s is not one", t.List, addr)
	} else if err != nil {
		return r, err
	}
	r.post, err = tx.PostMeta(t.List, seq)
	if errors.Is(err, store.ErrNotFound) {
		return r, refuse(550, [3]int{5, 1, 1}, "the post this private reply address answers is no longer in the archive of %s", t.List)
	} else if err != nil {
		return r, err
	}
	r.author, err = tx.Member(t.List, r.post.From)
	if errors.Is(err, store.ErrNotFound) {
		return r, refuse(550, [3]int{5, 1, 1}, "the author of that post is no longer a member of %s, and the list passes nothing on to them", t.List)
	} else if err != nil {
		return r, err
	}
	if !r.author.Paused.IsZero() {
		// RFC 3463 X.2.1: the mailbox does not take mail; hers bounced until it was paused.
		return r, refuse(550, [3]int{5, 2, 1}, "mail from %s to the author of that post is paused because it bounced; answer on the list instead", t.List)
	}
	if !s.replies.allow(r.replier.Address, s.Now()) {
		return r, refuse(450, [3]int{4, 7, 1}, "%s has sent %d private replies through %s in the last hour, as many as it takes; please try again later", r.replier.Address, s.replies.perHour, t.List)
	}
	return r, nil
}

// acceptPrivateReply passes mail to a private reply address on to the author of the post it
// names, and to nobody else: not to the list, not into the archive (so not to IMAP either).
func (s *Service) acceptPrivateReply(tx store.Tx, l store.List, t Target, env Envelope, m *inbound, res *Result) error {
	id := listcopy.ID(l.Address)
	for _, v := range m.header.Values("List-Id") {
		if strings.Contains(strings.ToLower(v), "<"+id+">") {
			return refuse(550, [3]int{5, 4, 6}, "mail loop: this message has already been through %s", l.Address)
		}
	}
	for _, v := range m.header.Values("X-Loop") {
		if strings.EqualFold(strings.TrimSpace(v), l.Address) {
			return refuse(550, [3]int{5, 4, 6}, "mail loop: this message has already been through %s", l.Address)
		}
	}
	// RFC 3834 §2: a vacation notice or other automatic answer is not passed on.
	if m.automatic || env.From == "" {
		return refuse(550, [3]int{5, 7, 1}, "automatically submitted mail is not passed on to a post's author")
	}
	r, err := s.privateReply(tx, t, m.from)
	if err != nil {
		return err
	}
	if l.Post == vocab.PostVerified && !env.Auth.forCommand(t, s.cfg.Separator).Pass {
		return refuse(550, [3]int{5, 7, 1}, "%s asks that its members' mail be proven (DKIM or SPF aligned with From), and this mail from %s could not be; nothing was passed on", l.Address, m.from)
	}
	msg, err := relayed(l, m, r.post, r.author.Address)
	if err != nil {
		return refuse(550, [3]int{5, 6, 0}, "the message header cannot be rewritten to pass it on: %v", err)
	}
	d := store.Delivery{List: l.Address, Message: msg, From: s.bounceAddress(l.Address, r.author.ID), To: r.author.Address, Created: s.Now().UTC()}
	if _, err := tx.Enqueue(d); err != nil {
		return err
	}
	res.Queued++
	// The update may run again: what happens outside it waits for the commit.
	tx.AfterCommit(func() {
		s.replies.record(r.replier.Address, s.Now())
		s.log.Info("private reply passed on", "list", l.Address, "seq", r.post.Seq, "from", r.replier.Address, "to", r.author.Address, "msgid", m.messageID)
	})
	return nil
}

// relayed is the replier's mail as the author receives it: From the list on the replier's
// behalf (listcopy.Via), Reply-To the replier, To the author, and X-Loop so that it never
// comes back through the list; her DKIM-Signature, which the new From breaks, and Sender are
// removed, and everything else, the body above all, is left as she wrote it. When her mail
// program set neither In-Reply-To nor References (a mailto link from a digest does not), they
// name the post, so the answer threads under it for the author.
func relayed(l store.List, m *inbound, p store.Post, author string) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(m.kept))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, err
	}
	h := mail.Header{Header: message.Header{Header: th}}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 {
		from = []*mail.Address{{Address: m.from}}
	}
	replier := from[0]
	replier.Address = m.from
	if h.Get("In-Reply-To") == "" && h.Get("References") == "" && p.MessageID != "" {
		h.SetMsgIDList("References", []string{p.MessageID})
		h.SetMsgIDList("In-Reply-To", []string{p.MessageID})
	}
	h.Del("DKIM-Signature")
	h.Del("Sender")
	h.Del("Return-Path")
	h.Set("X-Loop", l.Address)
	h.SetAddressList("To", []*mail.Address{{Address: author}})
	h.SetAddressList("Reply-To", []*mail.Address{replier})
	h.SetAddressList("From", []*mail.Address{listcopy.Via(l, replier)})
	var buf bytes.Buffer
	if err := textproto.WriteHeader(&buf, h.Header.Header); err != nil {
		return nil, err
	}
	if _, err := io.Copy(&buf, br); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// replyRate counts each replier's private replies over the last hour, so the relay cannot be
// used to flood an author (or to send much of anything through the list's good name). It is
// kept in memory, like smtpd's rates: a restart forgets it, which costs at most one more hour's
// worth.
type replyRate struct {
	perHour int
	mu      sync.Mutex
	sent    map[string][]time.Time // replier → when, oldest first, within the last hour
}

// allow reports whether addr may send one more at now.
func (r *replyRate) allow(addr string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recent(addr, now)) < r.perHour
}

// record counts one sent by addr at now.
func (r *replyRate) record(addr string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent == nil {
		r.sent = map[string][]time.Time{}
	}
	r.sent[addr] = append(r.recent(addr, now), now)
	if len(r.sent) > 10000 { // bounded: forget whoever has sent nothing within the hour
		for a := range r.sent {
			if len(r.recent(a, now)) == 0 {
				delete(r.sent, a)
			}
		}
	}
}

// recent is what addr sent within the hour before now; r.mu is held.
func (r *replyRate) recent(addr string, now time.Time) []time.Time {
	ts := r.sent[addr]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-time.Hour)) {
		i++
	}
	if i > 0 {
		ts = ts[i:]
		if r.sent != nil {
			r.sent[addr] = ts
		}
	}
	return ts
}
