package lists

import (
	"errors"
	"strings"
	"time"

	"crewmail/internal/refusal"
	"crewmail/internal/token"
	"crewmail/internal/vocab"
	"crewmail/store"
	"crewmail/templates"
)

// What a confirmation token confirms. The ID it carries is a member's, a held post's or a
// pending action's, as the action says. The action and the list are under the HMAC, so a token
// for one thing never does another; the address is bound through the record the ID names.
const (
	actionUnsubscribe byte = 1 // member ID: the member leaves
	actionReleasePost byte = 2 // held post ID: its author confirms it
	actionPending     byte = 3 // pending action ID: its address confirms it (join, invite, mode, owner commands)
	actionModerate    byte = 4 // held post ID: the moderator's reply says approve or reject
	actionApprovePost byte = 5 // held post ID: a moderator approves
	actionRejectPost  byte = 6 // held post ID: a moderator rejects
	actionDecideJoin  byte = 7 // pending request ID: the owner's reply says approve or decline
	actionApproveJoin byte = 8 // pending request ID: an owner approves
	actionDeclineJoin byte = 9 // pending request ID: an owner declines

	confirmValidity = 7 * 24 * time.Hour
)

func (s *Service) confirmToken(list string, action byte, id uint64, expires time.Time) string {
	return s.tokens.Confirm(s.tokenList(list), action, id, expires)
}

// confirmAddress is the address that confirms action on id until expires.
func (s *Service) confirmAddress(list string, action byte, id uint64, expires time.Time) string {
	return s.address(list, "confirm-"+s.confirmToken(list, action, id, expires))
}

var (
	errBadToken     = errors.New("this is not a valid confirmation address; please reply to the mail that gave it")
	errExpiredToken = errors.New("this confirmation has expired; please ask again")
)

func (s *Service) parseConfirmToken(list, t string, now time.Time) (action byte, id uint64, err error) {
	action, id, err = s.tokens.ParseConfirm(s.tokenList(list), t, now)
	switch {
	case errors.Is(err, token.ErrExpired):
		return 0, 0, errExpiredToken
	case err != nil:
		return 0, 0, errBadToken
	}
	return action, id, nil
}

// command is one command mail as the handlers see it.
type command struct {
	l        store.List
	env      Envelope
	m        *inbound
	verified bool   // the From address is proven (DMARC-aligned DKIM or SPF)
	rcpt     string // the address it was sent to, as people read it (crew+confirm-… shortened)
	res      *Result
	used     string // the address the mail went to, for the answer; empty for a confirm address
}

// reply answers the mail the command came in.
func (c *command) reply(template string, data templates.Notice) notice {
	return notice{to: c.m.from, template: template, data: data, inReplyTo: c.m.messageID, replied: true}
}

// acceptCommand answers mail to a list's command addresses. Commands never reach the list.
// RFC 3834 §2: automatic mail and mail from the null sender get no answer, and confirm
// nothing: a vacation notice must not confirm a subscription someone forged.
func (s *Service) acceptCommand(tx store.Tx, l store.List, t Target, env Envelope, m *inbound, res *Result) error {
	if m.automatic || env.From == "" {
		s.log.Info("automatic mail to a command address ignored", "list", l.Address, "from", m.from, "msgid", m.messageID)
		return nil
	}
	verified := env.Auth.forCommand(t, s.cfg.Separator).Pass
	c := &command{l: l, env: env, m: m, verified: verified, res: res, rcpt: s.targetAddress(t), used: s.usedAddress(t)}
	// A mail to a confirm address carries a token only its address was sent: its answers
	// count as answers to a proven sender.
	res.answering = &answering{to: m.from, verified: verified || t.Kind == KindConfirm, mail: m, rcpt: c.rcpt}
	defer func() { res.answering = nil }()
	switch t.Kind {
	case KindHelp:
		if looksLikeQuestion(m.lines(maxRequestLines)) && len(l.Owners) > 0 {
			return s.forwardQuestion(tx, c)
		}
		return s.enqueueNotice(tx, l, c.reply("help", s.noticeData(l)), res)
	case KindSubscribe:
		result, err := s.subscribe(tx, c)
		if err != nil || result == "" {
			return err
		}
		return s.answer(tx, c, []string{result})
	case KindUnsubscribe, KindMode:
		var result string
		var err error
		if t.Kind == KindUnsubscribe {
			result, err = s.unsubscribe(tx, c)
		} else {
			result, err = s.changeMode(tx, c, vocab.Mode(t.Token), true) // Route took only a mode's word
		}
		if err != nil || res.answered[m.from] || result == "" {
			return err // answered by the confirmation or the notice
		}
		return s.answer(tx, c, []string{result})
	case KindRequest:
		return s.request(tx, c)
	case KindConfirm:
		return s.confirm(tx, c, t.Token)
	case KindMute, KindUnmute:
		return s.mute(tx, c, t.Token, t.Kind == KindMute)
	case KindDigestReply:
		return s.digestReply(tx, c)
	case KindMuteThread, KindFollow:
		return s.attention(tx, c, t.Kind == KindFollow)
	case KindPause:
		// The subject or the first line may name the end; words that name none (a subject
		// "Holiday") leave the default.
		text := ""
		for _, t := range append([]string{stripReplyPrefix(m.subject)}, m.lines(1)...) {
			if _, err := parsePause(t, s.Now(), listZone(l)); err == nil && strings.TrimSpace(t) != "" {
				text = t
				break
			}
		}
		result, err := s.pause(tx, c, text)
		if err != nil || res.answered[m.from] || result == "" {
			return err // answered by the confirmation or the notice
		}
		return s.answer(tx, c, []string{result})
	case KindPassword:
		result, err := s.password(tx, c)
		if err != nil || !strings.Contains(result, "within the hour") && !strings.Contains(result, "not a member") {
			return err
		}
		return s.answer(tx, c, []string{result})
	}
	return nil
}

// targetAddress is the address t stands for, as people read it: a token is shortened to "…".
func (s *Service) targetAddress(t Target) string {
	switch t.Kind {
	case KindRequest:
		return requestAddress(t.List)
	case KindHelp:
		return s.address(t.List, "help")
	case KindUnsubscribe:
		return s.address(t.List, "unsubscribe")
	case KindSubscribe:
		return s.address(t.List, "subscribe")
	case KindMode:
		return s.address(t.List, t.Token)
	case KindDigestReply:
		return s.address(t.List, "digest")
	case KindMuteThread:
		return s.address(t.List, "mute")
	case KindFollow:
		return s.address(t.List, "follow")
	case KindPause:
		return s.address(t.List, "pause")
	case KindPassword:
		return s.address(t.List, "password")
	case KindConfirm:
		return s.address(t.List, "confirm-…")
	case KindMute:
		return s.address(t.List, "mute-…")
	case KindUnmute:
		return s.address(t.List, "unmute-…")
	}
	return t.List
}

// answer sends the results of someone's commands back to them; to an address that did not
// prove itself at most once an hour.
func (s *Service) answer(tx store.Tx, c *command, results []string) error {
	if a := c.res.answering; a != nil && a.deferred {
		return nil // held back already, and remembered for the next answer
	}
	if !c.verified {
		ok, err := s.mayAnswerMail(tx, c.l, c.m, c.rcpt)
		if err != nil {
			return err
		}
		if !ok {
			s.log.Info("answer not sent: one went to this address within the hour", "list", c.l.Address, "to", c.m.from)
			return nil
		}
	}
	return s.sendResults(tx, c, results, "")
}

// sendResults mails the results of someone's commands; confirm, when not empty, is the one
// confirmation they hold, which a reply to the results then confirms.
func (s *Service) sendResults(tx store.Tx, c *command, results []string, confirm string) error {
	data := s.noticeData(c.l)
	data.Results, data.Confirm, data.Used = results, confirm, c.used
	return s.enqueueNotice(tx, c.l, c.reply("request-results", data), c.res)
}

// usedAddress is the command address of t, as the sender wrote it: the answer names the
// address their mail went to. An address with a token is not named (it is a reply).
func (s *Service) usedAddress(t Target) string {
	switch t.Kind {
	case KindConfirm, KindMute, KindUnmute:
		return ""
	}
	return s.targetAddress(t)
}

// confirm carries out what a confirmation token stands for.
func (s *Service) confirm(tx store.Tx, c *command, tok string) error {
	l := c.l
	action, id, err := s.parseConfirmToken(l.Address, tok, s.Now())
	if err != nil {
		s.log.Info("confirmation refused", "list", l.Address, "from", c.m.from, "reason", err)
		return refuse(550, [3]int{5, 7, 1}, "%s: %v", s.address(l.Address, "confirm-…"), err)
	}
	switch action {
	case actionUnsubscribe:
		mem, err := tx.MemberByID(l.Address, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil // already done: confirming twice is harmless
		} else if err != nil {
			return err
		}
		if refusal.Refuses(c.m.lines(refusalLines), true) {
			s.log.Info("leaving refused by the reply to its confirmation", "list", l.Address, "member", mem.Address)
			return s.saidNo(tx, c, mem.Address, "you are still a member of "+l.Address+".")
		}
		return s.leave(tx, l, mem.Address, "they confirmed by mail", "", c.m.messageID, c.res)
	case actionReleasePost:
		if c.disowns() {
			h, err := tx.HeldPost(l.Address, id)
			if err != nil || h.Kind == store.HeldForModerator {
				return s.disownHeld(tx, l, id)
			}
			if err := s.disownHeld(tx, l, id); err != nil {
				return err
			}
			return s.saidNo(tx, c, h.From, "the post was not sent to "+l.Address+", and nor is any other waiting for a confirmation from your address.")
		}
		return s.releaseHeld(tx, l, id, c.res)
	case actionDisownPost:
		return s.disownHeld(tx, l, id)
	case actionPending:
		return s.confirmPending(tx, c, id)
	case actionModerate, actionApprovePost, actionRejectPost:
		return s.moderateByMail(tx, c, action, id)
	case actionDecideJoin, actionApproveJoin, actionDeclineJoin:
		return s.decideJoinByMail(tx, c, action, id)
	}
	return nil
}

// saidNo answers a reply that refused a confirmation: nothing was done (what stays as it was,
// in a sentence). The answer goes to to, the address the confirmation went to, not to the
// From of the reply; to an address that is not proven at most once an hour (see mayAnswer).
func (s *Service) saidNo(tx store.Tx, c *command, to, what string) error {
	if !c.verified || to != c.m.from {
		if ok, err := s.mayAnswer(tx, c.l, to); err != nil || !ok {
			return err
		}
	}
	data := s.noticeData(c.l)
	data.Address, data.Reason = to, what
	return s.enqueueNotice(tx, c.l, notice{to: to, template: "nothing-done", data: data, inReplyTo: c.m.messageID, replied: true}, c.res)
}

// firstWord splits a line of a reply into its first word, lowercased, and the rest.
func firstWord(line string) (string, string) {
	word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	return strings.ToLower(strings.Trim(word, ".,:;!")), strings.TrimSpace(rest)
}

// requestAddress is crew-request@ of a list: commands in the body.
func requestAddress(list string) string {
	local, domain := splitAddress(list)
	return local + "-request@" + domain
}
