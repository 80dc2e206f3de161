package lists

import (
	"strings"
	"time"

	"crewmail/internal/subject"
	"crewmail/store"
)

// subjectWindow is how far back a reply without references looks for a thread with its subject.
const subjectWindow = 30 * 24 * time.Hour

// threadOf finds the thread a post joins (JWZ, docs/design.md): the thread of the nearest
// Message-ID it refers to, or of its own when others referred to it before it came (all the threads they
// name are merged); else, for a "Re:" with no references at all,
// the latest thread with the same base subject within 30 days; else 0, a thread of its own.
func (s *Service) threadOf(tx store.Tx, list string, m *inbound) (uint64, error) {
	th, err := tx.FindThread(list, append(m.refIDs(), m.messageID))
	if err != nil || th != 0 {
		return th, err
	}
	if len(m.refIDs()) == 0 && subject.IsReply(m.subject) {
		th, ok, err := tx.SubjectThread(list, subject.Key(m.subject), m.postDate(s.Now()).Add(-subjectWindow))
		if err != nil || ok {
			return th, err
		}
	}
	return 0, nil
}

// indexThread records a newly archived post's ids and subject under the thread it was archived
// in (not the one merges lead to: mutes follow where a conversation started).
func (s *Service) indexThread(tx store.Tx, list string, p store.Post, m *inbound) error {
	return tx.IndexThread(list, p.Origin, append(m.refIDs(), p.MessageID), subject.Key(m.subject), m.postDate(p.Received))
}

// refIDs are the Message-IDs a message refers to that can be ids at all (RFC 5322 §3.6.4:
// id-left "@" id-right; "<yes>" from a misused git send-email is not one), its own left out.
func (m *inbound) refIDs() []string {
	var out []string
	for _, id := range m.refs {
		if strings.Contains(id, "@") && id != m.messageID {
			out = append(out, id)
		}
	}
	return out
}

// postDate is when the author wrote it (the Date field), or else received.
func (m *inbound) postDate(received time.Time) time.Time {
	if m.date.IsZero() || m.date.After(received) {
		return received
	}
	return m.date
}
