package store

import (
	"encoding/json"
	"fmt"
	"time"

	"crewmail/internal/vocab"
)

// Kinds of pending actions.
const (
	PendingJoin    = "join"    // someone asked to join; waits for their confirmation
	PendingRequest = "request" // a confirmed join waits for an owner's decision
	PendingInvite  = "invite"  // an owner invited someone; waits for the invitee
	PendingMode    = "mode"    // a member asked for another delivery mode, unverified
	PendingRejoin  = "rejoin"  // a member left: her undo brings her back in Mode, no approval
	PendingPause   = "pause"   // a member asked for no mail until Lines[0] (RFC 3339), unverified
	PendingOwner   = "owner"   // owner commands from an unverified owner address
	PendingNotice  = "notice"  // an answer was sent to an address: no second one before Expires
	// PendingPassword: a member asked for a new app password, unverified.
	PendingPassword = "password"
	// Issue 21: a member's data. PendingChangeOld: "change-address" (Lines[0]: the new
	// address) from an unproven sender, waiting for the address on file; PendingChangeNew:
	// the new address (Address) must confirm, By is the old one; PendingExport: an unproven
	// "export"; PendingForget: "forget" (Lines[0]: what becomes of the posts), always
	// confirmed; PendingExported: an export went to Address, no second one before Expires.
	PendingChangeOld = "change-address"
	PendingChangeNew = "new-address"
	PendingExport    = "export"
	PendingForget    = "forget"
	PendingExported  = "exported"
	// PendingResume: the one-click resume of a member whose delivery was paused for bouncing,
	// named in every mail that still reaches her.
	PendingResume = "resume"
	// PendingAnswers counts the automatic answers sent to an address from Created to Expires.
	PendingAnswers = "answers"
	// PendingDeferred lists (Lines) the mails from an address that came while answers to it
	// were paused; its next answer names them.
	PendingDeferred = "deferred"
	// PendingModNotices counts the moderation notices of a list (Address: the list) from
	// Created to Expires.
	PendingModNotices = "moderation-notices"
	// PendingDecided remembers a decision on a join request or held post until the request
	// would have expired, so a second decider hears who decided and how. Address names what
	// was decided ("join 12", "post 7"), By who, Lines[0] how.
	PendingDecided = "decided"
	// PendingOwnerNotices gathers the joins and leaves of a list (Address: the list) whose
	// owners get them in one mail a day, sent when it expires; Lines: one each.
	PendingOwnerNotices = "owner-notices"
)

// Pending is an action that waits for someone's confirmation or decision. There is at most one
// of each kind per address and list, so asking again finds the same one.
type Pending struct {
	ID      uint64     `json:"id"`
	Kind    string     `json:"kind"`
	Address string     `json:"address"`        // whom it is about
	Mode    vocab.Mode `json:"mode,omitempty"` // PendingMode: the mode asked for
	By      string     `json:"by,omitempty"`   // PendingInvite: the owner who invited; PendingDecided: who decided
	Lines   []string   `json:"lines,omitempty"`
	Created time.Time  `json:"created"`
	Expires time.Time  `json:"expires"`
	Sent    time.Time  `json:"sent"`            // when its confirmation was last mailed
	Count   int        `json:"count,omitempty"` // PendingAnswers: how many went
}

func pendingKey(kind, addr string) []byte { return []byte(kind + "\x00" + addr) }

// PendingFor returns the pending action of kind about addr on list.
func (t *boltTx) PendingFor(list, kind, addr string) (Pending, error) {
	b := t.listBucket(list)
	if b == nil {
		return Pending{}, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	id := b.Bucket(subPendKeys).Get(pendingKey(kind, addr))
	if id == nil {
		return Pending{}, fmt.Errorf("%s for %s on %s: %w", kind, addr, list, ErrNotFound)
	}
	var p Pending
	if err := getJSON(b.Bucket(subPending), id, &p); err != nil {
		return p, fmt.Errorf("%s for %s on %s: %w", kind, addr, list, err)
	}
	return p, nil
}

// PendingByID returns one pending action of list.
func (t *boltTx) PendingByID(list string, id uint64) (Pending, error) {
	b := t.listBucket(list)
	if b == nil {
		return Pending{}, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	var p Pending
	if err := getJSON(b.Bucket(subPending), u64(id), &p); err != nil {
		return p, fmt.Errorf("pending action %d of %s: %w", id, list, err)
	}
	return p, nil
}

// PutPending stores p, giving it an ID when it has none. One of the same kind about the same
// address is replaced.
func (t *boltTx) PutPending(list string, p Pending) (Pending, error) {
	b := t.listBucket(list)
	if b == nil {
		return p, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	pending, keys := b.Bucket(subPending), b.Bucket(subPendKeys)
	if p.ID == 0 {
		if old := keys.Get(pendingKey(p.Kind, p.Address)); old != nil {
			if err := pending.Delete(old); err != nil {
				return p, err
			}
		}
		id, err := pending.NextSequence()
		if err != nil {
			return p, err
		}
		p.ID = id
	}
	if err := keys.Put(pendingKey(p.Kind, p.Address), u64(p.ID)); err != nil {
		return p, err
	}
	return p, putJSON(pending, u64(p.ID), p)
}

// DeletePending removes a pending action; removing one that is gone is not an error.
func (t *boltTx) DeletePending(list string, id uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	pending := b.Bucket(subPending)
	var p Pending
	if err := getJSON(pending, u64(id), &p); err != nil {
		return nil
	}
	keys := b.Bucket(subPendKeys)
	if v := keys.Get(pendingKey(p.Kind, p.Address)); v != nil && string(v) == string(u64(id)) {
		if err := keys.Delete(pendingKey(p.Kind, p.Address)); err != nil {
			return err
		}
	}
	return pending.Delete(u64(id))
}

// PendingActions calls fn for each pending action of list, oldest first.
func (t *boltTx) PendingActions(list string, fn func(Pending) error) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subPending).ForEach(func(k, v []byte) error {
		var p Pending
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("damaged pending action %x: %w", k, err)
		}
		return fn(p)
	})
}
