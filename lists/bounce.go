package lists

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"crewmail/internal/dsn"
	"crewmail/internal/metrics"
	"crewmail/internal/outcome"
	"crewmail/store"
)

// Bounces. Every copy goes out with a VERP return path naming its member, so a report that
// comes back, or a delivery our own workers could not make, is about one known member. Hard
// failures add to the member's score and soft ones less; a success report clears it; a score
// over the threshold that has been building for at least the period pauses delivery to the
// member, tells the owners, and tells the member how to come back. A refusal for policy or
// authentication (5.7.x, DMARC) is the list's problem and counts against the list.

const (
	hardBounce = 1.0
	softBounce = 0.25
)

// acceptBounce reads mail to a member's bounce address; what it reports is applied to the
// member. What it said and its head are kept for the operator, bounded (store.AddBounce):
// anyone who saw a bounce address can mail it, as large as SMTP allows, as often as they like.
func (s *Service) acceptBounce(tx store.Tx, l store.List, t Target, m *inbound, kept []byte, res *Result) error {
	id, _ := s.parseVERPToken(l.Address, t.Token)
	r, perr := m.report, m.reportErr // read by readBody, before the transaction
	b := store.Bounce{Received: s.Now().UTC(), Member: id, Size: len(kept), Head: kept}
	if perr == nil {
		b.Kind, b.Status, b.Diagnostic = r.Kind.String(), r.Status, oneLine(r.Diagnostic, 300)
	}
	if err := tx.AddBounce(l.Address, b); err != nil {
		return err
	}
	if perr != nil {
		s.log.Info("bounce not readable", "list", l.Address, "member", id, "err", perr)
		return nil
	}
	return s.applyBounce(tx, l, id, r, res)
}

// DeliveryFailed records a delivery our own workers gave up on (a 5xx from the member's
// server, or retries run out), from the outcome of its last attempt as data: the enhanced
// status code decides, never our own wording. A refusal for policy, reputation or
// authentication (5.7.x) counts against the list, not the member; retries run out is a soft
// bounce; any other permanent refusal a hard one. It runs inside the transaction that records
// the failure.
func (s *Service) DeliveryFailed(tx store.Tx, d store.Delivery, o outcome.Result) error {
	if d.Member == 0 {
		return nil // a notice, not a member's copy
	}
	l, err := tx.List(d.List)
	if err != nil {
		return nil // the list is gone
	}
	r := dsn.Report{Kind: dsn.Failed, Status: o.Status, Recipient: d.To, Diagnostic: o.String()}
	switch {
	case o.Policy():
		r.Kind = dsn.Policy
	case o.GaveUp || o.Class() == 4:
		r.Kind = dsn.Delayed
	case o.Status == "" && o.Code != 0 && policyWords.MatchString(o.Text):
		// No enhanced status: the server's own words are all there is to go by.
		r.Kind = dsn.Policy
	}
	var res Result
	if err := s.applyBounce(tx, l, d.Member, r, &res); err != nil {
		return err
	}
	if res.Queued > 0 {
		tx.AfterCommit(func() { s.Enqueued() })
	}
	return nil
}

// policyWords are what a server's reply without an enhanced status code says when it refuses
// for policy.
var policyWords = regexp.MustCompile(`(?i)dmarc|spf|dkim|spam|blocked|blacklist|blocklist|policy|reputation|not authorized|unauthenticated`)

// applyBounce applies what a report says about member id of l.
func (s *Service) applyBounce(tx store.Tx, l store.List, id uint64, r dsn.Report, res *Result) error {
	now := s.Now().UTC()
	kind := r.Kind.String()
	tx.AfterCommit(func() { metrics.Bounces.WithLabelValues(kind).Inc() })
	switch r.Kind {
	case dsn.AutoReply, dsn.Unknown:
		s.log.Info("mail to a bounce address ignored", "list", l.Address, "member", id, "kind", r.Kind.String())
		return nil
	case dsn.Policy:
		l.PolicyBounces++
		l.LastPolicy, l.LastPolicyAt = oneLine(r.Diagnostic, 300), now
		s.log.Warn("a copy was refused for policy or authentication: the list's problem, not the member's", "list", l.Address, "member", id, "status", r.Status, "diagnostic", l.LastPolicy)
		return tx.PutList(l)
	}
	m, err := tx.MemberByID(l.Address, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // gone since
	} else if err != nil {
		return err
	}
	switch r.Kind {
	case dsn.Delivered:
		if m.BounceScore == 0 {
			return nil
		}
		m.BounceScore, m.BouncedFrom = 0, time.Time{}
		s.log.Info("bounce score cleared by a success report", "list", l.Address, "member", m.Address)
		return tx.PutMember(l.Address, m)
	case dsn.Failed:
		m.BounceScore += hardBounce
	case dsn.Delayed:
		m.BounceScore += softBounce
	}
	if m.BouncedFrom.IsZero() {
		m.BouncedFrom = now
	}
	s.log.Info("bounce", "list", l.Address, "member", m.Address, "kind", r.Kind.String(), "status", r.Status, "score", m.BounceScore, "diagnostic", oneLine(r.Diagnostic, 200))
	if !m.Paused.IsZero() || m.BounceScore < s.cfg.BounceThreshold || now.Sub(m.BouncedFrom) < s.cfg.BouncePeriod {
		return tx.PutMember(l.Address, m)
	}
	m.Paused, m.PausedWhy = now, oneLine(r.Diagnostic, 300)
	if err := tx.PutMember(l.Address, m); err != nil {
		return err
	}
	s.log.Warn("delivery to a bouncing member paused", "list", l.Address, "member", m.Address, "score", m.BounceScore, "since", m.BouncedFrom)
	data := s.noticeData(l)
	data.Address, data.Reason = m.Address, oneLine(r.Diagnostic, 300)
	data.Received = moment(m.BouncedFrom)
	if data.Confirm, err = s.resumeAddress(tx, l, m.Address); err != nil {
		return err
	}
	if err := s.enqueueNotice(tx, l, notice{to: m.Address, template: "bounce-paused", data: data}, res); err != nil {
		return err
	}
	return s.tellOwners(tx, l, "owner-bounce-paused", m.Address, fmt.Sprintf("mail to them has bounced since %s (%s)", moment(m.BouncedFrom), oneLine(r.Diagnostic, 200)), res)
}

// resume undoes a bounce pause: the member asked for mail again.
func resume(m *store.Member) bool {
	if m.Paused.IsZero() && m.BounceScore == 0 {
		return false
	}
	m.Paused, m.BounceScore, m.BouncedFrom, m.PausedWhy = time.Time{}, 0, time.Time{}, ""
	return true
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// resumeValidity is how long the one-click resume of a paused member works.
const resumeValidity = 30 * 24 * time.Hour

// resumeAddress is the confirm address that resumes delivery to addr, paused for bouncing:
// any mail to it (one click on its mailto link) is enough, as only the member's mailbox has it.
func (s *Service) resumeAddress(tx store.Tx, l store.List, addr string) (string, error) {
	now := s.Now().UTC()
	p, err := tx.PendingFor(l.Address, store.PendingResume, addr)
	if err != nil || now.After(p.Expires.Add(-24*time.Hour)) {
		if p, err = tx.PutPending(l.Address, store.Pending{Kind: store.PendingResume, Address: addr, Created: now, Sent: now, Expires: now.Add(resumeValidity)}); err != nil {
			return "", err
		}
	}
	return s.confirmAddress(l.Address, actionPending, p.ID, p.Expires), nil
}

// pausedNote is what every mail that still reaches a member whose delivery is paused says
// (issue 21, "why my mail stopped"): since when, why, and the address that resumes it; empty
// when delivery to to on l is not paused.
func (s *Service) pausedNote(tx store.Tx, l store.List, to string) (string, error) {
	m, err := tx.Member(l.Address, to)
	if err != nil || m.Paused.IsZero() {
		return "", nil
	}
	resume, err := s.resumeAddress(tx, l, to)
	if err != nil {
		return "", err
	}
	why := ""
	if m.PausedWhy != "" {
		why = " The last answer of your mail provider was: " + m.PausedWhy
	}
	return "Mail from " + l.Name + " to you has been paused since " + moment(m.Paused) + " because it bounced." + why + " To get it again, send any mail to " + resume + " (one click: mailto:" + resume + ").", nil
}

// resumeDelivery carries out the one-click resume (p, PendingResume).
func (s *Service) resumeDelivery(tx store.Tx, l store.List, p store.Pending, inReplyTo string, res *Result) error {
	if err := tx.DeletePending(l.Address, p.ID); err != nil {
		return err
	}
	m, err := tx.Member(l.Address, p.Address)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if !resume(&m) {
		return nil
	}
	if err := tx.PutMember(l.Address, m); err != nil {
		return err
	}
	s.log.Info("delivery to a paused member resumed by its one-click address", "list", l.Address, "member", m.Address)
	return s.saidNoTo(tx, l, m.Address, inReplyTo, "resume: mail from "+l.Address+" comes to you again.", res)
}
