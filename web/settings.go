package web

import (
	"html/template"
	"net/http"
	"strconv"
	"time"

	"crewmail/internal/vocab"
	"crewmail/lists"
	"crewmail/store"
)

// The settings page (issue 21): a signed-in member's delivery mode per list, her own posts,
// a pause until a date, the conversations she muted or follows, the IMAP app password (shown
// once, revocable), leaving a list (with the undo the goodbye mail carries), a change of
// address, a copy of her data, being forgotten; and, when delivery to her is paused because
// it bounced, why, with the button that resumes it. A session is proven (it began with a link
// mailed to her address), so the page acts at once where mail to crew-request@ from an
// unproven sender would ask for a confirmation; forgetting still asks for one by mail, and a
// new address confirms itself.

// Settings is what the settings page asks of the lists' service (lists.Service has it).
type Settings interface {
	SettingsOf(addr string) (lists.Settings, error)
	SetMemberMode(list, addr string, mode vocab.Mode) error
	SetSelfCopy(list, addr string, on bool) error
	PauseMember(list, addr string, until time.Time) error
	ResumeMember(list, addr string) error
	EndMarks(list, addr string, th uint64) error
	ShowAppPassword(addr string) (string, error)
	RevokeAppPassword(addr string) error
	LeaveList(list, addr string) error
	AskChangeAddress(list, addr, to string) (string, error)
	AskExport(list, addr string) error
	AskForget(list, addr, how string) error
}

func (r *Reader) settingsRoutes(m *http.ServeMux) {
	m.HandleFunc("GET "+r.prefix+"/settings", r.settingsPage)
	m.HandleFunc("POST "+r.prefix+"/settings", r.changeSettings)
	m.HandleFunc("GET "+r.prefix+"/l/{list}/directory", r.directoryPage)
}

func (r *Reader) settingsService() (Settings, bool) {
	s, ok := r.lists.(Settings)
	return s, ok
}

type settingsView struct {
	Address      string
	Said         string // what the last change did
	Problem      string
	Password     string // a new app password, shown this once
	PasswordMade string
	Lists        []settingsList
	Modes        []vocab.Mode
	Today        string // the earliest date a pause may end, for the date input
}

type settingsList struct {
	Name, Address, Since, BroughtBy, Directory string
	Mode                                       vocab.Mode
	OwnPosts                                   bool
	AwayUntil                                  string
	Paused                                     string // why delivery is paused for bouncing, "" when it is not
	Muted, Followed                            []lists.Conversation
}

// settingsPage shows the member's settings.
func (r *Reader) settingsPage(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	if v.session == nil {
		http.Redirect(w, req, r.prefix+"/", http.StatusSeeOther)
		return
	}
	r.showSettings(w, req, v, settingsView{})
}

func (r *Reader) showSettings(w http.ResponseWriter, req *http.Request, v visitor, view settingsView) {
	svc, ok := r.settingsService()
	if !ok {
		r.notFoundFor(w, req, v)
		return
	}
	set, err := svc.SettingsOf(v.session.Address)
	if err != nil {
		r.storeFailed(w, req, v, err)
		return
	}
	view.Address, view.Modes = set.Address, []vocab.Mode{vocab.Each, vocab.Daily, vocab.Weekly, vocab.NoMail}
	view.Today = r.Now().Add(24 * time.Hour).Format("2006-01-02")
	if !set.AppPassword.IsZero() {
		view.PasswordMade = r.when(set.AppPassword, r.cfg.Zone)
	}
	for _, m := range set.Memberships {
		row := settingsList{Name: listName(m.List), Address: m.List.Address, Since: r.when(m.Member.Added, r.zone(m.List)), BroughtBy: m.BroughtBy,
			Mode: m.Member.Mode, OwnPosts: !m.Member.NoOwnPosts, Muted: m.Muted, Followed: m.Followed}
		if m.Directory {
			row.Directory = ListURL(r.prefix, m.List.Address) + "directory"
		}
		if !m.Member.AwayUntil.IsZero() {
			row.AwayUntil = r.when(m.Member.AwayUntil, r.zone(m.List))
		}
		if m.PausedForBounces {
			row.Paused = "Mail from this list to you has been paused since " + r.when(m.Member.Paused, r.zone(m.List)) + " because it bounced."
			if m.Member.PausedWhy != "" {
				row.Paused += " The last answer of your mail provider was: " + m.Member.PausedWhy
			}
		}
		view.Lists = append(view.Lists, row)
	}
	r.render(w, req, http.StatusOK, "settings", v, view)
}

// changeSettings carries out one form of the settings page (its "do"), then shows the page
// again with what it did.
func (r *Reader) changeSettings(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	if v.session == nil {
		r.fail(w, req, v, http.StatusForbidden, "You are not signed in.")
		return
	}
	if !r.form(w, req, v) {
		return
	}
	svc, ok := r.settingsService()
	if !ok {
		r.notFoundFor(w, req, v)
		return
	}
	addr, list, f := v.session.Address, req.PostForm.Get("list"), req.PostForm
	var view settingsView
	var err error
	switch f.Get("do") {
	case "mode":
		var mode vocab.Mode
		if mode, err = vocab.ParseMode(f.Get("mode")); err == nil {
			err = svc.SetMemberMode(list, addr, mode)
			view.Said = "You now get " + modeWords(mode) + " from " + list + "."
		}
	case "selfcopy":
		on := f.Get("own") == "on"
		err = svc.SetSelfCopy(list, addr, on)
		view.Said = "Your own posts are no longer sent back to you."
		if on {
			view.Said = "Your own posts come back to you."
		}
	case "pause":
		var until time.Time
		if until, err = time.ParseInLocation("2006-01-02", f.Get("until"), r.cfg.Zone); err == nil {
			err = svc.PauseMember(list, addr, until)
			view.Said = "No mail from " + list + " until " + f.Get("until") + "."
		}
	case "resume":
		err = svc.ResumeMember(list, addr)
		view.Said = "Mail from " + list + " comes to you again."
	case "unmark":
		var th uint64
		if th, err = strconv.ParseUint(f.Get("thread"), 10, 64); err == nil {
			err = svc.EndMarks(list, addr, th)
			view.Said = "That conversation reaches you as the others do again."
		}
	case "leave":
		err = svc.LeaveList(list, addr)
		view.Said = "You left " + list + ". The mail that says goodbye has the address that undoes it, for a week."
	case "password":
		view.Password, err = svc.ShowAppPassword(addr)
		view.Said = "Your new app password is below. It is shown this once; it replaces the old one."
	case "revoke":
		err = svc.RevokeAppPassword(addr)
		view.Said = "Your app password no longer works."
	case "address":
		view.Said, err = svc.AskChangeAddress(list, addr, f.Get("to"))
	case "export":
		err = svc.AskExport(list, addr)
		view.Said = "Everything the server holds about you is on its way to " + addr + "."
	case "forget":
		err = svc.AskForget(list, addr, f.Get("posts"))
		view.Said = "A mail went to " + addr + ": nothing is deleted until you confirm it from there."
	default:
		r.fail(w, req, v, http.StatusBadRequest, "That form could not be read.")
		return
	}
	if err != nil {
		r.log.Info("web reader: a setting was not changed", "member", addr, "list", list, "do", f.Get("do"), "err", err)
		view.Said, view.Password, view.Problem = "", "", "That did not work: "+err.Error()+"."
	}
	if f.Get("do") == "address" && err == nil {
		// The session stays with the old address until the new one confirms.
		r.log.Info("web reader: change of address asked", "member", addr)
	}
	r.showSettings(w, req, v, view)
}

func modeWords(m vocab.Mode) string {
	switch m {
	case vocab.Each:
		return "every post as it comes"
	case vocab.NoMail:
		return "no mail"
	}
	return "a " + string(m) + " digest"
}

type directoryView struct {
	ListName, ListURL string
	Members           []lists.Entry
}

// directoryPage shows a list's directory to its members where the list lets them see it (and
// to its owners): who is in the crew, since when, who brought them in, their proven posts.
func (r *Reader) directoryPage(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	var view directoryView
	err := r.st.View(func(tx store.Tx) error {
		l, m, err := access(tx, v, req.PathValue("list"))
		if err != nil {
			return err
		}
		if m == nil || (l.Directory != lists.DirectoryMembers && !isOwner(l, m.Address)) {
			return errNotFound
		}
		view.ListName, view.ListURL = listName(l), ListURL(r.prefix, l.Address)
		view.Members, err = lists.Directory(tx, l)
		return err
	})
	if err != nil {
		r.pageFailed(w, req, v, err)
		return
	}
	r.render(w, req, http.StatusOK, "directory", v, view)
}

func isOwner(l store.List, addr string) bool {
	for _, o := range l.Owners {
		if o == addr {
			return true
		}
	}
	return false
}

// The settings and directory pages join the reader's pages.
func init() {
	titles["settings"], titles["directory"] = "Settings", "Who is in the crew"
	for name, text := range map[string]string{"settings": settingsPage, "directory": directoryPageText} {
		pageTemplates[name] = template.Must(template.Must(template.New("layout").Parse(layout)).Parse(text))
	}
}

const settingsPage = `{{define "content"}}{{with .Data}}
<nav aria-label="Breadcrumb" class="crumbs"><a href="{{$.Prefix}}/">Your lists</a></nav>
<h1>Your settings</h1>
<p class="meta">{{.Address}}</p>
{{if .Said}}<p class="said" role="status">{{.Said}}</p>{{end}}
{{if .Problem}}<p class="problem" role="alert">{{.Problem}}</p>{{end}}
{{if .Password}}<p>Your new app password: <code class="password">{{.Password}}</code></p>{{end}}
{{range .Lists}}{{$l := .}}<section class="settings" aria-labelledby="l-{{.Address}}">
<h2 id="l-{{.Address}}">{{.Name}} <span class="addr">{{.Address}}</span></h2>
<p class="meta">A member since {{.Since}}{{if .BroughtBy}}, {{.BroughtBy}}{{end}}.{{if .Directory}} <a href="{{.Directory}}">Who is in the crew</a>{{end}}</p>
{{if .Paused}}<p class="problem" role="alert">{{.Paused}}</p>
<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="resume"><button type="submit">Resume my mail</button></form>{{end}}
<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="mode">
<label for="mode-{{.Address}}">How you get it</label>
<select id="mode-{{.Address}}" name="mode">{{range $.Data.Modes}}<option value="{{.}}"{{if eq . $l.Mode}} selected{{end}}>{{.}}</option>{{end}}</select>
<button type="submit">Save</button></form>
<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="selfcopy">
<input type="checkbox" id="own-{{.Address}}" name="own" value="on"{{if .OwnPosts}} checked{{end}}> <label for="own-{{.Address}}">Send me my own posts</label>
<button type="submit">Save</button></form>
{{if .AwayUntil}}<p>No mail until {{.AwayUntil}}.</p>
<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="resume"><button type="submit">Get mail again now</button></form>
{{else}}<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="pause">
<label for="until-{{.Address}}">No mail until</label> <input type="text" id="until-{{.Address}}" name="until" inputmode="numeric" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" placeholder="{{$.Data.Today}}" aria-describedby="until-help-{{.Address}}" required> <span id="until-help-{{.Address}}" class="meta">(year-month-day)</span>
<button type="submit">Pause</button></form>{{end}}
{{if or .Muted .Followed}}<h3>Conversations</h3><ul class="marks">
{{range .Muted}}<li>Muted: {{.Subject}} <form method="post" action="{{$.Prefix}}/settings" class="inline"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{$l.Address}}"><input type="hidden" name="do" value="unmark"><input type="hidden" name="thread" value="{{.Thread}}"><button type="submit">Unmute</button></form></li>
{{end}}{{range .Followed}}<li>Followed: {{.Subject}} <form method="post" action="{{$.Prefix}}/settings" class="inline"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{$l.Address}}"><input type="hidden" name="do" value="unmark"><input type="hidden" name="thread" value="{{.Thread}}"><button type="submit">Unfollow</button></form></li>
{{end}}</ul>{{end}}
<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="leave"><button type="submit">Leave {{.Name}}</button></form>
</section>
{{end}}
<section class="account" aria-labelledby="imap"><h2 id="imap">Reading in a mail program (IMAP)</h2>
<p>{{if .PasswordMade}}Your app password was made {{.PasswordMade}}.{{else}}You have no app password.{{end}}</p>
<form method="post" action="{{$.Prefix}}/settings" class="inline"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="do" value="password"><button type="submit">Make a new app password</button></form>
{{if .PasswordMade}}<form method="post" action="{{$.Prefix}}/settings" class="inline"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="do" value="revoke"><button type="submit">Revoke it</button></form>{{end}}
</section>
<section class="account" aria-labelledby="sessions"><h2 id="sessions">Where you are signed in</h2><p><a href="{{$.Prefix}}/settings/sessions">Your sessions</a></p></section>
{{if .Lists}}{{with index .Lists 0}}<section class="account" aria-labelledby="data"><h2 id="data">Your address and your data</h2>
<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="address">
<label for="to">A new address</label> <input type="email" id="to" name="to" required> <button type="submit">Move everything to it</button></form>
<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="export"><button type="submit">Mail me my data</button></form>
<form method="post" action="{{$.Prefix}}/settings" class="setting"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="list" value="{{.Address}}"><input type="hidden" name="do" value="forget">
<fieldset class="choice"><legend>Forget me: leave every list, and my posts…</legend>
<input type="radio" id="keep" name="posts" value="keep" checked> <label for="keep">stay as I wrote them</label><br>
<input type="radio" id="anonymise" name="posts" value="anonymise"> <label for="anonymise">keep my words, under a pseudonym</label><br>
<input type="radio" id="redact" name="posts" value="redact"> <label for="redact">are removed (their place in the conversations stays)</label>
</fieldset><button type="submit">Forget me (you confirm by mail)</button></form>
</section>{{end}}{{end}}
{{end}}{{end}}`

const directoryPageText = `{{define "content"}}{{with .Data}}
<nav aria-label="Breadcrumb" class="crumbs"><a href="{{$.Prefix}}/">Your lists</a> › <a href="{{.ListURL}}">{{.ListName}}</a></nav>
<h1>Who is in {{.ListName}}</h1>
<ul class="directory">
{{range .Members}}<li><b>{{.Name}}</b> <span class="meta">since {{.Member.Added.Format "2 January 2006"}}{{if .BroughtBy}}, {{.BroughtBy}}{{end}}, {{.Proven}} of {{.Posts}} posts proven</span></li>
{{end}}</ul>
{{end}}{{end}}`
