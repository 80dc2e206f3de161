package lists

import (
	"errors"
	"slices"

	"crewmail/internal/vocab"
	"crewmail/store"
)

// One-click unsubscribe (RFC 8058): every copy of a post carries a link naming its member
// (token.OneClick).

// oneClickToken names a member of a list in its one-click unsubscribe link.
func (s *Service) oneClickToken(list string, memberID uint64) string {
	return s.tokens.OneClick(s.tokenList(list), memberID)
}

// oneClickURL is the one-click unsubscribe link of a member, or "" when the server has no
// HTTP address.
func (s *Service) oneClickURL(list string, memberID uint64) string {
	if s.cfg.BaseURL == "" || memberID == 0 {
		return ""
	}
	return s.cfg.BaseURL + "/u/" + s.oneClickToken(list, memberID)
}

// ErrBadLink is returned for a one-click link that is not genuine.
var ErrBadLink = errors.New("this unsubscribe link is not valid: use the one in a recent mail from the list")

func (s *Service) parseOneClick(link string) (list string, memberID uint64, err error) {
	list, id, ok := s.tokens.ParseOneClick(link, s.st.Incarnation)
	if !ok {
		return "", 0, ErrBadLink
	}
	return list, id, nil
}

// Unsubscription is what a one-click link names.
type Unsubscription struct {
	List     string
	ListName string
	Address  string     // "" when the member has left already
	Mode     vocab.Mode // the member's mode (after ModeOneClick, the new one)
	// Undo, after UnsubscribeOneClick took the member off, is the token UndoOneClick takes
	// to bring her back (for undoValidity), and Until the day it runs out.
	Undo  string
	Until string
}

// OneClick looks up what a one-click link names without changing anything (the page a GET
// shows).
func (s *Service) OneClick(token string) (Unsubscription, error) {
	list, id, err := s.parseOneClick(token)
	if err != nil {
		return Unsubscription{}, err
	}
	u := Unsubscription{List: list}
	err = s.st.View(func(tx store.Tx) error {
		l, err := tx.List(list)
		if err != nil {
			return err
		}
		u.ListName = l.Name
		if m, err := tx.MemberByID(list, id); err == nil {
			u.Address, u.Mode = m.Address, m.Mode
		}
		return nil
	})
	return u, notFound(err, "the list %s no longer exists", list)
}

// UnsubscribeOneClick takes the member a one-click link names off its list at once (RFC 8058
// §3: the POST is the confirmation), with a goodbye and a notice to the owners. Following a
// link a second time is not an error.
func (s *Service) UnsubscribeOneClick(token string) (Unsubscription, error) {
	return s.onMemberOfLink(token, func(tx store.Tx, l store.List, m store.Member, u *Unsubscription, res *Result) error {
		if err := s.leave(tx, l, m.Address, "they used the unsubscribe link", "", "", res); err != nil {
			return err
		}
		u.Undo, u.Until = res.undo, day(s.Now().UTC().Add(undoValidity))
		return nil
	})
}

// onMemberOfLink runs fn in one update on the member a one-click link names, with the
// Unsubscription its page shows filled in (list, name, the member's address and mode); fn may
// change it. A member who has left already is no error: fn is not run.
func (s *Service) onMemberOfLink(token string, fn func(tx store.Tx, l store.List, m store.Member, u *Unsubscription, res *Result) error) (Unsubscription, error) {
	list, id, err := s.parseOneClick(token)
	if err != nil {
		return Unsubscription{}, err
	}
	u := Unsubscription{List: list}
	_, err = s.update(func(tx store.Tx, res *Result) error {
		u = Unsubscription{List: list} // the function may run more than once
		l, err := tx.List(list)
		if err != nil {
			return err
		}
		u.ListName = l.Name
		m, err := tx.MemberByID(list, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		u.Address, u.Mode = m.Address, m.Mode
		return fn(tx, l, m, &u, res)
	})
	if err != nil {
		return u, notFound(err, "the list %s no longer exists", list)
	}
	return u, nil
}

// OneClickModes are the modes the unsubscribe page offers instead of leaving.
var OneClickModes = []vocab.Mode{vocab.Weekly, vocab.NoMail}

// ErrBadUndo is returned for an undo that is not genuine, or no longer valid.
var ErrBadUndo = errors.New("this undo is not valid any more: to come back, join the list again")

// ModeOneClick sets the mode of the member a one-click link names to mode (one of
// OneClickModes) at once, as her unsubscribe page offers instead of leaving: the link came to
// her address, as a confirmation would. She is told by mail, as for any change of mode.
func (s *Service) ModeOneClick(token string, mode vocab.Mode) (Unsubscription, error) {
	if !slices.Contains(OneClickModes, mode) {
		if _, _, err := s.parseOneClick(token); err != nil {
			return Unsubscription{}, err
		}
		return Unsubscription{}, ErrBadLink
	}
	return s.onMemberOfLink(token, func(tx store.Tx, l store.List, m store.Member, u *Unsubscription, res *Result) error {
		u.Mode = mode
		if m.Mode == mode {
			return nil
		}
		return s.setMode(tx, l, m, mode, true, "", res)
	})
}

// UndoOneClick brings back the member who left by the one-click link token names, with the
// undo token its page showed her (see leave): in the mode she had, with no new confirmation or
// approval, until the undo expires.
func (s *Service) UndoOneClick(token, undo string) (Unsubscription, error) {
	list, _, err := s.parseOneClick(token)
	if err != nil {
		return Unsubscription{}, err
	}
	action, id, err := s.parseConfirmToken(list, undo, s.Now())
	if err != nil || action != actionPending {
		return Unsubscription{List: list}, ErrBadUndo
	}
	u := Unsubscription{List: list}
	_, err = s.update(func(tx store.Tx, res *Result) error {
		l, err := tx.List(list)
		if err != nil {
			return err
		}
		u.ListName = l.Name
		p, err := tx.PendingByID(list, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && (p.Kind != store.PendingRejoin || s.Now().After(p.Expires)) {
			return ErrBadUndo
		} else if err != nil {
			return err
		}
		u.Address, u.Mode = p.Address, p.Mode
		return s.rejoin(tx, l, p, "", res)
	})
	if err != nil {
		return u, notFound(err, "the list %s no longer exists", list)
	}
	return u, nil
}
