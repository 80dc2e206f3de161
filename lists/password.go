package lists

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"crewmail/internal/token"
	"crewmail/store"
)

// App passwords let members read their lists' archives over IMAP. One per address, for all the
// address's lists; a new one replaces the old. Only a slow hash is kept; the password itself
// goes once, by mail, to the member's address on file (never to the From of a request).

// newPassword is 80 random bits in four groups a person can type: "k3v9-xq2a-7mfp-d8wz".
func newPassword() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	t := token.Encode(b)
	return t[0:4] + "-" + t[4:8] + "-" + t[8:12] + "-" + t[12:16]
}

// issuePassword makes addr a new app password, stores its hash and mails it to addr.
func (s *Service) issuePassword(tx store.Tx, l store.List, addr, inReplyTo string, res *Result) error {
	pw := newPassword()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash the app password: %w", err)
	}
	if err := tx.SetAppPassword(addr, store.AppPassword{Hash: hash, Created: s.Now().UTC()}); err != nil {
		return err
	}
	s.log.Info("app password issued", "list", l.Address, "member", addr)
	data := s.noticeData(l)
	data.Address, data.Password, data.IMAP = addr, pw, s.cfg.IMAPServer
	return s.enqueueNotice(tx, l, notice{to: addr, template: "app-password", data: data, inReplyTo: inReplyTo, replied: inReplyTo != ""}, res)
}

// password answers crew+password@ (or "password" to crew-request@): a new app password for the
// sender, mailed to their address on file, at most once an hour. A request that is not proven
// to come from the member changes nothing until they confirm it from their mailbox, so nobody
// can take a member's working password away by forging their From.
func (s *Service) password(tx store.Tx, c *command) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("password request from a non-member ignored", "list", l.Address, "from", c.m.from)
		return fmt.Sprintf("password: %s is not a member of %s.", c.m.from, l.Address), nil
	} else if err != nil {
		return "", err
	}
	if p, err := tx.AppPasswordOf(mem.Address); err == nil && s.Now().Sub(p.Created) < answerEvery {
		return "password: a new password went to " + mem.Address + " within the hour; use that one.", nil
	}
	if !c.verified {
		now := s.Now().UTC()
		p, err := tx.PendingFor(l.Address, store.PendingPassword, mem.Address)
		if err == nil && now.Before(p.Expires) && now.Sub(p.Sent) < answerEvery {
			return "password: a confirmation went to " + mem.Address + " within the hour; reply to it for a new password.", nil
		}
		p = store.Pending{Kind: store.PendingPassword, Address: mem.Address, Created: now, Expires: now.Add(confirmValidity)}
		if err := s.sendPending(tx, l, p, "password-confirm", c.m.messageID, c.res); err != nil {
			return "", err
		}
		return "password: your address could not be verified, so a confirmation went to " + mem.Address + "; the password you have keeps working until you confirm.", nil
	}
	if err := s.issuePassword(tx, l, mem.Address, c.m.messageID, c.res); err != nil {
		return "", err
	}
	return "password: a new password went to " + mem.Address + ".", nil
}

// NewAppPassword mails a member of list a new app password (crewmail member password).
func (s *Service) NewAppPassword(list, address string) error {
	laddr, addr, err := parseTwo(list, address)
	if err != nil {
		return err
	}
	_, err = s.update(func(tx store.Tx, res *Result) error {
		l, err := tx.List(laddr)
		if err != nil {
			return fmt.Errorf("there is no list %s", laddr)
		}
		if _, err := tx.Member(laddr, addr); err != nil {
			return fmt.Errorf("%s is not a member of %s", addr, laddr)
		}
		return s.issuePassword(tx, l, addr, "", res)
	})
	return err
}
