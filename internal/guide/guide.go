// Package guide renders the member guide (docs/member.md, Markdown) as a web page, with the
// sample list's name and addresses replaced by one list's own when a reader comes from it.
package guide

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"regexp"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
)

// The guide is written for a sample list: "Garden crew" at crew@example.org, with command
// addresses crew+each@example.org and the request address crew-request@example.org.
const (
	sampleName = "Garden crew"
	sampleIMAP = "lists.example.org" // its server, where a mail program reads the archive
)

// sample matches the sample list's addresses in the rendered guide: the post address, its
// command addresses (crew+each@, crew+r-…@) and the request address.
var sample = regexp.MustCompile(`crew(\+[^@\s<>"&]*|-request)?@example\.org`)

// List is whose addresses the guide shows.
type List struct {
	Name      string // its display name
	Address   string // crew@lists.example.net
	Separator string // between its local part and a command: "+"
	IMAPHost  string // the server a mail program reads the archive from
}

// Guide is the member guide rendered once; Page fills in a list.
type Guide struct {
	body string // HTML, sample addresses still in it
}

// New renders markdown. Raw HTML in it is left out (goldmark's default), so the page holds
// only what Markdown makes.
func New(markdown string) (*Guide, error) {
	md := goldmark.New(goldmark.WithExtensions(extension.Table), goldmark.WithParserOptions(parser.WithAutoHeadingID()))
	var b bytes.Buffer
	if err := md.Convert([]byte(markdown), &b); err != nil {
		return nil, fmt.Errorf("member guide: %w", err)
	}
	return &Guide{body: b.String()}, nil
}

var page = template.Must(template.New("guide").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:17px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:42em;padding:1em 1.1em 3em;color:#1d1d1f;background:#fff}
h1{font-size:1.6em;line-height:1.25}h2{font-size:1.3em;margin-top:2em;border-top:1px solid #ddd;padding-top:1em}
code{font-size:.92em;background:#f3f3f3;padding:.1em .25em;border-radius:3px;overflow-wrap:anywhere}
strong{overflow-wrap:anywhere}a{color:#0b57d0}
pre{overflow-x:auto;background:#f6f6f6;padding:.8em}
table{border-collapse:collapse;width:100%;display:block;overflow-x:auto}
td,th{border:1px solid #ddd;padding:.4em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}
</style>
</head>
<body>
{{.Body}}
</body>
</html>
`))

// Page is the guide as an HTML page for list l; for a zero l, for the sample list. Every value
// of l is escaped before it goes into the page.
func (g *Guide) Page(l List) (string, error) {
	body, title := g.body, "Your mailing list: a guide for members"
	if l.Address != "" {
		at := strings.LastIndexByte(l.Address, '@')
		if at < 0 {
			return "", fmt.Errorf("list address %q has no domain", l.Address)
		}
		local, domain := l.Address[:at], l.Address[at+1:]
		sep := l.Separator
		if sep == "" {
			sep = "+"
		}
		body = sample.ReplaceAllStringFunc(body, func(s string) string {
			rest := strings.TrimSuffix(strings.TrimPrefix(s, "crew"), "@example.org")
			switch {
			case rest == "-request":
			case strings.HasPrefix(rest, "+"):
				rest = sep + rest[1:]
			}
			return html.EscapeString(local + rest + "@" + domain)
		})
		if l.IMAPHost != "" {
			body = strings.ReplaceAll(body, sampleIMAP, html.EscapeString(l.IMAPHost))
		}
		if l.Name != "" {
			body = strings.ReplaceAll(body, sampleName, html.EscapeString(l.Name))
			title = l.Name + ": a guide for members"
		}
		// The first paragraph introduces the sample list: introduce this one instead.
		if i, j := strings.Index(body, "<p>"), strings.Index(body, "</p>"); i >= 0 && j > i {
			intro := "<p>This guide is for the members of " + html.EscapeString(orAddress(l.Name, l.Address)) +
				", at <strong>" + html.EscapeString(l.Address) + "</strong>: every address in it is your list's own.</p>"
			body = body[:i] + intro + body[j+len("</p>"):]
		}
	}
	var b strings.Builder
	err := page.Execute(&b, struct {
		Title string
		Body  template.HTML
	}{title, template.HTML(body)}) // body: goldmark's output, raw HTML left out, values escaped above
	return b.String(), err
}

func orAddress(name, address string) string {
	if name != "" {
		return name
	}
	return address
}
