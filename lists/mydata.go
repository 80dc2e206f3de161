package lists

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"crewmail/internal/mbox"
	"crewmail/internal/token"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// A member's own data (issue 21): moving it to a new address (change-address), a copy of it
// (export), and forgetting it (forget), each asked for by mail to crew-request@. What acts on
// an address is proven to come from it: a DMARC-aligned DKIM or SPF pass, or a confirmation
// round trip to the address on file; forgetting always asks for a confirmation. So a forged
// request does nothing but send one confirmation to the address on file.

// changeAddress carries out "change-address NEW": the new address gets a confirmation, and
// only its confirmation moves anything (confirmNewAddress). From a sender that is not proven,
// the address on file confirms first.
func (s *Service) changeAddress(tx store.Tx, c *command, arg string) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		return "change-address: " + s.notOnList(l, c.m.from), nil
	} else if err != nil {
		return "", err
	}
	w, _ := firstWord(arg)
	to, err := ParseAddress(strings.Trim(w, "<>"))
	if err != nil || !strings.Contains(w, "@") {
		return "change-address: name the new address after the words change-address, as in \"change-address ann@example.org\".", nil
	}
	if to == mem.Address {
		return "change-address: " + to + " is the address you have already.", nil
	}
	if _, err := tx.Member(l.Address, to); err == nil {
		return "change-address: " + to + " is a member of " + l.Address + " already; leave with one of the two addresses first.", nil
	}
	now := s.Now().UTC()
	if !c.verified {
		p := store.Pending{Kind: store.PendingChangeOld, Address: mem.Address, Lines: []string{"change-address " + to}, Created: now, Expires: now.Add(confirmValidity)}
		if err := s.sendMyDataConfirm(tx, l, p, "moving your address to "+to, c.m.messageID, c.res); err != nil {
			return "", err
		}
		return "change-address: your address could not be verified, so a confirmation went to " + mem.Address + "; nothing changes until you confirm.", nil
	}
	return s.askNewAddress(tx, l, mem.Address, to, c.res)
}

// askNewAddress sends the new address to its confirmation.
func (s *Service) askNewAddress(tx store.Tx, l store.List, old, to string, res *Result) (string, error) {
	now := s.Now().UTC()
	p := store.Pending{Kind: store.PendingChangeNew, Address: to, By: old, Created: now, Expires: now.Add(confirmValidity)}
	if err := s.sendPending(tx, l, p, "change-address-confirm", "", res); err != nil {
		return "", err
	}
	s.log.Info("change of address asked", "list", l.Address, "member", old, "to", to)
	return "change-address: a confirmation went to " + to + "; your address changes when it is answered from there.", nil
}

// sendMyDataConfirm stores p and mails its confirmation to its address, saying what.
func (s *Service) sendMyDataConfirm(tx store.Tx, l store.List, p store.Pending, what, inReplyTo string, res *Result) error {
	p.Sent = s.Now().UTC()
	p, err := tx.PutPending(l.Address, p)
	if err != nil {
		return err
	}
	data := s.noticeData(l)
	data.Address, data.Subject, data.Lines = p.Address, what, []string{what}
	data.Confirm = s.confirmAddress(l.Address, actionPending, p.ID, p.Expires)
	data.Expires = day(p.Expires)
	return s.enqueueNotice(tx, l, notice{to: p.Address, template: "mydata-confirm", data: data, inReplyTo: inReplyTo, replied: inReplyTo != ""}, res)
}

// moveAddress carries out a change of address the new address confirmed (p, PendingChangeNew):
// everything moves (store.People.ChangeAddress), and both addresses hear of it.
func (s *Service) moveAddress(tx store.Tx, l store.List, p store.Pending, inReplyTo string, res *Result) error {
	if err := tx.DeletePending(l.Address, p.ID); err != nil {
		return err
	}
	pe, err := store.AsPeople(tx)
	if err != nil {
		return err
	}
	moved, err := pe.ChangeAddress(p.By, p.Address)
	if errors.Is(err, store.ErrExists) {
		s.log.Info("change of address refused: the new address is a member already", "list", l.Address, "member", p.By, "to", p.Address)
		return s.saidNoTo(tx, l, p.Address, inReplyTo, "nothing moved: "+p.Address+" is a member already of a list "+p.By+" is on.", res)
	} else if err != nil {
		return err
	}
	// The web reader's sessions of the old address end: the new one signs in itself.
	if err := endSessions(tx, p.By); err != nil {
		return err
	}
	s.log.Info("address changed", "list", l.Address, "member", p.By, "to", p.Address, "lists", len(moved))
	data := s.noticeData(l)
	data.Address, data.By, data.Lines = p.Address, p.By, moved
	for _, to := range []string{p.By, p.Address} {
		if err := s.enqueueNotice(tx, l, notice{to: to, template: "address-changed", data: data, inReplyTo: inReplyTo}, res); err != nil {
			return err
		}
	}
	return nil
}

// saidNoTo answers to with what, as the results of its mail.
func (s *Service) saidNoTo(tx store.Tx, l store.List, to, inReplyTo, what string, res *Result) error {
	data := s.noticeData(l)
	data.Results = []string{what}
	return s.enqueueNotice(tx, l, notice{to: to, template: "request-results", data: data, inReplyTo: inReplyTo, replied: true}, res)
}

// export carries out "export": everything the server holds about the sender goes to the
// address on file, at most once an hour; from a sender that is not proven, after the address
// on file confirms.
func (s *Service) export(tx store.Tx, c *command) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		return "export: " + s.notOnList(l, c.m.from), nil
	} else if err != nil {
		return "", err
	}
	now := s.Now().UTC()
	if p, err := tx.PendingFor(l.Address, store.PendingExported, mem.Address); err == nil && now.Before(p.Expires) {
		return "export: your data went to " + mem.Address + " within the hour; look for it there.", nil
	}
	if !c.verified {
		p := store.Pending{Kind: store.PendingExport, Address: mem.Address, Lines: []string{"export"}, Created: now, Expires: now.Add(confirmValidity)}
		if err := s.sendMyDataConfirm(tx, l, p, "a copy of your data", c.m.messageID, c.res); err != nil {
			return "", err
		}
		return "export: your address could not be verified, so a confirmation went to " + mem.Address + "; your data goes there when you confirm.", nil
	}
	if err := s.sendExport(tx, l, mem.Address, c.m.messageID, c.res); err != nil {
		return "", err
	}
	return "export: your data went to " + mem.Address + " in a mail of its own.", nil
}

// sendExport mails addr what the server holds about it (MyData, as my-data.json, and its
// posts as my-posts.mbox).
func (s *Service) sendExport(tx store.Tx, l store.List, addr, inReplyTo string, res *Result) error {
	d, posts, err := MyDataOf(tx, addr, s.Now().UTC())
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	if _, err := tx.PutPending(l.Address, store.Pending{Kind: store.PendingExported, Address: addr, Created: now, Expires: now.Add(answerEvery)}); err != nil {
		return err
	}
	s.log.Info("member data exported", "list", l.Address, "member", addr, "posts", d.Posts)
	data := s.noticeData(l)
	data.Address = addr
	return s.enqueueNotice(tx, l, notice{to: addr, template: "my-data", data: data, inReplyTo: inReplyTo, replied: inReplyTo != "",
		files: []file{{name: "my-data.json", contentType: "application/json", data: append(js, '\n')}, {name: "my-posts.mbox", contentType: "application/mbox", data: posts}}}, res)
}

// MyData is what the server holds about one address, as an export gives it.
type MyData struct {
	Address     string       `json:"address"`
	Exported    time.Time    `json:"exported"`
	Memberships []Membership `json:"memberships"`
	// AppPassword is when the IMAP app password was made (zero: none); only its hash is kept.
	AppPassword time.Time `json:"app_password_created,omitzero"`
	// Waiting are the actions waiting for the address's confirmation or an owner's decision.
	Waiting []Waiting `json:"waiting,omitempty"`
	// Posts is how many archived posts the address wrote (in the mbox).
	Posts int `json:"posts"`
}

// Membership is one list's record of the address: its settings and its consent history.
type Membership struct {
	List       string     `json:"list"`
	Name       string     `json:"list_name"`
	Since      time.Time  `json:"since"`
	Origin     string     `json:"origin,omitempty"`
	InvitedBy  string     `json:"invited_by,omitempty"`
	ApprovedBy string     `json:"approved_by,omitempty"`
	Consent    string     `json:"consent,omitempty"`
	Mode       vocab.Mode `json:"mode"`
	NoOwnPosts bool       `json:"no_own_posts,omitempty"`
	ShowRead   bool       `json:"show_read,omitempty"`
	AwayUntil  time.Time  `json:"away_until,omitzero"`
	// Paused is when delivery was paused for bouncing (zero: it is not).
	Paused      time.Time `json:"paused_for_bounces,omitzero"`
	BounceScore float64   `json:"bounce_score,omitempty"`
	Read        int       `json:"posts_marked_read"`
}

// Waiting is an action waiting about the address.
type Waiting struct {
	List    string    `json:"list"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// MyDataOf gathers what tx holds about addr, with its posts of every list as an mbox.
func MyDataOf(tx store.Tx, addr string, now time.Time) (MyData, []byte, error) {
	d := MyData{Address: addr, Exported: now, Memberships: []Membership{}}
	if pw, err := tx.AppPasswordOf(addr); err == nil {
		d.AppPassword = pw.Created
	}
	lists, err := tx.Lists()
	if err != nil {
		return d, nil, err
	}
	var box bytes.Buffer
	mw := mbox.NewWriter(&box)
	for _, l := range lists {
		if m, err := tx.Member(l.Address, addr); err == nil {
			read := 0
			if err := tx.FlagsOf(l.Address, m.ID, func(_ uint64, f byte) error {
				if f&store.FlagSeen != 0 {
					read++
				}
				return nil
			}); err != nil {
				return d, nil, err
			}
			d.Memberships = append(d.Memberships, Membership{List: l.Address, Name: l.Name, Since: m.Added, Origin: m.Origin, InvitedBy: m.InvitedBy,
				ApprovedBy: m.ApprovedBy, Consent: m.Consent, Mode: m.Mode, NoOwnPosts: m.NoOwnPosts, ShowRead: m.ShowRead,
				AwayUntil: m.AwayUntil, Paused: m.Paused, BounceScore: m.BounceScore, Read: read})
		}
		if err := tx.PendingActions(l.Address, func(p store.Pending) error {
			if p.Address == addr && p.Kind != store.PendingAnswers && p.Kind != store.PendingNotice && p.Kind != store.PendingDeferred && p.Kind != store.PendingExported {
				d.Waiting = append(d.Waiting, Waiting{List: l.Address, Kind: p.Kind, Created: p.Created, Expires: p.Expires})
			}
			return nil
		}); err != nil {
			return d, nil, err
		}
		if err := tx.PostsAfter(l.Address, 0, func(p store.Post, raw []byte) error {
			if p.From != addr {
				return nil
			}
			d.Posts++
			return mw.Write(p.From, p.Received, raw)
		}); err != nil {
			return d, nil, err
		}
	}
	if err := mw.Flush(); err != nil {
		return d, nil, err
	}
	return d, box.Bytes(), nil
}

// What "forget" does with the posts of the address (Pending Lines[0]).
const (
	forgetKeep      = "keep"
	forgetAnonymise = "anonymise"
	forgetRedact    = "redact"
)

// forget carries out "forget [keep|anonymise|redact]": the address leaves every list and what
// the server kept about it is deleted; its posts stay as written (keep, the default), get a
// pseudonym for author (anonymise), or become tombstones (redact). Always after a confirmation
// by the address on file: it cannot be undone.
func (s *Service) forget(tx store.Tx, c *command, arg string) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		return "forget: " + s.notOnList(l, c.m.from), nil
	} else if err != nil {
		return "", err
	}
	how, _ := firstWord(arg)
	switch how {
	case "", forgetKeep:
		how = forgetKeep
	case "anonymize":
		how = forgetAnonymise
	case forgetAnonymise, forgetRedact:
	default:
		return "forget: say \"forget\" (your posts stay as written), \"forget anonymise\" (your name and address in them are replaced by a pseudonym) or \"forget redact\" (they are replaced by a note that they were removed at your request).", nil
	}
	now := s.Now().UTC()
	p := store.Pending{Kind: store.PendingForget, Address: mem.Address, Lines: []string{how}, Created: now, Expires: now.Add(confirmValidity)}
	if err := s.sendMyDataConfirm(tx, l, p, forgetWhat(how), c.m.messageID, c.res); err != nil {
		return "", err
	}
	return "forget: a confirmation went to " + mem.Address + "; nothing is deleted until you confirm.", nil
}

func forgetWhat(how string) string {
	switch how {
	case forgetAnonymise:
		return "forgetting you on every list, your posts kept under a pseudonym"
	case forgetRedact:
		return "forgetting you on every list, your posts removed"
	}
	return "forgetting you on every list, your posts kept as written"
}

// forgetAddress carries out a confirmed forget (p, PendingForget) on every list.
func (s *Service) forgetAddress(tx store.Tx, l store.List, p store.Pending, inReplyTo string, res *Result) error {
	if err := tx.DeletePending(l.Address, p.ID); err != nil {
		return err
	}
	how := forgetKeep
	if len(p.Lines) == 1 {
		how = p.Lines[0]
	}
	addr := p.Address
	pe, err := store.AsPeople(tx)
	if err != nil {
		return err
	}
	all, err := tx.Lists()
	if err != nil {
		return err
	}
	var left []string
	redacted := 0
	for _, other := range all {
		if _, err := tx.Member(other.Address, addr); err == nil {
			if err := pe.ForgetMember(other.Address, addr); err != nil {
				return err
			}
			left = append(left, other.Address)
			if err := s.tellOwners(tx, other, "owner-leave", addr, "they asked to be forgotten", res); err != nil {
				return err
			}
		}
		// What waits about her on a list she is not on (an invitation, a join request, the
		// count of answers) goes too.
		var waiting []uint64
		if err := tx.PendingActions(other.Address, func(p store.Pending) error {
			if p.Address == addr {
				waiting = append(waiting, p.ID)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, id := range waiting {
			if err := tx.DeletePending(other.Address, id); err != nil {
				return err
			}
		}
		if how == forgetKeep {
			continue
		}
		var seqs []uint64
		if err := tx.Posts(other.Address, func(post store.Post) error {
			if post.From == addr && post.Redacted == "" {
				seqs = append(seqs, post.Seq)
			}
			return nil
		}); err != nil {
			return err
		}
		kind, reason := store.RedactRemoved, "removed at the author's request"
		if how == forgetAnonymise {
			kind, reason = store.RedactAnonymised, "anonymised at the author's request"
		}
		for _, seq := range seqs {
			if err := s.redact(tx, other, seq, kind, reason); err != nil {
				return err
			}
			redacted++
		}
	}
	if err := pe.DeleteAppPassword(addr); err != nil {
		return err
	}
	if err := endSessions(tx, addr); err != nil {
		return err
	}
	s.log.Info("address forgotten", "list", l.Address, "lists", len(left), "posts", how, "redacted", redacted)
	data := s.noticeData(l)
	data.Address, data.Lines = addr, left
	switch how {
	case forgetAnonymise:
		data.How = fmt.Sprintf("Your %d posts now show a pseudonym in place of your name and address. It left these lists:", redacted)
	case forgetRedact:
		data.How = fmt.Sprintf("Your %d posts now say they were removed at your request. It left these lists:", redacted)
	default:
		data.How = "Your posts stay in the archives as you wrote them. It left these lists:"
	}
	return s.enqueueNotice(tx, l, notice{to: addr, template: "forgotten", data: data, inReplyTo: inReplyTo, replied: inReplyTo != ""}, res)
}

// RedactPost redacts post seq of list to a tombstone, for its owners (crewmail post redact):
// the words go, the place in its thread stays.
func (s *Service) RedactPost(list string, seq uint64, reason string) error {
	laddr, err := ParseAddress(list)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "removed by the list's owners"
	}
	_, err = s.update(func(tx store.Tx, res *Result) error {
		l, err := tx.List(laddr)
		if err != nil {
			return fmt.Errorf("there is no list %s", laddr)
		}
		if _, err := tx.PostMeta(laddr, seq); err != nil {
			return notFound(err, "%s has no post %d", laddr, seq)
		}
		return s.redact(tx, l, seq, store.RedactRemoved, reason)
	})
	return err
}

// redact replaces post seq of l by its tombstone (store.RedactRemoved) or its anonymised copy
// (store.RedactAnonymised), in the archive and so in IMAP (under a new UIDVALIDITY), the
// digests not sent yet and the exports, and journals it once committed (store.Journaled) so
// that a backup restored later gets it again.
//
// Only the archived post's header is read here, within the transaction: the post was
// accepted before and is bounded by the list's size limit.
func (s *Service) redact(tx store.Tx, l store.List, seq uint64, kind, reason string) error {
	p, raw, err := tx.Post(l.Address, seq)
	if err != nil {
		return err
	}
	out, err := redactedMessage(raw, kind, reason, s.pseudonym(l, p.From))
	if err != nil {
		return fmt.Errorf("redact post %d of %s: %w", seq, l.Address, err)
	}
	now := s.Now().UTC()
	was := p.From
	p.Redacted, p.RedactedAt, p.RedactReason = kind, now, reason
	p.From = s.pseudonym(l, was)
	p.Evidence, p.AuthDomain = nil, ""
	if kind == store.RedactRemoved {
		p.Subject = ""
	}
	pe, err := store.AsPeople(tx)
	if err != nil {
		return err
	}
	if err := pe.RedactPost(l.Address, seq, p, out); err != nil {
		return err
	}
	s.log.Info("post redacted", "list", l.Address, "seq", seq, "how", kind, "msgid", p.MessageID)
	if j, ok := s.st.(store.Journaled); ok {
		r := store.Redaction{List: l.Address, Incarnation: l.Incarnation, Seq: seq, MessageID: p.MessageID, Post: p, Raw: out, At: now}
		tx.AfterCommit(func() {
			if err := j.Journal(r); err != nil {
				s.log.Error("redaction not journaled: a backup from before it, restored, would show the post again", "list", r.List, "seq", r.Seq, "err", err)
			}
		})
	}
	return nil
}

// pseudonym is the stable name that stands for addr on l in what was anonymised: the same for
// every post of one author on one list, and telling nothing of the address.
func (s *Service) pseudonym(l store.List, addr string) string {
	mac := hmac.New(sha256.New, s.st.Secret())
	fmt.Fprintf(mac, "pseudonym\x00%s\x00%d\x00%s", l.Address, l.Incarnation, addr)
	_, domain := splitAddress(l.Address)
	return "former-member-" + token.Encode(mac.Sum(nil)[:5]) + "@invalid." + domain
}

// redactedFields are the header fields an anonymised post loses: every one that names its
// author or the way the post came (RFC 5322 §3.6.2 originators, trace fields of §3.6.7,
// signatures and the checks of them).
var redactedFields = []string{"From", "Sender", "Reply-To", "Return-Path", "Received", "DKIM-Signature", "ARC-Seal", "ARC-Message-Signature",
	"ARC-Authentication-Results", "Authentication-Results", "Received-SPF", "X-Original-From", "X-Originating-IP", "X-Mailer", "User-Agent", "Organization"}

// keptFields are what a tombstone keeps of the post: where it stands in its thread.
var keptFields = []string{"Message-ID", "In-Reply-To", "References", "Date", "To"}

// redactedMessage is raw redacted: kind RedactAnonymised keeps the body and replaces the
// author with pseudonym; RedactRemoved keeps only the fields that place it in its thread,
// with a body that says why it is gone.
func redactedMessage(raw []byte, kind, reason, pseudonym string) ([]byte, error) {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, err
	}
	_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var out bytes.Buffer
	switch kind {
	case store.RedactAnonymised:
		for _, f := range redactedFields {
			h.Del(f)
		}
		h.Add("X-Crewmail-Redacted", reason)
		h.Add("From", "Former member <"+pseudonym+">")
		if err := textproto.WriteHeader(&out, h); err != nil {
			return nil, err
		}
		out.Write(body)
	case store.RedactRemoved:
		// The kept fields as they were written (AddRaw puts each on top: add them last
		// first).
		var kept [][]byte
		for f := h.Fields(); f.Next(); {
			if slices.ContainsFunc(keptFields, func(k string) bool { return strings.EqualFold(k, f.Key()) }) {
				if raw, err := f.Raw(); err == nil {
					kept = append(kept, raw)
				}
			}
		}
		var t textproto.Header
		for _, raw := range slices.Backward(kept) {
			t.AddRaw(raw)
		}
		t.Add("X-Crewmail-Redacted", reason)
		t.Add("Content-Type", "text/plain; charset=utf-8")
		t.Add("MIME-Version", "1.0")
		t.Add("Subject", "(removed)")
		t.Add("From", "Former member <"+pseudonym+">")
		if err := textproto.WriteHeader(&out, t); err != nil {
			return nil, err
		}
		out.WriteString("This post was " + reason + ".\r\n")
	default:
		return nil, fmt.Errorf("unknown redaction %q", kind)
	}
	return out.Bytes(), nil
}

// retentionBatch bounds the posts one retention transaction redacts.
const retentionBatch = 200

// ApplyRetention redacts to tombstones the posts older than their list keeps them (List.Keep),
// as an owner's redaction would (nothing is kept after the retention but the post's place in
// its thread). It returns how many it redacted; RunSweeper calls it.
func (s *Service) ApplyRetention() (int, error) {
	total := 0
	for {
		n := 0
		_, err := s.update(func(tx store.Tx, res *Result) error {
			n = 0
			ls, err := tx.Lists()
			if err != nil {
				return err
			}
			now := s.Now().UTC()
			for _, l := range ls {
				if l.Keep <= 0 {
					continue
				}
				var old []uint64
				if err := tx.Posts(l.Address, func(p store.Post) error {
					if p.Redacted == "" && p.Received.Before(now.Add(-l.Keep)) && n+len(old) < retentionBatch {
						old = append(old, p.Seq)
					}
					return nil
				}); err != nil {
					return err
				}
				for _, seq := range old {
					if err := s.redact(tx, l, seq, store.RedactRemoved, "removed: "+l.Address+" keeps posts for "+KeepWords(l.Keep)); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
		total += n
		if err != nil || n < retentionBatch {
			return total, err
		}
	}
}

// ParseKeep reads a retention as the operator types it: "2y", "18m", "90d" (years of 365
// days, months of 30), or "0" (for ever).
func ParseKeep(s string) (time.Duration, error) {
	if s == "0" || s == "" {
		return 0, nil
	}
	unit := map[byte]time.Duration{'y': 365 * 24 * time.Hour, 'm': 30 * 24 * time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
	var n int
	if _, err := fmt.Sscanf(s[:len(s)-1], "%d", &n); err != nil || unit == 0 || n <= 0 || fmt.Sprint(n) != s[:len(s)-1] {
		return 0, fmt.Errorf("keep: a number of years, months or days, as in 2y, 18m or 90d, or 0 for ever; not %q", s)
	}
	return time.Duration(n) * unit, nil
}

// KeepWords says a retention in words.
func KeepWords(d time.Duration) string {
	days := int(d / (24 * time.Hour))
	switch {
	case days%365 == 0:
		return unitsOf(days/365, "year")
	case days%30 == 0:
		return unitsOf(days/30, "month")
	}
	return unitsOf(days, "day")
}

func unitsOf(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// settings answers "settings": what the sender's membership of l is set to, each with the
// address or command that changes it (the web settings page says the same). It changes
// nothing, and goes to the address on file like every answer.
func (s *Service) settings(tx store.Tx, c *command) ([]string, error) {
	l := c.l
	m, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		return []string{"settings: " + s.notOnList(l, c.m.from)}, nil
	} else if err != nil {
		return nil, err
	}
	out := []string{"settings of " + m.Address + " on " + l.Address + ":",
		"  - you get " + modeWords(m.Mode) + " (each, daily, weekly or nomail changes it)"}
	if m.NoOwnPosts {
		out = append(out, "  - your own posts are not sent back to you (selfcopy on sends them)")
	} else {
		out = append(out, "  - your own posts come back to you (selfcopy off stops them)")
	}
	if !m.AwayUntil.IsZero() {
		out = append(out, "  - no mail until "+day(m.AwayUntil)+" (resume ends it)")
	}
	if !m.Paused.IsZero() {
		resume, err := s.resumeAddress(tx, l, m.Address)
		if err != nil {
			return nil, err
		}
		out = append(out, "  - delivery paused since "+moment(m.Paused)+" because it bounced ("+m.PausedWhy+"); any mail to "+resume+" resumes it")
	}
	if pe, err := store.AsPeople(tx); err == nil {
		muted, followed, err := pe.MarksOf(l.Address, m.ID)
		if err != nil {
			return nil, err
		}
		for _, g := range []struct {
			what string
			ths  []uint64
		}{{"muted", muted}, {"followed", followed}} {
			for _, th := range g.ths {
				subj := "(a conversation)"
				if p, err := tx.PostMeta(l.Address, th); err == nil && p.Subject != "" {
					subj = p.Subject
				}
				out = append(out, fmt.Sprintf("  - %s: %q; any mail to %s ends it", g.what, subj, s.UnmuteAddress(l.Address, th)))
			}
		}
	}
	if pw, err := tx.AppPasswordOf(m.Address); err == nil {
		out = append(out, "  - an IMAP app password made "+day(pw.Created)+" (password makes a new one, which replaces it)")
	}
	since := "  - a member since " + day(m.Added)
	if by := m.BroughtBy(); by != "" {
		since += ", " + by
	}
	return append(out, since), nil
}

// endSessions ends addr's sessions of the web reader.
func endSessions(tx store.Web, addr string) error {
	ss, err := tx.Sessions(addr)
	if err != nil {
		return err
	}
	for _, sess := range ss {
		if err := tx.DeleteSession(sess.ID); err != nil {
			return err
		}
	}
	return nil
}
