package replytext

import (
	"regexp"
	"strings"
)

// ownLines returns the non-empty lines of text, cleaned, from the top down to the first line
// where quoted, forwarded or signature material begins; at most max of them.
func ownLines(text string, max int) []string {
	text = strings.TrimPrefix(text, "\uFEFF")
	raw := strings.Split(strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(text), "\n")
	line := func(i int) string {
		if i >= len(raw) {
			return ""
		}
		return clean(raw[i])
	}
	var out []string
	for i := range raw {
		s := line(i)
		if s == "" {
			continue
		}
		if endsOwnText(s, line, i) {
			break
		}
		out = append(out, s)
		if len(out) == max {
			break
		}
	}
	return out
}

// clean trims a line and makes each run of white space inside it one space. Non-breaking
// spaces count as white space: clients put them where the person typed a space.
func clean(s string) string {
	s = strings.ReplaceAll(s, "\uFEFF", "")
	return strings.Join(strings.Fields(s), " ")
}

// endsOwnText reports whether s, the cleaned line i, is where the person's own text ends.
// line returns the cleaned line at any index, for rules that look ahead.
func endsOwnText(s string, line func(int) string, i int) bool {
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(s, ">"): // a quoted line
		return true
	case s == "--": // "-- ", RFC 3676 §4.3, trimmed; some clients drop the space
		return true
	case strings.Trim(s, "_") == "" && len(s) >= 2: // Outlook's rule above the original
		return true
	case originalMessage.MatchString(s):
		return true
	case strings.HasPrefix(lower, "sent from my "), strings.HasPrefix(lower, "get outlook for "):
		return true
	case attribution(lower) || attribution(lower+" "+strings.ToLower(line(i+1))):
		// Clients wrap a long attribution, so "wrote:" may end the next line.
		return true
	case strings.HasPrefix(lower, "from:"):
		// Outlook's header block of the original: From:, then Sent: or Date: soon after.
		for j := i + 1; j <= i+3; j++ {
			next := strings.ToLower(line(j))
			if strings.HasPrefix(next, "sent:") || strings.HasPrefix(next, "date:") {
				return true
			}
		}
	}
	return false
}

var originalMessage = regexp.MustCompile(`(?i)^-+ ?original message ?-+$`)

// attribution reports whether lower, a lower-cased line, is the line a client puts above the
// text it quotes, in the forms common clients write in English, French, German and Spanish.
func attribution(lower string) bool {
	// French puts a space before the colon.
	if strings.HasSuffix(lower, " :") {
		lower = lower[:len(lower)-2] + ":"
	}
	switch {
	case strings.HasPrefix(lower, "on "):
		return strings.HasSuffix(lower, "wrote:")
	case strings.HasPrefix(lower, "le "):
		return strings.HasSuffix(lower, "a écrit:")
	case strings.HasPrefix(lower, "am "):
		return strings.Contains(lower, "schrieb") && strings.HasSuffix(lower, ":")
	case strings.HasPrefix(lower, "el "):
		return strings.HasSuffix(lower, "escribió:")
	}
	return false
}
