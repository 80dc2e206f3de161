package lists

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"crewmail/internal/vocab"
	"crewmail/store"
)

// What a member signed in to the web reader does with her own membership (issue 21): the
// same as her mail to crew-request@, for a sender who is proven (she signed in by a link
// mailed to her address). Each method acts on the member's address as the session knows it.

// Conversation is a thread a member muted or follows, as her settings show it.
type Conversation struct {
	Thread  uint64
	Subject string
}

// MemberSettings is one membership as the settings page shows it.
type MemberSettings struct {
	List             store.List
	Member           store.Member
	Muted, Followed  []Conversation
	BroughtBy        string
	Directory        bool // she may see the crew's directory
	PausedForBounces bool
}

// Settings is everything the settings page of addr shows: each membership, and the app
// password (zero Created: none).
type Settings struct {
	Address     string
	Memberships []MemberSettings
	AppPassword time.Time
}

// SettingsOf reads addr's settings on every list.
func (s *Service) SettingsOf(addr string) (Settings, error) {
	out := Settings{Address: addr}
	err := s.st.View(func(tx store.Tx) error {
		out.Memberships = nil
		ls, ms, err := tx.ListsOf(addr)
		if err != nil {
			return err
		}
		pe, _ := store.AsPeople(tx)
		for i, l := range ls {
			m := ms[i]
			set := MemberSettings{List: l, Member: m, BroughtBy: m.BroughtBy(), PausedForBounces: !m.Paused.IsZero(),
				Directory: l.Directory == DirectoryMembers || isOwner(l, addr)}
			if pe != nil {
				muted, followed, err := pe.MarksOf(l.Address, m.ID)
				if err != nil {
					return err
				}
				set.Muted, set.Followed = conversations(tx, l.Address, muted), conversations(tx, l.Address, followed)
			}
			out.Memberships = append(out.Memberships, set)
		}
		if pw, err := tx.AppPasswordOf(addr); err == nil {
			out.AppPassword = pw.Created
		}
		return nil
	})
	return out, err
}

func isOwner(l store.List, addr string) bool {
	for _, o := range l.Owners {
		if o == addr {
			return true
		}
	}
	return false
}

func conversations(tx store.Archive, list string, ths []uint64) []Conversation {
	var out []Conversation
	for _, th := range ths {
		c := Conversation{Thread: th, Subject: "(a conversation)"}
		if p, err := tx.PostMeta(list, th); err == nil && p.Subject != "" {
			c.Subject = p.Subject
		}
		out = append(out, c)
	}
	return out
}

// member runs fn on addr's membership of list, in one update; errors a person can act on are
// sentences.
func (s *Service) member(list, addr string, fn func(tx store.Tx, l store.List, m store.Member, res *Result) error) error {
	_, err := s.update(func(tx store.Tx, res *Result) error {
		l, err := tx.List(list)
		if err != nil {
			return notFound(err, "there is no list %s", list)
		}
		m, err := tx.Member(list, addr)
		if err != nil {
			return notFound(err, "%s is not a member of %s", addr, list)
		}
		return fn(tx, l, m, res)
	})
	return err
}

// SetMemberMode changes how addr receives list; a bounce pause ends with it, as by mail.
func (s *Service) SetMemberMode(list, addr string, mode vocab.Mode) error {
	return s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		return s.setMode(tx, l, m, mode, false, "", res)
	})
}

// SetSelfCopy says whether addr gets her own posts back from list.
func (s *Service) SetSelfCopy(list, addr string, on bool) error {
	return s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		m.NoOwnPosts = !on
		return tx.PutMember(list, m)
	})
}

// PauseMember sends addr no mail from list until until (a notice says so).
func (s *Service) PauseMember(list, addr string, until time.Time) error {
	if !until.After(s.Now()) {
		return errors.New("the date to pause until is past")
	}
	return s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		_, err := s.pauseUntil(tx, l, m, until, "", res)
		return err
	})
}

// ResumeMember ends addr's pause on list, hers (with a catch-up digest) or for bouncing.
func (s *Service) ResumeMember(list, addr string) error {
	return s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		if !m.AwayUntil.IsZero() {
			m.AwayUntil, m.CatchUp = time.Time{}, true
		}
		resume(&m)
		return tx.PutMember(list, m)
	})
}

// EndMarks unmutes (and so unfollows) conversation th of list for addr.
func (s *Service) EndMarks(list, addr string, th uint64) error {
	return s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		if err := tx.Unmute(list, th, m.ID); err != nil {
			return err
		}
		return tx.Unfollow(list, th, m.ID)
	})
}

// ShowAppPassword makes addr a new app password and returns it to be shown once; only its
// hash is kept, and it replaces the old one.
func (s *Service) ShowAppPassword(addr string) (string, error) {
	pw := newPassword()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash the app password: %w", err)
	}
	_, err = s.update(func(tx store.Tx, res *Result) error {
		if ls, _, err := tx.ListsOf(addr); err != nil || len(ls) == 0 {
			return errors.Join(err, fmt.Errorf("%s is not a member of any list", addr))
		}
		return tx.SetAppPassword(addr, store.AppPassword{Hash: hash, Created: s.Now().UTC()})
	})
	if err != nil {
		return "", err
	}
	s.log.Info("app password issued on the web", "member", addr)
	return pw, nil
}

// RevokeAppPassword removes addr's app password: IMAP no longer lets it in.
func (s *Service) RevokeAppPassword(addr string) error {
	_, err := s.update(func(tx store.Tx, res *Result) error {
		pe, err := store.AsPeople(tx)
		if err != nil {
			return err
		}
		return pe.DeleteAppPassword(addr)
	})
	return err
}

// LeaveList takes addr off list as her own unsubscribe does: a goodbye with the undo.
func (s *Service) LeaveList(list, addr string) error {
	return s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		return s.leave(tx, l, addr, "they left on the web", "", "", res)
	})
}

// AskChangeAddress starts addr's change of address to to: the new address gets the
// confirmation. It returns what happened, in a sentence.
func (s *Service) AskChangeAddress(list, addr, to string) (string, error) {
	var said string
	err := s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		n, err := ParseAddress(to)
		if err != nil {
			said = "That is not an address: " + err.Error() + "."
			return nil
		}
		if n == addr {
			said = n + " is the address you have already."
			return nil
		}
		said, err = s.askNewAddress(tx, l, addr, n, res)
		return err
	})
	return said, err
}

// AskExport mails addr everything the server holds about it.
func (s *Service) AskExport(list, addr string) error {
	return s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		return s.sendExport(tx, l, addr, "", res)
	})
}

// AskForget mails addr the confirmation of forgetting it (how: keep, anonymise, redact).
func (s *Service) AskForget(list, addr, how string) error {
	switch how {
	case forgetKeep, forgetAnonymise, forgetRedact:
	default:
		return fmt.Errorf("forget: keep, anonymise or redact, not %q", how)
	}
	return s.member(list, addr, func(tx store.Tx, l store.List, m store.Member, res *Result) error {
		now := s.Now().UTC()
		p := store.Pending{Kind: store.PendingForget, Address: addr, Lines: []string{how}, Created: now, Expires: now.Add(confirmValidity)}
		return s.sendMyDataConfirm(tx, l, p, forgetWhat(how), "", res)
	})
}

// MyDataOfAddress is what the server holds about addr (MyDataOf), for the operator's
// crewmail member data: the record, and the address's posts as an mbox.
func (s *Service) MyDataOfAddress(address string) (MyData, []byte, error) {
	addr, err := ParseAddress(address)
	if err != nil {
		return MyData{}, nil, err
	}
	var d MyData
	var box []byte
	err = s.st.View(func(tx store.Tx) error {
		var err error
		d, box, err = MyDataOf(tx, addr, s.Now().UTC())
		return err
	})
	return d, box, err
}
