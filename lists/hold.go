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
	return s.release(tx, l, id, "confirmed", res)
}

// release posts held post id of l, recording how it was vouched for ("confirmed" by its
// author, "approved" by the operator).
func (s *Service) release(tx *store.Tx, l store.List, id uint64, verified string, res *Result) error {
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
	return s.distribute(tx, l, m, h.Raw, store.Post{Verified: verified, DMARCPolicy: h.DMARCPolicy}, res)
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
	err = s.st.View(func(tx *store.Tx) error {
		return tx.HeldPosts(laddr, func(h store.Held) error {
			hp := HeldPost{Held: h}
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
	return s.decide(list, id, true)
}

// Reject deletes a held post without posting it.
func (s *Service) Reject(list string, id uint64) error {
	_, err := s.decide(list, id, false)
	return err
}

func (s *Service) decide(list string, id uint64, approve bool) (Result, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return Result{}, err
	}
	var res Result
	err = s.st.Update(func(tx *store.Tx) error {
		res = Result{}
		l, err := tx.List(laddr)
		if err != nil {
			return fmt.Errorf("there is no list %s", laddr)
		}
		if _, err := tx.HeldPost(laddr, id); err != nil {
			return fmt.Errorf("%s has no held post %d", laddr, id)
		}
		if !approve {
			return tx.Release(laddr, id)
		}
		return s.release(tx, l, id, "approved", &res)
	})
	if err == nil && res.Queued > 0 {
		s.Enqueued()
	}
	return res, err
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
