package lists

import (
	"errors"

	"crewmail/internal/mimetree"
	"crewmail/store"
)

// namedIDs are the Message-IDs a mail to crew+mute@ or crew+follow@ names, nearest first: those
// it replies to (In-Reply-To, then References from the end), then, for each message it carries
// as an attachment (a forward as message/rfc822, RFC 2046 §5.2.1), that message's own
// Message-ID and the ones it replies to. It walks the MIME tree, so readBody calls it before
// the write transaction.
func (m *inbound) namedIDs() []string {
	ids := m.refIDs()
	root, _ := mimetree.Walk(m.raw) // as far as it was read
	var walk func(p *mimetree.Part)
	walk = func(p *mimetree.Part) {
		if p == nil {
			return
		}
		if p.Message() {
			h := p.Children[0].Header
			for _, f := range []string{"Message-ID", "In-Reply-To"} {
				for _, id := range msgIDRE.FindAllStringSubmatch(h.Get(f), -1) {
					ids = append(ids, id[1])
				}
			}
			var refs []string
			for _, id := range msgIDRE.FindAllStringSubmatch(h.Get("References"), -1) {
				refs = append(refs, id[1])
			}
			for i := len(refs) - 1; i >= 0; i-- {
				ids = append(ids, refs[i])
			}
		}
		for _, c := range p.Children {
			walk(c)
		}
	}
	walk(root)
	return ids
}

// attention mutes (or, with follow, follows) for the sender the thread her mail names: the
// thread of the nearest archived Message-ID among namedIDs. A follow sends each new post of the
// thread at once whatever her mode, and keeps it out of her digests; a mute keeps it out of
// both. Either undoes the other. As with a Mute link, it acts at once and the answer goes to
// the member's address on file, so a forged one is seen and undone with one mail; a
// non-member hears that the address is not on the list, a mail naming no archived post that
// nothing was done.
func (s *Service) attention(tx store.Tx, c *command, follow bool) error {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		return s.answer(tx, c, []string{c.m.from + " is not on the list " + l.Address + ": nothing was done. Any mail from the list names the subscribed address in its unsubscribe link."})
	} else if err != nil {
		return err
	}
	var thread uint64
	for _, id := range c.m.threadIDs {
		// One id at a time: finding the thread must not merge the threads a mail names.
		if thread, err = tx.FindThread(l.Address, []string{id}); err != nil {
			return err
		} else if thread != 0 {
			break
		}
	}
	data := s.noticeData(l)
	data.Address = mem.Address
	if thread == 0 {
		data.Approve = c.rcpt
		return s.enqueueNotice(tx, l, notice{to: mem.Address, template: "thread-unknown", data: data, inReplyTo: c.m.messageID, replied: true}, c.res)
	}
	first, err := tx.PostMeta(l.Address, thread)
	if err != nil {
		return err
	}
	template := "thread-muted"
	if follow {
		template = "thread-followed"
		if err = tx.Follow(l.Address, thread, mem.ID); err == nil {
			err = tx.Unmute(l.Address, thread, mem.ID)
		}
	} else if err = tx.Mute(l.Address, thread, mem.ID); err == nil {
		err = tx.Unfollow(l.Address, thread, mem.ID)
	}
	if err != nil {
		return err
	}
	data.Subject = first.Subject
	data.Approve = s.UnmuteAddress(l.Address, thread)
	data.Reject = s.MuteAddress(l.Address, thread)
	return s.enqueueNotice(tx, l, notice{to: mem.Address, template: template, data: data, inReplyTo: c.m.messageID, replied: true}, c.res)
}
