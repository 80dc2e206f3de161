package lists

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"crewmail/store"
)

const (
	defaultPause = 7 * 24 * time.Hour   // crew+pause@ with no date or number of days
	maxPause     = 365 * 24 * time.Hour // a longer break is nomail
)

// parsePause reads how long a member wants no mail, from the subject or first line of her mail
// to crew+pause@ or what follows "pause" at crew-request@: "" (defaultPause), a number of
// days ("10", "10 days", "2 weeks"), or a date ("until 2026-12-24", "2026-12-24"), which is
// the day mail starts again, at midnight in zone. now is when she asks; the end is after now
// and at most maxPause later.
func parsePause(text string, now time.Time, zone *time.Location) (time.Time, error) {
	f := strings.Fields(strings.ToLower(strings.TrimSpace(text)))
	for len(f) > 0 && (f[0] == "pause" || f[0] == "until" || f[0] == "for" || f[0] == "till") {
		f = f[1:]
	}
	var until time.Time
	switch {
	case len(f) == 0:
		until = now.Add(defaultPause)
	case len(f) <= 2:
		if n, err := strconv.Atoi(f[0]); err == nil {
			unit := 24 * time.Hour
			if len(f) == 2 {
				switch strings.TrimSuffix(f[1], "s") {
				case "day":
				case "week":
					unit *= 7
				default:
					return time.Time{}, errPauseWords
				}
			}
			if n < 1 || n > int(maxPause/unit) {
				return time.Time{}, errPauseLength
			}
			until = now.Add(time.Duration(n) * unit)
			break
		}
		if len(f) != 1 {
			return time.Time{}, errPauseWords
		}
		d, err := time.ParseInLocation("2006-01-02", strings.TrimRight(f[0], ".,;"), zone)
		if err != nil {
			return time.Time{}, errPauseWords
		}
		until = d
	default:
		return time.Time{}, errPauseWords
	}
	if !until.After(now) || until.Sub(now) > maxPause {
		return time.Time{}, errPauseLength
	}
	return until, nil
}

var (
	errPauseWords  = errors.New(`say "pause until 2026-12-24" (a date, YYYY-MM-DD), "pause 10 days", or "pause" alone for a week`)
	errPauseLength = errors.New("a pause ends after today and within a year; for a longer break choose nomail")
)

// listZone is the time zone of l's dates, UTC when it names none (or one not known here).
func listZone(l store.List) *time.Location {
	if z, err := time.LoadLocation(l.Timezone); err == nil && l.Timezone != "" {
		return z
	}
	return time.UTC
}

// pause stops the sender's mail until the date text names (see parsePause), at once when her
// address is proven; else a confirmation goes to her address on file first: nobody can stop a
// member's mail by forging her From. When it ends she gets a catch-up digest (digest package).
func (s *Service) pause(tx store.Tx, c *command, text string) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		return "pause: " + s.notOnList(l, c.m.from), nil
	} else if err != nil {
		return "", err
	}
	until, err := parsePause(text, s.Now(), listZone(l))
	if err != nil {
		return "pause: nothing was done: " + err.Error() + ".", nil
	}
	if !c.verified {
		now := s.Now().UTC()
		p := store.Pending{Kind: store.PendingPause, Address: mem.Address, Lines: []string{until.UTC().Format(time.RFC3339)}, Created: now, Expires: now.Add(confirmValidity)}
		if err := s.sendPending(tx, l, p, "pause-confirm", c.m.messageID, c.res); err != nil {
			return "", err
		}
		return fmt.Sprintf("pause: your address could not be verified; a confirmation went to %s.", mem.Address), nil
	}
	return s.pauseUntil(tx, l, mem, until, c.m.messageID, c.res)
}

// pauseUntil stops mem's mail until until and tells her.
func (s *Service) pauseUntil(tx store.Tx, l store.List, mem store.Member, until time.Time, inReplyTo string, res *Result) (string, error) {
	last, err := tx.LastSeq(l.Address)
	if err != nil {
		return "", err
	}
	if mem.AwayUntil.IsZero() {
		mem.AwayFrom = last
	}
	mem.AwayUntil, mem.CatchUp = until.UTC(), false
	if err := tx.PutMember(l.Address, mem); err != nil {
		return "", err
	}
	s.log.Info("member paused", "list", l.Address, "member", mem.Address, "until", mem.AwayUntil)
	data := s.noticeData(l)
	data.Address, data.Expires = mem.Address, until.In(listZone(l)).Format("Monday 2 January 2006, 15:04 MST")
	if err := s.enqueueNotice(tx, l, notice{to: mem.Address, template: "paused", data: data, inReplyTo: inReplyTo, replied: inReplyTo != ""}, res); err != nil {
		return "", err
	}
	return "pause: no mail until " + data.Expires + ".", nil
}

// resumeNow ends the sender's pause at once: mail comes again, and her catch-up digest with
// the next round of digests.
func (s *Service) resumeNow(tx store.Tx, c *command) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		return "resume: " + s.notOnList(l, c.m.from), nil
	} else if err != nil {
		return "", err
	}
	if mem.AwayUntil.IsZero() {
		return "resume: your mail was not paused.", nil
	}
	mem.AwayUntil, mem.CatchUp = time.Time{}, true
	if err := tx.PutMember(l.Address, mem); err != nil {
		return "", err
	}
	return "resume: your mail comes again, starting with a digest of what you missed.", nil
}
