package lists

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"crewmail/internal/safetext"
	"crewmail/internal/searchq"
	"crewmail/store"
)

// maxSearchConversations is how many conversations a search by mail answers with.
const maxSearchConversations = 10

// conversation is one conversation a search found, as the answer shows it.
type conversation struct {
	thread uint64
	latest store.Hit // its newest matching post
	posts  int       // how many of its posts match
}

// search answers "search WORDS" in a mail to crew-request@: the conversations of the list's
// archive that match (searchq's language), newest first, each with a line that matched, its
// web link when the server has a configured base URL ([http] base_url), and the Reply address
// of its newest matching post. Only members search: the archive is theirs (as over IMAP). The
// answer was found before the write transaction (searchAhead) when it could be.
func (s *Service) search(tx store.Tx, c *command, words string) ([]string, error) {
	l := c.l
	if _, err := tx.Member(l.Address, c.m.from); errors.Is(err, store.ErrNotFound) {
		return []string{"search: only members of " + l.Address + " can search its archive."}, nil
	} else if err != nil {
		return nil, err
	}
	if found, ok := c.m.searched[l.Address+"\x00"+words]; ok {
		return found, nil
	}
	return s.searchAnswer(tx, l.Address, words)
}

// searchAhead finds, in a read transaction before the write transaction begins, the answers to
// the search commands of a mail to crew-request@ (any line, or the subject, that begins with
// "search"): a search may read many posts, and the write transaction holds up every post and
// command of every session while it runs.
func (s *Service) searchAhead(targets []Target, m *inbound) {
	var queries []string
	for _, line := range append([]string{stripReplyPrefix(m.subject)}, m.lines(maxRequestLines)...) {
		if w, rest := firstWord(line); w == "search" {
			queries = append(queries, rest)
		}
	}
	if len(queries) == 0 {
		return
	}
	for _, t := range targets {
		if t.Kind != KindRequest {
			continue
		}
		err := s.st.View(func(tx store.Tx) error {
			if _, err := tx.Member(t.List, m.from); err != nil {
				return nil // not a member: told so in the transaction, without a search
			}
			for _, q := range queries {
				found, err := s.searchAnswer(tx, t.List, q)
				if err != nil {
					return err
				}
				if m.searched == nil {
					m.searched = map[string][]string{}
				}
				m.searched[t.List+"\x00"+q] = found
			}
			return nil
		})
		if err != nil {
			s.log.Warn("search before the transaction failed; it is done in it", "list", t.List, "err", err)
		}
	}
}

// searchAnswer is the answer to one search of list's archive.
func (s *Service) searchAnswer(tx store.Tx, list, words string) ([]string, error) {
	head := "search:"
	if words != "" {
		head = "search " + clip(words, 60) + ":"
	}
	q, err := searchq.Parse(words)
	if err != nil {
		return []string{head + " " + err.Error() + "."}, nil
	}
	var found []*conversation
	byThread := map[uint64]*conversation{}
	err = tx.SearchPosts(list, q, maxSearchConversations, func(h store.Hit) error {
		cv := byThread[h.Thread]
		if cv == nil {
			cv = &conversation{thread: h.Thread, latest: h}
			byThread[h.Thread] = cv
			found = append(found, cv)
		}
		cv.posts++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return []string{head + " nothing found."}, nil
	}
	out := []string{fmt.Sprintf("%s %d conversation%s, the newest first:", head, len(found), plural(len(found)))}
	if len(found) == maxSearchConversations {
		out[0] = fmt.Sprintf("%s the %d newest conversations:", head, len(found))
	}
	for i, cv := range found {
		p, err := tx.PostMeta(list, cv.latest.Seq)
		if err != nil {
			return nil, err
		}
		subject := clip(p.Subject, 60)
		if subject == "" {
			subject = "(no subject)"
		}
		date := cv.latest.Date
		if date.IsZero() {
			date = p.Received
		}
		out = append(out, fmt.Sprintf("%d. %s — %s, %s (%d matching post%s)", i+1, subject, clip(p.From, 40), date.Format("2 Jan 2006"), cv.posts, plural(cv.posts)))
		for _, line := range cv.latest.Lines {
			out = append(out, "   | "+clip(line, 66))
		}
		if base := s.cfg.ArchiveURL; base != "" {
			out = append(out, fmt.Sprintf("   Read: %s/l/%s/t/%d", base, url.PathEscape(list), cv.thread))
		}
		out = append(out, "   Reply: "+s.ReplyAddress(list, cv.latest.Seq))
	}
	return out, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// clip is s as one safe line (safetext.Line) of at most n characters.
func clip(s string, n int) string {
	s = safetext.Line(s)
	if r := []rune(s); len(r) > n {
		return strings.TrimSpace(string(r[:n-1])) + "…"
	}
	return s
}

// reindexBatch is how many posts one transaction of Reindex indexes: bbolt keeps a write
// transaction in memory, so a large archive goes in batches.
const reindexBatch = 200

// Reindex rebuilds the search index of list from its archive: it empties the index, then reads
// the posts in batches, each read in a read transaction, made into documents outside any
// transaction and indexed in a write transaction of its own. Posts archived meanwhile are
// indexed as they come, and again (the same) when the rebuild reaches them. progress, when
// not nil, is told how many posts are done. It returns how many posts it indexed.
func (s *Service) Reindex(list string, progress func(int)) (int, error) {
	if err := s.st.Update(func(tx store.Tx) error { return tx.ClearSearch(list) }); err != nil {
		return 0, fmt.Errorf("reindex %s: %w", list, err)
	}
	type post struct {
		p   store.Post
		raw []byte
	}
	var after uint64
	done := 0
	for {
		var batch []post
		err := s.st.View(func(tx store.Tx) error {
			batch = batch[:0]
			err := tx.PostsAfter(list, after, func(p store.Post, raw []byte) error {
				batch = append(batch, post{p, slices.Clone(raw)})
				if len(batch) == reindexBatch {
					return errBatchFull
				}
				return nil
			})
			if errors.Is(err, errBatchFull) {
				return nil
			}
			return err
		})
		if err != nil {
			return done, fmt.Errorf("reindex %s: %w", list, err)
		}
		if len(batch) == 0 {
			return done, nil
		}
		docs := make([]store.SearchDoc, len(batch))
		for i, b := range batch {
			docs[i] = store.NewSearchDoc(b.raw).For(b.p)
		}
		if err := s.st.Update(func(tx store.Tx) error {
			for i, b := range batch {
				if err := tx.IndexPost(list, b.p.Seq, docs[i]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return done, fmt.Errorf("reindex %s: %w", list, err)
		}
		after = batch[len(batch)-1].p.Seq
		done += len(batch)
		if progress != nil {
			progress(done)
		}
	}
}

var errBatchFull = errors.New("batch full")
