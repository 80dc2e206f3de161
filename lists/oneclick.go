package lists

import (
	"errors"

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
	Address  string // "" when the member has left already
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
			u.Address = m.Address
		}
		return nil
	})
	return u, notFound(err, "the list %s no longer exists", list)
}

// UnsubscribeOneClick takes the member a one-click link names off its list at once (RFC 8058
// §3: the POST is the confirmation), with a goodbye and a notice to the owners. Following a
// link a second time is not an error.
func (s *Service) UnsubscribeOneClick(token string) (Unsubscription, error) {
	list, id, err := s.parseOneClick(token)
	if err != nil {
		return Unsubscription{}, err
	}
	u := Unsubscription{List: list}
	_, err = s.update(func(tx store.Tx, res *Result) error {
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
		u.Address = m.Address
		return s.leave(tx, l, m.Address, "they used the unsubscribe link", "", "", res)
	})
	if err != nil {
		return u, notFound(err, "the list %s no longer exists", list)
	}
	return u, nil
}
