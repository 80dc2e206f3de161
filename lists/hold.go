package lists

import (
	"errors"
	"fmt"
	"time"

	"crewmail/internal/refusal"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// maxHeldPerSender bounds the posts from one address that may wait at once, and so the mail a
// forger can make crewmail send about them.
const maxHeldPerSender = 5

// moderationWithin is how long a post waits for a moderator.
const moderationWithin = 14 * 24 * time.Hour

// checkHeldRoom refuses a post when maxHeldPerSender from its sender already wait. Proven and
// unproven posts count apart: posts forged under a member's address never stop her proven ones.
func (s *Service) checkHeldRoom(tx store.Tx, l store.List, from string, proven bool) error {
	pending := 0
	if err := tx.HeldPosts(l.Address, func(h store.Held) error {
		if h.From == from && (h.Verified != vocab.Unverified) == proven {
			pending++
		}
		return nil
	}); err != nil {
		return err
	}
	if pending >= maxHeldPerSender {
		if proven {
			return refuse(550, [3]int{5, 7, 1}, "%d posts from %s already wait to be moderated; this one is refused", pending, from)
		}
		return refuse(550, [3]int{5, 7, 1}, "%d posts from %s already wait to be confirmed or moderated; this one is refused. If they were not yours, answer no to a mail asking whether you sent one, and they are deleted", pending, from)
	}
	return nil
}

// holdForConfirmation keeps a member's post that could not be verified and asks the member, at
// the address on file, whether they sent it. A forger never sees the question; a member whose
// domain has no DKIM can still post, by replying.
func (s *Service) holdForConfirmation(tx store.Tx, l store.List, auth Auth, m *inbound, kept []byte, res *Result) error {
	if err := s.checkHeldRoom(tx, l, m.from, false); err != nil {
		return err
	}
	now := s.Now().UTC()
	reason := auth.Reason
	if reason == "" {
		reason = "no DMARC-aligned DKIM signature or SPF pass"
	}
	h, err := tx.Hold(l.Address, store.Held{Kind: store.HeldForAuthor, From: m.from, Reason: reason, Received: now, Expires: now.Add(s.cfg.ConfirmWithin), Raw: kept, DMARCPolicy: auth.DMARCPolicy, Evidence: auth.Evidence, Excerpt: m.excerpt})
	if err != nil {
		return err
	}
	data := s.noticeData(l)
	data.Address, data.Subject, data.Received = m.from, m.subject, moment(now)
	data.Confirm = s.confirmAddress(l.Address, actionReleasePost, h.ID, h.Expires)
	data.Reject = s.confirmAddress(l.Address, actionDisownPost, h.ID, h.Expires)
	data.Expires, data.Reason = day(h.Expires), reason
	data.Excerpt = m.excerpt
	res.Held++
	return s.enqueueNotice(tx, l, notice{to: m.from, template: "confirm-post", data: data}, res)
}

// holdForModeration keeps a post for the moderators and sends each the post with addresses to
// approve or reject it.
func (s *Service) holdForModeration(tx store.Tx, l store.List, h store.Held, res *Result) error {
	return s.holdForModerators(tx, l, h, true, res)
}

// holdForModerators is holdForModeration; tellAuthor false leaves the author's answer to the
// caller, which says more than that the post waits (administrivia: what to do instead).
func (s *Service) holdForModerators(tx store.Tx, l store.List, h store.Held, tellAuthor bool, res *Result) error {
	waiting, unnoticed, unproven, err := s.moderationQueue(tx, l)
	if err != nil {
		return err
	}
	if h.ID == 0 {
		if err := s.checkHeldRoom(tx, l, h.From, h.Verified != vocab.Unverified); err != nil {
			return err
		}
		if h.Verified == vocab.Unverified && unproven >= maxHeldForModerators {
			s.log.Warn("post deferred: the list holds as many unproven posts for its moderators as it may", "list", l.Address, "from", h.From, "waiting", waiting)
			return refuse(452, [3]int{4, 3, 1}, "%s holds as many posts for its moderators as it can; please try again later", l.Address)
		}
	}
	notify, err := s.mayTellModerators(tx, l)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	h.Kind, h.Expires, h.Unnoticed = store.HeldForModerator, now.Add(moderationWithin), !notify
	if h.ID == 0 {
		h, err = tx.Hold(l.Address, h)
	} else {
		err = tx.PutHeld(l.Address, h)
	}
	if err != nil {
		return err
	}
	res.Held++
	s.log.Info("post held for the moderators", "list", l.Address, "from", h.From, "id", h.ID, "reason", h.Reason, "announced", notify)
	// The author hears that it waits (at an address that is theirs: see tellPoster), so that
	// silence does not read as a post that went out.
	if tellAuthor {
		if err := s.tellPoster(tx, l, h, "post-waiting", "", false, res); err != nil {
			return err
		}
	}
	if !notify {
		return nil
	}
	return s.tellModerators(tx, l, h, waiting, unnoticed, res)
}

// tellModerators sends each moderator held post h with addresses to approve or reject it;
// waiting other posts wait too, unnoticed of them not yet sent.
func (s *Service) tellModerators(tx store.Tx, l store.List, h store.Held, waiting, unnoticed int, res *Result) error {
	data := s.noticeData(l)
	data.Waiting, data.Unnoticed = waiting, unnoticed
	data.From, data.Reason, data.Received = h.From, h.Reason, moment(h.Received)
	data.Excerpt = h.Excerpt // read before the transaction, when the post came
	if m, err := parseMessage(h.Raw); err == nil {
		data.Subject = m.subject
		if f := m.header.Get("From"); f != "" {
			data.From = f
		}
	}
	data.Confirm = s.confirmAddress(l.Address, actionModerate, h.ID, h.Expires)
	data.Approve = s.confirmAddress(l.Address, actionApprovePost, h.ID, h.Expires)
	data.Reject = s.confirmAddress(l.Address, actionRejectPost, h.ID, h.Expires)
	data.Expires = day(h.Expires)
	mods := s.moderators(l)
	if len(mods) == 0 {
		s.log.Warn("a post waits for moderation but the list has no owners or moderators", "list", l.Address, "id", h.ID)
	}
	for _, to := range mods {
		if err := s.enqueueNotice(tx, l, notice{to: to, template: "moderation", data: data, attach: h.Raw}, res); err != nil {
			return err
		}
	}
	return nil
}

// moderators decide on held posts: the list's moderators, or else its owners.
func (s *Service) moderators(l store.List) []string {
	if len(l.Moderators) > 0 {
		return l.Moderators
	}
	return l.Owners
}

// releaseHeld posts a held post its author confirmed, or hands it to the moderators when the
// list is moderated. Confirming twice, or after it expired, does nothing.
func (s *Service) releaseHeld(tx store.Tx, l store.List, id uint64, res *Result) error {
	h, err := tx.HeldPost(l.Address, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && h.Kind == store.HeldForModerator) {
		return nil
	} else if err != nil {
		return err
	}
	if l.Moderated && !s.Now().After(h.Expires) {
		h.Verified, h.Reason = vocab.VerifiedConfirmed, "the list is moderated"
		return s.holdForModeration(tx, l, h, res)
	}
	if mem, err := tx.Member(l.Address, h.From); err == nil && l.ModerateFirstPosts && !mem.Posted && !s.Now().After(h.Expires) {
		h.Verified, h.Reason = vocab.VerifiedConfirmed, "it is "+h.From+"'s first post, and first posts wait for a moderator"
		return s.holdForModeration(tx, l, h, res)
	}
	return s.release(tx, l, id, vocab.VerifiedConfirmed, res)
}

// actionDisownPost is a confirm action (see commands.go) on a held post ID: its author says
// they did not send it.
const actionDisownPost byte = 10

// disownHeld drops held post id, which its author says they did not send, and with it every
// other post waiting for the same address's confirmation: someone else is using the address.
// Posts the author confirmed, or that were proven, are not touched.
func (s *Service) disownHeld(tx store.Tx, l store.List, id uint64) error {
	h, err := tx.HeldPost(l.Address, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && h.Kind == store.HeldForModerator) {
		return nil
	} else if err != nil {
		return err
	}
	var drop []uint64
	if err := tx.HeldPosts(l.Address, func(o store.Held) error {
		if o.From == h.From && o.Kind != store.HeldForModerator && o.Verified == vocab.Unverified {
			drop = append(drop, o.ID)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range drop {
		if err := tx.Release(l.Address, id); err != nil {
			return err
		}
	}
	s.log.Info("held posts dropped: their author did not send them", "list", l.Address, "from", h.From, "count", len(drop))
	return nil
}

// disowns reports whether a reply to "Did you send this?" says no (see refusal.Refuses):
// "no", "not me", "I didn't send this", in the common languages. Any other reply confirms.
func (c *command) disowns() bool {
	return refusal.Refuses(c.m.lines(refusalLines), false)
}

// refusalLines is how many of the first lines of an answer to a confirmation are read for a
// refusal: the answer is on top.
const refusalLines = 3

// release posts held post id of l, recording how it was vouched for: verified unless the post
// was verified on arrival (vocab.VerifiedConfirmed by its author, vocab.VerifiedApproved by a
// moderator).
func (s *Service) release(tx store.Tx, l store.List, id uint64, verified vocab.Verified, res *Result) error {
	h, err := tx.HeldPost(l.Address, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := tx.Release(l.Address, id); err != nil {
		return err
	}
	if s.Now().After(h.Expires) {
		return nil
	}
	m, err := parseMessage(h.Raw)
	if err != nil {
		return fmt.Errorf("held post %d of %s no longer parses: %w", id, l.Address, err)
	}
	if _, dup, err := tx.MessageID(l.Address, m.messageID); err != nil {
		return err
	} else if dup {
		res.Duplicates = append(res.Duplicates, l.Address)
		return nil
	}
	if h.Verified != vocab.Unverified {
		verified = h.Verified
	}
	return s.distribute(tx, l, m, h.Raw, store.Post{Verified: verified, AuthDomain: h.AuthDomain, DKIMAligned: h.DKIMAligned, DMARCPolicy: h.DMARCPolicy, Evidence: h.Evidence}, res)
}

// moderateByMail is a moderator's answer to a held post: by the approve or reject address, or
// by a reply whose first line says which.
func (s *Service) moderateByMail(tx store.Tx, c *command, action byte, id uint64) error {
	l := c.l
	h, err := tx.HeldPost(l.Address, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && h.Kind != store.HeldForModerator) {
		return s.answer(tx, c, []string{s.decidedAlready(tx, l, "post", id, "This post")})
	} else if err != nil {
		return err
	}
	reason := ""
	if action == actionModerate {
		approve, why, ok := c.decision()
		if !ok {
			return s.answer(tx, c, []string{fmt.Sprintf("Your reply about the post from %s begins neither with approve nor with reject, so nothing was done. Reply again with one of them on the first line.", h.From)})
		}
		action, reason = actionRejectPost, why
		if approve {
			action = actionApprovePost
		}
	}
	if err := s.rememberDecision(tx, l, "post", id, c.m.from, action == actionApprovePost, "approved", "rejected", h.Expires); err != nil {
		return err
	}
	subject := ""
	if m, err := parseMessage(h.Raw); err == nil {
		subject = m.subject
	}
	if action == actionApprovePost {
		s.log.Info("held post approved", "list", l.Address, "id", id, "by", c.m.from)
		if err := s.release(tx, l, id, vocab.VerifiedApproved, c.res); err != nil {
			return err
		}
		// The decision is acknowledged to the moderator, at the address the token was sent
		// to, so not held back like answers to unproven mail.
		return s.sendResults(tx, c, []string{fmt.Sprintf("Done: the post from %s, %q, went to the list.", h.From, subject)}, "")
	}
	s.log.Info("held post rejected", "list", l.Address, "id", id, "by", c.m.from)
	if err := s.reject(tx, l, h, reason, c.res); err != nil {
		return err
	}
	what := fmt.Sprintf("Done: the post from %s, %q, was turned down", h.From, subject)
	if reason != "" {
		what += ", with your reason: " + reason
	}
	return s.sendResults(tx, c, []string{what + "."}, "")
}

// reject drops a held post and tells its author why, when the author is known to be real.
func (s *Service) reject(tx store.Tx, l store.List, h store.Held, reason string, res *Result) error {
	if err := tx.Release(l.Address, h.ID); err != nil {
		return err
	}
	// The post goes back to its author, so that it is not lost, but only to an author proven
	// to have sent it: a forger's text is never mailed to the address it forged.
	return s.tellPoster(tx, l, h, "post-rejected", reason, h.Verified != vocab.Unverified, res)
}

// tellPoster writes to the author of a post held for the moderators, unless the From address
// may be forged (not verified, not a member): a notice to a forged address is backscatter. A
// post held for its author's confirmation is not followed up: its member was asked already, and
// silence means they did not send it. giveBack attaches the post, for an author proven to have
// written it.
func (s *Service) tellPoster(tx store.Tx, l store.List, h store.Held, template, reason string, giveBack bool, res *Result) error {
	to := h.From
	if h.Kind != store.HeldForModerator {
		return nil
	}
	if _, err := tx.Member(l.Address, h.From); err != nil && h.Verified == vocab.Unverified {
		s.log.Info("author of a held post not told: the address may be forged", "list", l.Address, "from", h.From, "id", h.ID, "notice", template)
		return nil
	}
	data := s.noticeData(l)
	data.Address, data.Reason, data.Received, data.Expires = to, reason, moment(h.Received), day(h.Expires)
	n := notice{to: to, template: template, data: data}
	if giveBack && h.Verified != vocab.Unverified {
		n.attach, n.data.Attached = h.Raw, true
	}
	if m, err := parseMessage(h.Raw); err == nil {
		n.data.Subject = m.subject
		n.inReplyTo = m.messageID
	}
	return s.enqueueNotice(tx, l, n, res)
}

// HeldPost describes a held post for the operator.
type HeldPost struct {
	store.Held
	Subject string
}

// Held returns the posts of list waiting for something, oldest first.
func (s *Service) Held(list string) ([]HeldPost, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return nil, err
	}
	var out []HeldPost
	err = s.st.View(func(tx store.Tx) error {
		return tx.HeldPosts(laddr, func(h store.Held) error {
			hp := HeldPost{Held: h}
			if hp.Kind == "" {
				hp.Kind = store.HeldForAuthor
			}
			if m, err := parseMessage(h.Raw); err == nil {
				hp.Subject = m.subject
			}
			out = append(out, hp)
			return nil
		})
	})
	return out, notFound(err, "there is no list %s", laddr)
}

// Approve posts a held post to the list as the operator's decision.
func (s *Service) Approve(list string, id uint64) (Result, error) {
	return s.decide(list, id, true, "")
}

// Reject drops a held post without posting it; its author is told, with reason.
func (s *Service) Reject(list string, id uint64, reason string) error {
	_, err := s.decide(list, id, false, reason)
	return err
}

func (s *Service) decide(list string, id uint64, approve bool, reason string) (Result, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return Result{}, err
	}
	return s.update(func(tx store.Tx, res *Result) error {
		l, err := tx.List(laddr)
		if err != nil {
			return fmt.Errorf("there is no list %s", laddr)
		}
		h, err := tx.HeldPost(laddr, id)
		if err != nil {
			return fmt.Errorf("%s has no held post %d", laddr, id)
		}
		if !approve {
			return s.reject(tx, l, h, reason, res)
		}
		return s.release(tx, l, id, vocab.VerifiedApproved, res)
	})
}

// Sweep drops held posts and pending actions whose time ran out, telling the authors of
// dropped posts (nothing held disappears silently). It returns how many posts it dropped.
func (s *Service) Sweep() (int, error) {
	now := s.Now()
	var n int
	var res Result
	err := s.st.Update(func(tx store.Tx) error {
		n, res = 0, Result{}
		// Another process on the same database sweeping now does this sweep.
		if mine, err := store.TryJob(tx, "sweep"); err != nil || !mine {
			return err
		}
		ls, err := tx.Lists()
		if err != nil {
			return err
		}
		for _, l := range ls {
			var expired []store.Held
			if err := tx.HeldPosts(l.Address, func(h store.Held) error {
				if now.After(h.Expires) {
					expired = append(expired, h)
				}
				return nil
			}); err != nil {
				return err
			}
			for _, h := range expired {
				if err := tx.Release(l.Address, h.ID); err != nil {
					return err
				}
				if err := s.tellPoster(tx, l, h, "held-expired", "", false, &res); err != nil {
					return err
				}
				n++
			}
			if err := s.announceHeld(tx, l, &res); err != nil {
				return err
			}
			if err := s.sweepPending(tx, l, now, &res); err != nil {
				return err
			}
		}
		return nil
	})
	if n > 0 {
		s.log.Info("held posts expired", "count", n)
	}
	if err == nil && res.Queued > 0 {
		s.Enqueued()
	}
	return n, err
}

// sweepPending drops pending actions that ran out; a join request no owner decided is
// answered, so the requester is not left waiting.
func (s *Service) sweepPending(tx store.Tx, l store.List, now time.Time, res *Result) error {
	var expired []store.Pending
	if err := tx.PendingActions(l.Address, func(p store.Pending) error {
		if now.After(p.Expires) {
			expired = append(expired, p)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, p := range expired {
		if err := tx.DeletePending(l.Address, p.ID); err != nil {
			return err
		}
		if p.Kind == store.PendingOwnerNotices && len(p.Lines) > 0 {
			data := s.noticeData(l)
			data.Lines = p.Lines
			for _, owner := range l.Owners {
				if err := s.enqueueNotice(tx, l, notice{to: owner, template: "owner-daily", data: data}, res); err != nil {
					return err
				}
			}
		}
		if p.Kind == store.PendingRequest {
			data := s.noticeData(l)
			data.Address, data.Reason = p.Address, "No owner answered within a week."
			if err := s.enqueueNotice(tx, l, notice{to: p.Address, template: "join-declined", data: data}, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// RunSweeper calls Sweep every interval until stop is closed.
func (s *Service) RunSweeper(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := s.Sweep(); err != nil {
				s.log.Error("cannot expire held posts", "err", err)
			}
			if _, err := s.ApplyRetention(); err != nil {
				s.log.Error("cannot redact the posts past their list's retention", "err", err)
			}
		}
	}
}
