package lists

import (
	"errors"
	"time"

	"crewmail/internal/vocab"
	"crewmail/store"
)

// Posts held for the moderators can come from ever new addresses (on a list that holds
// non-members' posts, a forger only has to vary the From), so the bound per sender does not
// bound the moderators' mail: a list sends them at most moderationNoticesPerHour notices an
// hour and holds at most maxHeldForModerators posts whose author is not proven. Posts beyond
// the first bound wait quietly, are counted in the notices that go, and are announced by the
// sweeper in later hours; beyond the second the sending server is asked to try again later.
// Proven posts (members' among them) are never deferred for what forgers sent.
const (
	moderationNoticesPerHour = 10
	maxHeldForModerators     = 100
)

// moderationQueue counts the posts of l waiting for the moderators, those of them the
// moderators have not been sent yet, and those whose author is not proven.
func (s *Service) moderationQueue(tx store.Tx, l store.List) (waiting, unnoticed, unproven int, err error) {
	err = tx.HeldPosts(l.Address, func(h store.Held) error {
		if h.Kind == store.HeldForModerator {
			waiting++
			if h.Unnoticed {
				unnoticed++
			}
			if h.Verified == vocab.Unverified {
				unproven++
			}
		}
		return nil
	})
	return waiting, unnoticed, unproven, err
}

// mayTellModerators reports whether one more moderation notice of l may go this hour, and
// records it when so.
func (s *Service) mayTellModerators(tx store.Tx, l store.List) (bool, error) {
	now := s.Now().UTC()
	p, err := tx.PendingFor(l.Address, store.PendingModNotices, l.Address)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !now.Before(p.Expires)) {
		p = store.Pending{Kind: store.PendingModNotices, Address: l.Address, Created: now, Expires: now.Add(time.Hour)}
	} else if err != nil {
		return false, err
	}
	if p.Count >= moderationNoticesPerHour {
		return false, nil
	}
	p.Count++
	p.Sent = now
	_, err = tx.PutPending(l.Address, p)
	return err == nil, err
}

// announceHeld sends the moderators the held posts they have not been sent, oldest first, as
// far as this hour's notices allow.
func (s *Service) announceHeld(tx store.Tx, l store.List, res *Result) error {
	var quiet []store.Held
	waiting := 0
	if err := tx.HeldPosts(l.Address, func(h store.Held) error {
		if h.Kind == store.HeldForModerator {
			waiting++
			if h.Unnoticed {
				quiet = append(quiet, h)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for i, h := range quiet {
		ok, err := s.mayTellModerators(tx, l)
		if err != nil || !ok {
			return err
		}
		h.Unnoticed = false
		if err := tx.PutHeld(l.Address, h); err != nil {
			return err
		}
		if err := s.tellModerators(tx, l, h, waiting-1, len(quiet)-i-1, res); err != nil {
			return err
		}
	}
	return nil
}
