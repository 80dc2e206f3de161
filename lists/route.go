package lists

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"crewmail/internal/mailaddr"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// Kind is what an address of a list does (docs/design.md, "Addresses of a list").
type Kind int

const (
	KindPost        Kind = iota + 1 // crew@: post to the list
	KindHelp                        // crew+help@
	KindUnsubscribe                 // crew+unsubscribe@
	KindConfirm                     // crew+confirm-TOKEN@
	KindBounce                      // crew+bounces-TOKEN@: the VERP return path
	KindPostmaster                  // postmaster@ (RFC 5321 §4.5.1) or abuse@ (RFC 2142) of a domain with lists
	KindSubscribe                   // crew+subscribe@
	KindMode                        // crew+each@, +daily@, +weekly@, +nomail@ (Token: the mode)
	KindOwner                       // crew+owner@: reaches the owners
	KindRequest                     // crew-request@: commands in the body
	KindReply                       // crew+r-TOKEN@: a post answering the archived post TOKEN names
	KindMute                        // crew+mute-TOKEN@: the sender mutes a thread
	KindUnmute                      // crew+unmute-TOKEN@
	KindDigestReply                 // crew+digest@: a reply to a digest, answered, never posted
	KindPassword                    // crew+password@: a new IMAP app password, to the address on file
	KindMuteThread                  // crew+mute@: the sender mutes the thread the mail replies to or forwards
	KindFollow                      // crew+follow@: the sender follows the thread the mail replies to or forwards
	KindPause                       // crew+pause@: no mail for the sender until a date (subject or first line)
	KindPrivate                     // crew+p-TOKEN@: a member's answer to the author of the post TOKEN names, passed on to her alone
)

// Target is where one recipient address leads.
type Target struct {
	List  string // the list's address
	Kind  Kind
	Token string // for KindConfirm, KindBounce, KindMode, KindReply, KindPrivate, KindMute and KindUnmute
}

// Refusal is a reason to refuse a recipient or a message, with the SMTP reply it deserves.
// Its Message is written for the person who sent the mail.
type Refusal struct {
	Code     int
	Enhanced [3]int
	Message  string
}

func (r *Refusal) Error() string { return r.Message }

func refuse(code int, enhanced [3]int, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Enhanced: enhanced, Message: fmt.Sprintf(format, args...)}
}

// Route says where rcpt leads. Addresses in a domain no list uses are refused with 550 5.7.1
// (crewmail is never a relay); unknown addresses in a served domain with 550 5.1.1.
func (s *Service) Route(rcpt string) (Target, error) {
	a, err := mailaddr.Parse(rcpt)
	if err != nil {
		return Target{}, refuse(501, [3]int{5, 1, 3}, "%s", err.Error())
	}
	addr, local, domain := a.String(), a.Local(), a.Domain()
	var t Target
	err = s.st.View(func(tx store.Tx) error {
		if _, err := tx.List(addr); err == nil {
			t = Target{List: addr, Kind: KindPost}
			return nil
		}
		if base, ok := strings.CutSuffix(local, "-request"); ok {
			if _, err := tx.List(base + "@" + domain); err == nil {
				t = Target{List: base + "@" + domain, Kind: KindRequest}
				return nil
			}
		}
		if base, cmd, ok := strings.Cut(local, s.cfg.Separator); ok {
			list := base + "@" + domain
			if _, err := tx.List(list); err == nil {
				if tok, ok := strings.CutPrefix(cmd, "p-"); ok {
					t, err = s.routePrivateReply(list, tok)
					return err
				}
				if t, ok = s.routeCommand(list, cmd); ok {
					return nil
				}
				return refuse(550, [3]int{5, 1, 1}, "%s is not an address of the list %s", addr, list)
			}
		}
		lists, err := tx.Lists()
		if err != nil {
			return err
		}
		for _, l := range lists {
			if _, d := splitAddress(l.Address); d == domain {
				if (local == "postmaster" || local == "abuse") && len(s.postmasters(lists, domain)) > 0 {
					// RFC 2142 §2: abuse@ is read like postmaster@.
					t = Target{List: l.Address, Kind: KindPostmaster}
					return nil
				}
				return refuse(550, [3]int{5, 1, 1}, "there is no list or mailbox %s here", addr)
			}
		}
		return refuse(550, [3]int{5, 7, 1}, "relaying to %s is not allowed: this server only takes mail for its lists", domain)
	})
	return t, err
}

func (s *Service) routeCommand(list, cmd string) (Target, bool) {
	switch {
	case cmd == "help":
		return Target{List: list, Kind: KindHelp}, true
	case cmd == "unsubscribe":
		return Target{List: list, Kind: KindUnsubscribe}, true
	case cmd == "subscribe":
		return Target{List: list, Kind: KindSubscribe}, true
	case cmd == "owner":
		return Target{List: list, Kind: KindOwner}, true
	case cmd == "password":
		return Target{List: list, Kind: KindPassword}, true
	case cmd == "digest":
		return Target{List: list, Kind: KindDigestReply}, true
	case cmd == "mute":
		return Target{List: list, Kind: KindMuteThread}, true
	case cmd == "follow":
		return Target{List: list, Kind: KindFollow}, true
	case cmd == "pause":
		return Target{List: list, Kind: KindPause}, true
	case strings.HasPrefix(cmd, "r-"):
		if _, ok := s.parseSeqToken(list, "reply", strings.TrimPrefix(cmd, "r-")); ok {
			return Target{List: list, Kind: KindReply, Token: strings.TrimPrefix(cmd, "r-")}, true
		}
	case strings.HasPrefix(cmd, "mute-"):
		if _, ok := s.parseSeqToken(list, "mute", strings.TrimPrefix(cmd, "mute-")); ok {
			return Target{List: list, Kind: KindMute, Token: strings.TrimPrefix(cmd, "mute-")}, true
		}
	case strings.HasPrefix(cmd, "unmute-"):
		if _, ok := s.parseSeqToken(list, "mute", strings.TrimPrefix(cmd, "unmute-")); ok {
			return Target{List: list, Kind: KindUnmute, Token: strings.TrimPrefix(cmd, "unmute-")}, true
		}
	case slices.Contains(vocab.Modes, vocab.Mode(cmd)):
		return Target{List: list, Kind: KindMode, Token: cmd}, true
	case strings.HasPrefix(cmd, "confirm-"):
		return Target{List: list, Kind: KindConfirm, Token: strings.TrimPrefix(cmd, "confirm-")}, true
	case strings.HasPrefix(cmd, "bounces-"):
		// Only genuine VERP addresses: nobody can fill a list's bounce store by guessing.
		token := strings.TrimPrefix(cmd, "bounces-")
		if _, ok := s.parseVERPToken(list, token); ok {
			return Target{List: list, Kind: KindBounce, Token: token}, true
		}
	}
	return Target{}, false
}

// postmasters are who reads mail to postmaster@domain: the configured postmaster, or else the
// owners of the lists in domain.
func (s *Service) postmasters(lists []store.List, domain string) []string {
	if s.cfg.Postmaster != "" {
		return []string{s.cfg.Postmaster}
	}
	var out []string
	for _, l := range lists {
		if _, d := splitAddress(l.Address); d == domain {
			for _, o := range l.Owners {
				if !slices.Contains(out, o) {
					out = append(out, o)
				}
			}
		}
	}
	return out
}

// IsRefusal reports whether err is a Refusal (as opposed to a temporary, internal failure).
func IsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// address builds one of a list's addresses: s.address("crew@x", "help") = crew+help@x.
// Separator is what stands between a list's local part and a command: crew+help@.
func (s *Service) Separator() string { return s.cfg.Separator }

func (s *Service) address(list, cmd string) string {
	if cmd == "" {
		return list
	}
	local, domain := splitAddress(list)
	return local + s.cfg.Separator + cmd + "@" + domain
}

// Recipients are the addresses Route accepts in domain, without their command forms
// (crew+help@, crew+confirm-TOKEN@): each list's address and its -request address, and
// postmaster@ and abuse@ when someone reads them. A front MTA that strips the separator
// (Postfix's recipient_delimiter) before its lookup needs no more. Sorted.
func (s *Service) Recipients(domain string) ([]string, error) {
	a, err := mailaddr.Parse("postmaster@" + domain)
	if err != nil {
		return nil, err
	}
	domain = a.Domain()
	var out []string
	err = s.st.View(func(tx store.Tx) error {
		all, err := tx.Lists()
		if err != nil {
			return err
		}
		for _, l := range all {
			if local, d := splitAddress(l.Address); d == domain {
				out = append(out, l.Address, local+"-request@"+domain)
			}
		}
		if len(out) > 0 && len(s.postmasters(all, domain)) > 0 {
			out = append(out, "postmaster@"+domain, "abuse@"+domain)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}
