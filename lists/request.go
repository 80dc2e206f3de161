package lists

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"crewmail/internal/dsn"
	"crewmail/internal/replytext"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// maxRequestLines bounds the commands one mail to crew-request@ carries.
const maxRequestLines = 20

// lines returns the first lines the sender wrote themselves, quoted text and signatures left
// out (see replytext), at most max and at most maxRequestLines: those readBody read.
func (m *inbound) lines(max int) []string {
	return m.own[:min(max, len(m.own))]
}

// readBody reads, before the write transaction begins, what the targets of the mail read of its
// body: the lines commands are taken from (and a post is told from a stray command by, see
// administrivia), and what a bounce (kept, as it is kept) reports.
// Walking a MIME tree inside the transaction held up every write for as long as a hostile
// message made it take; here it holds up only its own mail.
func (m *inbound) readBody(targets []Target, kept []byte) {
	for _, t := range targets {
		switch t.Kind {
		case KindPostmaster, KindOwner:
		case KindPost, KindReply:
			// One walk of the post's text gives both what a stray command is told by and the
			// excerpt a held post's questions show.
			if !m.postRead {
				if body, err := replytext.Body(m.raw, maxPostChars); err == nil {
					m.postLines, m.postRead = firstLines(body.Text, maxRequestLines), true
					m.excerpt = excerpt(m.postLines)
				}
			}
			if !m.searchRead {
				m.search, m.searchRead = store.NewSearchDoc(kept), true
			}
		case KindBounce:
			m.report, m.reportErr = dsn.Parse(kept)
		case KindMuteThread, KindFollow:
			if m.threadIDs == nil {
				m.threadIDs = m.namedIDs()
			}
		default:
			if m.own == nil {
				if lines, err := replytext.Lines(m.raw, maxRequestLines); err == nil {
					m.own, m.ownRead = lines, true
				}
			}
		}
	}
}

// request carries out the commands of a mail to crew-request@, one per line (the subject may
// hold one too), and answers with what became of each. Owner commands count only from an
// owner's proven address; from an owner's address that is not proven they wait for the
// owner's confirmation.
//
// The sender gets one mail: the results, with every notice a line would have sent them (help,
// confirmations, a password) folded in, each kind once.
func (s *Service) request(tx store.Tx, c *command) error {
	l := c.l
	a := c.res.answering
	// Commands whose answer cannot go are not carried out: what an unproven sender asks for
	// waits for a confirmation that would be in the answer.
	if ok, why, err := s.mayAnswerNow(tx, a, c.res); err != nil || !ok {
		if err == nil {
			s.log.Info("commands not read: "+why, "list", l.Address, "from", c.m.from)
			if !c.res.answered[a.to] {
				err = s.remember(tx, l, c.m, c.rcpt)
			}
		}
		return err
	}
	if !c.verified {
		if ok, err := s.mayAnswerMail(tx, l, c.m, c.rcpt); err != nil || !ok {
			if err == nil {
				s.log.Info("commands not read: an answer went to this address within the hour", "list", l.Address, "from", c.m.from)
			}
			return err
		}
	}
	lines := c.m.lines(maxRequestLines)
	subjectCommand := false
	// The subject is a command only when the text has none: "Subject: remove" over a mail
	// that says what to do is a title, not an order.
	if subj := stripReplyPrefix(c.m.subject); subj != "" && !slices.ContainsFunc(lines, func(line string) bool { w, _ := firstWord(line); return isCommand(w) }) {
		if w, _ := firstWord(subj); isCommand(w) {
			subjectCommand = true
		}
	}
	if !subjectCommand && looksLikeQuestion(lines) && len(l.Owners) > 0 {
		return s.forwardQuestion(tx, c)
	}
	a.fold = true
	if subjectCommand {
		lines = append([]string{stripReplyPrefix(c.m.subject)}, lines...)
	}
	var results, owner []string
	unknown, understood := 0, false
lines:
	for _, line := range lines {
		word, rest := firstWord(line)
		var result string
		var err error
		switch word {
		case "subscribe", "join":
			result, err = s.subscribe(tx, c)
			if result == "" && err == nil {
				result = "subscribe: a confirmation went to " + c.m.from + "."
			}
		case "unsubscribe", "leave":
			result, err = s.unsubscribe(tx, c)
		case string(vocab.Each), string(vocab.Daily), string(vocab.Weekly), string(vocab.NoMail):
			result, err = s.changeMode(tx, c, vocab.Mode(word), false) // the case names every mode
		case "password":
			result, err = s.password(tx, c)
		case "selfcopy":
			result, err = s.selfCopy(tx, c, rest)
		case "pause":
			result, err = s.pause(tx, c, rest)
		case "resume":
			result, err = s.resumeNow(tx, c)
		case "search":
			var found []string
			if found, err = s.search(tx, c, rest); err != nil {
				return err
			}
			understood = true
			results = append(results, found...)
			continue
		case "help":
			err = s.enqueueNotice(tx, l, c.reply("help", s.noticeData(l)), c.res)
			result = "help: below."
		case "settings":
			rs, err := s.settings(tx, c)
			if err != nil {
				return err
			}
			understood = true
			results = append(results, rs...)
			continue
		case "change-address":
			result, err = s.changeAddress(tx, c, rest)
		case "export":
			result, err = s.export(tx, c)
		case "forget":
			result, err = s.forget(tx, c, rest)
		case "who", "invite":
			if slices.Contains(l.Owners, c.m.from) {
				owner = append(owner, word+strings.TrimRight(" "+rest, " "))
				understood = true
				continue
			}
			if word == "invite" {
				result, err = s.memberInvite(tx, c, rest)
				break
			}
			rs, err := s.memberWho(tx, c)
			if err != nil {
				return err
			}
			understood = true
			results = append(results, rs...)
			continue
		case "remove", "ban", "unban":
			owner = append(owner, word+strings.TrimRight(" "+rest, " "))
			understood = true
			continue
		case "end", "stop", "thanks":
			break lines
		default:
			// Prose after a command (a greeting, a signature the reader missed) is not
			// answered: the commands were understood, and the rest is ignored.
			if understood {
				break lines
			}
			if unknown++; unknown > 1 {
				if unknown == 3 {
					results = append(results, "The rest of the mail was not read.")
					break lines
				}
				continue
			}
			// Only the first line that is not a command is answered, once: with the
			// command it most likely meant, else with the list of them.
			if guess := didYouMean(word); guess != "" {
				result = fmt.Sprintf("%q: not a command. Did you mean %s?", line, guess)
			} else {
				result = fmt.Sprintf("%q: not a command; the commands are subscribe, unsubscribe, each, daily, weekly, nomail, password, selfcopy on|off, pause [until DATE], resume, search WORDS, help, settings, change-address NEW, export, forget [anonymise|redact], who, and for owners invite, remove, ban and unban.", line)
			}
		}
		if word != "" && isCommand(word) {
			understood = true
		}
		if err != nil {
			return err
		}
		if !slices.Contains(results, result) {
			results = append(results, result)
		}
	}
	if len(owner) > 0 {
		switch {
		case !slices.Contains(l.Owners, c.m.from):
			results = append(results, strings.Join(owner, ", ")+": only the owners of "+l.Address+" may use these commands.")
		case c.verified:
			r, err := s.ownerCommands(tx, l, c.m.from, owner, c.m.messageID, c.res)
			if err != nil {
				return err
			}
			results = append(results, r...)
		default:
			now := s.Now().UTC()
			p := store.Pending{Kind: store.PendingOwner, Address: c.m.from, Lines: owner, Created: now, Expires: now.Add(confirmValidity)}
			if err := s.sendPending(tx, l, p, "owner-confirm", c.m.messageID, c.res); err != nil {
				return err
			}
			results = append(results, strings.Join(owner, ", ")+": your address could not be verified, so these wait until you confirm them; a confirmation went to "+c.m.from+".")
		}
	}
	if len(results) == 0 {
		results = []string{"The mail held no commands."}
	}
	results, confirm := a.unfold(results)
	return s.sendResults(tx, c, results, confirm)
}

// looksLikeQuestion reports whether the lines a person wrote to the help robot are for people:
// the first one begins with no command word, and asks something or says more than a command
// would ("How do I get the digest?", "I keep getting mail twice").
func looksLikeQuestion(lines []string) bool {
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if w, _ := firstWord(line); isCommand(w) || slices.Contains([]string{"end", "stop", "thanks"}, w) {
			return false
		}
		words := 0
		for _, l := range lines {
			words += len(strings.Fields(l))
		}
		return strings.Contains(strings.Join(lines, " "), "?") || words >= 4
	}
	return false
}

// forwardQuestion passes a question sent to the help robot on to the owners, as it came, and
// tells the sender it did.
func (s *Service) forwardQuestion(tx store.Tx, c *command) error {
	if err := s.forward(tx, c.l, c.l.Owners, c.m.kept, c.res); err != nil {
		return err
	}
	s.log.Info("question to the help address passed to the owners", "list", c.l.Address, "from", c.m.from, "msgid", c.m.messageID)
	return s.enqueueNotice(tx, c.l, c.reply("question-forwarded", s.noticeData(c.l)), c.res)
}

// commandWords are the command words of crew-request@ (isCommand knows "join" and "leave" as
// well), and what didYouMean guesses among.
var commandWords = []string{"subscribe", "unsubscribe", "each", "daily", "weekly", "nomail", "password", "selfcopy", "pause", "resume", "search", "help", "settings", "change-address", "export", "forget", "who", "invite", "remove", "ban", "unban"}

// didYouMean is the command word closest to word, when a slip of one or two letters (or the
// same word with extra letters) separates them; empty when none is that close.
func didYouMean(word string) string {
	if len(word) < 3 {
		return ""
	}
	best, bestD := "", 3
	for _, c := range commandWords {
		d := editDistance(word, c)
		if limit := min(2, len(c)/3); d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes (command words are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func isCommand(word string) bool {
	return slices.Contains(commandWords, word) || word == "join" || word == "leave"
}

// stripReplyPrefix takes "Re:", "Fwd:" and the like off a subject.
func stripReplyPrefix(subject string) string {
	for {
		subject = strings.TrimSpace(subject)
		w, rest, ok := strings.Cut(subject, ":")
		if !ok || !slices.Contains([]string{"re", "aw", "sv", "fw", "fwd", "wg", "tr"}, strings.ToLower(w)) {
			return subject
		}
		subject = rest
	}
}

// ownerCommands carries out who, invite and remove for owner and returns what became of each.
func (s *Service) ownerCommands(tx store.Tx, l store.List, owner string, lines []string, inReplyTo string, res *Result) ([]string, error) {
	var results []string
	for _, line := range lines {
		word, rest := firstWord(line)
		switch word {
		case "who":
			r, err := s.directory(tx, l, true)
			if err != nil {
				return nil, err
			}
			results = append(results, r...)
		case "invite":
			if rest == "" {
				results = append(results, "invite: name the addresses to invite after the word invite.")
			}
			// The addresses come first; what follows them is a note the invitees read.
			fields := strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == '\t' })
			var addrs []string
			for _, f := range fields {
				if _, err := ParseAddress(strings.Trim(f, "<>")); err != nil || !strings.Contains(f, "@") {
					break
				}
				addrs = append(addrs, f)
			}
			note := ""
			if len(addrs) > 0 {
				last := addrs[len(addrs)-1]
				_, after, _ := strings.Cut(rest, last)
				note = strings.TrimSpace(strings.TrimLeft(after, " ,;\t"))
			} else if rest != "" {
				addrs = fields[:1] // not an address: said so below
			}
			for _, a := range addrs {
				r, err := s.invite(tx, l, owner, a, note, inReplyTo, res)
				if err != nil {
					return nil, err
				}
				results = append(results, r)
			}
		case "ban", "unban":
			if rest == "" {
				results = append(results, word+": name the addresses after the word "+word+".")
			}
			for _, a := range strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == '\t' }) {
				entry, err := banEntry(a)
				if err != nil {
					results = append(results, fmt.Sprintf("%s %s: %v.", word, a, err))
					continue
				}
				switch has := slices.Contains(l.Banned, entry); {
				case word == "ban" && !has:
					l.Banned = append(l.Banned, entry)
					results = append(results, fmt.Sprintf("ban %s: done; it may neither join nor post.", entry))
				case word == "unban" && has:
					l.Banned = slices.DeleteFunc(l.Banned, func(b string) bool { return b == entry })
					results = append(results, fmt.Sprintf("unban %s: done.", entry))
				case word == "ban":
					results = append(results, fmt.Sprintf("ban %s: banned already.", entry))
				default:
					results = append(results, fmt.Sprintf("unban %s: not banned.", entry))
				}
				if err := tx.PutList(l); err != nil {
					return nil, err
				}
			}
		case "remove":
			if rest == "" {
				results = append(results, "remove: name the addresses to remove after the word remove.")
			}
			for _, a := range strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == '\t' }) {
				addr, err := ParseAddress(strings.Trim(a, "<>"))
				if err != nil {
					results = append(results, fmt.Sprintf("remove %s: %v.", a, err))
					continue
				}
				if _, err := tx.Member(l.Address, addr); err != nil {
					results = append(results, fmt.Sprintf("remove %s: not a member.", addr))
					continue
				}
				if err := s.leave(tx, l, addr, "removed by "+owner, owner, "", res); err != nil {
					return nil, err
				}
				results = append(results, fmt.Sprintf("remove %s: done.", addr))
			}
		}
	}
	return results, nil
}

// invite sends addr an invitation to join l from owner, with owner's note when not empty.
func (s *Service) invite(tx store.Tx, l store.List, owner, a, note, inReplyTo string, res *Result) (string, error) {
	addr, err := ParseAddress(strings.Trim(a, "<>"))
	if err != nil {
		return fmt.Sprintf("invite %s: %v.", a, err), nil
	}
	if banned(l, addr) {
		return fmt.Sprintf("invite %s: banned from the list; unban it first.", addr), nil
	}
	if _, err := tx.Member(l.Address, addr); err == nil {
		return fmt.Sprintf("invite %s: already a member.", addr), nil
	}
	now := s.Now().UTC()
	p, err := tx.PendingFor(l.Address, store.PendingInvite, addr)
	if err == nil && now.Before(p.Expires) && now.Sub(p.Sent) < answerEvery {
		return fmt.Sprintf("invite %s: invited within the hour already.", addr), nil
	}
	p = store.Pending{Kind: store.PendingInvite, Address: addr, By: owner, Created: now, Expires: now.Add(confirmValidity)}
	if note != "" {
		p.Lines = []string{note}
	}
	if err := s.sendPending(tx, l, p, "invitation", "", res); err != nil {
		return "", err
	}
	return fmt.Sprintf("invite %s: invitation sent.", addr), nil
}

// selfCopy carries out "selfcopy on|off": whether the sender, a member, gets her own posts
// back. It acts at once, whoever sent it: a forged one changes only that, and the results say
// so to the member's address.
func (s *Service) selfCopy(tx store.Tx, c *command, arg string) (string, error) {
	l := c.l
	mem, err := tx.Member(l.Address, c.m.from)
	if errors.Is(err, store.ErrNotFound) {
		return "selfcopy: " + s.notOnList(l, c.m.from), nil
	} else if err != nil {
		return "", err
	}
	switch w, _ := firstWord(arg); w {
	case "on", "yes":
		mem.NoOwnPosts = false
	case "off", "no":
		mem.NoOwnPosts = true
	default:
		return "selfcopy: say \"selfcopy off\" (your own posts are not sent back to you) or \"selfcopy on\".", nil
	}
	if err := tx.PutMember(l.Address, mem); err != nil {
		return "", err
	}
	if mem.NoOwnPosts {
		return "selfcopy off: your own posts are no longer sent back to you.", nil
	}
	return "selfcopy on: your own posts come back to you, as to everyone.", nil
}
