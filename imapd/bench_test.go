package imapd

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"crewmail/store"
)

// BenchmarkFetchAll: FETCH 1:* BODY.PEEK[] of a whole archive over loopback, as a mail client
// does on its first sync. CREWMAIL_BENCH_MESSAGES sets the archive's size (default 2000
// messages of about 4 KiB).
func BenchmarkFetchAll(b *testing.B) {
	n := benchMessages(b)
	e, list, size := benchArchive(b, n)
	c := e.login(b, carol)
	if _, err := c.Select(list, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size) // go test reports MB/s from it
	b.ReportAllocs()
	start, ops := time.Now(), 0
	for b.Loop() {
		if got, bytes := fetchAll(b, c); got != n || bytes != size {
			b.Fatalf("fetched %d messages of %d bytes, want %d of %d", got, bytes, n, size)
		}
		ops++
	}
	b.ReportMetric(float64(n*ops)/time.Since(start).Seconds(), "msgs/s")
}

// benchArchive serves a list of n posts that carol reads; size is their total.
func benchArchive(b *testing.B, n int) (e *env, list string, size int64) {
	e = newEnv(b)
	list = "bench@lists.example.test"
	e.update(b, func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: list, Created: created}); err != nil {
			return err
		}
		_, err := tx.AddMember(list, store.Member{Address: carol, Mode: "each"})
		return err
	})
	for start := 0; start < n; start += 500 {
		e.update(b, func(tx store.Tx) error {
			for i := start; i < min(start+500, n); i++ {
				if _, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("bench-%d@example.test", i), Received: time.Now()}, benchPost(list, i)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for i := range n {
		size += int64(len(benchPost(list, i)))
	}
	return e, list, size
}

// BenchmarkSelect: SELECT numbers the messages from the archive's last sequence and reads the
// member's flags; no post's record is read.
func BenchmarkSelect(b *testing.B) {
	e, list, _ := benchArchive(b, benchMessages(b))
	c := e.login(b, carol)
	for b.Loop() {
		if _, err := c.Select(list, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchFlags: FETCH 1:* (FLAGS), as a mail client does at every resync; UIDs and
// flags only, so no post's record is read, and the answers go out in bulk.
func BenchmarkFetchFlags(b *testing.B) {
	n := benchMessages(b)
	e, list, _ := benchArchive(b, n)
	c := e.login(b, carol)
	if _, err := c.Select(list, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	start, ops := time.Now(), 0
	for b.Loop() {
		msgs, err := c.Fetch(allSeq(), &imap.FetchOptions{Flags: true}).Collect()
		if err != nil || len(msgs) != n {
			b.Fatalf("fetched %d flags, want %d: %v", len(msgs), n, err)
		}
		ops++
	}
	b.ReportMetric(float64(n*ops)/time.Since(start).Seconds(), "msgs/s")
}

var benchBody = strings.Repeat("A line of a long enough post about sailing and the weather, ahoy.\n", 60)

// benchPost is post i of the benchmark's archive, about 4 KiB.
func benchPost(list string, i int) []byte {
	return crlf(fmt.Sprintf("From: Member %d <m%d@example.test>\nTo: %s\nSubject: Post number %d\n"+
		"Date: Sun, 01 Mar 2026 10:00:00 +0000\nMessage-ID: <bench-%d@example.test>\n"+
		"Content-Type: text/plain; charset=utf-8\n\n%s", i, i, list, i, i, benchBody))
}

// benchMessages is the archive size of the benchmarks: CREWMAIL_BENCH_MESSAGES, or 2000.
func benchMessages(b *testing.B) int {
	v := os.Getenv("CREWMAIL_BENCH_MESSAGES")
	if v == "" {
		return 2000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("CREWMAIL_BENCH_MESSAGES=%q: want a positive number", v)
	}
	return n
}

// fetchAll streams FETCH 1:* BODY.PEEK[] and returns how many messages and bytes came.
func fetchAll(b *testing.B, c *imapclient.Client) (msgs int, n int64) {
	cmd := c.Fetch(allSeq(), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			if s, ok := item.(imapclient.FetchItemDataBodySection); ok {
				k, err := io.Copy(io.Discard, s.Literal)
				if err != nil {
					b.Fatal(err)
				}
				n += k
			}
		}
		msgs++
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	return msgs, n
}

// BenchmarkSearchText: UID SEARCH TEXT reads and decodes every post, one at a time.
func BenchmarkSearchText(b *testing.B) {
	n := benchMessages(b)
	e, list, _ := benchArchive(b, n)
	c := e.login(b, carol)
	if _, err := c.Select(list, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		data, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{"post number 7"}}, nil).Wait()
		if err != nil || len(data.AllUIDs()) == 0 {
			b.Fatalf("UID SEARCH TEXT: %v %v", data, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
