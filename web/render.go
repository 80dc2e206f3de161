package web

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strconv"

	"crewmail/internal/htmlpost"
	"crewmail/internal/replytext"
)

// The pages. Each is a template of its own ("content") inside one layout; the style sheet is
// served by the reader (the Content-Security-Policy allows nothing else), and no page needs a
// script: quotes fold with <details>, every action is a form.

//go:embed style.css
var styleCSS []byte

const layout = `{{define "layout"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{{.Title}}</title>
<link rel="stylesheet" href="{{.Prefix}}/style.css">
</head>
<body>
<header class="top">
<a class="site" href="{{.Prefix}}/">crewmail</a>
{{- if .Me}}
<nav aria-label="Your account">
<span class="me">{{.Me}}</span>
<a href="{{.Prefix}}/settings">Settings</a>
<a href="{{.Prefix}}/settings/sessions">Sessions</a>
<form method="post" action="{{.Prefix}}/signout" class="inline"><input type="hidden" name="csrf" value="{{.CSRF}}"><button type="submit" class="link">Sign out</button></form>
</nav>
{{- end}}
</header>
<main>
{{template "content" .}}
</main>
</body>
</html>
{{end}}`

var pages = map[string]string{
	"home": `{{define "content"}}{{with .Data}}
<h1>Read your lists</h1>
{{if .Problem}}<p class="problem" role="alert">{{.Problem}}</p>{{end}}
<p>Give the address you get your lists' mail at. If it is a member's, we mail it a link that signs you in. There is no password.</p>
<form method="post" action="{{$.Prefix}}/signin" class="signin">
<input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="address">Your email address</label>
<input id="address" name="address" type="email" autocomplete="email" required value="{{.Address}}">
<button type="submit">Mail me a sign-in link</button>
</form>
{{end}}{{end}}`,

	"sent": `{{define "content"}}{{with .Data}}
<h1>Check your mail</h1>
<p>If <b>{{.Address}}</b> is a member of a list here, a link to sign in is on its way to it. The link works once, for {{.Minutes}} minutes.</p>
<p>Nothing came? Look in your spam folder. A new link can be asked for every five minutes.</p>
<p><a href="{{$.Prefix}}/">Back</a></p>
{{end}}{{end}}`,

	"link": `{{define "content"}}{{with .Data}}
<h1>Sign in</h1>
<p>Sign in to read your lists as <b>{{.Address}}</b>?</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{$.CSRF}}">
<button type="submit">Sign in</button>
</form>
{{end}}{{end}}`,

	"lists": `{{define "content"}}{{with .Data}}
<h1>Your lists</h1>
{{range .Paused}}<p class="problem" role="alert">{{.}} <a href="{{$.Prefix}}/settings">Resume it in your settings</a>.</p>
{{end}}{{if .Lists}}<ul class="lists">
{{range .Lists}}<li><a href="{{.URL}}"><span class="name">{{.Name}}</span></a> <span class="addr">{{.Address}}</span>
<span class="meta">{{.Posts}} message{{if ne .Posts 1}}s{{end}}{{if .New}}, <strong>{{.New}} new</strong>{{end}}</span></li>
{{end}}</ul>{{else}}<p>You are not a member of any list here.</p>{{end}}
{{end}}{{end}}`,

	"list": `{{define "content"}}{{with .Data}}
<nav aria-label="Breadcrumb" class="crumbs"><a href="{{$.Prefix}}/">Your lists</a></nav>
<h1>{{.Name}}</h1>
<p class="addr">{{.Address}}{{if not .Member}} · public archive{{end}}</p>
<form method="get" action="{{.Search}}" class="search" role="search">
<label for="q">Search this list</label>
<div class="row"><input id="q" name="q" type="search" autocomplete="off"><button type="submit">Search</button></div>
</form>
{{if .Convos}}<h2 class="visually-hidden">Conversations</h2>
<ol class="convos">
{{range .Convos}}<li>
<a href="{{.URL}}" class="subject">{{.Subject}}</a>
<span class="meta">{{range $i, $p := .People}}{{if $i}}, {{end}}{{$p.Label}}{{end}}{{if .More}} and {{.More}} more{{end}}</span>
<span class="meta">{{.Count}} message{{if ne .Count 1}}s{{end}}{{if .Proven}} · <span title="proven authors">✓ {{.Proven}} proven</span>{{end}} · {{.Latest}}{{if .New}} · <strong class="new">{{.New}} new</strong>{{end}}</span>
</li>
{{end}}</ol>
<nav aria-label="Pages" class="pages">{{if .Prev}}<a href="{{.Prev}}" rel="prev">Newer</a>{{end}} {{if .Next}}<a href="{{.Next}}" rel="next">Older</a>{{end}}</nav>
{{else}}<p>No messages yet.</p>{{end}}
{{end}}{{end}}`,

	"conversation": `{{define "content"}}{{with .Data}}
<nav aria-label="Breadcrumb" class="crumbs"><a href="{{$.Prefix}}/">Your lists</a> › <a href="{{.ListURL}}">{{.ListName}}</a></nav>
<h1>{{.Subject}}</h1>
{{if .Single}}<p class="meta">One message of <a href="{{.Conversation}}">the conversation</a>{{if .Count}} ({{.Count}} message{{if ne .Count 1}}s{{end}}){{end}}.</p>
{{else}}<p class="meta">{{len .Messages}} message{{if ne (len .Messages) 1}}s{{end}}{{if .Mbox}} · <a href="{{.Mbox}}" download>Download the conversation (mbox)</a>{{end}}</p>{{end}}
{{range .Messages}}<article id="{{.Anchor}}" class="message" aria-labelledby="{{.Anchor}}-h">
<header>
<h2 id="{{.Anchor}}-h" class="author">{{or .Author.Name .Author.Address}}{{if .Proven}} <span class="proven" aria-label="proven">✓</span>{{end}}</h2>
<p class="meta">{{if .Author.Address}}<span class="addr">{{.Author.Address}}</span> · {{end}}<span class="proof">{{.Proof}}</span>{{if .New}} · <strong class="new">new</strong>{{end}}</p>
{{if .Newcomer}}<p class="meta newcomer">{{.Newcomer}}</p>{{end}}
<p class="meta"><a href="{{.Permalink}}" class="when"><time datetime="{{.ISOTime}}">{{.Time}}</time></a></p>
</header>
<div class="text">
{{range .Blocks}}{{if .HTML}}<div class="html">{{.HTML}}</div>
{{else if .Quoted}}<details class="quote"><summary>show quoted text</summary><pre>{{.Text}}</pre></details>
{{else}}<pre>{{.Text}}</pre>
{{end}}{{else}}<p class="meta">(no text)</p>{{end}}
{{if .Trimmed}}<p class="meta">This message is longer than shown here{{if .Raw}}; <a href="{{.Raw}}">download it</a> for the rest{{end}}.</p>{{end}}
</div>
{{if .Attachments}}<h3 class="files">Attachments</h3>
<ul class="files">{{range .Attachments}}<li><a href="{{.URL}}" download>{{.Name}}</a> <span class="meta">{{.Size}}</span></li>{{end}}</ul>{{end}}
<footer class="actions">
{{if .Reply}}<a href="{{.Reply}}" class="button">Reply</a> <a href="{{.ReplyAuthor}}" class="button">Reply to the author only</a>{{end}}
{{if .Raw}}<a href="{{.Raw}}" download>Download (.eml)</a>{{end}}
</footer>
</article>
{{end}}
{{end}}{{end}}`,

	"sessions": `{{define "content"}}{{with .Data}}
<nav aria-label="Breadcrumb" class="crumbs"><a href="{{$.Prefix}}/">Your lists</a></nav>
<h1>Where you are signed in</h1>
<ul class="sessions">
{{range .Sessions}}<li><b>{{.Agent}}</b>{{if .This}} (this browser){{end}}<br>
<span class="meta">signed in {{.Created}}, last seen {{.Seen}}</span>
<form method="post" action="{{$.Prefix}}/settings/sessions"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="id" value="{{.ID}}"><button type="submit">{{if .This}}Sign out here{{else}}Sign out there{{end}}</button></form></li>
{{end}}</ul>
{{if gt (len .Sessions) 1}}<form method="post" action="{{$.Prefix}}/settings/sessions"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="all" value="1"><button type="submit">Sign out everywhere else</button></form>{{end}}
{{end}}{{end}}`,

	"search": `{{define "content"}}{{with .Data}}
<nav aria-label="Breadcrumb" class="crumbs"><a href="{{$.Prefix}}/">Your lists</a> › <a href="{{.ListURL}}">{{.ListName}}</a></nav>
<h1>Search {{.ListName}}</h1>
<form method="get" action="{{.Action}}" class="search" role="search">
<label for="q">Words to look for</label>
<div class="row"><input id="q" name="q" type="search" autocomplete="off" value="{{.Query}}"><button type="submit">Search</button></div>
</form>
{{if .Problem}}<p class="problem" role="alert">{{.Problem}}</p>{{end}}
{{if .Incomplete}}<p class="problem">The search index of this list is being rebuilt: some messages may be missing from the results.</p>{{end}}
{{if .Searched}}{{if .Results}}<p class="meta">{{if .Full}}The {{len .Results}} newest conversations that match{{else}}{{len .Results}} conversation{{if ne (len .Results) 1}}s{{end}} match{{if eq (len .Results) 1}}es{{end}}{{end}}, the newest first.</p>
<ol class="convos results">
{{range .Results}}<li><a href="{{.URL}}" class="subject">{{.Subject}}</a>
<span class="meta">{{.Matching}} matching message{{if ne .Matching 1}}s{{end}}{{if .Count}} of {{.Count}}{{end}}</span>
{{range .Hits}}<div class="hit"><a href="{{.URL}}" class="meta">{{.Author}}{{if .Time}}, {{.Time}}{{end}}</a>
{{range .Lines}}<p class="line">{{range .}}{{if .Mark}}<mark>{{.Text}}</mark>{{else}}{{.Text}}{{end}}{{end}}</p>{{end}}</div>
{{end}}</li>
{{end}}</ol>{{else}}<p>Nothing matches.</p>{{end}}{{else}}
<h2>How to search</h2>
<ul class="help">
<li>Words find messages with all of them, whatever the case and accents; <code>"a phrase"</code> finds the words together.</li>
<li><code>from:ann</code>, <code>subject:seeds</code>, <code>has:attachment</code>, <code>before:2026-06-01</code>, <code>after:2026-01-01</code>.</li>
<li>Quoted text is left out unless you add <code>in:quotes</code>; <code>-word</code> leaves out what has the word.</li>
</ul>{{end}}
{{end}}{{end}}`,

	"notfound": `{{define "content"}}
<h1>Not found</h1>
<p>There is nothing here, or nothing you can read. Lists show their messages to their members only: <a href="{{$.Prefix}}/">sign in</a> with the address you are a member with.</p>
{{end}}`,

	"error": `{{define "content"}}{{with .Data}}
<h1>Sorry</h1>
<p role="alert">{{.Message}}</p>
<p><a href="{{$.Prefix}}/">Back to the start</a></p>
{{end}}{{end}}`,
}

var titles = map[string]string{"home": "Sign in", "sent": "Check your mail", "link": "Sign in", "lists": "Your lists",
	"sessions": "Sessions", "notfound": "Not found", "error": "Sorry"}

var pageTemplates = func() map[string]*template.Template {
	base := template.Must(template.New("layout").Parse(layout))
	out := map[string]*template.Template{}
	for name, text := range pages {
		out[name] = template.Must(template.Must(base.Clone()).Parse(text))
	}
	return out
}()

// page is what the layout reads.
type page struct {
	Title, Prefix, Me, CSRF string
	Data                    any
}

// titled is a view that names its page.
type titled interface{ title() string }

// render writes page name with data, for visitor v.
func (r *Reader) render(w http.ResponseWriter, _ *http.Request, status int, name string, v visitor, data any) {
	p := page{Title: titles[name], Prefix: r.prefix, Me: v.Address(), CSRF: r.csrfToken(v), Data: data}
	if t, ok := data.(titled); ok {
		p.Title = t.title()
	}
	var buf bytes.Buffer
	if err := pageTemplates[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		r.log.Error("web reader: rendering", "page", name, "err", err)
		http.Error(w, "something went wrong on our side", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes()) //nolint:errcheck // the reader went away
}

func (r *Reader) style(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(styleCSS) //nolint:errcheck // the reader went away
}

// The views of the pages.

type homeView struct {
	Problem string // what went wrong, for the visitor
	Address string // as she typed it
}

type sentView struct {
	Address string
	Minutes int
}

type linkView struct {
	Address string
	Action  string
}

type listsView struct {
	Lists []listRow
	// Paused says, for each list whose mail to her is paused because it bounced, why; the
	// settings page resumes it.
	Paused []string
}

type listRow struct {
	Name, Address, URL string
	Posts, New         uint64
}

type listView struct {
	Name, Address string
	Search        string // the search page's address
	Member        bool
	Page, Total   int
	Convos        []convoRow
	Prev, Next    string
}

func (v listView) title() string { return v.Name }

type convoRow struct {
	Subject, URL string
	People       []person
	More         int
	Count        int
	Proven       int
	Latest       string
	New          int
}

type person struct {
	Name    string
	Address string // for members only
}

// Label is how a list of people names her: by her name, else by her address (shown to
// members only; a visitor gets the address's local part as her name).
func (p person) Label() string {
	if p.Name != "" {
		return p.Name
	}
	return p.Address
}

type convoView struct {
	ListName, List, ListURL string
	Subject                 string
	Mbox                    string
	Messages                []messageView
	// Single: the permalink page of one message of Conversation (Count messages).
	Single       bool
	Conversation string
	Count        int
}

func (v convoView) title() string { return v.Subject + " · " + v.ListName }

type messageView struct {
	Seq           uint64
	Anchor        string
	Subject       string
	Author        person
	Proven        bool
	Proof         string
	Time, ISOTime string
	Permalink     string
	Raw           string
	Blocks        []block
	Trimmed       bool
	Attachments   []attachmentView
	// Reply and ReplyAuthor are mailto links, and Raw the download of the message as it
	// came, for members only.
	Reply, ReplyAuthor string
	New                bool
	// Newcomer says who brought the author in, beside the posts of her first weeks.
	Newcomer string
}

// block is a run of a message's text: quoted or the author's, as plain text, or (the author's
// own text of an HTML-only post) as HTML that passed htmlpost's policy, the digests' own.
type block struct {
	Quoted bool
	Text   string
	HTML   template.HTML
}

// blocks are the blocks of full as a page shows them. An HTML post keeps its paragraphs, links
// (with their URLs, cleaned of trackers) and tables through htmlpost, nothing else of its
// HTML; its quoted runs are plain text.
func blocks(full replytext.Full) []block {
	out := make([]block, len(full.Blocks))
	for i, b := range full.Blocks {
		out[i] = block{Quoted: b.Quoted, Text: htmlpost.Clean(b.Text)}
		if full.HTML && !b.Quoted {
			out[i].HTML = template.HTML(htmlpost.FromMarked(b.Text).HTML) // it passed the policy
		}
	}
	return out
}

type attachmentView struct {
	Name, Size, URL string
}

type sessionsView struct{ Sessions []sessionRow }

type sessionRow struct {
	ID, Agent, Created, Seen string
	This                     bool
}

type errorView struct{ Message string }
