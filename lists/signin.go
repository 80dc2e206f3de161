package lists

import (
	"time"

	"crewmail/store"
)

// MailSignIn puts in the outbox, in tx, a notice from list to to, a member, with link, a web
// sign-in link that works until expires: the web reader's "sign in by mail". The caller has
// checked that to is a member of list and that she may be mailed now; delivery is woken once
// tx is committed.
func (s *Service) MailSignIn(tx store.Tx, list, to, link string, expires time.Time) error {
	l, err := tx.List(list)
	if err != nil {
		return err
	}
	data := s.noticeData(l)
	data.Address, data.SignIn, data.Expires = to, link, moment(expires)
	var res Result
	if err := s.enqueueNotice(tx, l, notice{to: to, template: "web-signin", data: data}, &res); err != nil {
		return err
	}
	tx.AfterCommit(func() { s.Enqueued() })
	return nil
}
