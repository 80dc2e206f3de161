package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"crewmail/internal/searchq"
	"crewmail/store"
)

// searchCases are the search index's part of the suite.
var searchCases = []struct {
	name string
	fn   func(t *testing.T, s store.Backend)
}{
	{"SearchWordsPhrasesAndFields", searchWordsPhrasesAndFields},
	{"SearchOwnTextOrWithQuotes", searchOwnTextOrWithQuotes},
	{"SearchConversationsNewestFirstAndLimit", searchConversationsNewestFirst},
	{"SearchUnindexAndReindex", searchUnindex},
	{"SearchManyPostsAcrossMerges", searchManyPosts},
	{"SearchSubstringsIsASuperset", searchSubstrings},
	{"SearchOfADeletedList", searchDeletedList},
	{"SearchReindexedPostTakesItsNewThreadAndDate", searchReindexedPostTakesItsNewThreadAndDate},
}

const searchList = "crew@x.test"

// archive archives and indexes docs in order, each post in the thread its doc names (0: its
// own), and returns their sequences.
func archive(t *testing.T, s store.Backend, docs ...store.SearchDoc) []uint64 {
	t.Helper()
	var seqs []uint64
	err := s.Update(func(tx store.Tx) error {
		seqs = seqs[:0]
		if _, err := tx.List(searchList); errors.Is(err, store.ErrNotFound) {
			if err := tx.CreateList(store.List{Address: searchList}); err != nil {
				return err
			}
		}
		for _, d := range docs {
			last, err := tx.LastSeq(searchList)
			if err != nil {
				return err
			}
			p, err := tx.AppendPost(searchList, store.Post{MessageID: fmt.Sprintf("%d@x", last+1), Received: d.Date, Thread: d.Thread}, []byte("x"))
			if err != nil {
				return err
			}
			if err := tx.IndexPost(searchList, p.Seq, d.For(p)); err != nil {
				return err
			}
			seqs = append(seqs, p.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// search returns the sequences q finds, in the order they come.
func search(t *testing.T, s store.Backend, query string, limit int) []uint64 {
	t.Helper()
	hits := searchHits(t, s, query, limit)
	seqs := []uint64{}
	for _, h := range hits {
		seqs = append(seqs, h.Seq)
	}
	return seqs
}

func searchHits(t *testing.T, s store.Backend, query string, limit int) []store.Hit {
	t.Helper()
	q, err := searchq.Parse(query)
	if err != nil {
		t.Fatalf("Parse(%q): %v", query, err)
	}
	var hits []store.Hit
	if err := s.View(func(tx store.Tx) error {
		hits = nil
		return tx.SearchPosts(searchList, q, limit, func(h store.Hit) error {
			hits = append(hits, h)
			return nil
		})
	}); err != nil {
		t.Fatalf("search %q: %v", query, err)
	}
	return hits
}

func day(s string) time.Time {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return d.Add(12 * time.Hour)
}

func searchWordsPhrasesAndFields(t *testing.T, s store.Backend) {
	seqs := archive(t, s,
		store.SearchDoc{FromName: "Ann Lee", FromAddr: "ann@x.test", Subject: "Picnic on Saturday", Own: "Shall we meet at the lake?\nI will bring bread.", Date: day("2024-05-01")},
		store.SearchDoc{FromName: "Bob", FromAddr: "bob@y.test", Subject: "Re: Picnic on Saturday", Own: "The LAKE is fine. I bring the café au lait.", Attachment: true, Date: day("2024-05-02")},
		store.SearchDoc{FromName: "Zoë Ö", FromAddr: "zoe@x.test", Subject: "Minutes", Own: "Budget: we will meet next week.\nBread is on the budget.", Date: day("2024-06-10")},
	)
	ann, bob, zoe := seqs[0], seqs[1], seqs[2]
	for _, c := range []struct {
		query string
		want  []uint64
	}{
		{"lake", []uint64{bob, ann}},
		{"LAKE bread", []uint64{ann}},
		{"cafe", []uint64{bob}},
		{"CAFÉ", []uint64{bob}},
		{"picnic", []uint64{bob, ann}},           // the subject counts
		{`"meet next week"`, []uint64{zoe}},      // a phrase
		{`"next meet"`, []uint64{}},              // not in this order
		{`"bread budget"`, []uint64{}},           // not next to each other
		{"from:bob", []uint64{bob}},              // name or address
		{"from:ann@x.test", []uint64{ann}},       // the whole address
		{`from:"ann lee"`, []uint64{ann}},        // the name as a phrase
		{"from:zoe", []uint64{zoe}},              // accents aside
		{"from:x.test", []uint64{zoe, ann}},      // the domain
		{"subject:picnic", []uint64{bob, ann}},   // subject only
		{"subject:lake", []uint64{}},             // not in the subject
		{"has:attachment", []uint64{bob}},        // a file
		{"has:attachment lake", []uint64{bob}},   //
		{"before:2024-05-02", []uint64{ann}},     // before that day
		{"after:2024-05-02", []uint64{zoe, bob}}, // that day or later
		{"after:2024-05-02 before:2024-06-01", []uint64{bob}},
		{"bring -bread", []uint64{bob}},           // an exclusion
		{`-"meet next week"`, []uint64{bob, ann}}, // excluding a phrase
		{"-from:bob meet", []uint64{zoe, ann}},    //
		{"nothing", []uint64{}},
	} {
		if got := search(t, s, c.query, 0); !reflect.DeepEqual(got, c.want) {
			t.Errorf("search %q = %v, want %v", c.query, got, c.want)
		}
	}
	// The lines that matched, for highlighting: the subject first, then the text's.
	hits := searchHits(t, s, "bread", 0)
	if len(hits) != 2 || !reflect.DeepEqual(hits[0].Lines, []string{"Bread is on the budget."}) || !reflect.DeepEqual(hits[1].Lines, []string{"I will bring bread."}) {
		t.Errorf("bread: hits %+v", hits)
	}
	if hits := searchHits(t, s, "picnic lake", 0); len(hits) != 2 || !reflect.DeepEqual(hits[1].Lines, []string{"Picnic on Saturday", "Shall we meet at the lake?"}) {
		t.Errorf("picnic lake: hits %+v", hits)
	}
	if !hits[0].Date.Equal(day("2024-06-10")) {
		t.Errorf("hit date %v", hits[0].Date)
	}
}

func searchOwnTextOrWithQuotes(t *testing.T, s store.Backend) {
	seqs := archive(t, s,
		store.SearchDoc{Own: "What about the lighthouse?", Subject: "Trip"},
		store.SearchDoc{Own: "Sounds good to me.", Quoted: "> What about the lighthouse?", Subject: "Re: Trip"},
	)
	if got, want := search(t, s, "lighthouse", 0), seqs[:1]; !reflect.DeepEqual(got, want) {
		t.Errorf("own text only: %v, want %v", got, want)
	}
	if got, want := search(t, s, "lighthouse in:quotes", 0), []uint64{seqs[1], seqs[0]}; !reflect.DeepEqual(got, want) {
		t.Errorf("with quotes: %v, want %v", got, want)
	}
	if got, want := search(t, s, `in:quotes "what about"`, 0), []uint64{seqs[1], seqs[0]}; !reflect.DeepEqual(got, want) {
		t.Errorf("phrase with quotes: %v, want %v", got, want)
	}
	hits := searchHits(t, s, "lighthouse in:quotes", 0)
	if !reflect.DeepEqual(hits[0].Lines, []string{"> What about the lighthouse?"}) {
		t.Errorf("quoted line: %+v", hits[0])
	}
}

func searchConversationsNewestFirst(t *testing.T, s store.Backend) {
	// Thread A: posts 1, 3, 5; thread B: 2, 6; thread C: 4. All say "tea".
	first := archive(t, s, store.SearchDoc{Own: "tea"}, store.SearchDoc{Own: "tea"})
	a, b := first[0], first[1]
	rest := archive(t, s,
		store.SearchDoc{Own: "tea", Thread: a},
		store.SearchDoc{Own: "tea"},
		store.SearchDoc{Own: "tea", Thread: a},
		store.SearchDoc{Own: "tea", Thread: b},
	)
	c := rest[1]
	hits := searchHits(t, s, "tea", 0)
	var got [][2]uint64
	for _, h := range hits {
		got = append(got, [2]uint64{h.Seq, h.Thread})
	}
	want := [][2]uint64{{rest[3], b}, {rest[2], a}, {c, c}, {rest[0], a}, {b, b}, {a, a}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hits (seq, thread) = %v, want %v", got, want)
	}
	// Two conversations: B and A, with all their matching posts, and nothing of C.
	if got, want := search(t, s, "tea", 2), []uint64{rest[3], rest[2], rest[0], b, a}; !reflect.DeepEqual(got, want) {
		t.Errorf("limit 2 = %v, want %v", got, want)
	}
	// An error from fn ends the search and comes back.
	stop := errors.New("stop")
	q, _ := searchq.Parse("tea")
	n := 0
	err := s.View(func(tx store.Tx) error {
		return tx.SearchPosts(searchList, q, 0, func(store.Hit) error { n++; return stop })
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("fn's error: %v after %d hits", err, n)
	}
}

func searchUnindex(t *testing.T, s store.Backend) {
	seqs := archive(t, s, store.SearchDoc{Own: "apples and pears"}, store.SearchDoc{Own: "pears only"})
	indexed := func() bool {
		var ok bool
		if err := s.View(func(tx store.Tx) (err error) { ok, err = tx.SearchIndexed(searchList); return err }); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !indexed() {
		t.Error("SearchIndexed false with every post indexed")
	}
	if err := s.Update(func(tx store.Tx) error { return tx.UnindexPost(searchList, seqs[0]) }); err != nil {
		t.Fatal(err)
	}
	if got, want := search(t, s, "pears", 0), seqs[1:]; !reflect.DeepEqual(got, want) {
		t.Errorf("after unindexing: %v, want %v", got, want)
	}
	if got := search(t, s, "apples", 0); len(got) != 0 {
		t.Errorf("apples still found: %v", got)
	}
	if indexed() {
		t.Error("SearchIndexed true with a post out of the index")
	}
	// Unindexing what is not indexed is no error; indexing again replaces.
	if err := s.Update(func(tx store.Tx) error {
		if err := tx.UnindexPost(searchList, seqs[0]); err != nil {
			return err
		}
		if err := tx.IndexPost(searchList, seqs[0], store.SearchDoc{Own: "plums"}); err != nil {
			return err
		}
		return tx.IndexPost(searchList, seqs[1], store.SearchDoc{Own: "cherries"})
	}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]uint64{"plums": seqs[:1], "cherries": seqs[1:], "pears": {}} {
		if got := search(t, s, q, 0); !reflect.DeepEqual(got, want) {
			t.Errorf("%s after indexing again: %v, want %v", q, got, want)
		}
	}
	if !indexed() {
		t.Error("SearchIndexed false after indexing every post again")
	}
	// ClearSearch empties it.
	if err := s.Update(func(tx store.Tx) error { return tx.ClearSearch(searchList) }); err != nil {
		t.Fatal(err)
	}
	if got := search(t, s, "plums", 0); len(got) != 0 || indexed() {
		t.Errorf("after ClearSearch: %v, indexed %v", got, indexed())
	}
}

// searchManyPosts: enough posts that a backend which batches its index work has batched
// some, posts unindexed on the way, and threads merged after indexing.
func searchManyPosts(t *testing.T, s store.Backend) {
	const n = 700
	var want7, wantBoth []uint64
	var docs []store.SearchDoc
	for i := 1; i <= n; i++ {
		text := fmt.Sprintf("post number%d", i)
		if i%7 == 0 {
			text += " seven"
		}
		if i%7 == 0 && i%5 == 0 {
			text += " five"
		}
		docs = append(docs, store.SearchDoc{Own: text})
	}
	var seqs []uint64
	for i := 0; i < n; i += 100 {
		seqs = append(seqs, archive(t, s, docs[i:i+100]...)...)
	}
	if err := s.Update(func(tx store.Tx) error {
		for i := 35; i <= n; i += 70 { // every other multiple of 35 goes
			if err := tx.UnindexPost(searchList, seqs[i-1]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := n; i >= 1; i-- {
		if i%7 == 0 && (i%35 != 0 || (i/35)%2 == 0) {
			want7 = append(want7, seqs[i-1])
			if i%5 == 0 {
				wantBoth = append(wantBoth, seqs[i-1])
			}
		}
	}
	if got := search(t, s, "seven", 0); !reflect.DeepEqual(got, want7) {
		t.Errorf("seven: %d posts, want %d", len(got), len(want7))
	}
	if got := search(t, s, "seven five", 0); !reflect.DeepEqual(got, wantBoth) {
		t.Errorf("seven five = %v, want %v", got, wantBoth)
	}
	if got, want := search(t, s, "number123", 0), []uint64{seqs[122]}; !reflect.DeepEqual(got, want) {
		t.Errorf("number123 = %v, want %v", got, want)
	}
	// Merging two threads after they were indexed: the hits name the thread merged into.
	if err := s.Update(func(tx store.Tx) error {
		for _, i := range []int{10, 20} {
			if err := tx.IndexThread(searchList, seqs[i-1], []string{fmt.Sprintf("%d@x", seqs[i-1])}, "", time.Time{}); err != nil {
				return err
			}
		}
		_, err := tx.FindThread(searchList, []string{fmt.Sprintf("%d@x", seqs[9]), fmt.Sprintf("%d@x", seqs[19])})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var merged uint64
	if err := s.View(func(tx store.Tx) error {
		p, err := tx.PostMeta(searchList, seqs[19])
		merged = p.Thread
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if merged != seqs[9] {
		t.Fatalf("post 20 is in thread %d after the merge, want %d", merged, seqs[9])
	}
	for _, h := range searchHits(t, s, "number20", 0) {
		if h.Thread != merged {
			t.Errorf("post 20 found in thread %d, its post says %d", h.Thread, merged)
		}
	}
}

func searchSubstrings(t *testing.T, s store.Backend) {
	seqs := archive(t, s,
		store.SearchDoc{Own: "Hello world", Subject: "Greeting"},
		store.SearchDoc{Own: "Othello, act one", Other: "received mx example org"},
		store.SearchDoc{Own: "nothing here", Quoted: "> hello again", FromAddr: "ann@example.org"},
	)
	for _, c := range []struct {
		text string
		want []uint64
	}{
		{"hello", seqs},        // in own text, a longer word, quotes
		{"ELLO", seqs},         // case aside
		{"ello wor", seqs[:1]}, // each word inside one
		{"example", seqs[1:]},  // Other and From count
		{"greet", seqs[:1]},    // the subject
		{"zzz", []uint64{}},    //
		{"lo, act", seqs[1:2]}, // punctuation between
	} {
		var got []uint64
		var ok bool
		if err := s.View(func(tx store.Tx) (err error) {
			got, ok, err = tx.SearchSubstrings(searchList, c.text)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// A superset: every post wanted is there; a backend may give more.
		if !ok {
			t.Errorf("SearchSubstrings(%q) cannot narrow", c.text)
			continue
		}
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("SearchSubstrings(%q) = %v, lacks %d", c.text, got, w)
			}
		}
		if !slices.IsSorted(got) {
			t.Errorf("SearchSubstrings(%q) = %v, not ascending", c.text, got)
		}
	}
	for _, text := range []string{"", "...", strings.Repeat("y", searchq.MaxWord)} {
		if err := s.View(func(tx store.Tx) error {
			_, ok, err := tx.SearchSubstrings(searchList, text)
			if ok {
				t.Errorf("SearchSubstrings(%q) says it can narrow", text)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func searchDeletedList(t *testing.T, s store.Backend) {
	archive(t, s, store.SearchDoc{Own: "farewell"})
	if err := s.Update(func(tx store.Tx) error { return tx.DeleteList(searchList) }); err != nil {
		t.Fatal(err)
	}
	q, _ := searchq.Parse("farewell")
	err := s.View(func(tx store.Tx) error {
		return tx.SearchPosts(searchList, q, 0, func(store.Hit) error { return nil })
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("search in a deleted list: %v, want ErrNotFound", err)
	}
	// A list made again at the address starts with an empty, complete index.
	if err := s.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: searchList}) }); err != nil {
		t.Fatal(err)
	}
	if got := search(t, s, "farewell", 0); len(got) != 0 {
		t.Errorf("the new list finds the old one's post: %v", got)
	}
	if err := s.View(func(tx store.Tx) error {
		ok, err := tx.SearchIndexed(searchList)
		if !ok {
			t.Error("a new list's index is not complete")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// searchReindexedPostTakesItsNewThreadAndDate: a post indexed again with another thread and
// date is found as indexed last, whatever a backend kept of it before.
func searchReindexedPostTakesItsNewThreadAndDate(t *testing.T, s store.Backend) {
	var docs []store.SearchDoc
	for i := range 600 {
		docs = append(docs, store.SearchDoc{Own: fmt.Sprintf("word%d common", i), Date: day("2024-01-01")})
	}
	seqs := archive(t, s, docs...)
	if err := s.Update(func(tx store.Tx) error {
		return tx.IndexPost(searchList, seqs[5], store.SearchDoc{Own: "word5 common", Thread: seqs[0], Date: day("2025-01-01")})
	}); err != nil {
		t.Fatal(err)
	}
	hits := searchHits(t, s, "word5 after:2024-06-01", 0)
	if len(hits) != 1 || hits[0].Seq != seqs[5] || hits[0].Thread != seqs[0] || !hits[0].Date.Equal(day("2025-01-01")) {
		t.Errorf("hits %+v, want post %d in thread %d dated 2025-01-01", hits, seqs[5], seqs[0])
	}
	if got := search(t, s, "word5 before:2024-06-01", 0); len(got) != 0 {
		t.Errorf("found by its old date: %v", got)
	}
}
