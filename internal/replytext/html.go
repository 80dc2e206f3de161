package replytext

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlText renders an HTML body as the lines a reader sees: blocks and <br> end lines, and the
// quoted or hidden elements are left out.
//
// It reads tokens rather than a parsed tree: html.Parse refuses a document nested more than
// 512 elements deep and would then give nothing, where tokens still give the text.
func htmlText(body []byte) string {
	var (
		b    strings.Builder
		pre  int    // open <pre> elements: inside one, line breaks in the source are kept
		skip string // the hidden element whose contents are being left out
		open int    // elements named skip open, counting the hidden one
	)
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken: // io.EOF, or a reader error there cannot be from a bytes.Reader
			return b.String()
		case html.TextToken:
			if open > 0 {
				continue
			}
			text := string(z.Text())
			if pre == 0 {
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
				return b.String()
			}
			if hidden(t) && !void[t.DataAtom] {
				skip, open = t.Data, 1
				continue
			}
			switch {
			case t.DataAtom == atom.Br:
				b.WriteByte('\n')
			case t.DataAtom == atom.Td || t.DataAtom == atom.Th:
				b.WriteByte(' ')
			case blocks[t.DataAtom]:
				b.WriteByte('\n')
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
			switch {
			case a == atom.Br: // browsers read </br> as <br>
				b.WriteByte('\n')
			case blocks[a]:
				b.WriteByte('\n')
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
