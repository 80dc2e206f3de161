package htmlpost

import (
	"bytes"
	"fmt"
	"html"
	"regexp"
	"strings"
	"unicode/utf8"

	xhtml "golang.org/x/net/html"
)

// The marks of a post's own text as read from its HTML (internal/replytext): characters of
// Unicode's private use area that no mail program writes, and that Clean takes out of
// whatever a sender wrote before any are put in. A link is LinkStart URL LinkText text
// LinkEnd; a table is a line TableStart, a line per row with Cell between the cells (a
// heading cell starts with Head), and a line TableEnd.
const (
	LinkStart  = "\uE001"
	LinkText   = "\uE002"
	LinkEnd    = "\uE003"
	TableStart = "\uE004"
	TableEnd   = "\uE005"
	Cell       = "\uE006"
	Head       = "\uE007"
)

// Clean removes the marks from s.
func Clean(s string) string {
	if !strings.ContainsFunc(s, isMark) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isMark(r) {
			return -1
		}
		return r
	}, s)
}

func isMark(r rune) bool { return r >= 0xE001 && r <= 0xE00F }

// Post is a post's own text as readers get it.
type Post struct {
	// HTML is a fragment within the policy's allow-list (HTML from a post has passed it,
	// plain text is escaped into it): paragraphs, line breaks, links, preformatted blocks and
	// tables, without any style (Style adds the reader's own).
	HTML string
	// Text is plain text: a paragraph that was only hard-wrapped is one line (a format=flowed
	// part wraps it again to the reader's screen), a link whose text is not its URL is
	// followed by a reference such as [1], a table is in aligned columns.
	Text string
	Refs []string // the URLs of the references, [1] first
}

// FromMarked renders the own text of an HTML post, with the marks replytext puts in for its
// links and tables. Its lines are the lines a reader of the post saw.
func FromMarked(s string) Post {
	var r renderer
	lines := strings.Split(joinLinkLines(s), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == TableStart {
			var rows []string
			for i++; i < len(lines) && lines[i] != TableEnd; i++ {
				if strings.TrimSpace(Clean(lines[i])) != "" {
					rows = append(rows, lines[i])
				}
			}
			r.table(rows)
			continue
		}
		if line == TableEnd {
			continue
		}
		r.line(line)
	}
	return r.done()
}

// joinLinkLines makes a link that spans lines (an anchor with a <br> inside) one line.
func joinLinkLines(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch string(r) {
		case LinkText:
			in = true
		case LinkEnd:
			in = false
		}
		if in && r == '\n' {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

// FromText renders the own text of a plain-text post. Paragraphs that were only hard-wrapped
// (reflowable) are joined; lists, short lines, indented and code-like blocks stay as
// written. A flowed post (RFC 3676, joined by replytext) has its paragraphs joined already, and
// each line break it has left is one its author typed: it is kept.
func FromText(s string, flowed bool) Post {
	// Every character of s is escaped into a few elements of the allow-list: there is no
	// HTML of the post's to pass the policy, and a digest round saves the time (FuzzSanitize
	// checks the result all the same).
	r := renderer{escaped: true}
	width := 0
	lines := strings.Split(Clean(s), "\n")
	for _, l := range lines {
		width = max(width, utf8.RuneCountInString(strings.TrimRight(l, " \t")))
	}
	// A patch runs to the end of the text: from the paragraph it starts in on, every line is
	// shown as written, blank lines too.
	var patch []string
	for i, l := range lines {
		if isPatchLine(l) {
			start := i
			for start > 0 && strings.TrimSpace(lines[start-1]) != "" {
				start--
			}
			lines, patch = lines[:start], lines[start:]
			for len(patch) > 0 && strings.TrimSpace(patch[len(patch)-1]) == "" {
				patch = patch[:len(patch)-1]
			}
			break
		}
	}
	for _, para := range paragraphs(lines) {
		switch {
		case len(para) == 0:
			r.line("")
		case !flowed && reflowable(para, width):
			joined := make([]string, len(para))
			for i, l := range para {
				joined[i] = strings.TrimSpace(l)
			}
			r.line(strings.Join(joined, " "))
		case codeLike(para):
			r.pre(para)
		default:
			for _, l := range para {
				r.line(l)
			}
		}
		r.line("")
	}
	if len(patch) > 0 {
		r.pre(patch)
	}
	return r.done()
}

// paragraphs splits lines at blank lines.
func paragraphs(lines []string) [][]string {
	var out [][]string
	var cur []string
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, strings.TrimRight(l, " \t\r"))
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

var listItem = regexp.MustCompile(`^\s*(?:[-*•+–]|\d{1,3}[.)]|[a-zA-Z][.)])\s`)

// reflowable reports whether para is a paragraph of prose that its author's mail program broke
// into lines at width (the longest line of the post): it has two lines or more, none of them a
// list item or indented, and each line but the last was broken because the next word would
// not have fitted on it. Lines broken short on purpose (poetry, an address, "Thanks,\nAlice")
// fail that test and stay as they are.
func reflowable(para []string, width int) bool {
	if len(para) < 2 || width < 50 {
		return false
	}
	for i, l := range para {
		if isListItem(l) || strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			return false
		}
		if i == len(para)-1 {
			break
		}
		next, _, _ := strings.Cut(strings.TrimSpace(para[i+1]), " ")
		// Mail programs wrap at 72 to 78 characters and the widest line may be a few over:
		// allow ten characters of slack.
		if utf8.RuneCountInString(l)+1+utf8.RuneCountInString(next) < min(width, 80)-10 {
			return false
		}
	}
	return true
}

// codeLike reports whether para reads as code or as something laid out with spaces: indented
// lines, tabs, or lines ending the way code ends them.
func codeLike(para []string) bool {
	n := 0
	for _, l := range para {
		if isPatchLine(l) {
			return true // a patch is shown as written, all of it
		}
		t := strings.TrimRight(l, " ")
		if strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "\t") || strings.Contains(t, "\t") ||
			strings.HasSuffix(t, "{") || strings.HasSuffix(t, "}") || strings.HasSuffix(t, ";") || strings.Contains(t, "   ") {
			n++
		}
	}
	return n*2 >= len(para) && !isListItem(para[0])
}

// patchLine matches the lines that only a patch has: the diff's own header, a hunk's, and
// git's summary of changed files.
var patchLine = regexp.MustCompile(`^(?:diff --git |index [0-9a-f]+\.\.[0-9a-f]+|@@ -\d|\+\+\+ [ab/]|--- [ab/]|\s*\S+\s+\|\s+\d+ [-+]*$|\s*\d+ files? changed, )`)

// isPatchLine is patchLine.MatchString(l), without the regular expression for the lines that
// cannot match (a digest round reads every line of every post).
func isPatchLine(l string) bool {
	t := strings.TrimLeft(l, " ")
	if t == "" {
		return false
	}
	switch t[0] {
	case 'd', 'i', '@', '+', '-':
	default:
		if !strings.Contains(t, "|") && !strings.Contains(t, " changed, ") {
			return false
		}
	}
	return patchLine.MatchString(l)
}

// isListItem is listItem.MatchString(l), without the regular expression for the lines that
// cannot match.
func isListItem(l string) bool {
	t := strings.TrimLeft(l, " \t\n\f\r") // \s of RE2
	if t == "" {
		return false
	}
	if c := t[0]; c < 0x80 && c != '-' && c != '*' && c != '+' && (c < '0' || c > '9') && !(len(t) > 1 && (t[1] == '.' || t[1] == ')')) {
		return false
	}
	return listItem.MatchString(l)
}

// renderer builds a Post a line at a time.
type renderer struct {
	html  strings.Builder
	text  strings.Builder
	refs  []string
	para  []string // the HTML of the lines of the paragraph being read
	blank bool     // a blank line is due in the text before the next line
	// escaped: the HTML was made from plain text, escaped; it needs no policy.
	escaped bool
}

// line adds one line of text; "" ends a paragraph.
func (r *renderer) line(s string) {
	if strings.TrimSpace(Clean(s)) == "" {
		r.endPara()
		return
	}
	h, t := r.inline(strings.TrimRight(s, " \t"))
	r.para = append(r.para, h)
	r.textLine(t)
}

func (r *renderer) textLine(t string) {
	if r.blank && r.text.Len() > 0 {
		r.text.WriteByte('\n')
	}
	r.blank = false
	r.text.WriteString(t)
	r.text.WriteByte('\n')
}

func (r *renderer) endPara() {
	if len(r.para) > 0 {
		r.html.WriteString("<p>" + strings.Join(r.para, "<br>") + "</p>\n")
		r.para = nil
	}
	r.blank = true
}

// pre adds lines kept exactly as written.
func (r *renderer) pre(lines []string) {
	r.endPara()
	var h []string
	for _, l := range lines {
		x, t := r.inline(l)
		h = append(h, x)
		r.textLine(t)
	}
	r.html.WriteString("<pre>" + strings.Join(h, "\n") + "</pre>\n")
	r.blank = true
}

// maxTableWidth is the widest a table may be in the text part and still be shown in columns:
// wider lines would be wrapped by the reader's mail program (templates.FlowWidth).
const maxTableWidth = 72

// table adds a table whose rows are lines with Cell between the cells.
func (r *renderer) table(rows []string) {
	r.endPara()
	if len(rows) == 0 {
		return
	}
	var cells [][]string // text of each cell
	r.html.WriteString("<table>")
	for _, row := range rows {
		r.html.WriteString("<tr>")
		var texts []string
		for c := range strings.SplitSeq(row, Cell) {
			tag := "td"
			if strings.HasPrefix(strings.TrimSpace(c), Head) {
				tag = "th"
			}
			h, t := r.inline(strings.Join(strings.Fields(c), " "))
			r.html.WriteString("<" + tag + ">" + h + "</" + tag + ">")
			texts = append(texts, t)
		}
		r.html.WriteString("</tr>")
		cells = append(cells, texts)
	}
	r.html.WriteString("</table>\n")

	var widths []int
	for _, row := range cells {
		for i, c := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	total := 0
	for _, w := range widths {
		total += w + 2
	}
	for _, row := range cells {
		var line strings.Builder
		for i, c := range row {
			if total-2 <= maxTableWidth {
				if i < len(row)-1 {
					c += strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2)
				}
			} else if i < len(row)-1 {
				c += " | "
			}
			line.WriteString(c)
		}
		r.textLine(strings.TrimRight(line.String(), " "))
	}
	r.blank = true
}

// done ends the post: the HTML passes the policy, unless it was made from plain text.
func (r *renderer) done() Post {
	r.endPara()
	h := r.html.String()
	if !r.escaped {
		h = policy().Sanitize(h)
	}
	return Post{
		HTML: strings.TrimSpace(h),
		Text: strings.TrimRight(r.text.String(), "\n"),
		Refs: r.refs,
	}
}

// inline renders one line's text with its links, as HTML and as text. A URL written out in the
// text becomes a link in the HTML.
func (r *renderer) inline(s string) (htm, text string) {
	var h, t strings.Builder
	plain := func(p string) {
		p = Clean(p)
		t.WriteString(p)
		for p != "" {
			if !strings.Contains(p, "://") { // no URL: no need for the regular expression
				h.WriteString(html.EscapeString(p))
				return
			}
			loc := bareURL.FindStringIndex(p)
			if loc == nil {
				h.WriteString(html.EscapeString(p))
				return
			}
			u := trimURL(p[loc[0]:loc[1]])
			h.WriteString(html.EscapeString(p[:loc[0]]))
			if clean := CleanURL(u); clean != "" {
				fmt.Fprintf(&h, `<a href="%s" rel="nofollow noreferrer">%s</a>`, html.EscapeString(clean), html.EscapeString(u))
			} else {
				h.WriteString(html.EscapeString(u))
			}
			p = p[loc[0]+len(u):]
		}
	}
	for s != "" {
		i := strings.Index(s, LinkStart)
		if i < 0 {
			plain(s)
			break
		}
		plain(s[:i])
		rest := s[i+len(LinkStart):]
		j := strings.Index(rest, LinkText)
		k := strings.Index(rest, LinkEnd)
		if j < 0 || k < j {
			s = rest // a broken mark: what follows is text
			continue
		}
		href, label := CleanURL(rest[:j]), strings.TrimSpace(Clean(rest[j+len(LinkText):k]))
		s = rest[k+len(LinkEnd):]
		switch {
		case href == "":
			plain(label)
		case label == "" || sameURL(label, href):
			if label == "" {
				label = shown(href)
			}
			fmt.Fprintf(&h, `<a href="%s" rel="nofollow noreferrer">%s</a>`, html.EscapeString(href), html.EscapeString(label))
			t.WriteString(strings.TrimPrefix(href, "mailto:"))
		default:
			fmt.Fprintf(&h, `<a href="%s" rel="nofollow noreferrer">%s</a> <small>(%s)</small>`, html.EscapeString(href), html.EscapeString(label), html.EscapeString(shown(href)))
			fmt.Fprintf(&t, "%s [%d]", label, r.ref(href))
		}
	}
	return h.String(), t.String()
}

// ref is the number of the reference to u, a new one unless u has one.
func (r *renderer) ref(u string) int {
	for i, x := range r.refs {
		if x == u {
			return i + 1
		}
	}
	r.refs = append(r.refs, u)
	return len(r.refs)
}

// bareURL finds URLs written out in text.
var bareURL = regexp.MustCompile(`(?i)\bhttps?://[^\s<>"'\x60]+`)

// trimURL takes off a URL found in text the punctuation that ends the sentence around it, and
// a closing parenthesis that is not the URL's own.
func trimURL(u string) string {
	for {
		t := strings.TrimRight(u, ".,;:!?'\"*")
		if strings.HasSuffix(t, ")") && strings.Count(t, "(") < strings.Count(t, ")") {
			t = t[:len(t)-1]
		}
		if t == u {
			return u
		}
		u = t
	}
}

// sameURL reports whether a link's text is its URL, as people write it: with or without the
// scheme, "www." or a closing slash.
func sameURL(label, href string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		for _, p := range []string{"https://", "http://", "mailto:", "www."} {
			s = strings.TrimPrefix(s, p)
		}
		return strings.TrimRight(s, "/")
	}
	return norm(label) == norm(href)
}

// shown is a URL as the HTML part shows it beside a link's text: without its scheme, at most
// 60 characters.
func shown(u string) string {
	for _, p := range []string{"https://", "http://", "mailto:"} {
		u = strings.TrimPrefix(u, p)
	}
	if r := []rune(u); len(r) > 60 {
		u = string(r[:59]) + "…"
	}
	return u
}

// cleanLinks returns h with every href passed through CleanURL (an attribute CleanURL refuses
// is dropped), for Sanitize.
func cleanLinks(h string) string {
	var b bytes.Buffer
	z := xhtml.NewTokenizer(strings.NewReader(h))
	for {
		tt := z.Next()
		switch tt {
		case xhtml.ErrorToken:
			return b.String()
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			t := z.Token()
			attrs := t.Attr[:0]
			for _, a := range t.Attr {
				if a.Key == "href" {
					if a.Val = CleanURL(a.Val); a.Val == "" {
						continue
					}
				}
				attrs = append(attrs, a)
			}
			t.Attr = attrs
			b.WriteString(t.String())
		default:
			b.Write(z.Raw())
		}
	}
}

// Style returns h, HTML as Sanitize or a Post give it, with a style attribute on each element
// named in styles: mail programs drop style sheets, and the reader of a post chooses its
// look, not its sender.
func Style(h string, styles map[string]string) string {
	var b strings.Builder
	z := xhtml.NewTokenizer(strings.NewReader(h))
	for {
		tt := z.Next()
		switch tt {
		case xhtml.ErrorToken:
			return b.String()
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			t := z.Token()
			if st, ok := styles[t.Data]; ok {
				attrs := t.Attr[:0]
				for _, a := range t.Attr {
					if a.Key != "style" {
						attrs = append(attrs, a)
					}
				}
				t.Attr = append(attrs, xhtml.Attribute{Key: "style", Val: st})
			}
			b.WriteString(t.String())
		default:
			b.Write(z.Raw())
		}
	}
}
