package lists

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"crewmail/internal/refusal"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// subscribe starts joining for the sender of c: a confirmation to their address, once an hour
// at most however often they (or anyone using their address) ask. It returns a sentence for
// the sender when there is something to tell them other than the confirmation.
func (s *Service) subscribe(tx store.Tx, c *command) (string, error) {
	l, addr := c.l, c.m.from
	if _, err := tx.Member(l.Address, addr); err == nil {
		return fmt.Sprintf("subscribe: %s is already a member of %s.", addr, l.Address), nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if inv, err := tx.PendingFor(l.Address, store.PendingInvite, addr); err == nil && s.Now().Before(inv.Expires) {
		return "", s.sendPending(tx, l, inv, "invitation", c.m.messageID, c.res)
	}
	if banned(l, addr) {
		s.log.Info("a banned address asked to join", "list", l.Address, "address", addr)
		return fmt.Sprintf("subscribe: %s may not join %s.", addr, l.Address), nil
	}
	if l.Join == vocab.JoinInvite {
		return fmt.Sprintf("subscribe: %s takes new members by invitation only; ask the owners at %s.", l.Address, s.address(l.Address, "owner")), nil
	}
	if req, err := tx.PendingFor(l.Address, store.PendingRequest, addr); err == nil && s.Now().Before(req.Expires) {
		return fmt.Sprintf("subscribe: your request to join %s already waits for the owners.", l.Address), nil
	}
	now := s.Now().UTC()
	p, err := tx.PendingFor(l.Address, store.PendingJoin, addr)
	if err != nil || now.After(p.Expires) {
		p = store.Pending{Kind: store.PendingJoin, Address: addr, Created: now, Expires: now.Add(confirmValidity)}
	} else if now.Sub(p.Sent) < answerEvery {
		s.log.Info("join confirmation not sent again within the hour", "list", l.Address, "address", addr)
		if !c.verified && c.res.answering != nil && !c.res.answering.fold {
			// Maybe forged: named in the next answer instead of a second mail within the hour.
			return "", s.remember(tx, l, c.m, c.rcpt)
		}
		return fmt.Sprintf("subscribe: a confirmation went to %s at %s; reply to it to join (if it is not in your inbox, look in the spam folder). A new one can be sent after %s.", addr, p.Sent.UTC().Format("15:04 MST"), p.Sent.Add(answerEvery).UTC().Format("15:04 MST")), nil
	}
	return "", s.sendPending(tx, l, p, "subscribe-confirm", c.m.messageID, c.res)
}

// notOnList tells addr, who asked to leave or change how they get the list, that the address
// is not on it, and how to find the one that is.
func (s *Service) notOnList(l store.List, addr string) string {
	return fmt.Sprintf("this address, %s, is not on the list %s, so nothing was done. If you get its mail all the same, it reaches you through another address (an old one, or one that forwards to you). Every mail from the list knows that address: the Unsubscribe button of your mail program, or the link in the List-Unsubscribe field of its header, leaves the list for it. Or forward a mail from the list to the owners at %s and ask them.", addr, l.Address, s.address(l.Address, "owner"))
}

// sendPending stores p, marked as sent now, and mails its confirmation to its address; the
// same pending action gives the same confirm address every time.
func (s *Service) sendPending(tx store.Tx, l store.List, p store.Pending, template, inReplyTo string, res *Result) error {
	p.Sent = s.Now().UTC()
	p, err := tx.PutPending(l.Address, p)
	if err != nil {
		return err
	}
	data := s.noticeData(l)
	data.Address, data.Mode, data.By, data.Lines = p.Address, p.Mode, p.By, p.Lines
	if p.Kind == store.PendingInvite && len(p.Lines) > 0 {
		data.Note, data.Lines = p.Lines[0], nil
	}
	data.Confirm = s.confirmAddress(l.Address, actionPending, p.ID, p.Expires)
	data.Expires = day(p.Expires)
	return s.enqueueNotice(tx, l, notice{to: p.Address, template: template, data: data, inReplyTo: inReplyTo, replied: inReplyTo != ""}, res)
}

// unsubscribe asks the member, at the address on file, to confirm leaving: nobody can take a
// member off by forging their From.
func (s *Service) unsubscribe(tx store.Tx, c *command) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("unsubscribe from a non-member", "list", l.Address, "from", c.m.from)
		return "unsubscribe: " + s.notOnList(l, c.m.from), nil
	} else if err != nil {
		return "", err
	}
	expires := s.Now().UTC().Add(confirmValidity)
	data := s.noticeData(l)
	data.Address = mem.Address
	data.Confirm = s.confirmAddress(l.Address, actionUnsubscribe, mem.ID, expires)
	data.Expires = day(expires)
	return fmt.Sprintf("unsubscribe: a confirmation went to %s.", mem.Address), s.enqueueNotice(tx, l, c.reply("leave-confirm", data), c.res)
}

// changeMode sets how the sender receives the list: at once when their address is proven,
// else after they confirm from the address on file. notify: tell them by mail (a command
// address); otherwise the result sentence is all (a crew-request@ mail).
func (s *Service) changeMode(tx store.Tx, c *command, mode vocab.Mode, notify bool) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("mode change from a non-member", "list", l.Address, "from", c.m.from)
		return string(mode) + ": " + s.notOnList(l, c.m.from), nil
	} else if err != nil {
		return "", err
	}
	if c.verified {
		if err := s.setMode(tx, l, mem, mode, notify, c.m.messageID, c.res); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: done; %s now gets %s.", mode, mem.Address, modeWords(mode)), nil
	}
	now := s.Now().UTC()
	p, err := tx.PendingFor(l.Address, store.PendingMode, mem.Address)
	if err == nil && p.Mode == mode && now.Before(p.Expires) && now.Sub(p.Sent) < answerEvery {
		if c.res.answering != nil && !c.res.answering.fold {
			// Maybe forged: named in the next answer instead of a second mail within the hour.
			return "", s.remember(tx, l, c.m, c.rcpt)
		}
		return fmt.Sprintf("%s: a confirmation went to %s within the hour.", mode, mem.Address), nil
	}
	p = store.Pending{Kind: store.PendingMode, Address: mem.Address, Mode: mode, Created: now, Expires: now.Add(confirmValidity)}
	if err := s.sendPending(tx, l, p, "mode-confirm", c.m.messageID, c.res); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: a confirmation went to %s.", mode, mem.Address), nil
}

func (s *Service) setMode(tx store.Tx, l store.List, mem store.Member, mode vocab.Mode, notify bool, inReplyTo string, res *Result) error {
	mem.Mode = mode
	if resume(&mem) {
		s.log.Info("delivery to a paused member resumed", "list", l.Address, "member", mem.Address)
	}
	if err := tx.PutMember(l.Address, mem); err != nil {
		return err
	}
	s.log.Info("delivery mode changed", "list", l.Address, "member", mem.Address, "mode", mode)
	if !notify {
		return nil
	}
	data := s.noticeData(l)
	data.Address, data.Mode = mem.Address, mode
	return s.enqueueNotice(tx, l, notice{to: mem.Address, template: "mode-changed", data: data, inReplyTo: inReplyTo, replied: true}, res)
}

func modeWords(mode vocab.Mode) string {
	switch mode {
	case vocab.Each:
		return "every post as it comes"
	case vocab.NoMail:
		return "no mail"
	}
	return "a " + string(mode) + " digest"
}

// confirmPending carries out a pending action its address confirmed.
func (s *Service) confirmPending(tx store.Tx, c *command, id uint64) error {
	l := c.l
	p, err := tx.PendingByID(l.Address, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // done already, or replaced by a newer request
	} else if err != nil {
		return err
	}
	if s.Now().After(p.Expires) {
		return tx.DeletePending(l.Address, id)
	}
	if what, ok := refusedPending[p.Kind]; ok && refusal.Refuses(c.m.lines(refusalLines), false) {
		s.log.Info("confirmation refused by its reply", "list", l.Address, "address", p.Address, "kind", p.Kind)
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		return s.saidNo(tx, c, p.Address, fmt.Sprintf(what, l.Address))
	}
	switch p.Kind {
	case store.PendingJoin:
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		if l.Join == vocab.JoinOpen {
			return s.join(tx, l, store.Member{Address: p.Address, Mode: vocab.Each, Origin: store.OriginOpen}, "they confirmed by mail", c.m.messageID, c.res)
		}
		return s.askOwners(tx, c, p.Address, "")
	case store.PendingInvite:
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		// A member's invitation (List.InviteBy "members") on a list whose owners approve who
		// joins is a request to them, saying who brought the invitee in.
		if !slices.Contains(l.Owners, p.By) && l.Join != vocab.JoinOpen {
			return s.askOwners(tx, c, p.Address, p.By)
		}
		return s.join(tx, l, store.Member{Address: p.Address, Mode: vocab.Each, Origin: store.OriginInvited, InvitedBy: p.By}, "invited by "+p.By+", they accepted", c.m.messageID, c.res)
	case store.PendingMode:
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		mem, err := tx.Member(l.Address, p.Address)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return s.setMode(tx, l, mem, p.Mode, true, c.m.messageID, c.res)
	case store.PendingRejoin:
		return s.rejoin(tx, l, p, c.m.messageID, c.res)
	case store.PendingPause:
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		mem, err := tx.Member(l.Address, p.Address)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		until, err := time.Parse(time.RFC3339, p.Lines[0])
		if err != nil || len(p.Lines) != 1 {
			return fmt.Errorf("damaged pending pause %d of %s: %v", p.ID, l.Address, p.Lines)
		}
		_, err = s.pauseUntil(tx, l, mem, until, c.m.messageID, c.res)
		return err
	case store.PendingPassword:
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		if _, err := tx.Member(l.Address, p.Address); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return s.issuePassword(tx, l, p.Address, c.m.messageID, c.res)
	case store.PendingChangeOld:
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		if _, err := tx.Member(l.Address, p.Address); errors.Is(err, store.ErrNotFound) || len(p.Lines) != 1 {
			return nil
		} else if err != nil {
			return err
		}
		_, to, _ := strings.Cut(p.Lines[0], " ")
		_, err := s.askNewAddress(tx, l, p.Address, to, c.res)
		return err
	case store.PendingChangeNew:
		return s.moveAddress(tx, l, p, c.m.messageID, c.res)
	case store.PendingExport:
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		if _, err := tx.Member(l.Address, p.Address); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return s.sendExport(tx, l, p.Address, c.m.messageID, c.res)
	case store.PendingResume:
		return s.resumeDelivery(tx, l, p, c.m.messageID, c.res)
	case store.PendingForget:
		return s.forgetAddress(tx, l, p, c.m.messageID, c.res)
	case store.PendingOwner:
		if err := tx.DeletePending(l.Address, id); err != nil {
			return err
		}
		if !slices.Contains(l.Owners, p.Address) {
			return nil // no longer an owner
		}
		// The owner gets one mail: the results, with what the commands told them folded in.
		prev := c.res.answering
		defer func() { c.res.answering = prev }()
		a := &answering{to: p.Address, verified: true, fold: true}
		c.res.answering = a
		results, err := s.ownerCommands(tx, l, p.Address, p.Lines, c.m.messageID, c.res)
		if err != nil {
			return err
		}
		data := s.noticeData(l)
		data.Results, data.Confirm = a.unfold(results)
		return s.enqueueNotice(tx, l, notice{to: p.Address, template: "request-results", data: data, inReplyTo: c.m.messageID}, c.res)
	}
	return nil
}

// refusedPending says, for each kind of pending action a person confirms, what stays as it
// was when their reply refuses it (%s: the list).
var refusedPending = map[string]string{
	store.PendingJoin:      "you did not join %s, and will get no mail from it.",
	store.PendingInvite:    "you did not join %s, and will get no mail from it.",
	store.PendingMode:      "how you receive %s stays as it was.",
	store.PendingPassword:  "no new password was made for the archive of %s; the one you have still works.",
	store.PendingOwner:     "your commands to %s were not carried out.",
	store.PendingChangeOld: "your address on %s stays as it is.",
	store.PendingChangeNew: "nothing moved to this address on %s.",
	store.PendingExport:    "no copy of your data on %s was made.",
	store.PendingForget:    "nothing was forgotten: you stay on %s as you were.",
}

// askOwners hands a confirmed join to the owners: each gets the request with addresses to
// approve or decline; the requester hears it waits.
// invitedBy is the member whose invitation the request comes from, empty for none.
func (s *Service) askOwners(tx store.Tx, c *command, addr, invitedBy string) error {
	l := c.l
	now := s.Now().UTC()
	p, err := tx.PutPending(l.Address, store.Pending{Kind: store.PendingRequest, Address: addr, By: invitedBy, Created: now, Sent: now, Expires: now.Add(confirmValidity)})
	if err != nil {
		return err
	}
	if err := s.sendJoinRequest(tx, l, p, s.deciders(l), c.res); err != nil {
		return err
	}
	data := s.noticeData(l)
	data.Address = addr
	return s.enqueueNotice(tx, l, c.reply("join-waiting", data), c.res)
}

// sendJoinRequest sends join request p of l to each of to, with addresses to approve or
// decline it.
func (s *Service) sendJoinRequest(tx store.Tx, l store.List, p store.Pending, to []string, res *Result) error {
	data := s.noticeData(l)
	data.Address, data.Expires, data.By = p.Address, day(p.Expires), p.By
	data.Confirm = s.confirmAddress(l.Address, actionDecideJoin, p.ID, p.Expires)
	data.Approve = s.confirmAddress(l.Address, actionApproveJoin, p.ID, p.Expires)
	data.Reject = s.confirmAddress(l.Address, actionDeclineJoin, p.ID, p.Expires)
	for _, d := range to {
		if err := s.enqueueNotice(tx, l, notice{to: d, template: "join-request", data: data}, res); err != nil {
			return err
		}
	}
	if len(to) == 0 {
		s.log.Warn("a join request waits but the list has no owners to decide it", "list", l.Address, "address", p.Address)
	}
	return nil
}

// deciders decide who joins l: its owners, or else the server's postmaster.
func (s *Service) deciders(l store.List) []string {
	if len(l.Owners) == 0 && s.cfg.Postmaster != "" {
		return []string{s.cfg.Postmaster}
	}
	return l.Owners
}

// sendWaitingRequests sends the join requests that wait on l to owners added to it, who did
// not have them.
func (s *Service) sendWaitingRequests(tx store.Tx, l store.List, added []string, res *Result) error {
	var waiting []store.Pending
	if err := tx.PendingActions(l.Address, func(p store.Pending) error {
		if p.Kind == store.PendingRequest {
			waiting = append(waiting, p)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, p := range waiting {
		if err := s.sendJoinRequest(tx, l, p, added, res); err != nil {
			return err
		}
	}
	return nil
}

// decideJoinByMail is an owner's answer to a join request: by the approve or decline address,
// or by a reply whose first line says which.
func (s *Service) decideJoinByMail(tx store.Tx, c *command, action byte, id uint64) error {
	l := c.l
	p, err := tx.PendingByID(l.Address, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.Kind != store.PendingRequest) {
		return s.answer(tx, c, []string{s.decidedAlready(tx, l, "join", id, "This join request")})
	} else if err != nil {
		return err
	}
	reason := ""
	if action == actionDecideJoin {
		approve, why, ok := c.decision()
		if !ok {
			return s.answer(tx, c, []string{fmt.Sprintf("Your reply about %s joining %s begins neither with approve nor with decline, so nothing was done. Reply again with one of them on the first line.", p.Address, l.Address)})
		}
		action, reason = actionDeclineJoin, why
		if approve {
			action = actionApproveJoin
		}
	}
	if err := s.decideJoin(tx, l, p, action == actionApproveJoin, reason, c.m.from, c.res); err != nil {
		return err
	}
	// An approval is acknowledged by the notice that they joined, which every owner gets; a
	// decline by this answer. It goes to the address the request was sent to (the token
	// proves it), so it is not held back like answers to unproven mail.
	if action == actionApproveJoin {
		return nil
	}
	what := "Done: " + p.Address + " was turned down"
	if reason != "" {
		what += ", with your reason: " + reason
	}
	return s.sendResults(tx, c, []string{what + "."}, "")
}

// decideJoin carries out by's decision on join request p: the requester joins, or hears the
// reason they were turned down.
func (s *Service) decideJoin(tx store.Tx, l store.List, p store.Pending, approve bool, reason, by string, res *Result) error {
	if err := tx.DeletePending(l.Address, p.ID); err != nil {
		return err
	}
	if err := s.rememberDecision(tx, l, "join", p.ID, by, approve, "approved", "declined", p.Expires); err != nil {
		return err
	}
	if approve {
		m := store.Member{Address: p.Address, Mode: vocab.Each, Origin: store.OriginApproved, ApprovedBy: by, InvitedBy: p.By}
		how := "they confirmed, and " + by + " approved"
		if p.By != "" {
			how = "invited by " + p.By + ", they accepted, and " + by + " approved"
		}
		return s.join(tx, l, m, how, "", res)
	}
	s.log.Info("join request declined", "list", l.Address, "address", p.Address, "by", by)
	data := s.noticeData(l)
	data.Address, data.Reason = p.Address, reason
	return s.enqueueNotice(tx, l, notice{to: p.Address, template: "join-declined", data: data}, res)
}

// rememberDecision keeps by's decision on what (join request or held post) id until expires,
// for decidedAlready.
func (s *Service) rememberDecision(tx store.Tx, l store.List, what string, id uint64, by string, yes bool, ifYes, ifNo string, expires time.Time) error {
	how := ifNo
	if yes {
		how = ifYes
	}
	_, err := tx.PutPending(l.Address, store.Pending{Kind: store.PendingDecided, Address: fmt.Sprintf("%s %d", what, id), By: by, Lines: []string{how}, Created: s.Now().UTC(), Expires: expires})
	return err
}

// decidedAlready says who decided what id and how, as far as it is remembered; subject names
// it ("This post").
func (s *Service) decidedAlready(tx store.Tx, l store.List, what string, id uint64, subject string) string {
	p, err := tx.PendingFor(l.Address, store.PendingDecided, fmt.Sprintf("%s %d", what, id))
	if err != nil || len(p.Lines) == 0 {
		return subject + " has been decided already."
	}
	return fmt.Sprintf("%s was decided already by %s: %s.", subject, p.By, p.Lines[0])
}

// JoinRequest is a confirmed request to join that waits for an owner.
type JoinRequest struct {
	ID       uint64
	Address  string
	Received time.Time
	Expires  time.Time
}

// JoinRequests lists the requests to join list that wait for an owner's decision.
func (s *Service) JoinRequests(list string) ([]JoinRequest, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return nil, err
	}
	var out []JoinRequest
	err = s.st.View(func(tx store.Tx) error {
		if _, err := tx.List(laddr); err != nil {
			return err
		}
		return tx.PendingActions(laddr, func(p store.Pending) error {
			if p.Kind == store.PendingRequest {
				out = append(out, JoinRequest{ID: p.ID, Address: p.Address, Received: p.Created, Expires: p.Expires})
			}
			return nil
		})
	})
	return out, notFound(err, "there is no list %s", laddr)
}

// DecideJoin approves or declines (with reason, which the requester reads) join request id of
// list as the operator's decision; it returns the address that asked.
func (s *Service) DecideJoin(list string, id uint64, approve bool, reason string) (string, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return "", err
	}
	var who string
	_, err = s.update(func(tx store.Tx, res *Result) error {
		l, err := tx.List(laddr)
		if err != nil {
			return fmt.Errorf("there is no list %s", laddr)
		}
		p, err := tx.PendingByID(laddr, id)
		if err != nil || p.Kind != store.PendingRequest {
			return fmt.Errorf("%s has no join request %d waiting (see crewmail pending ls %s)", laddr, id, laddr)
		}
		who = p.Address
		return s.decideJoin(tx, l, p, approve, reason, "the operator", res)
	})
	return who, err
}

// decision reads an owner's or moderator's reply: the first line the sender wrote themselves
// says approve (approve, accept, yes, ok) or not (reject, decline, no, deny); ok is false when
// it says neither. Only what is plainly meant for the requester is a reason sent to them: the
// rest of a line "decline REASON" or "reject REASON", or of a line beginning "reason:". Other
// words ("No - who is this?") stay with the owners.
func (c *command) decision() (approve bool, reason string, ok bool) {
	lines := c.m.lines(maxRequestLines)
	if len(lines) == 0 {
		return false, "", false
	}
	word, rest := firstWord(lines[0])
	switch word {
	case "approve", "accept", "yes", "ok":
		return true, "", true
	case "reject", "decline", "no", "deny":
	default:
		return false, "", false
	}
	for _, line := range lines {
		if r, ok := cutFold(strings.TrimSpace(line), "reason:"); ok {
			return false, strings.TrimSpace(r), true
		}
	}
	if word == "reject" || word == "decline" {
		return false, strings.TrimLeft(rest, "-–—:,. "), true
	}
	return false, "", true
}

// cutFold is strings.CutPrefix without regard to case.
func cutFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// join makes m.Address a member of l, in m.Mode, recording how it began (m.Origin and who
// vouched) and how they consented: a welcome to them, a notice to the owners saying how.
func (s *Service) join(tx store.Tx, l store.List, m store.Member, how, inReplyTo string, res *Result) error {
	addr, mode := m.Address, m.Mode
	m.Added = s.Now().UTC()
	m.Consent = how + ", " + moment(m.Added)
	if _, err := tx.AddMember(l.Address, m); errors.Is(err, store.ErrExists) {
		return nil
	} else if err != nil {
		return err
	}
	s.log.Info("member joined", "list", l.Address, "member", addr, "how", how)
	if err := s.welcome(tx, l, addr, mode, inReplyTo, res); err != nil {
		return err
	}
	return s.tellOwners(tx, l, "owner-join", addr, how, res)
}

func (s *Service) welcome(tx store.Tx, l store.List, addr string, mode vocab.Mode, inReplyTo string, res *Result) error {
	data := s.noticeData(l)
	data.Address, data.Mode = addr, mode
	// The owners' text, a paragraph a line: notices fold every value into one line.
	for _, para := range strings.Split(l.Welcome, "\n\n") {
		if para = strings.Join(strings.Fields(para), " "); para != "" {
			data.Welcome = append(data.Welcome, para)
		}
	}
	return s.enqueueNotice(tx, l, notice{to: addr, template: "welcome", data: data, inReplyTo: inReplyTo}, res)
}

// leave takes addr off l: a goodbye to them (saying which owner, when by is one who removed
// them), a notice to the owners saying how.
//
// A member who left by her own choice (by empty) can undo it for undoValidity: the goodbye
// carries a confirmation address that brings her back in the mode she had, with no new
// confirmation nor an owner's approval (see rejoin).
func (s *Service) leave(tx store.Tx, l store.List, addr, how, by, inReplyTo string, res *Result) error {
	mem, err := tx.Member(l.Address, addr)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := s.dropMember(tx, l, addr); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	s.log.Info("member left", "list", l.Address, "member", addr, "how", how)
	data := s.noticeData(l)
	data.Address, data.By = addr, by
	template := "goodbye"
	if by == "" {
		now := s.Now().UTC()
		p, err := tx.PutPending(l.Address, store.Pending{Kind: store.PendingRejoin, Address: addr, Mode: mem.Mode, Created: now, Expires: now.Add(undoValidity), Sent: now})
		if err != nil {
			return err
		}
		// The undo is an address of its own, not the notice's reply: a reply to a goodbye is
		// a question for the owners (replyToOwners).
		template, data.Mode = "left", mem.Mode
		data.Approve = s.confirmAddress(l.Address, actionPending, p.ID, p.Expires)
		data.Expires = day(p.Expires)
		res.undo = s.confirmToken(l.Address, actionPending, p.ID, p.Expires)
	}
	if err := s.enqueueNotice(tx, l, notice{to: addr, template: template, data: data, inReplyTo: inReplyTo}, res); err != nil {
		return err
	}
	return s.tellOwners(tx, l, "owner-leave", addr, how, res)
}

// dropMember takes addr off l and, where the backend can (store.People), what is kept under
// its member ID (read state, mutes, follows) and the actions pending about it; when it was
// the address's last list, its app password goes too. Nothing of an address lingers after its
// last unsubscribe but the undo of leaving (PendingRejoin, made after this).
func (s *Service) dropMember(tx store.Tx, l store.List, addr string) error {
	pe, err := store.AsPeople(tx)
	if err != nil {
		return tx.RemoveMember(l.Address, addr)
	}
	if err := pe.ForgetMember(l.Address, addr); err != nil {
		return err
	}
	if ls, _, err := tx.ListsOf(addr); err != nil || len(ls) > 0 {
		return err
	}
	return pe.DeleteAppPassword(addr)
}

// tellOwners sends the owners of l a notice about addr, except an owner it is about; on a list
// whose owners want one mail a day, it is gathered for that mail instead (sweepPending).
func (s *Service) tellOwners(tx store.Tx, l store.List, template, addr, how string, res *Result) error {
	if l.OwnerNotices == "daily" && (template == "owner-join" || template == "owner-leave") {
		now := s.Now().UTC()
		p, err := tx.PendingFor(l.Address, store.PendingOwnerNotices, l.Address)
		if err != nil {
			p = store.Pending{Kind: store.PendingOwnerNotices, Address: l.Address, Created: now, Expires: now.Add(24 * time.Hour)}
		}
		what := "joined"
		if template == "owner-leave" {
			what = "left"
		}
		p.Lines = append(p.Lines, fmt.Sprintf("%s %s on %s; %s.", addr, what, moment(now), how))
		_, err = tx.PutPending(l.Address, p)
		return err
	}
	data := s.noticeData(l)
	data.Address, data.How = addr, how
	for _, owner := range l.Owners {
		if owner == addr {
			continue
		}
		if err := s.enqueueNotice(tx, l, notice{to: owner, template: template, data: data}, res); err != nil {
			return err
		}
	}
	return nil
}

// undoValidity is how long a member who left can come back by her undo.
const undoValidity = 7 * 24 * time.Hour

// rejoin carries out the undo of a leave (p, store.PendingRejoin, not expired): the address is
// a member again, in the mode it had, without a new confirmation or an owner's approval: it
// was a member a few days ago, and only the address the goodbye went to holds the undo.
func (s *Service) rejoin(tx store.Tx, l store.List, p store.Pending, inReplyTo string, res *Result) error {
	if err := tx.DeletePending(l.Address, p.ID); err != nil {
		return err
	}
	return s.join(tx, l, store.Member{Address: p.Address, Mode: p.Mode, Origin: store.OriginRejoined}, "they undid their leaving", inReplyTo, res)
}
