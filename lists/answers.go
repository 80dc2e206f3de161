package lists

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"crewmail/store"
)

// Mail to a command address is answered to its From, which anyone can forge: each answer is
// mail the list's domain signs and sends to whoever the forger names. So one incoming mail gets
// at most one answer to that address (a crew-request@ mail gets all its results, confirmations
// and help in one), and an address gets only a few answers an hour, on all the server's lists
// together, however many mails or lines ask.
const (
	// answersPerHour bounds the answers to an address in an hour when the mail asking is
	// proven to come from it (DMARC-aligned DKIM or SPF).
	answersPerHour = 10
	// unprovenAnswersPerHour bounds them when it is not: a forger uses up only these, and
	// the member's own proven mail is still answered.
	unprovenAnswersPerHour = 3
)

// answering is the command mail being answered. Every notice to its sender passes through it
// (see passAnswer); notices to others (the owners, a member an owner removed) do not.
type answering struct {
	to       string   // the sender, as the From says
	verified bool     // the From is proven
	mail     *inbound // the mail answered
	rcpt     string   // the address it was written to
	deferred bool     // an answer to it was held back, and it is remembered (see remember)
	// fold: the notices to the sender become parts of the one answer, instead of mails.
	fold   bool
	folded []foldedNotice
}

type foldedNotice struct {
	template, text, confirm string
}

// passAnswer reports whether notice n may be sent now, and records it when so. A notice folded
// into the answer being collected is not sent on its own.
func (s *Service) passAnswer(tx store.Tx, l store.List, n *notice, res *Result) (bool, error) {
	a := res.answering
	if a == nil || n.to != a.to || n.files != nil {
		return true, nil
	}
	if a.fold {
		subject, body, err := s.tpl.Render(n.template, n.data)
		if err != nil {
			return false, err
		}
		key := n.template
		if n.template == "mydata-confirm" {
			// One template for several confirmations (export, change-address, forget):
			// each is a kind of its own.
			key += "\x00" + subject
		}
		f := foldedNotice{template: key, text: foldText(subject, body), confirm: n.data.Confirm}
		// A second notice of the same kind replaces the first: for a mode asked twice, only
		// the newest confirmation is valid.
		if i := slices.IndexFunc(a.folded, func(g foldedNotice) bool { return g.template == key }); i >= 0 {
			a.folded[i] = f
		} else {
			a.folded = append(a.folded, f)
		}
		return false, nil
	}
	if ok, why, err := s.mayAnswerNow(tx, a, res); err != nil || !ok {
		if err == nil {
			s.log.Info("answer not sent: "+why, "to", n.to, "notice", n.template)
			if !res.answered[a.to] && a.mail != nil && !a.deferred {
				a.deferred = true
				err = s.remember(tx, l, a.mail, a.rcpt)
			}
		}
		return false, err
	}
	if res.answered == nil {
		res.answered = map[string]bool{}
	}
	res.answered[n.to] = true
	if err := s.countAnswer(tx, l.Address, n.to); err != nil {
		return false, err
	}
	return true, s.noteDeferred(tx, l, a, n)
}

// maxDeferred bounds the mails an answer names that came while answers were paused.
const maxDeferred = 10

// remember notes mail m, which gets no answer now because its sender had their answers for
// the hour, so that the next answer to them names it: repeats are merged into one answer,
// never dropped unseen, and never multiplied into more mail.
func (s *Service) remember(tx store.Tx, l store.List, m *inbound, rcpt string) error {
	now := s.Now().UTC()
	p, err := tx.PendingFor(l.Address, store.PendingDeferred, m.from)
	if err != nil || !now.Before(p.Expires) {
		p = store.Pending{Kind: store.PendingDeferred, Address: m.from, Created: now}
	}
	p.Expires = now.Add(24 * time.Hour)
	subject := []rune(strings.TrimSpace(m.subject))
	line := now.Format("15:04 MST") + ", to " + rcpt
	if len(subject) > 0 {
		line += fmt.Sprintf(" (%q)", string(subject[:min(len(subject), 60)]))
	}
	// The same mail again within the minute (a forged flood, a client sending twice) is one
	// line, counted: "10:02 UTC, to crew+unsubscribe@… (×5)".
	merged := false
	for i, old := range p.Lines {
		if base, n, ok := countedLine(old); ok && base == line {
			p.Lines[i], merged = fmt.Sprintf("%s (×%d)", line, n+1), true
			break
		}
	}
	switch {
	case merged:
	case len(p.Lines) < maxDeferred:
		p.Lines = append(p.Lines, line)
	case len(p.Lines) == maxDeferred:
		p.Lines = append(p.Lines, "and more")
	}
	s.log.Info("answer deferred: the address had its answers for the hour", "list", l.Address, "to", m.from, "msgid", m.messageID)
	_, err = tx.PutPending(l.Address, p)
	return err
}

// countedLine splits a line remember wrote into the line and how many mails it stands for.
func countedLine(line string) (string, int, bool) {
	if i := strings.LastIndex(line, " (×"); i > 0 && strings.HasSuffix(line, ")") {
		var n int
		if _, err := fmt.Sscanf(line[i+len(" (×"):], "%d)", &n); err == nil {
			return line[:i], n, true
		}
	}
	return line, 1, true
}

// mayAnswerMail is mayAnswer for the sender of m, remembering m when the answer may not go.
func (s *Service) mayAnswerMail(tx store.Tx, l store.List, m *inbound, rcpt string) (bool, error) {
	ok, err := s.mayAnswer(tx, l, m.from)
	if err == nil && !ok {
		err = s.remember(tx, l, m, rcpt)
	}
	return ok, err
}

// noteDeferred adds to n, an answer about to go to the sender of the mail being answered,
// what they sent while answers to them were paused, and, when this answer is the last one
// for a while, until when.
func (s *Service) noteDeferred(tx store.Tx, l store.List, a *answering, n *notice) error {
	var notes []string
	p, err := tx.PendingFor(l.Address, store.PendingDeferred, a.to)
	if err == nil && s.Now().Before(p.Expires) && len(p.Lines) > 0 {
		notes = append(notes, "While answers to you were paused, these mails came and got no answer;\nsend again what still matters:\n\n  "+strings.Join(p.Lines, "\n  "))
	}
	if err == nil {
		if err := tx.DeletePending(l.Address, p.ID); err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if until, err := s.pausedUntil(tx, l, a); err != nil {
		return err
	} else if !until.IsZero() {
		notes = append(notes, "To keep forged mail from flooding anyone, this address gets no more\nanswers until "+until.UTC().Format("15:04 MST")+". What you send before then is named in\nthe first answer after it.")
	}
	n.note = strings.Join(notes, "\n\n")
	return nil
}

// pausedUntil is when the sender being answered may next get an answer, if that is not at once
// after the answer being sent: the hour's allowance is used up (on all lists), or, unproven,
// this list's one answer an hour (mayAnswer) has gone.
func (s *Service) pausedUntil(tx store.Tx, l store.List, a *answering) (time.Time, error) {
	now := s.Now()
	var until time.Time
	if !a.verified {
		if p, err := tx.PendingFor(l.Address, store.PendingNotice, a.to); err == nil && now.Before(p.Expires) {
			until = p.Expires
		}
	}
	limit := unprovenAnswersPerHour
	if a.verified {
		limit = answersPerHour
	}
	lists, err := tx.ListAddresses()
	if err != nil {
		return time.Time{}, err
	}
	n := 0
	var first time.Time
	for _, list := range lists {
		p, err := tx.PendingFor(list, store.PendingAnswers, a.to)
		if err != nil || !now.Before(p.Expires) {
			continue
		}
		n += p.Count
		if first.IsZero() || p.Expires.Before(first) {
			first = p.Expires
		}
	}
	if n >= limit && first.After(until) {
		until = first
	}
	return until, nil
}

// mayAnswerNow reports whether the sender of the mail being answered may get an answer: none
// yet for this mail, and fewer than the hour's allowance so far.
func (s *Service) mayAnswerNow(tx store.Tx, a *answering, res *Result) (ok bool, why string, err error) {
	if res.answered[a.to] {
		return false, "this mail was answered already", nil
	}
	limit := unprovenAnswersPerHour
	if a.verified {
		limit = answersPerHour
	}
	n, err := s.answersSent(tx, a.to)
	if err != nil {
		return false, "", err
	}
	if n >= limit {
		return false, "the address had its answers for the hour", nil
	}
	return true, "", nil
}

// answersSent counts the answers that went to addr within the hour, on every list.
func (s *Service) answersSent(tx store.Tx, addr string) (int, error) {
	now := s.Now()
	n := 0
	lists, err := tx.ListAddresses()
	if err != nil {
		return 0, err
	}
	for _, list := range lists {
		p, err := tx.PendingFor(list, store.PendingAnswers, addr)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return 0, err
		}
		if now.Before(p.Expires) {
			n += p.Count
		}
	}
	return n, nil
}

// countAnswer records one more answer to addr, with list (answersSent adds up all lists); a
// new hour starts when the last one is over.
func (s *Service) countAnswer(tx store.Tx, list, addr string) error {
	now := s.Now().UTC()
	p, err := tx.PendingFor(list, store.PendingAnswers, addr)
	if err != nil || !now.Before(p.Expires) {
		p = store.Pending{Kind: store.PendingAnswers, Address: addr, Created: now, Expires: now.Add(time.Hour)}
	}
	p.Count++
	p.Sent = now
	_, err = tx.PutPending(list, p)
	return err
}

// unfold ends folding and returns results with the folded notices after them, and the one
// confirm address among them, if there is exactly one, for a reply to confirm.
func (a *answering) unfold(results []string) ([]string, string) {
	a.fold = false
	var confirms []string
	for _, f := range a.folded {
		results = append(results, f.text)
		if f.confirm != "" && !slices.Contains(confirms, f.confirm) {
			confirms = append(confirms, f.confirm)
		}
	}
	a.folded = nil
	if len(confirms) == 1 {
		return results, confirms[0]
	}
	return results, ""
}

// foldText is a notice's text as part of another mail: its subject as a heading, its text
// without the greeting and signature (the answer has its own), indented under the heading.
func foldText(subject, body string) string {
	body, _, _ = strings.Cut(body, "\n-- \n")
	body = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(body), "Hello,"))
	var b strings.Builder
	b.WriteString("\n  == " + subject + " ==\n")
	for line := range strings.SplitSeq(body, "\n") {
		b.WriteString("\n")
		if line != "" {
			b.WriteString("  " + line)
		}
	}
	return b.String()
}
