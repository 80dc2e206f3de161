package lists

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/rawmsg"
	"crewmail/internal/token"
	"crewmail/store"
	"crewmail/templates"
)

// ReplyAddress is the address of a Reply link to archived post seq of list (digests).
func (s *Service) ReplyAddress(list string, seq uint64) string {
	return s.address(list, "r-"+s.seqToken(list, "reply", seq))
}

// MuteAddress mutes thread of list for whoever mails it; UnmuteAddress undoes that.
func (s *Service) MuteAddress(list string, thread uint64) string {
	return s.address(list, "mute-"+s.seqToken(list, "mute", thread))
}

// UnmuteAddress lets a muted thread reach whoever mails it again.
func (s *Service) UnmuteAddress(list string, thread uint64) string {
	return s.address(list, "unmute-"+s.seqToken(list, "mute", thread))
}

// DigestMessageID draws a Message-ID for a digest of list: a random number under the list's
// signature, which repliesToDigest knows again without a record of every digest sent.
func (s *Service) DigestMessageID(list string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "digest." + s.seqToken(list, token.Digest, binary.BigEndian.Uint64(b[:])>>1) + "@" + s.cfg.Hostname
}

// repliesToDigest reports whether m names a digest of list in In-Reply-To or References: a
// reply to it, however the client addressed it (Reply All copies crew@).
func (s *Service) repliesToDigest(list string, m *inbound) bool {
	for _, id := range m.refs {
		local, _, _ := strings.Cut(id, "@")
		if t, ok := strings.CutPrefix(local, "digest."); ok {
			if _, ok := s.parseSeqToken(list, token.Digest, t); ok {
				return true
			}
		}
	}
	return false
}

// Address is one of a list's own addresses: Address("crew@x", "help") = crew+help@x.
func (s *Service) Address(list, cmd string) string { return s.address(list, cmd) }

// acceptReply posts mail sent to a Reply link as an answer to the post the link names: with the
// list's policy and verification like any post, and with In-Reply-To and References naming
// that post when the client set neither, so the answer threads for everyone whatever wrote it.
// Adding fields on top leaves the author's DKIM signature valid.
func (s *Service) acceptReply(tx store.Tx, l store.List, t Target, env Envelope, m *inbound, kept []byte, res *Result) error {
	seq, _ := s.parseSeqToken(l.Address, "reply", t.Token)
	parent, praw, err := tx.Post(l.Address, seq)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(550, [3]int{5, 1, 1}, "the post this Reply link answers is no longer in the archive of %s; write to %s instead", l.Address, l.Address)
	} else if err != nil {
		return err
	}
	if m.header.Get("In-Reply-To") != "" || m.header.Get("References") != "" {
		return s.acceptPost(tx, l, env, m, kept, res)
	}
	var refs []string
	if ph, err := rawmsg.ReadHeader(praw); err == nil {
		for _, v := range ph.Values("References") {
			for _, id := range msgIDRE.FindAllStringSubmatch(v, -1) {
				if id[1] != parent.MessageID && !slices.Contains(refs, id[1]) {
					refs = append(refs, id[1])
				}
			}
		}
	}
	var h mail.Header
	h.SetMsgIDList("References", append(refs, parent.MessageID))
	h.SetMsgIDList("In-Reply-To", []string{parent.MessageID})
	var add bytes.Buffer
	if err := textproto.WriteHeader(&add, h.Header.Header); err != nil {
		return err
	}
	add.Truncate(add.Len() - 2) // WriteHeader ends the block with the empty line
	raw := append(add.Bytes(), m.raw...)
	m2, err := parseMessage(raw)
	if err != nil {
		return err
	}
	m2.messageID = m.messageID // one it was given on arrival, if it had none
	m2.excerpt, m2.postLines, m2.postRead, m2.own, m2.ownRead = m.excerpt, m.postLines, m.postRead, m.own, m.ownRead
	trace := kept[:len(kept)-len(m.raw)]
	return s.acceptPost(tx, l, env, m2, slices.Concat(trace, raw), res)
}

// mute keeps a thread out of the sender's mail (digests and single posts), or lets it back.
// It acts at once, and the answer goes to the member's address on file, so a forged mute is
// seen and undone with one mail.
func (s *Service) mute(tx store.Tx, c *command, token string, on bool) error {
	l := c.l
	thread, _ := s.parseSeqToken(l.Address, "mute", token)
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("mute from a non-member ignored", "list", l.Address, "from", c.m.from)
		return nil
	} else if err != nil {
		return err
	}
	first, err := tx.PostMeta(l.Address, thread)
	if err != nil {
		return refuse(550, [3]int{5, 1, 1}, "that conversation is no longer in the archive of %s", l.Address)
	}
	template := "thread-muted"
	if on {
		if err = tx.Mute(l.Address, thread, mem.ID); err == nil {
			err = tx.Unfollow(l.Address, thread, mem.ID)
		}
	} else {
		template = "thread-unmuted"
		if err = tx.Unmute(l.Address, thread, mem.ID); err == nil {
			err = tx.Unfollow(l.Address, thread, mem.ID) // back to her mode: not followed either
		}
	}
	if err != nil {
		return err
	}
	data := s.noticeData(l)
	data.Address, data.Subject = mem.Address, first.Subject
	data.Approve = s.UnmuteAddress(l.Address, thread)
	data.Reject = s.MuteAddress(l.Address, thread)
	return s.enqueueNotice(tx, l, notice{to: mem.Address, template: template, data: data, inReplyTo: c.m.messageID, replied: true}, c.res)
}

// digestReply answers a reply to a digest: it is never posted (it would quote the whole digest
// to everyone); a member gets the Reply links of the recent conversations, at the address on
// file, and their mail back whole when it is proven to come from them. Anyone else gets
// nothing: the links name the list's conversations, and an answer to a forged From would carry
// someone else's text, signed by the list's domain, to a stranger.
func (s *Service) digestReply(tx store.Tx, c *command) error {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("reply to a digest from a non-member ignored", "list", l.Address, "from", c.m.from)
		return nil
	} else if err != nil {
		return err
	}
	if !c.verified {
		ok, err := s.mayAnswerMail(tx, l, c.m, c.rcpt)
		if err != nil || !ok {
			return err
		}
	}
	since := s.Now().Add(-14 * 24 * time.Hour)
	latest := map[uint64]store.Post{}
	var order []uint64
	last, err := tx.LastSeq(l.Address)
	if err != nil {
		return err
	}
	from := uint64(0)
	if last > 500 {
		from = last - 500
	}
	if err := tx.PostsAfter(l.Address, from, func(p store.Post, _ []byte) error {
		if p.Received.Before(since) {
			return nil
		}
		if _, ok := latest[p.Thread]; !ok {
			order = append(order, p.Thread)
		}
		latest[p.Thread] = p
		return nil
	}); err != nil {
		return err
	}
	slices.SortFunc(order, func(a, b uint64) int { return -latest[a].Received.Compare(latest[b].Received) })
	var links []templates.ThreadLink
	for _, th := range order[:min(len(order), 10)] {
		p := latest[th]
		links = append(links, templates.ThreadLink{Subject: p.Subject, Reply: s.ReplyAddress(l.Address, p.Seq)})
	}
	data := s.noticeData(l)
	data.Address, data.Threads, data.Attached = mem.Address, links, c.verified
	n := notice{to: mem.Address, template: "digest-reply", data: data, inReplyTo: c.m.messageID, replied: true}
	if c.verified {
		n.attach = c.m.raw
	}
	return s.enqueueNotice(tx, l, n, c.res)
}

// BounceAddress is the VERP return path of mail from list to one member.
func (s *Service) BounceAddress(list string, member uint64) string {
	return s.bounceAddress(list, member)
}
