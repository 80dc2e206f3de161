package lists

import (
	"errors"
	"fmt"
	"time"

	"crewmail/store"
)

// maxHeldPerMember bounds the confirmations a forger can make crewmail send to one member.
const maxHeldPerMember = 5

// holdForConfirmation keeps a member's post that could not be verified and asks the member, at
// the address on file, whether they sent it. A forger never sees the question; a member whose
// domain has no DKIM can still post, by replying.
func (s *Service) holdForConfirmation(tx *store.Tx, l store.List, auth Auth, m *inbound, kept []byte, res *Result) error {
	pending := 0
	if err := tx.HeldPosts(l.Address, func(h store.Held) error {
		if h.From == m.from {
			pending++
		}
		return nil
	}); err != nil {
		return err
	}
	if pending >= maxHeldPerMember {
		return refuse(550, [3]int{5, 7, 1}, "%d posts from %s already wait for confirmation; this one could not be verified and is refused", pending, m.from)
	}
	now := s.Now().UTC()
	reason := auth.Reason
	if reason == "" {
		reason = "no DMARC-aligned DKIM signature or SPF pass"
	}
	h, err := tx.Hold(l.Address, store.Held{From: m.from, Reason: reason, Received: now, Expires: now.Add(s.cfg.ConfirmWithin), Raw: kept, DMARCPolicy: auth.DMARCPolicy})
	if err != nil {
		return err
	}
	data := s.noticeData(l)
	data["Address"] = m.from
	data["Subject"] = m.subject
	data["Received"] = now.Format("Monday 2 January 2006, 15:04 MST")
	data["Confirm"] = s.address(l.Address, "confirm-"+s.confirmToken(l.Address, actionReleasePost, h.ID, h.Expires))
	data["Expires"] = h.Expires.Format("Monday 2 January 2006")
	data["Reason"] = reason
	res.Held++
	return s.enqueueNotice(tx, l, m.from, "confirm-post", data, "", res)
}

// releaseHeld posts a held post its author confirmed. Confirming twice, or after it expired,
// does nothing.
func (s *Service) releaseHeld(tx *store.Tx, l store.List, id uint64, res *Result) error {
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
	if _, dup := tx.MessageID(l.Address, m.messageID); dup {
		res.Duplicates = append(res.Duplicates, l.Address)
		return nil
	}
	return s.distribute(tx, l, m, h.Raw, store.Post{Verified: "confirmed", DMARCPolicy: h.DMARCPolicy}, res)
}

// Sweep drops held posts whose confirmation did not come in time. It returns how many.
func (s *Service) Sweep() (int, error) {
	now := s.Now()
	var n int
	err := s.st.Update(func(tx *store.Tx) error {
		n = 0
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
				n++
			}
		}
		return nil
	})
	if n > 0 {
		s.log.Info("unconfirmed held posts expired", "count", n)
	}
	return n, err
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
		}
	}
}
