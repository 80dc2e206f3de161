package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"crewmail/internal/mailaddr"
	"crewmail/internal/token"
	"crewmail/store"
)

// Signing in. A visitor gives her address; if it is a member's, a link that works once for
// SignInLinkValidity goes to it, by mail through the outbox, at most once per SignInMailEvery.
// The page answers before anything is looked up, the same for any address, so that neither its
// words nor the time it takes tell who is a member. The link opens a page with a button (mail
// scanners open links; only a person presses the button), which starts a session: a random
// secret in an HttpOnly, SameSite=Lax cookie (Secure under https), of which the store keeps
// only a hash.
//
// Every form carries a CSRF token: an HMAC of the session's ID, or for a visitor not signed
// in, of a random value in a cookie of its own.

// maxFormBytes bounds what a form may post: an address, a token, an ID.
const maxFormBytes = 4096

// visitor is who asks for a page.
type visitor struct {
	session *store.Session // nil: not signed in
	anon    string         // the CSRF cookie's value of a visitor not signed in
}

// Address is the signed-in member's address, "" for a visitor not signed in.
func (v visitor) Address() string {
	if v.session == nil {
		return ""
	}
	return v.session.Address
}

func (r *Reader) sessionCookie() string {
	if r.secure && r.prefix == "" {
		return "__Host-crewmail-session" // RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain
	}
	return "crewmail-session"
}

const csrfCookie = "crewmail-csrf"

func (r *Reader) cookiePath() string {
	if r.prefix == "" {
		return "/"
	}
	return r.prefix + "/"
}

func (r *Reader) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: r.cookiePath(), MaxAge: maxAge,
		HttpOnly: true, Secure: r.secure, SameSite: http.SameSiteLaxMode})
}

func sessionID(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return token.Encode(b)
}

// visitor reads who asks: the session her cookie names, if it is live. A visitor not signed in
// gets a CSRF cookie when she has none (forms need it).
func (r *Reader) visitor(w http.ResponseWriter, req *http.Request) visitor {
	var v visitor
	if c, err := req.Cookie(r.sessionCookie()); err == nil && c.Value != "" {
		id := sessionID(c.Value)
		var s store.Session
		err := r.st.View(func(tx store.Tx) error {
			var err error
			s, err = tx.Session(id)
			return err
		})
		now := r.Now()
		switch {
		case err == nil && now.Before(s.Expires):
			v.session = &s
			// Seen (and the expiry, which slides) are written at most once an hour: a page
			// view should not cost a disk write.
			if now.Sub(s.Seen) > time.Hour {
				s.Seen, s.Expires = now.UTC().Truncate(time.Minute), now.Add(SessionValidity).UTC()
				if err := r.st.Update(func(tx store.Tx) error {
					if _, err := tx.Session(id); err != nil {
						return nil // ended meanwhile
					}
					return tx.PutSession(s)
				}); err != nil {
					r.log.Error("web reader: session seen", "err", err)
				}
			}
			return v
		case err != nil && !errors.Is(err, store.ErrNotFound):
			r.log.Error("web reader: reading a session", "err", err)
		}
		r.setCookie(w, r.sessionCookie(), "", -1)
	}
	if c, err := req.Cookie(csrfCookie); err == nil && len(c.Value) >= 16 {
		v.anon = c.Value
	} else {
		v.anon = randomToken(16)
		r.setCookie(w, csrfCookie, v.anon, 0)
	}
	return v
}

// csrfToken is the token v's forms carry.
func (r *Reader) csrfToken(v visitor) string {
	mac := hmac.New(sha256.New, r.csrf)
	if v.session != nil {
		mac.Write([]byte("session\x00"))
		mac.Write(v.session.ID)
	} else {
		mac.Write([]byte("anon\x00" + v.anon))
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// form reads a posted form of at most maxFormBytes and checks its CSRF token; false when it
// is refused (and the answer is written).
func (r *Reader) form(w http.ResponseWriter, req *http.Request, v visitor) bool {
	req.Body = http.MaxBytesReader(w, req.Body, maxFormBytes)
	if err := req.ParseForm(); err != nil {
		r.fail(w, req, v, http.StatusBadRequest, "That form could not be read.")
		return false
	}
	if !hmac.Equal([]byte(req.PostForm.Get("csrf")), []byte(r.csrfToken(v))) {
		r.fail(w, req, v, http.StatusForbidden, "That form is out of date or did not come from this site. Please go back, reload the page and try again.")
		return false
	}
	return true
}

// requestLink answers the sign-in form: the same page for every address.
func (r *Reader) requestLink(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	if !r.form(w, req, v) {
		return
	}
	addr, err := mailaddr.Normalize(strings.TrimSpace(req.PostForm.Get("address")))
	if err != nil {
		r.render(w, req, http.StatusBadRequest, "home", v, homeView{Problem: "That does not look like an email address. Please check it and try again.",
			Address: req.PostForm.Get("address")})
		return
	}
	r.mailLink(addr)
	r.render(w, req, http.StatusOK, "sent", v, sentView{Address: addr, Minutes: int(SignInLinkValidity / time.Minute)})
}

// mailLink mails addr a sign-in link if it is a member's and none went to it lately, after the
// page has answered.
func (r *Reader) mailLink(addr string) {
	select {
	case r.mailing <- struct{}{}:
	default:
		r.log.Warn("web reader: too many sign-in requests at once; one was dropped", "address", addr)
		return
	}
	r.mailed.Add(1)
	go func() {
		defer r.mailed.Done()
		defer func() { <-r.mailing }()
		defer func() {
			if v := recover(); v != nil {
				r.log.Error("web reader: panic while mailing a sign-in link", "panic", v)
			}
		}()
		now := r.Now().UTC()
		expires := now.Add(SignInLinkValidity).Truncate(time.Second)
		id := make([]byte, 8)
		_, _ = rand.Read(id)
		link := SignInURL(r.cfg.BaseURL, r.tokens.SignIn(token.SignIn{Address: addr, Expires: expires, ID: id}))
		sent := false
		err := r.st.Update(func(tx store.Tx) error {
			sent = false
			ls, _, err := tx.ListsOf(addr)
			if err != nil || len(ls) == 0 {
				return err
			}
			last, err := tx.SignInMailed(addr)
			if err != nil {
				return err
			}
			if !last.IsZero() && now.Sub(last) < SignInMailEvery {
				return nil
			}
			if err := tx.PutSignInMailed(addr, now); err != nil {
				return err
			}
			sent = true
			return r.lists.MailSignIn(tx, ls[0].Address, addr, link, expires)
		})
		switch {
		case err != nil:
			r.log.Error("web reader: mailing a sign-in link", "address", addr, "err", err)
		case sent:
			r.log.Info("web reader: sign-in link mailed", "address", addr)
		default:
			r.log.Info("web reader: no sign-in link mailed (not a member, or one went lately)", "address", addr)
		}
	}()
}

// signInPage shows what a sign-in link would do, with the button that does it.
func (r *Reader) signInPage(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	in, err := r.tokens.ParseSignIn(req.PathValue("token"), r.Now())
	if err != nil {
		r.badLink(w, req, v, err)
		return
	}
	if v.Address() == in.Address {
		http.Redirect(w, req, r.prefix+"/", http.StatusSeeOther)
		return
	}
	if in.Once() {
		var used bool
		if err := r.st.View(func(tx store.Tx) error {
			var err error
			used, err = tx.SignInUsed(in.ID)
			return err
		}); err != nil {
			r.storeFailed(w, req, v, err)
			return
		}
		if used {
			r.badLink(w, req, v, store.ErrExists)
			return
		}
	}
	r.render(w, req, http.StatusOK, "link", v, linkView{Address: in.Address, Action: r.prefix + "/s/" + req.PathValue("token")})
}

func (r *Reader) badLink(w http.ResponseWriter, req *http.Request, v visitor, err error) {
	msg := "This sign-in link is not one of ours. Ask for a new one below."
	status := http.StatusNotFound
	switch {
	case errors.Is(err, token.ErrExpired):
		msg, status = "This sign-in link has expired. Ask for a new one below: it comes by mail at once.", http.StatusGone
	case errors.Is(err, store.ErrExists):
		msg, status = "This sign-in link was used already; each works once. Ask for a new one below.", http.StatusGone
	case errors.Is(err, errNotMember):
		msg, status = "This address is not a member of any list here any more.", http.StatusForbidden
	}
	r.render(w, req, status, "home", v, homeView{Problem: msg})
}

var errNotMember = errors.New("not a member of any list")

// signIn starts a session for the link's member.
func (r *Reader) signIn(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	if !r.form(w, req, v) {
		return
	}
	now := r.Now()
	in, err := r.tokens.ParseSignIn(req.PathValue("token"), now)
	if err != nil {
		r.badLink(w, req, v, err)
		return
	}
	secret := randomToken(32)
	s := store.Session{ID: sessionID(secret), Address: in.Address, Created: now.UTC().Truncate(time.Minute),
		Seen: now.UTC().Truncate(time.Minute), Expires: now.Add(SessionValidity).UTC(), Agent: agent(req.UserAgent())}
	err = r.st.Update(func(tx store.Tx) error {
		if in.Once() {
			if err := tx.UseSignIn(in.ID, in.Expires); err != nil {
				return err
			}
		}
		ls, _, err := tx.ListsOf(in.Address)
		if err != nil {
			return err
		}
		if len(ls) == 0 {
			return errNotMember
		}
		return tx.PutSession(s)
	})
	if errors.Is(err, store.ErrExists) || errors.Is(err, errNotMember) {
		r.badLink(w, req, v, err)
		return
	}
	if err != nil {
		r.log.Error("web reader: signing in", "err", err)
		r.fail(w, req, v, http.StatusServiceUnavailable, "Something went wrong on our side; you are not signed in. Please try again in a moment.")
		return
	}
	if v.session != nil { // someone else was signed in in this browser: that session ends
		r.endSessions(v.session.ID)
	}
	r.log.Info("web reader: signed in", "address", in.Address, "single_use", in.Once())
	r.setCookie(w, r.sessionCookie(), secret, int(SessionValidity/time.Second))
	http.Redirect(w, req, r.prefix+"/", http.StatusSeeOther)
}

func (r *Reader) endSessions(ids ...[]byte) {
	if err := r.st.Update(func(tx store.Tx) error {
		for _, id := range ids {
			if err := tx.DeleteSession(id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		r.log.Error("web reader: ending a session", "err", err)
	}
}

// signOut ends the visitor's session.
func (r *Reader) signOut(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	if !r.form(w, req, v) {
		return
	}
	if v.session != nil {
		r.endSessions(v.session.ID)
	}
	r.setCookie(w, r.sessionCookie(), "", -1)
	http.Redirect(w, req, r.prefix+"/", http.StatusSeeOther)
}

// sessionsPage lists the member's sessions, each with a button that ends it.
func (r *Reader) sessionsPage(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	if v.session == nil {
		http.Redirect(w, req, r.prefix+"/", http.StatusSeeOther)
		return
	}
	var ss []store.Session
	if err := r.st.View(func(tx store.Tx) error {
		var err error
		ss, err = tx.Sessions(v.session.Address)
		return err
	}); err != nil {
		r.log.Error("web reader: sessions", "err", err)
		r.fail(w, req, v, http.StatusServiceUnavailable, "Your sessions could not be read just now. Please try again in a moment.")
		return
	}
	view := sessionsView{}
	for _, s := range ss {
		view.Sessions = append(view.Sessions, sessionRow{ID: hex.EncodeToString(s.ID), Agent: s.Agent, Created: r.when(s.Created, r.cfg.Zone),
			Seen: r.when(s.Seen, r.cfg.Zone), This: hmac.Equal(s.ID, v.session.ID)})
	}
	r.render(w, req, http.StatusOK, "sessions", v, view)
}

// endSession ends one of the member's sessions (the form's id), or all but this one (all).
func (r *Reader) endSession(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	if v.session == nil {
		r.fail(w, req, v, http.StatusForbidden, "You are not signed in.")
		return
	}
	if !r.form(w, req, v) {
		return
	}
	id, err := hex.DecodeString(req.PostForm.Get("id"))
	all := req.PostForm.Get("all") != ""
	var this bool
	err = errors.Join(err, r.st.Update(func(tx store.Tx) error {
		this = false
		ss, err := tx.Sessions(v.session.Address)
		if err != nil {
			return err
		}
		for _, s := range ss {
			mine := hmac.Equal(s.ID, v.session.ID)
			if (all && !mine) || (!all && hmac.Equal(s.ID, id)) {
				this = this || mine
				if err := tx.DeleteSession(s.ID); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	if err != nil {
		r.log.Error("web reader: ending a session", "err", err)
		r.fail(w, req, v, http.StatusBadRequest, "That session could not be ended.")
		return
	}
	if this {
		r.setCookie(w, r.sessionCookie(), "", -1)
		http.Redirect(w, req, r.prefix+"/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, req, r.prefix+"/settings/sessions", http.StatusSeeOther)
}

// agent names a browser in a few words from its User-Agent: "Firefox on Linux".
func agent(ua string) string {
	browser := "A browser"
	for _, b := range []struct{ key, name string }{{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"},
		{"HeadlessChrome/", "Headless Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}} {
		if strings.Contains(ua, b.key) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ key, name string }{{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"},
		{"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"}} {
		if strings.Contains(ua, o.key) {
			return fmt.Sprintf("%s on %s", browser, o.name)
		}
	}
	return browser
}
