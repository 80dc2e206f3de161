package htmlpost

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// allowed are the elements and attributes HTML from a post may come out with.
var allowed = map[string]map[string]bool{
	"a": {"href": true, "rel": true}, "td": {"colspan": true, "rowspan": true}, "th": {"colspan": true, "rowspan": true},
}

func init() {
	for _, e := range []string{"p", "br", "div", "span", "b", "strong", "i", "em", "u", "s", "small", "sub", "sup",
		"blockquote", "pre", "code", "ul", "ol", "li", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
		"table", "thead", "tbody", "tfoot", "tr", "caption"} {
		allowed[e] = map[string]bool{}
	}
}

// checkAllowed fails t when h has an element or attribute outside the allow-list, or a link
// other than http(s) and mailto, or a tracking parameter.
func checkAllowed(t *testing.T, what, h string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(h))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			attrs, ok := allowed[tok.Data]
			if !ok {
				t.Fatalf("%s: element <%s> in %q", what, tok.Data, h)
			}
			for _, a := range tok.Attr {
				if !attrs[a.Key] {
					t.Fatalf("%s: attribute %s on <%s> in %q", what, a.Key, tok.Data, h)
				}
				if a.Key == "href" {
					v := strings.ToLower(a.Val)
					u, err := url.Parse(a.Val)
					if err != nil || !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "mailto:") {
						t.Fatalf("%s: href %q", what, a.Val)
					}
					for k := range u.Query() {
						if strings.HasPrefix(strings.ToLower(k), "utm_") && !strings.HasPrefix(v, "mailto:") {
							t.Fatalf("%s: tracking parameter in %q", what, a.Val)
						}
					}
				}
			}
		}
	}
}

// FuzzSanitize: whatever HTML a post has, Sanitize and FromMarked give only what the
// allow-list lets through: no script, style, event handler, remote image, form, or link that
// is not http(s) or mailto.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		`<p onclick="x()" style="position:fixed">hi <a href="javascript:alert(1)">x</a><img src="https://t.example/p.gif"></p>`,
		`<script>alert(1)</script><style>body{display:none}</style><form action="https://e.example"><input></form>`,
		`<a href="data:text/html;base64,PHNjcmlwdD4=">d</a><a href="https://example.org/?utm_source=x&a=1">ok</a>`,
		`<table><tr><td onmouseover="x">a</td><td>b</td></tr></table><svg onload="x"><a xlink:href="javascript:1">s</a></svg>`,
		`<iframe src="https://e.example"></iframe><object data="x"></object><base href="https://e.example/"><meta http-equiv="refresh" content="0;url=https://e.example">`,
		"\ue001javascript:alert(1)\ue002x\ue003 \ue004\nA\ue006<b onclick=1>B</b>\n\ue005",
		" lib/message-file.c |    5 +++++\n 1 files changed, 5 insertions(+)\n- item\n  3) item\n• item\nb) item\n@@ -1 +1 @@",
		`<a href="  JaVaScRiPt:alert(1)">x</a><a href="https://user:pw@evil.example/">u</a>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAllowed(t, "Sanitize", Sanitize(s))
		p := FromMarked(s)
		checkAllowed(t, "FromMarked", p.HTML)
		checkAllowed(t, "FromText", FromText(s, false).HTML)
		for l := range strings.SplitSeq(s, "\n") { // the fast paths agree with the expressions
			if isPatchLine(l) != patchLine.MatchString(l) || isListItem(l) != listItem.MatchString(l) {
				t.Fatalf("fast path differs on %q", l)
			}
		}
		for _, r := range p.Refs {
			if CleanURL(r) != r || r == "" {
				t.Fatalf("reference %q", r)
			}
		}
	})
}

func TestCleanURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://example.org/frost?utm_source=n&utm_medium=e&id=7", "https://example.org/frost?id=7"},
		{"http://example.org/a?fbclid=x", "http://example.org/a"},
		{"https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fexample.org%2Fx%3Futm_source%3Dq&data=1", "https://example.org/x"},
		{"https://www.google.com/url?q=https://example.org/y&sa=D", "https://example.org/y"},
		{"mailto:ann@example.org?subject=Hi", "mailto:ann@example.org?subject=Hi"},
		{"javascript:alert(1)", ""},
		{"data:text/html,x", ""},
		{"//example.org/x", ""},
		{"https://user:pw@evil.example/", ""},
		{"cid:image001.png", ""},
	} {
		if got := CleanURL(c.in); got != c.want {
			t.Errorf("CleanURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestReflow is the heuristic that decides which paragraphs of a plain-text post were only
// hard-wrapped, on paragraphs as they come in real mail.
func TestReflow(t *testing.T) {
	for _, c := range []struct {
		name, in string
		joined   bool
	}{
		{"wrapped prose", "I have been thinking about how we turn the compost over the\nwinter, and I would like us to take turns so that nobody ends up\ndoing it every week.", true},
		{"lkml prose", "Why only the dynamic ones? A static entry the bridge installed for a\nport that is now down is just as stale.", true},
		{"poetry", "The frost is white,\nthe heap is warm,\nthe worms do not mind.", false},
		{"list", "- Ann: first week of December, and that is a long item for a list\n- Jürgen: second week of December, also quite a long item here", false},
		{"short lines", "Thanks,\nTom", false},
		{"code", "\tif (err)\n\t\tdev_err(chip->dev, \"p%d: failed to flush ATU: %pe\\n\",\n\t\t\tport, ERR_PTR(err));", false},
		{"address", "Allotment 14\nRiverside Gardens\nSpringfield", false},
		{"patch", "diff --git a/lib/message-file.c b/lib/message-file.c\nindex 8a3f8ee..197ab01 100644\n--- a/lib/message-file.c\n+++ b/lib/message-file.c", false},
	} {
		p := FromText(c.in, false)
		oneLine := !strings.Contains(p.Text, "\n")
		if oneLine != c.joined {
			t.Errorf("%s: joined %v, want %v: %q", c.name, oneLine, c.joined, p.Text)
		}
	}
	// A patch is preformatted to its end, lines as written, blank lines too.
	if p := FromText("---\n lib/message-file.c |    5 +++++\n 1 files changed, 5 insertions(+), 0 deletions(-)\n\ndiff --git a/x b/x\n@@ -1,2 +1,3 @@\n+\tfclose (message->file);", false); strings.Count(p.HTML, "<pre>") != 1 || !strings.Contains(p.HTML, "\n\ndiff --git") {
		t.Errorf("a patch is not preformatted: %s", p.HTML)
	}
	// A flowed post's line breaks are its author's.
	if p := FromText("Fine by me, and I can also take the week after that if someone is away\nAnn, who will be there and who wrote this long line too", true); !strings.Contains(p.Text, "\n") {
		t.Error("a flowed post's line break was joined")
	}
}
