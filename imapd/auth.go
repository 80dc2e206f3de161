package imapd

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"

	"github.com/emersion/go-imap/v2"
	"golang.org/x/crypto/bcrypt"

	"crewmail/store"
)

var (
	// RFC 5530 AUTHENTICATIONFAILED; the same answer whether the address is unknown, the
	// password wrong, or the address on no list, so nobody learns who is a member.
	errAuthFailed = &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeAuthenticationFailed,
		Text: "Authentication failed: log in with your address and the app password crewmail mailed you",
	}
	errThrottled = &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeAuthenticationFailed,
		Text: "Too many failed logins from your address or for this account; try again in a quarter of an hour",
	}
)

// authenticate checks addr's app password, from remote address ip, and that addr is a member
// of at least one list. reason says why it failed, for the log.
func (s *Server) authenticate(log *slog.Logger, ip, addr, password string) (reason string, err error) {
	wait, refused := s.throt.begin(ip, addr, s.cfg.Now())
	if refused {
		return "throttled: too many failures", errThrottled
	}
	failed := false
	defer func() { s.throt.end(ip, addr, s.cfg.Now(), failed) }()
	if wait > 0 {
		log.Info("imap login delayed after failures", "address", addr, "delay", wait)
		if err := s.sleep(s.ctx, wait); err != nil {
			return "server closing", err
		}
	}
	var (
		hash  []byte
		lists int
	)
	err = s.st.View(func(tx store.Tx) error {
		var err error
		hash, lists, err = credentials(tx, addr)
		return err
	})
	if err != nil {
		return "store error", fmt.Errorf("read the app password of %s: %w", addr, err)
	}
	if !s.checkPassword(hash, password) {
		failed = true
		if hash == nil {
			return "no app password for this address", errAuthFailed
		}
		return "wrong password", errAuthFailed
	}
	// The right password of someone on no list (any more) is not a guess: it does not count
	// as a failure, so a removed member's mail client, still polling, does not slow down
	// others behind the same address.
	if lists == 0 {
		return "not a member of any list", errAuthFailed
	}
	return "", nil
}

// checkPassword compares password with a bcrypt hash; with a nil hash it compares with a dummy
// one, so that a login for an unknown address takes as long as one for a member.
func (s *Server) checkPassword(hash []byte, password string) bool {
	real := hash != nil
	if !real {
		hash = s.dummy()
	}
	select {
	case s.hashSlots <- struct{}{}:
	case <-s.ctx.Done():
		return false
	}
	defer func() { <-s.hashSlots }()
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && real
}

func (s *Server) dummy() []byte {
	s.dummyOnce.Do(func() {
		pw := make([]byte, 16)
		_, _ = rand.Read(pw)
		h, err := bcrypt.GenerateFromPassword(pw, s.dummyCost)
		if err != nil {
			// Only a cost out of range fails; keep a hash that matches nothing.
			h = []byte("$2a$10$" + string(make([]byte, 53)))
		}
		s.dummyHash = h
	})
	return s.dummyHash
}

// credentials is addr's app password hash (nil: it has none) and how many lists addr is a
// member of.
func credentials(tx store.IMAPAccess, addr string) (hash []byte, lists int, err error) {
	p, err := tx.AppPasswordOf(addr)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	} else if err != nil {
		return nil, 0, err
	}
	ls, _, err := tx.ListsOf(addr)
	return p.Hash, len(ls), err
}
