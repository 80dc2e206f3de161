package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"crewmail/internal/searchq"
	"crewmail/store"
)

// Searching a list: the query language of internal/searchq, answered by the store's index
// (store.Search). Results are conversations in the order of their newest matching message,
// each with the lines of its matching messages, the words looked for marked.

// SearchConversations bounds the conversations a search page shows.
const SearchConversations = 25

// SearchURL is the address of list's search for q.
func SearchURL(base, list, q string) string {
	u := ListURL(base, list) + "search"
	if q != "" {
		u += "?q=" + strings.ReplaceAll(url.QueryEscape(q), "+", "%20")
	}
	return u
}

func (r *Reader) searchPage(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	list := req.PathValue("list")
	text := strings.TrimSpace(req.URL.Query().Get("q"))
	var view searchView
	err := r.st.View(func(tx store.Tx) error {
		l, m, err := access(tx, v, list)
		if err != nil {
			return err
		}
		view = searchView{ListName: listName(l), List: l.Address, ListURL: ListURL(r.prefix, l.Address),
			Action: ListURL(r.prefix, l.Address) + "search", Query: text}
		if text == "" {
			return nil
		}
		q, err := searchq.Parse(text)
		if err != nil {
			view.Problem = sentenceOf(err)
			return nil
		}
		if ok, err := tx.SearchIndexed(l.Address); err != nil {
			return err
		} else if !ok {
			view.Incomplete = true
		}
		idx, err := r.index.of(tx, l)
		if err != nil {
			return err
		}
		marks := map[string]bool{}
		for _, w := range q.Highlights() {
			marks[w] = true
		}
		view.Searched = true
		byThread := map[uint64]*searchResult{}
		return tx.SearchPosts(l.Address, q, SearchConversations, func(h store.Hit) error {
			res := byThread[h.Thread]
			if res == nil {
				res = &searchResult{Subject: "(a message no longer in a conversation)", URL: ConversationURL(r.prefix, l.Address, h.Thread)}
				if c := idx.byThread[h.Thread]; c != nil {
					res.Subject, res.Count = c.Subject, len(c.Seqs)
				}
				byThread[h.Thread] = res
				view.Results = append(view.Results, res)
			}
			res.Matching++
			if len(res.Hits) == 3 {
				return nil
			}
			hit := searchHit{URL: MessageURL(r.prefix, l.Address, h.Seq)}
			if p, ok := idx.posts[h.Seq]; ok {
				hit.Author = r.person(tx, idx, l, m != nil, p.From, h.Seq).Label()
				when := h.Date
				if when.IsZero() {
					when = p.Received
				}
				hit.Time = r.when(when, r.zone(l))
			}
			for _, line := range h.Lines {
				hit.Lines = append(hit.Lines, highlight(line, marks))
			}
			res.Hits = append(res.Hits, hit)
			return nil
		})
	})
	if err != nil {
		r.pageFailed(w, req, v, err)
		return
	}
	status := http.StatusOK
	if view.Problem != "" {
		status = http.StatusBadRequest
	}
	r.render(w, req, status, "search", v, view)
}

// sentenceOf is an error as a sentence for a page.
func sentenceOf(err error) string {
	var msg string
	if errors.Is(err, searchq.ErrEmpty) {
		msg = "Nothing to search for: give some words."
	} else {
		msg = err.Error()
	}
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// highlight cuts line (made valid UTF-8) into pieces, marking each run of letters and digits that holds a word
// of marks (as searchq.Words normalizes it: case and accents aside).
func highlight(line string, marks map[string]bool) []piece {
	var out []piece
	word := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) }
	rs := []rune(strings.ToValidUTF8(line, "\uFFFD"))
	for i := 0; i < len(rs); {
		j := i
		isWord := word(rs[i])
		for j < len(rs) && word(rs[j]) == isWord {
			j++
		}
		text := string(rs[i:j])
		mark := false
		if isWord {
			searchq.Words(text, func(w string) { mark = mark || marks[w] })
		}
		if n := len(out); n > 0 && out[n-1].Mark == mark {
			out[n-1].Text += text
		} else {
			out = append(out, piece{Text: text, Mark: mark})
		}
		i = j
	}
	return out
}

type piece struct {
	Text string
	Mark bool
}

type searchView struct {
	ListName, List, ListURL string
	Action                  string
	Query                   string
	Problem                 string
	Searched                bool
	Incomplete              bool // the index is being rebuilt
	Results                 []*searchResult
}

func (v searchView) title() string {
	if v.Query != "" {
		return v.Query + " · search " + v.ListName
	}
	return "Search " + v.ListName
}

// Full says whether the results stopped at SearchConversations.
func (v searchView) Full() bool { return len(v.Results) >= SearchConversations }

type searchResult struct {
	Subject, URL    string
	Count, Matching int
	Hits            []searchHit
}

type searchHit struct {
	URL, Author, Time string
	Lines             [][]piece
}
