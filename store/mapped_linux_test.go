package store

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// rssFile is the file-backed part of this process's resident set, in bytes.
func rssFile(t *testing.T) int64 {
	t.Helper()
	n := mailtest.ProcStatus("RssFile")
	if n == 0 {
		t.Fatal("no RssFile in /proc/self/status")
	}
	return n
}

// After a read of the whole archive, ReleaseMapped gives the pages back, and everything reads
// the same afterwards.
func TestReleaseMappedGivesBackWhatWasRead(t *testing.T) {
	s, _ := openTest(t)
	const list = "crew@lists.example.test"
	if err := s.Update(func(tx Tx) error { return tx.CreateList(List{Address: list, Name: "Crew"}) }); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("a line of a post, long enough to fill pages quickly.\r\n"), 300) // ~16 KB
	const posts = 2000                                                                            // ~32 MB
	for first := 0; first < posts; first += 200 {
		err := s.Update(func(tx Tx) error {
			for i := first; i < first+200; i++ {
				raw := append(fmt.Appendf(nil, "Message-ID: <%d@example.test>\r\n\r\n", i), body...)
				if _, err := tx.AppendPost(list, Post{MessageID: fmt.Sprintf("%d@example.test", i), Received: time.Now()}, raw); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	readAll := func() (n int) {
		err := s.View(func(tx Tx) error {
			return tx.PostsAfter(list, 0, func(p Post, raw []byte) error {
				if !bytes.HasSuffix(raw, body) || !bytes.Contains(raw, []byte(p.MessageID)) {
					t.Fatalf("post %d reads wrong", p.Seq)
				}
				n++
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	readAll()
	read := rssFile(t)
	if err := s.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	released := rssFile(t)
	t.Logf("resident file pages: %d MiB after reading the archive, %d MiB after ReleaseMapped", read>>20, released>>20)
	if read-released < 16<<20 {
		t.Errorf("ReleaseMapped gave back %d bytes of a 32 MB archive just read", read-released)
	}
	if n := readAll(); n != posts {
		t.Errorf("after ReleaseMapped %d posts read, want %d", n, posts)
	}
}

// ReleaseMapped while writers grow the file (and bbolt remaps it) and readers read.
func TestReleaseMappedWhileTheFileGrows(t *testing.T) {
	s, _ := openTest(t)
	const list = "crew@lists.example.test"
	if err := s.Update(func(tx Tx) error { return tx.CreateList(List{Address: list, Name: "Crew"}) }); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 64<<10)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 300 { // ~20 MB: several remaps
			err := s.Update(func(tx Tx) error {
				_, err := tx.AppendPost(list, Post{MessageID: fmt.Sprintf("%d@example.test", i), Received: time.Now()}, body)
				return err
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for range 300 {
			err := s.View(func(tx Tx) error {
				return tx.PostsAfter(list, 0, func(p Post, raw []byte) error {
					if !bytes.Equal(raw, body) {
						t.Errorf("post %d reads wrong", p.Seq)
					}
					return nil
				})
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 300 {
		if err := s.ReleaseMapped(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
