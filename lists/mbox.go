package lists

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"crewmail/internal/mbox"
	"crewmail/store"
)

// Archives go out and come in as mbox files (internal/mbox).

// Export writes the posts of list received at or after since (all when zero) to w as mboxrd.
// progress, when not nil, is called as posts are written.
func (s *Service) Export(list string, since time.Time, w io.Writer, progress func(n int)) (int, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return 0, err
	}
	mw := mbox.NewWriter(w)
	n := 0
	err = s.st.View(func(tx store.Tx) error {
		if _, err := tx.List(laddr); err != nil {
			return fmt.Errorf("there is no list %s", laddr)
		}
		return tx.PostsAfter(laddr, 0, func(p store.Post, raw []byte) error {
			if p.Received.Before(since) {
				return nil
			}
			if err := mw.Write(p.From, p.Received, raw); err != nil {
				return err
			}
			n++
			if progress != nil {
				progress(n)
			}
			return nil
		})
	})
	if err != nil {
		return n, err
	}
	return n, mw.Flush()
}

// ImportResult says what Import did.
type ImportResult struct {
	Imported, Skipped int // skipped: Message-IDs the list had already
	Refused           []string
}

// Import reads an mbox (mboxrd or mboxo: an old Mailman or Google Groups export, or crewmail's
// own) into list's archive. Nothing is sent. Posts are threaded as if they had come in order;
// Message-IDs the list has already are skipped, so importing twice is harmless.
func (s *Service) Import(list string, r io.Reader, progress func(done int)) (ImportResult, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return ImportResult{}, err
	}
	var res ImportResult
	if err := s.st.View(func(tx store.Tx) error {
		_, err := tx.List(laddr)
		return err
	}); err != nil {
		return res, fmt.Errorf("there is no list %s", laddr)
	}
	type msg struct {
		raw      []byte
		received time.Time
	}
	var batch []msg
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var imported, skipped int
		var refused []string
		err := s.st.Update(func(tx store.Tx) error {
			imported, skipped, refused = 0, 0, nil
			for _, b := range batch {
				ok, why, err := s.importOne(tx, laddr, b.raw, b.received)
				if err != nil {
					return err
				}
				switch {
				case ok:
					imported++
				case why == "":
					skipped++
				default:
					refused = append(refused, why)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Imported += imported
		res.Skipped += skipped
		res.Refused = append(res.Refused, refused...)
		batch = batch[:0]
		if progress != nil {
			progress(res.Imported + res.Skipped + len(res.Refused))
		}
		return nil
	}
	err = mbox.Read(r, func(raw []byte, received time.Time) error {
		batch = append(batch, msg{raw, received})
		if len(batch) == 200 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	return res, flush()
}

// importOne archives one message; ok false with why "" is a Message-ID already there.
func (s *Service) importOne(tx store.Tx, list string, raw []byte, received time.Time) (ok bool, why string, err error) {
	m, err := parseMessage(raw)
	if err != nil {
		return false, err.Error(), nil
	}
	if m.messageID == "" {
		m.messageID = contentMessageID(raw)
		raw = append([]byte("Message-ID: <"+m.messageID+">\r\n"), raw...)
		m.raw = raw
	}
	if _, dup, err := tx.MessageID(list, m.messageID); err != nil {
		return false, "", err
	} else if dup {
		return false, "", nil
	}
	if received.IsZero() {
		received = m.date
	}
	if received.IsZero() {
		received = s.Now()
	}
	th, err := s.threadOf(tx, list, m)
	if err != nil {
		return false, "", err
	}
	p, err := tx.AppendPost(list, store.Post{Received: received.UTC(), Date: m.date, MessageID: m.messageID, From: m.from, Subject: m.subject, Thread: th}, raw)
	if err != nil {
		return false, "", err
	}
	if err := tx.IndexPost(list, p.Seq, store.NewSearchDoc(raw).For(p)); err != nil {
		return false, "", err
	}
	return true, "", s.indexThread(tx, list, p, m)
}

// contentMessageID is the Message-ID an imported message without one gets: a hash of its
// bytes, so the same message imported again (a second run, or one resumed after a kill) is
// known as a duplicate and skipped. Line ends and trailing empty lines do not count: mbox
// files differ in those. The ".invalid" domain (RFC 2606) names no host.
func contentMessageID(raw []byte) string {
	norm := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	norm = bytes.TrimRight(norm, "\n")
	sum := sha256.Sum256(norm)
	return hex.EncodeToString(sum[:]) + "@import.crewmail.invalid"
}
