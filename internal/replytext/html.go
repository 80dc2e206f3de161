package replytext

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"crewmail/internal/htmlpost"
)

// htmlText renders an HTML body as the lines a reader sees: blocks and <br> end lines, and the
// quoted or hidden elements are left out.
//
// It reads tokens rather than a parsed tree: html.Parse refuses a document nested more than
// 512 elements deep and would then give nothing, where tokens still give the text.
//
// With rich, links and simple tables are marked for htmlpost.FromMarked: a link whose URL
// htmlpost.CleanURL keeps is wrapped in htmlpost.LinkStart URL htmlpost.LinkText … LinkEnd, and
// a table that simpleTables finds simple is a line htmlpost.TableStart, a line per row with
// htmlpost.Cell between its cells, and a line htmlpost.TableEnd. Any mark in the body itself
// is taken out first.
func htmlText(body []byte, rich bool) string {
	var (
		b    strings.Builder
		pre  int    // open <pre> elements: inside one, line breaks in the source are kept
		skip string // the hidden element whose contents are being left out
		open int    // elements named skip open, counting the hidden one

		links  []bool // open <a> elements: whether each was marked
		simple []bool // simpleTables, by the order tables start in
		tables []bool // open tables: whether each is marked
		cells  int    // cells so far in the current row of the innermost marked table
		rows   int    // rows so far in the innermost marked table
	)
	if rich {
		simple = simpleTables(body)
	}
	inTable := func() bool { return len(tables) > 0 && tables[len(tables)-1] }
	newline := func() {
		if inTable() {
			b.WriteByte(' ') // a line break inside a cell: the row stays one line
		} else {
			b.WriteByte('\n')
		}
	}
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken: // io.EOF, or a reader error there cannot be from a bytes.Reader
			for range links {
				if links[len(links)-1] {
					b.WriteString(htmlpost.LinkEnd)
				}
				links = links[:len(links)-1]
			}
			if inTable() {
				b.WriteString("\n" + htmlpost.TableEnd + "\n")
			}
			return b.String()
		case html.TextToken:
			if open > 0 {
				continue
			}
			text := htmlpost.Clean(string(z.Text()))
			if pre == 0 || inTable() {
				// Outside <pre> a line break in the source is just a space.
				text = strings.Map(func(c rune) rune {
					if c == '\n' || c == '\r' || c == '\t' || c == '\f' {
						return ' '
					}
					return c
				}, text)
			}
			b.WriteString(text)
		case html.StartTagToken, html.SelfClosingTagToken:
			// A self-closing slash means nothing on an HTML element (HTML §13.1.2.1): <div/>
			// opens a div, so both kinds of token are read alike.
			t := z.Token()
			if open > 0 {
				switch {
				case t.Data == skip:
					open++
				case skip == "head" && t.DataAtom == atom.Body:
					open = 0 // a <head> left open ends where the body starts
				}
				continue
			}
			if startsOriginal(t) {
				if inTable() {
					b.WriteString("\n" + htmlpost.TableEnd + "\n")
				}
				return b.String()
			}
			if hidden(t) && !void[t.DataAtom] {
				skip, open = t.Data, 1
				continue
			}
			if rich {
				switch t.DataAtom {
				case atom.A:
					href := htmlpost.CleanURL(attr(t, "href"))
					if href != "" && t.Type == html.StartTagToken {
						b.WriteString(htmlpost.LinkStart + href + htmlpost.LinkText)
					}
					links = append(links, href != "" && t.Type == html.StartTagToken)
					continue
				case atom.Table:
					marked := len(simple) > 0 && simple[0]
					if len(simple) > 0 {
						simple = simple[1:]
					}
					tables = append(tables, marked)
					if marked {
						b.WriteString("\n" + htmlpost.TableStart + "\n")
						rows, cells = 0, 0
						continue
					}
				case atom.Tr:
					if inTable() {
						if rows > 0 {
							b.WriteByte('\n')
						}
						rows, cells = rows+1, 0
						continue
					}
				case atom.Td, atom.Th:
					if inTable() {
						if cells > 0 {
							b.WriteString(htmlpost.Cell)
						}
						if t.DataAtom == atom.Th {
							b.WriteString(htmlpost.Head)
						}
						cells++
						continue
					}
				}
			}
			switch {
			case t.DataAtom == atom.Br:
				newline()
			case t.DataAtom == atom.Td || t.DataAtom == atom.Th:
				b.WriteByte(' ')
			case blocks[t.DataAtom]:
				newline()
			}
			if t.DataAtom == atom.Pre {
				pre++
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if open > 0 {
				if string(name) == skip {
					open--
				}
				continue
			}
			if rich {
				switch a {
				case atom.A:
					if len(links) > 0 {
						if links[len(links)-1] {
							b.WriteString(htmlpost.LinkEnd)
						}
						links = links[:len(links)-1]
					}
					continue
				case atom.Table:
					if len(tables) > 0 {
						marked := tables[len(tables)-1]
						tables = tables[:len(tables)-1]
						if marked {
							b.WriteString("\n" + htmlpost.TableEnd + "\n")
							continue
						}
					}
				case atom.Tr, atom.Td, atom.Th:
					if inTable() {
						continue
					}
				}
			}
			switch {
			case a == atom.Br: // browsers read </br> as <br>
				newline()
			case blocks[a]:
				newline()
			}
			if a == atom.Pre && pre > 0 {
				pre--
			}
		}
	}
}

// blocks are the elements that begin and end a line of their own.
var blocks = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Li: true, atom.Tr: true, atom.Blockquote: true,
	atom.Pre: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true,
	atom.H6: true, atom.Hr: true, atom.Ul: true, atom.Ol: true, atom.Table: true,
}

// void elements have no contents and no end tag (HTML §13.1.2).
var void = map[atom.Atom]bool{
	atom.Area: true, atom.Base: true, atom.Br: true, atom.Col: true, atom.Embed: true,
	atom.Hr: true, atom.Img: true, atom.Input: true, atom.Link: true, atom.Meta: true,
	atom.Source: true, atom.Track: true, atom.Wbr: true,
}

// startsOriginal reports whether t is where Outlook begins the message being replied to.
// Outlook does not put that message in a <blockquote> but after these elements, so everything
// from here on is left out, not just their contents.
func startsOriginal(t html.Token) bool {
	id := attr(t, "id")
	return strings.EqualFold(id, "divRplyFwdMsg") || strings.EqualFold(id, "appendonsend")
}

// hidden reports whether t opens material that is not the person's own words: a quote, the
// quote's attribution, or something a mail client does not show.
func hidden(t html.Token) bool {
	switch t.DataAtom {
	case atom.Blockquote, atom.Style, atom.Script, atom.Head, atom.Title, atom.Template:
		return true
	}
	class := attr(t, "class")
	for _, c := range []string{"gmail_quote", "moz-cite-prefix", "yahoo_quoted"} {
		if strings.Contains(class, c) {
			return true
		}
	}
	return false
}

func attr(t html.Token, key string) string {
	for _, a := range t.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

// simpleTables reports, for each table of body in the order they start, whether it is a table
// of data a reader should see as one (htmlText marks it): it has no table inside and none
// around it, two to eight columns, and no more text than a table of data has. Mail programs
// lay whole messages out with nested tables; those are read as lines.
func simpleTables(body []byte) []bool {
	type table struct {
		index         int
		nested        bool
		cols, maxCols int
		text          int
	}
	var (
		out   []bool
		stack []*table
	)
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			for _, t := range stack {
				out[t.index] = false // never closed
			}
			return out
		case html.TextToken:
			if len(stack) > 0 {
				stack[len(stack)-1].text += len(bytes.TrimSpace(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch atom.Lookup(name) {
			case atom.Table:
				for _, t := range stack {
					t.nested = true
				}
				stack = append(stack, &table{index: len(out), nested: len(stack) > 0})
				out = append(out, false)
			case atom.Tr:
				if len(stack) > 0 {
					stack[len(stack)-1].cols = 0
				}
			case atom.Td, atom.Th:
				if len(stack) > 0 {
					t := stack[len(stack)-1]
					t.cols++
					t.maxCols = max(t.maxCols, t.cols)
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if atom.Lookup(name) == atom.Table && len(stack) > 0 {
				t := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				out[t.index] = !t.nested && t.maxCols >= 2 && t.maxCols <= 8 && t.text <= 4000
			}
		}
	}
}
