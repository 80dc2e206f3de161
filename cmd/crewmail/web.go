package main

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"

	"crewmail/internal/guide"
	"crewmail/internal/vocab"
	"crewmail/lists"
)

// The one-click unsubscribe pages (RFC 8058). A GET only shows what the link would do, since
// mail scanners follow links; the POST (from a mail client's unsubscribe button, or from the
// page's own button) takes the member off at once. The page offers less mail instead (a weekly
// digest, no mail), and after leaving an undo for a few days.

var unsubscribeTpl = template.Must(template.New("").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:34em;margin:2em auto;padding:0 1em;line-height:1.5}
form{margin:0 0 1em}button{font-size:1em;padding:.6em 1.2em;width:100%;max-width:22em;text-align:left;cursor:pointer}
.choices{margin:1.5em 0}.choices p{margin:.2em 0 .5em;color:#444;font-size:.95em}.leave button{background:#fff;border:1px solid #a33;color:#a33}
h1{font-size:1.5em;line-height:1.25}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p>{{.Error}}</p>
{{else if .Done}}<p><b>{{.Address}}</b> is no longer on {{.ListName}} ({{.List}}) and gets no more mail from it.</p>
{{if .Undo}}<p>Changed your mind? Until {{.Until}} you can come back as you were, with nothing to confirm:</p>
<form method="post"><input type="hidden" name="undo" value="{{.Undo}}"><button type="submit">Undo: put me back on {{.ListName}}</button></form>{{end}}
{{else if .Undone}}<p><b>{{.Address}}</b> is on {{.ListName}} ({{.List}}) again, as before. Welcome back.</p>
{{else if .Changed}}<p><b>{{.Address}}</b> stays on {{.ListName}} ({{.List}}) and now gets {{.ModeWords}}.</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Leave the list after all</button></form>
{{else if not .Address}}<p>This address is not on {{.ListName}} ({{.List}}) any more; there is nothing to do.</p>
{{else}}<p>Take <b>{{.Address}}</b> off the list {{.ListName}} ({{.List}})? You will get no more mail from it.</p>
<div class="choices"><p>Or stay, with less mail:</p>
{{if ne .Mode "weekly"}}<form method="post"><input type="hidden" name="mode" value="weekly"><button type="submit">One digest a week</button></form>{{end}}
{{if ne .Mode "nomail"}}<form method="post"><input type="hidden" name="mode" value="nomail"><button type="submit">No mail (stay a member: post and read the archive)</button></form>{{end}}
</div>
<form method="post" class="leave"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>
{{end}}</body></html>
`))

type unsubscribeView struct {
	lists.Unsubscription
	Title   string
	Error   string
	Done    bool // the member was taken off
	Changed bool // her mode was changed instead
	Undone  bool // she came back
}

// ModeWords is the member's mode as the page says it.
func (v unsubscribeView) ModeWords() string {
	if v.Mode == vocab.NoMail {
		return "no mail"
	}
	return "one " + string(v.Mode) + " digest"
}

func (s *server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	u, err := s.svc.OneClick(r.PathValue("token"))
	s.renderUnsubscribe(w, unsubscribeView{Unsubscription: u}, err)
}

// maxFormBytes bounds what a POST may carry: the one-click form is "List-Unsubscribe=One-Click".
const maxFormBytes = 4096

// unsubscribeNow answers the POSTs of the link: List-Unsubscribe=One-Click (RFC 8058 §3.2,
// from a mail client or the page's button) takes the member off; mode=weekly or mode=nomail
// (the page's other buttons) changes her mode instead; undo=TOKEN (after leaving) brings her
// back.
func (s *server) unsubscribeNow(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	err := r.ParseForm()
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		http.Error(w, fmt.Sprintf("an unsubscribe request is a form of a few bytes; this one is over %d", maxFormBytes), http.StatusRequestEntityTooLarge)
		return
	}
	token := r.PathValue("token")
	switch {
	case err != nil:
	case r.PostForm.Get("List-Unsubscribe") == "One-Click":
		u, err := s.svc.UnsubscribeOneClick(token)
		if err == nil && u.Address != "" {
			s.log.Info("member unsubscribed by one-click link", "list", u.List, "member", u.Address)
		}
		s.renderUnsubscribe(w, unsubscribeView{Unsubscription: u, Done: u.Address != ""}, err)
		return
	case r.PostForm.Get("mode") != "":
		u, err := s.svc.ModeOneClick(token, vocab.Mode(r.PostForm.Get("mode")))
		s.renderUnsubscribe(w, unsubscribeView{Unsubscription: u, Changed: u.Address != ""}, err)
		return
	case r.PostForm.Get("undo") != "":
		u, err := s.svc.UndoOneClick(token, r.PostForm.Get("undo"))
		s.renderUnsubscribe(w, unsubscribeView{Unsubscription: u, Undone: err == nil}, err)
		return
	}
	http.Error(w, "an unsubscribe request must carry List-Unsubscribe=One-Click (RFC 8058)", http.StatusBadRequest)
}

func (s *server) renderUnsubscribe(w http.ResponseWriter, v unsubscribeView, err error) {
	u := v.Unsubscription
	v.Title = "Unsubscribe"
	if u.ListName != "" {
		v.Title = "Unsubscribe from " + u.ListName
	}
	switch {
	case v.Changed:
		v.Title = "Less mail from " + u.ListName
	case v.Undone:
		v.Title = "Back on " + u.ListName
	}
	status := http.StatusOK
	switch {
	case errors.Is(err, lists.ErrBadLink), errors.Is(err, lists.ErrBadUndo):
		v.Error, status = sentence(err), http.StatusNotFound
	case err != nil && u.List != "" && u.ListName == "":
		v.Error, status = sentence(err), http.StatusNotFound
	case err != nil:
		s.log.Error("one-click unsubscribe failed", "err", err)
		v.Error, status = "Something went wrong on our side; nothing was changed. Please try again later.", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	if err := unsubscribeTpl.Execute(w, v); err != nil {
		s.log.Error("write unsubscribe page", "err", err)
	}
}

// sentence writes an error as a sentence for a page: capital first, full stop last.
func sentence(err error) string {
	msg := err.Error()
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// guidePage serves the member guide as HTML; reached from a list's mail (/guide?list=crew@…)
// with that list's name and addresses, else with the guide's sample list.
func (s *server) guidePage(w http.ResponseWriter, r *http.Request) {
	var gl guide.List
	if addr := r.URL.Query().Get("list"); addr != "" {
		if l, err := s.svc.List(addr); err == nil {
			gl = guide.List{Name: l.Name, Address: l.Address, Separator: s.svc.Separator(), IMAPHost: orDefault(s.cfg.IMAP.Host, s.cfg.Hostname)}
		}
	}
	page, err := s.guide.Page(gl)
	if err != nil {
		s.log.Error("member guide", "err", err)
		http.Error(w, "the guide could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	io.WriteString(w, page) //nolint:errcheck // the reader went away
}
