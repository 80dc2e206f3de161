package lists

import (
	"strings"

	"crewmail/internal/replytext"
	"crewmail/internal/safetext"
)

// maxExcerptLines and maxExcerptChars bound how much of a post the question to confirm it
// shows: enough to recognize it, never the whole of it.
const (
	maxExcerptLines = 10
	maxExcerptChars = 160
)

// excerpt is how a post begins, for the question whether its author sent it: the first lines
// of the author's own text (replytext.Body: quotes and signature left out), empty ones dropped,
// each shortened to maxExcerptChars. It parses the MIME body, so Accept calls it before the
// write transaction.
func excerpt(raw []byte) []string {
	body, err := replytext.Body(raw, maxExcerptLines*maxExcerptChars)
	if err != nil {
		return nil
	}
	var lines []string
	for l := range strings.Lines(body.Text) {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if r := []rune(l); len(r) > maxExcerptChars {
			l = string(r[:maxExcerptChars]) + "…"
		}
		if lines = append(lines, l); len(lines) == maxExcerptLines {
			break
		}
	}
	return lines
}

// foldNoticeData is data with every text in it made one safe line (safetext.Line): subjects,
// names and reasons come from senders, and a line break (an RFC 2047 encoded "=0A") or a
// bidirectional override in one would write the sender's words into crewmail's own notice,
// as if crewmail said them.
func foldNoticeData(data map[string]any) map[string]any {
	out := make(map[string]any, len(data))
	for k, v := range data {
		switch v := v.(type) {
		case string:
			out[k] = safetext.Line(v)
		case []string:
			lines := make([]string, len(v))
			for i, l := range v {
				lines[i] = safetext.Line(l)
			}
			out[k] = lines
		case []ThreadLink:
			links := make([]ThreadLink, len(v))
			for i, l := range v {
				links[i] = ThreadLink{Subject: safetext.Line(l.Subject), Reply: safetext.Line(l.Reply)}
			}
			out[k] = links
		default:
			out[k] = v
		}
	}
	return out
}

// postTargets reports whether any of targets may archive a post (or hold one).
func postTargets(targets []Target) bool {
	for _, t := range targets {
		if t.Kind == KindPost || t.Kind == KindReply {
			return true
		}
	}
	return false
}
