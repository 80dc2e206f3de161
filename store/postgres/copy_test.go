package postgres_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"crewmail/internal/searchq"
	"crewmail/store"
)

// dump is every record of c, each written out, sorted (the backends give them in orders of
// their own).
func dump(t *testing.T, c store.Copier) []string {
	t.Helper()
	var out []string
	if err := c.Dump(func(r store.Record) error {
		out = append(out, fmt.Sprintf("%s|%s|%s|%v|%q|%x", r.Kind, r.List, r.Key, r.Nums, r.Data, r.Raw))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestCopyKeepsEveryKindOfRecord: a bbolt file with every kind of record (merged threads,
// mutes and follows, cursors, flags, bounces, held posts, pending actions, waiting, leased and
// failed deliveries with a shared message, app passwords, the search index) copied into
// PostgreSQL and back into a new file holds the same records, the same IDs and counters, and
// the same secret; the next member, post and delivery get the numbers they would have had, and
// the copied index answers searches at once, complete.
func TestCopyKeepsEveryKindOfRecord(t *testing.T) {
	const list = "crew@x.test"
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	orig, err := store.OpenFile(filepath.Join(t.TempDir(), "orig.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	err = orig.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: list, Name: "Crew", Owners: []string{"o@x.test"}}); err != nil {
			return err
		}
		for _, m := range []store.Member{{Address: "a@x.test", Mode: "each"}, {Address: "b@x.test", Mode: "daily"}, {Address: "c@x.test", Mode: "each"}} {
			if _, err := tx.AddMember(list, m); err != nil {
				return err
			}
		}
		if err := tx.RemoveMember(list, "c@x.test"); err != nil { // member IDs have a gap
			return err
		}
		for i := 1; i <= 3; i++ {
			p, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("p%d@x", i), Received: now, Subject: "s"}, []byte(fmt.Sprintf("post %d\r\n", i)))
			if err != nil {
				return err
			}
			if err := tx.IndexThread(list, p.Origin, []string{p.MessageID, fmt.Sprintf("ghost%d@x", i)}, fmt.Sprintf("subject %d", i), now); err != nil {
				return err
			}
			// Every post is indexed for search, with words for IMAP only and a file on the last.
			doc := store.SearchDoc{FromAddr: "a@x.test", FromName: "Ann Ö", Subject: "s", Own: fmt.Sprintf("Café number%d", i),
				Quoted: "> quoted", Other: fmt.Sprintf("mx%d example", i), Attachment: i == 3, Date: now.Add(time.Duration(i) * time.Hour)}
			if err := tx.IndexPost(list, p.Seq, doc.For(p)); err != nil {
				return err
			}
		}
		if err := tx.Mute(list, 3, 1); err != nil {
			return err
		}
		if _, err := tx.FindThread(list, []string{"p2@x", "p3@x"}); err != nil {
			return err
		}
		if err := tx.Follow(list, 2, 2); err != nil {
			return err
		}
		if err := tx.PutCursor(list, "b@x.test", store.Cursor{Seq: 2, Run: now}); err != nil {
			return err
		}
		if err := tx.SetFlags(list, 1, 2, store.FlagSeen|store.FlagFlagged); err != nil {
			return err
		}
		if err := tx.AddBounce(list, store.Bounce{Member: 1, Size: 3, Head: []byte("dsn")}); err != nil {
			return err
		}
		if _, err := tx.Hold(list, store.Held{From: "x@y.test", Raw: []byte("held"), Received: now}); err != nil {
			return err
		}
		if _, err := tx.PutPending(list, store.Pending{Kind: store.PendingJoin, Address: "d@x.test", Created: now}); err != nil {
			return err
		}
		blob, err := tx.PutBlob([]byte("a digest shared by two"), 2)
		if err != nil {
			return err
		}
		for _, to := range []string{"a@x.test", "b@x.test"} {
			if _, err := tx.Enqueue(store.Delivery{List: list, Blob: blob, To: to, Due: now, Created: now}); err != nil {
				return err
			}
		}
		if _, err := tx.Enqueue(store.Delivery{List: list, Seq: 1, To: "later@x.test", Due: now.Add(time.Hour), Created: now}); err != nil {
			return err
		}
		leased, err := tx.ClaimDue(now, time.Hour, 1)
		if err != nil || len(leased) != 1 {
			return fmt.Errorf("claim: %v", err)
		}
		failed, err := tx.Enqueue(store.Delivery{List: list, Message: []byte("notice"), To: "gone@x.test", Due: now.Add(-time.Hour), Created: now})
		if err != nil {
			return err
		}
		if err := tx.Fail(failed, now, "550 no such user"); err != nil {
			return err
		}
		return tx.SetAppPassword("a@x.test", store.AppPassword{Hash: []byte("hash"), Created: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, orig)

	pg := open(t)
	if _, err := store.Copy(orig, pg, nil); err != nil {
		t.Fatalf("bbolt to PostgreSQL: %v", err)
	}
	if got := dump(t, pg); !slices.Equal(got, want) {
		t.Fatalf("PostgreSQL holds\n%v\nwant\n%v", got, want)
	}
	back, err := store.OpenFile(filepath.Join(t.TempDir(), "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := store.Copy(pg, back, nil); err != nil {
		t.Fatalf("PostgreSQL to bbolt: %v", err)
	}
	if got := dump(t, back); !slices.Equal(got, want) {
		t.Fatalf("the file copied back holds\n%v\nwant\n%v", got, want)
	}
	if _, err := store.Copy(orig, pg, nil); err == nil {
		t.Error("a second copy into the same database was not refused")
	}

	// What each backend does next with the records copied: the same.
	for name, db := range map[string]store.Backend{"bbolt": orig, "postgres": pg, "bbolt copied back": back} {
		if string(db.Secret()) != string(orig.Secret()) {
			t.Errorf("%s: the secret differs", name)
		}
		if db.Incarnation(list) != orig.Incarnation(list) || orig.Incarnation(list) == 0 {
			t.Errorf("%s: incarnation %d, want %d", name, db.Incarnation(list), orig.Incarnation(list))
		}
		err := db.View(func(tx store.Tx) error {
			if ok, err := tx.SearchIndexed(list); err != nil || !ok {
				t.Errorf("%s: the copied index is not complete (%v)", name, err)
			}
			q, err := searchq.Parse(`cafe from:"ann o" has:attachment`)
			if err != nil {
				return err
			}
			var hits []store.Hit
			if err := tx.SearchPosts(list, q, 0, func(h store.Hit) error { hits = append(hits, h); return nil }); err != nil {
				return err
			}
			if len(hits) != 1 || hits[0].Seq != 3 || hits[0].Thread != 2 || !hits[0].Date.Equal(now.Add(3*time.Hour)) ||
				!slices.Equal(hits[0].Lines, []string{"Café number3"}) {
				t.Errorf("%s: search hits %+v, want post 3 in thread 2", name, hits)
			}
			seqs, ok, err := tx.SearchSubstrings(list, "mx2")
			if err != nil || !ok || !slices.Contains(seqs, 2) {
				t.Errorf("%s: SearchSubstrings(mx2) = %v, %v, %v", name, seqs, ok, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx store.Tx) error {
			r, err := tx.Recipients(list)
			if err != nil || len(r) != 1 || r[0] != (store.Recipient{ID: 1, Address: "a@x.test"}) {
				t.Errorf("%s: recipients %v, %v", name, r, err)
			}
			if muted, err := tx.Muted(list, store.Post{Origin: 3, Thread: 2}); err != nil || !muted[1] {
				t.Errorf("%s: the mute of thread 3: %v, %v", name, muted, err)
			}
			if p, err := tx.PendingFor(list, store.PendingJoin, "d@x.test"); err != nil || p.ID != 1 {
				t.Errorf("%s: pending join: %+v, %v", name, p, err)
			}
			m, err := tx.AddMember(list, store.Member{Address: "e@x.test", Mode: "each"})
			if err != nil || m.ID != 4 {
				t.Errorf("%s: the next member got ID %d (%v), want 4", name, m.ID, err)
			}
			p, err := tx.AppendPost(list, store.Post{MessageID: "next@x"}, []byte("next"))
			if err != nil || p.Seq != 4 {
				t.Errorf("%s: the next post got sequence %d (%v), want 4", name, p.Seq, err)
			}
			d, err := tx.Enqueue(store.Delivery{To: "n@x.test", Created: now})
			if err != nil || d.ID <= 4 {
				t.Errorf("%s: the next delivery got ID %d (%v), want one above 4", name, d.ID, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
