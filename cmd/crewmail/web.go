package main

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"

	"crewmail/internal/guide"
	"crewmail/lists"
)

// The one-click unsubscribe pages (RFC 8058). A GET only shows what the link would do, since
// mail scanners follow links; the POST (from a mail client's unsubscribe button, or from the
// page's own button) takes the member off at once.

var unsubscribeTpl = template.Must(template.New("").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:34em;margin:3em auto;padding:0 1em;line-height:1.5}button{font-size:1em;padding:.5em 1.2em}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p>{{.Error}}</p>
{{else if .Done}}<p><b>{{.Address}}</b> is no longer on {{.ListName}} ({{.List}}) and gets no more mail from it.</p>
{{else if not .Address}}<p>This address is not on {{.ListName}} ({{.List}}) any more; there is nothing to do.</p>
{{else}}<p>Take <b>{{.Address}}</b> off the list {{.ListName}} ({{.List}})? You will get no more mail from it.</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>
{{end}}</body></html>
`))

type unsubscribeView struct {
	lists.Unsubscription
	Title string
	Error string
	Done  bool
}

func (s *server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	u, err := s.svc.OneClick(r.PathValue("token"))
	s.renderUnsubscribe(w, u, err, false)
}

// maxFormBytes bounds what a POST may carry: the one-click form is "List-Unsubscribe=One-Click".
const maxFormBytes = 4096

func (s *server) unsubscribeNow(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	err := r.ParseForm()
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		http.Error(w, fmt.Sprintf("an unsubscribe request is a form of a few bytes; this one is over %d", maxFormBytes), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil || r.PostForm.Get("List-Unsubscribe") != "One-Click" {
		http.Error(w, "an unsubscribe request must carry List-Unsubscribe=One-Click (RFC 8058)", http.StatusBadRequest)
		return
	}
	u, err := s.svc.UnsubscribeOneClick(r.PathValue("token"))
	if err == nil && u.Address != "" {
		s.log.Info("member unsubscribed by one-click link", "list", u.List, "member", u.Address)
	}
	s.renderUnsubscribe(w, u, err, u.Address != "")
}

func (s *server) renderUnsubscribe(w http.ResponseWriter, u lists.Unsubscription, err error, done bool) {
	v := unsubscribeView{Unsubscription: u, Title: "Unsubscribe", Done: done}
	if u.ListName != "" {
		v.Title = "Unsubscribe from " + u.ListName
	}
	status := http.StatusOK
	switch {
	case errors.Is(err, lists.ErrBadLink):
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
