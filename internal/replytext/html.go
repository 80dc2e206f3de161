package replytext

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxHTMLDepth bounds how deep htmlText follows nested elements, so markup nested beyond any
// real message's cannot run the stack up; what is deeper is left out.
const maxHTMLDepth = 512

// htmlText renders an HTML body as the lines a reader sees: blocks and <br> end lines, and the
// quoted or hidden elements are left out.
func htmlText(body []byte) string {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return "" // html.Parse fails only when its reader does, and a bytes.Reader does not
	}
	var r renderer
	r.node(doc, false, 0)
	return r.b.String()
}

type renderer struct {
	b    strings.Builder
	done bool // the replied-to message has started: nothing after it is the person's
}

func (r *renderer) node(n *html.Node, pre bool, depth int) {
	if r.done || depth > maxHTMLDepth {
		return
	}
	switch n.Type {
	case html.TextNode:
		if pre {
			r.b.WriteString(n.Data)
		} else {
			// Outside <pre> a line break in the source is just a space.
			r.b.WriteString(strings.Map(func(c rune) rune {
				if c == '\n' || c == '\r' || c == '\t' || c == '\f' {
					return ' '
				}
				return c
			}, n.Data))
		}
		return
	case html.ElementNode:
		if startsOriginal(n) {
			r.done = true
			return
		}
		if hidden(n) {
			return
		}
	case html.DocumentNode:
	default:
		return // comments and doctypes show nothing
	}
	block := blocks[n.DataAtom]
	switch {
	case n.DataAtom == atom.Br:
		r.b.WriteByte('\n')
		return
	case n.DataAtom == atom.Td || n.DataAtom == atom.Th:
		r.b.WriteByte(' ')
	case block:
		r.b.WriteByte('\n')
	}
	pre = pre || n.DataAtom == atom.Pre
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		r.node(c, pre, depth+1)
	}
	if block {
		r.b.WriteByte('\n')
	}
}

// blocks are the elements that begin and end a line of their own.
var blocks = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Li: true, atom.Tr: true, atom.Blockquote: true,
	atom.Pre: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true,
	atom.H6: true, atom.Hr: true, atom.Ul: true, atom.Ol: true, atom.Table: true,
}

// startsOriginal reports whether n is where Outlook begins the message being replied to.
// Outlook does not put that message in a <blockquote>, but after these elements as their
// sibling, so everything from here on is left out, not just their contents.
func startsOriginal(n *html.Node) bool {
	id := attr(n, "id")
	return strings.EqualFold(id, "divRplyFwdMsg") || strings.EqualFold(id, "appendonsend")
}

// hidden reports whether n holds material that is not the person's own words: a quote, the
// quote's attribution, or something a mail client does not show.
func hidden(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Blockquote, atom.Style, atom.Script, atom.Head, atom.Title, atom.Template:
		return true
	}
	class := attr(n, "class")
	for _, c := range []string{"gmail_quote", "moz-cite-prefix", "yahoo_quoted"} {
		if strings.Contains(class, c) {
			return true
		}
	}
	return false
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}
