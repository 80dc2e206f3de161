package lists

import (
	"slices"
	"strings"
	"unicode"

	"crewmail/store"
)

// holdAdministrivia keeps a post that is a stray command (see administrivia) for the owners,
// who can send it on if it was meant, and tells its author what to do instead: one answer, to
// an address that is not proven at most once an hour.
func (s *Service) holdAdministrivia(tx store.Tx, l store.List, env Envelope, m *inbound, h store.Held, why string, res *Result) error {
	h.Reason = why
	if err := s.holdForModerators(tx, l, h, false, res); err != nil {
		return err
	}
	s.log.Info("post held: "+why, "list", l.Address, "from", m.from, "msgid", m.messageID)
	if m.automatic {
		return nil // RFC 3834 §2
	}
	if !env.Auth.Pass {
		if ok, err := s.mayAnswerMail(tx, l, m, l.Address); err != nil || !ok {
			return err
		}
	}
	prev := res.answering
	defer func() { res.answering = prev }()
	res.answering = &answering{to: m.from, verified: env.Auth.Pass, mail: m, rcpt: l.Address}
	data := s.noticeData(l)
	data.Address, data.Subject, data.Reason = m.from, m.subject, why
	return s.enqueueNotice(tx, l, notice{to: m.from, template: "administrivia", data: data, inReplyTo: m.messageID, replied: true}, res)
}

// administrivia reports whether a post is not one: only a command word or phrase
// ("unsubscribe", "remove me", "set digest on"), in the subject and in the first lines the
// author wrote, or neither a subject nor any text. Mailing lists have held such mail since
// Majordomo: sent to everyone, "unsubscribe" helps nobody. why says what was found, for the
// author and the owners. own are the lines the author wrote (readBody), name the list's name,
// whose "[name]" subject prefix is not the author's.
func administrivia(subject, name string, own []string) (why string, ok bool) {
	subject = stripReplyPrefix(subject)
	if name != "" {
		if rest, ok := strings.CutPrefix(subject, "["+name+"]"); ok {
			subject = stripReplyPrefix(rest)
		}
	}
	var lines []string
	for _, l := range own {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if subject == "" && len(lines) == 0 {
		return "it has neither a subject nor any text", true
	}
	if len(lines) > maxCommandLines {
		return "", false
	}
	if len(lines) == 0 {
		if c, ok := commandPhrase(subject); ok {
			return `it looks like a command ("` + c + `"), not a post`, true
		}
		return "", false
	}
	// The text decides, whatever the subject (often the one of the mail replied to): only
	// commands, and courtesies ("Thanks", a name below them).
	var found string
	for i, line := range lines {
		c, ok := commandPhrase(line)
		switch {
		case ok:
			if found == "" {
				found = c
			}
		case c == "" && i > 0: // "Thanks"
		case found != "" && i == len(lines)-1 && len(strings.Fields(line)) <= 2: // "Ann", "Best, Ann"
		default:
			return "", false
		}
	}
	if found == "" {
		return "", false
	}
	return `it looks like a command ("` + found + `"), not a post`, true
}

// maxCommandLines: a text of more lines is a post, whatever its words.
const maxCommandLines = 3

// commandPhrase reports whether s says only a command, with "please" or "thanks" around it,
// and returns what it says without those ("" when it says nothing else).
func commandPhrase(s string) (string, bool) {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '\''
	})
	for len(words) > 0 && slices.Contains([]string{"please", "pls", "plz", "kindly"}, words[0]) {
		words = words[1:]
	}
	for len(words) > 0 && slices.Contains([]string{"please", "pls", "plz", "thanks", "thx", "thank", "you", "ty"}, words[len(words)-1]) {
		words = words[:len(words)-1]
	}
	c := strings.Join(words, " ")
	switch {
	case c == "":
		return "", false
	case slices.Contains(commandPhrases, c):
		return c, true
	case words[0] == "set" && len(words) <= 4:
		return c, true
	}
	return c, false
}

// commandPhrases are what people write to a list when they mean its robot.
var commandPhrases = []string{
	"subscribe", "unsubscribe", "join", "leave", "help", "remove", "remove me", "subscribe me", "unsubscribe me",
	"sign me up", "sign off", "signoff", "opt out", "opt-out", "optout", "stop", "cancel", "info", "who", "end",
	"take me off", "take me off the list", "take me off this list", "take me off your list",
	"remove me from the list", "remove me from this list", "remove me from your list", "remove me from the mailing list",
	"unsubscribe me from the list", "unsubscribe me from this list", "password",
	"digest", "daily", "weekly", "each", "nomail", "no mail",
}
