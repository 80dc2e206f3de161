package web

import (
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"crewmail/internal/vocab"
	"crewmail/lists"
	"crewmail/store"
	"crewmail/templates"
)

// world is a store with two lists, a reader over it on loopback and its clock.
type world struct {
	st     *store.Store
	svc    *lists.Service
	reader *Reader
	srv    *httptest.Server
	offset atomic.Int64 // how far the clock is ahead
}

const (
	crew  = "crew@x.test"
	other = "other@x.test"
)

func (w *world) now() time.Time { return time.Now().Add(time.Duration(w.offset.Load())) }

func newWorld(t testing.TB) *world {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{st: st}
	var h http.Handler
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { h.ServeHTTP(rw, r) }))
	t.Cleanup(w.srv.Close)
	log := slog.New(slog.DiscardHandler)
	w.svc = lists.New(st, tpl, lists.Config{Hostname: "x.test", BaseURL: w.srv.URL}, log)
	w.svc.Now = w.now
	if w.reader, err = New(st, w.svc, Config{BaseURL: w.srv.URL, Log: log}); err != nil {
		t.Fatal(err)
	}
	w.reader.Now = w.now
	h = w.reader
	if _, err := w.svc.CreateList(crew, lists.ListOptions{Name: "Garden crew"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.CreateList(other, lists.ListOptions{Name: "Other"}); err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(tx store.Tx) error {
		for _, m := range []struct{ list, addr string }{{crew, "ann@x.test"}, {crew, "bob@x.test"}, {other, "olga@x.test"}} {
			if _, err := tx.AddMember(m.list, store.Member{Address: m.addr, Mode: vocab.Each}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// archive appends a post to list in thread (0: a new one) and returns it.
func (w *world) archive(t testing.TB, list string, thread uint64, from, name, subject, body string, verified vocab.Verified) store.Post {
	t.Helper()
	id := fmt.Sprintf("%d.%s", time.Now().UnixNano(), strings.ReplaceAll(from, "@", ".at."))
	raw := fmt.Sprintf("From: %s <%s>\r\nTo: %s\r\nSubject: %s\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@x.test>\r\n%s",
		name, from, list, subject, id, body)
	if !strings.HasPrefix(body, "Content-Type:") && !strings.HasPrefix(body, "MIME-Version:") {
		raw = strings.TrimSuffix(raw, body) + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
	}
	var p store.Post
	err := w.st.Update(func(tx store.Tx) error {
		var err error
		p, err = tx.AppendPost(list, store.Post{Received: w.now().UTC(), Date: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), MessageID: id + "@x.test",
			From: from, Subject: subject, Thread: thread, Verified: verified, AuthDomain: "x.test"}, []byte(raw))
		if err != nil {
			return err
		}
		return tx.IndexPost(list, p.Seq, store.NewSearchDoc([]byte(raw)).For(p))
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// browser is a visitor with her cookies.
type browser struct {
	t *testing.T
	w *world
	c *http.Client
}

func (w *world) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, w: w, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	resp, err := b.c.Get(b.w.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, resp)
}

func (b *browser) post(path string, form url.Values) answer {
	b.t.Helper()
	resp, err := b.c.PostForm(b.w.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, resp)
}

func read(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf is the CSRF token of the forms of the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(b.get(path).body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// askLink asks for a sign-in link for addr and waits until the request was dealt with.
func (b *browser) askLink(addr string) answer {
	b.t.Helper()
	a := b.post("/signin", url.Values{"csrf": {b.csrf("/")}, "address": {addr}})
	b.w.reader.mailed.Wait()
	return a
}

var linkRE = regexp.MustCompile(`(http://127\.0\.0\.1:\d+/s/[a-z2-7]+)`)

// mailedLinks are the sign-in links in the outbox for addr, oldest first.
func (w *world) mailedLinks(t *testing.T, addr string) []string {
	t.Helper()
	var links []string
	err := w.st.View(func(tx store.Tx) error {
		return tx.Outbox(func(d store.Delivery) error {
			if d.To != addr {
				return nil
			}
			// The notice is quoted-printable and flowed: "=\r\n" soft breaks and the link on
			// a line of its own.
			text := strings.ReplaceAll(strings.ReplaceAll(string(d.Message), "=\r\n", ""), "=3D", "=")
			if m := linkRE.FindString(text); m != "" {
				links = append(links, m)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return links
}

// signIn signs b in as addr through a mailed link.
func (b *browser) signIn(addr string) {
	b.t.Helper()
	before := len(b.w.mailedLinks(b.t, addr))
	b.askLink(addr)
	links := b.w.mailedLinks(b.t, addr)
	if len(links) != before+1 {
		b.t.Fatalf("%d sign-in links mailed to %s, want %d", len(links), addr, before+1)
	}
	b.useLink(links[len(links)-1], http.StatusSeeOther)
}

// useLink opens link and presses its button; the answer must have status.
func (b *browser) useLink(link string, status int) answer {
	b.t.Helper()
	path := strings.TrimPrefix(link, b.w.srv.URL)
	page := b.get(path)
	m := csrfRE.FindStringSubmatch(page.body)
	if m == nil {
		return page
	}
	a := b.post(path, url.Values{"csrf": {m[1]}})
	if a.status != status {
		b.t.Fatalf("signing in with %s: %d, want %d\n%s", path, a.status, status, a.body)
	}
	return a
}

func TestSignInByMailLinkWorksOnceAndExpires(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	b.askLink("Ann@X.test")
	links := w.mailedLinks(t, "ann@x.test")
	if len(links) != 1 {
		t.Fatalf("links mailed to ann: %q", links)
	}
	page := b.get(strings.TrimPrefix(links[0], w.srv.URL))
	if !strings.Contains(page.body, "ann@x.test") || !strings.Contains(page.body, ">Sign in</button>") {
		t.Errorf("the link's page does not offer to sign in as ann:\n%s", page.body)
	}
	b.useLink(links[0], http.StatusSeeOther)
	home := b.get("/")
	if !strings.Contains(home.body, "Garden crew") || strings.Contains(home.body, "Other") || !strings.Contains(home.body, "ann@x.test") {
		t.Errorf("ann's home page does not show her list (only):\n%s", home.body)
	}
	cookie := b.c.Jar.Cookies(mustURL(w.srv.URL))
	if len(cookie) == 0 {
		t.Fatal("no cookie after signing in")
	}

	// The same link again, in another browser: refused, it was used; its page says so.
	other := w.browser(t)
	if a := other.get(strings.TrimPrefix(links[0], w.srv.URL)); a.status != http.StatusGone || !strings.Contains(a.body, "used already") {
		t.Errorf("the page of a used link: %d\n%s", a.status, a.body)
	}
	// Pressing a button of the page as it was before (another tab) is refused too.
	tok := strings.TrimPrefix(links[0], w.srv.URL)
	if a := other.post(tok, url.Values{"csrf": {other.csrf("/")}}); a.status != http.StatusGone || !strings.Contains(a.body, "used already") {
		t.Errorf("a used link's button: %d\n%s", a.status, a.body)
	}

	// A new link, opened 16 minutes later: expired.
	w.offset.Add(int64(6 * time.Minute)) // past the 5 minutes between two mails
	b2 := w.browser(t)
	b2.askLink("ann@x.test")
	links = w.mailedLinks(t, "ann@x.test")
	if len(links) != 2 {
		t.Fatalf("links mailed to ann: %q", links)
	}
	w.offset.Add(int64(16 * time.Minute))
	a := b2.get(strings.TrimPrefix(links[1], w.srv.URL))
	if a.status != http.StatusGone || !strings.Contains(a.body, "expired") {
		t.Errorf("a link 16 minutes old: %d\n%s", a.status, a.body)
	}
	if home := b2.get("/"); strings.Contains(home.body, "Your lists") {
		t.Error("an expired link signed in")
	}
}

func TestSignInCookieFlags(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	b.askLink("ann@x.test")
	link := w.mailedLinks(t, "ann@x.test")[0]
	a := b.useLink(link, http.StatusSeeOther)
	var set string
	for _, c := range a.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "crewmail-session=") {
			set = c
		}
	}
	if set == "" || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") || strings.Contains(set, "Secure") {
		t.Errorf("session cookie over http: %q", set)
	}
	// Under an https base URL the cookie is Secure (and __Host-, being at the root).
	r, err := New(w.st, w.svc, Config{BaseURL: "https://lists.x.test"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.setCookie(rec, r.sessionCookie(), "v", 60)
	if c := rec.Header().Get("Set-Cookie"); !strings.HasPrefix(c, "__Host-crewmail-session=v") || !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
		t.Errorf("session cookie over https: %q", c)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestSignInPageSaysTheSameForKnownAndUnknownAddresses(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	known := b.askLink("ann@x.test")
	unknown := b.askLink("nobody@x.test")
	if known.status != unknown.status {
		t.Errorf("status %d for a member, %d for a stranger", known.status, unknown.status)
	}
	if strings.ReplaceAll(known.body, "ann@x.test", "ADDR") != strings.ReplaceAll(unknown.body, "nobody@x.test", "ADDR") {
		t.Errorf("the pages differ:\n%s\n----\n%s", known.body, unknown.body)
	}
	if n := len(w.mailedLinks(t, "nobody@x.test")); n != 0 {
		t.Errorf("%d links mailed to a stranger", n)
	}
	if n := len(w.mailedLinks(t, "ann@x.test")); n != 1 {
		t.Errorf("%d links mailed to a member", n)
	}
}

func TestSignInMailsAtMostOncePerFiveMinutes(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	for range 3 {
		b.askLink("bob@x.test")
	}
	if n := len(w.mailedLinks(t, "bob@x.test")); n != 1 {
		t.Errorf("three requests in a row mailed %d links, want 1", n)
	}
	w.offset.Add(int64(4 * time.Minute))
	b.askLink("bob@x.test")
	if n := len(w.mailedLinks(t, "bob@x.test")); n != 1 {
		t.Errorf("after 4 minutes: %d links, want 1", n)
	}
	w.offset.Add(int64(2 * time.Minute))
	b.askLink("bob@x.test")
	if n := len(w.mailedLinks(t, "bob@x.test")); n != 2 {
		t.Errorf("after 6 minutes: %d links, want 2", n)
	}
}

func TestMemberLinkWorksForSevenDays(t *testing.T) {
	w := newWorld(t)
	link := MemberSignInURL(w.srv.URL, w.st.Secret(), "bob@x.test", w.now())
	for range 2 { // as often as she opens it
		b := w.browser(t)
		b.useLink(link, http.StatusSeeOther)
		if home := b.get("/"); !strings.Contains(home.body, "Garden crew") {
			t.Fatalf("the member link did not sign bob in:\n%s", home.body)
		}
	}
	// It is bound to bob: once he is no longer a member, it signs nobody in.
	left := MemberSignInURL(w.srv.URL, w.st.Secret(), "bob@x.test", w.now())
	if err := w.st.Update(func(tx store.Tx) error { return tx.RemoveMember(crew, "bob@x.test") }); err != nil {
		t.Fatal(err)
	}
	b := w.browser(t)
	if a := b.useLink(left, http.StatusForbidden); !strings.Contains(a.body, "not a member") {
		t.Errorf("the link of a member who left:\n%s", a.body)
	}
	if home := b.get("/"); strings.Contains(home.body, "Your lists") {
		t.Error("the link of a member who left signed in")
	}
	w.offset.Add(int64(7*24*time.Hour + time.Minute))
	if a := w.browser(t).get(strings.TrimPrefix(link, w.srv.URL)); a.status != http.StatusGone {
		t.Errorf("a member link after 7 days: %d", a.status)
	}
}

func TestNonMemberGetsTheSameNotFoundAsForNoList(t *testing.T) {
	w := newWorld(t)
	p := w.archive(t, crew, 0, "ann@x.test", "Ann", "Seeds", "Who has seeds?\r\n", vocab.VerifiedDKIM)
	olga := w.browser(t)
	olga.signIn("olga@x.test") // a member of another list
	anon := w.browser(t)
	for _, b := range []*browser{olga, anon} {
		missing := b.get("/l/nolist@x.test/")
		for _, path := range []string{"/l/crew@x.test/", fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread), fmt.Sprintf("/l/crew@x.test/m/%d", p.Seq),
			fmt.Sprintf("/l/crew@x.test/m/%d/message.eml", p.Seq), fmt.Sprintf("/l/crew@x.test/t/%d/conversation.mbox", p.Thread)} {
			a := b.get(path)
			if a.status != http.StatusNotFound || a.body != missing.body {
				t.Errorf("%s: %d, and a body that differs from a missing list's:\n%s\n----\n%s", path, a.status, a.body, missing.body)
			}
			if strings.Contains(a.body, "Seeds") || strings.Contains(a.body, "Garden") {
				t.Errorf("%s shows the list to someone who is not a member", path)
			}
		}
	}
	// The owners make the archive public: anyone reads it, and sees no address.
	if _, err := w.svc.UpdateList(crew, lists.ListOptions{Archive: "public"}); err != nil {
		t.Fatal(err)
	}
	a := anon.get(fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread))
	if a.status != http.StatusOK || !strings.Contains(a.body, "Who has seeds?") || !strings.Contains(a.body, "Ann") {
		t.Errorf("a public archive to a visitor: %d\n%s", a.status, a.body)
	}
	if strings.Contains(a.body, "ann@x.test") || strings.Contains(a.body, "mailto:") || strings.Contains(a.body, ".eml") || strings.Contains(a.body, ".mbox") {
		t.Errorf("a public archive shows a visitor addresses or the messages as they came:\n%s", a.body)
	}
	for _, path := range []string{fmt.Sprintf("/l/crew@x.test/m/%d/message.eml", p.Seq), fmt.Sprintf("/l/crew@x.test/t/%d/conversation.mbox", p.Thread)} {
		if a := anon.get(path); a.status != http.StatusNotFound {
			t.Errorf("a visitor downloads %s from a public archive: %d", path, a.status)
		}
	}
}

func TestFormsRefuseAMissingOrWrongCSRFToken(t *testing.T) {
	w := newWorld(t)
	ann := w.browser(t)
	ann.signIn("ann@x.test")
	bob := w.browser(t)
	bob.signIn("bob@x.test")
	bobsToken := bob.csrf("/")
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/signout", url.Values{}},
		{"/signout", url.Values{"csrf": {bobsToken}}},
		{"/settings/sessions", url.Values{"all": {"1"}}},
		{"/settings/sessions", url.Values{"all": {"1"}, "csrf": {bobsToken}}},
		{"/signin", url.Values{"address": {"ann@x.test"}}},
	} {
		a := ann.post(c.path, c.form)
		if a.status != http.StatusForbidden {
			t.Errorf("POST %s %v: %d, want 403", c.path, c.form, a.status)
		}
	}
	if home := ann.get("/"); !strings.Contains(home.body, "Your lists") {
		t.Error("a refused sign-out signed ann out")
	}
	// A stranger's form to the sign-in: no mail.
	w.offset.Add(int64(10 * time.Minute))
	w.browser(t).post("/signin", url.Values{"address": {"bob@x.test"}, "csrf": {"00"}})
	w.reader.mailed.Wait()
	if n := len(w.mailedLinks(t, "bob@x.test")); n != 1 {
		t.Errorf("a forged sign-in form mailed bob: %d links", n)
	}
	// With its token, signing out works.
	if a := ann.post("/signout", url.Values{"csrf": {ann.csrf("/")}}); a.status != http.StatusSeeOther {
		t.Errorf("sign out: %d", a.status)
	}
	if home := ann.get("/"); strings.Contains(home.body, "Your lists") {
		t.Error("still signed in after signing out")
	}
}

func TestSessionsListedAndEnded(t *testing.T) {
	w := newWorld(t)
	phone, laptop := w.browser(t), w.browser(t)
	phone.signIn("ann@x.test")
	w.offset.Add(int64(6 * time.Minute))
	laptop.signIn("ann@x.test")
	page := laptop.get("/settings/sessions")
	if n := strings.Count(page.body, "signed in "); n != 2 || !strings.Contains(page.body, "(this browser)") {
		t.Fatalf("sessions page lists %d sessions:\n%s", n, page.body)
	}
	// "Sign out everywhere else" ends the phone's session.
	if a := laptop.post("/settings/sessions", url.Values{"csrf": {laptop.csrf("/")}, "all": {"1"}}); a.status != http.StatusSeeOther {
		t.Fatalf("ending the others: %d %s", a.status, a.body)
	}
	if home := phone.get("/"); strings.Contains(home.body, "Your lists") {
		t.Error("the phone is still signed in")
	}
	if home := laptop.get("/"); !strings.Contains(home.body, "Your lists") {
		t.Error("the laptop was signed out too")
	}
	if n := strings.Count(laptop.get("/settings/sessions").body, "signed in "); n != 1 {
		t.Errorf("%d sessions after ending the others", n)
	}
}

// securityHeadersOK reports what is wrong with the security headers of an answer.
func securityHeadersOK(h http.Header) string {
	var bad []string
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			bad = append(bad, "CSP without "+want)
		}
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		bad = append(bad, "no nosniff")
	}
	if h.Get("Referrer-Policy") != "no-referrer" {
		bad = append(bad, "no Referrer-Policy")
	}
	return strings.Join(bad, ", ")
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	w := newWorld(t)
	p := w.archive(t, crew, 0, "ann@x.test", "Ann", "Plan", "See the plan.\r\n", vocab.VerifiedDKIM)
	att := w.archive(t, crew, p.Thread, "bob@x.test", "Bob", "Re: Plan", attachmentBody, "")
	b := w.browser(t)
	check := func(what string, a answer) {
		t.Helper()
		if bad := securityHeadersOK(a.header); bad != "" {
			t.Errorf("%s (%d): %s", what, a.status, bad)
		}
	}
	for _, path := range []string{"/", "/style.css", "/nothing", "/l/crew@x.test/", "/s/abc", "/s/" + strings.Repeat("a", 60), "/settings/sessions"} {
		check("GET "+path+" (visitor)", b.get(path))
	}
	check("POST /signin without token", b.post("/signin", nil))
	if a := b.post("/l/crew@x.test/", nil); a.status != http.StatusNotFound {
		t.Errorf("POST to a page: %d, want the one not found", a.status)
	} else {
		check("POST to a page", a)
	}
	check("POST /signin", b.post("/signin", url.Values{"csrf": {b.csrf("/")}, "address": {"x"}}))
	b.signIn("ann@x.test")
	for _, path := range []string{"/", "/l/crew@x.test/", "/l/crew@x.test/?page=9", fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread),
		fmt.Sprintf("/l/crew@x.test/m/%d", p.Seq), fmt.Sprintf("/l/crew@x.test/m/%d/message.eml", p.Seq),
		fmt.Sprintf("/l/crew@x.test/t/%d/conversation.mbox", p.Thread), fmt.Sprintf("/l/crew@x.test/m/%d/a/1/plan.pdf", att.Seq),
		fmt.Sprintf("/l/crew@x.test/m/%d/a/9/x", att.Seq), "/settings/sessions", "/l/crew@x.test/t/x"} {
		check("GET "+path, b.get(path))
	}
	check("POST /signout", b.post("/signout", url.Values{"csrf": {b.csrf("/")}}))
}

const attachmentBody = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
	"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe plan is attached.\r\n" +
	"--b\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=\"../plan.html\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	"PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\r\n--b--\r\n"

func TestDownloadsAreAttachmentsNeverPages(t *testing.T) {
	w := newWorld(t)
	first := w.archive(t, crew, 0, "ann@x.test", "Ann", "Plan", "Plan?\r\n", vocab.VerifiedDKIM)
	p := w.archive(t, crew, first.Thread, "bob@x.test", "Bob", "Re: Plan", attachmentBody, "")
	b := w.browser(t)
	b.signIn("ann@x.test")
	page := b.get(fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread))
	want := fmt.Sprintf("/l/crew@x.test/m/%d/a/1/plan.html", p.Seq)
	if !strings.Contains(page.body, `href="`+want+`"`) {
		t.Fatalf("the conversation does not link the attachment %s:\n%s", want, page.body)
	}
	a := b.get(want)
	if a.status != http.StatusOK || a.body != "<script>alert(1)</script>" {
		t.Errorf("attachment: %d %q", a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("attachment Content-Type %q, want application/octet-stream", ct)
	}
	disp, params, err := mime.ParseMediaType(a.header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || params["filename"] != "plan.html" {
		t.Errorf("attachment Content-Disposition %q", a.header.Get("Content-Disposition"))
	}
	if !strings.Contains(a.header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("attachment CSP %q, want sandbox", a.header.Get("Content-Security-Policy"))
	}
	eml := b.get(fmt.Sprintf("/l/crew@x.test/m/%d/message.eml", p.Seq))
	if !strings.HasPrefix(eml.header.Get("Content-Disposition"), "attachment") || !strings.Contains(eml.body, "The plan is attached.") {
		t.Errorf(".eml download: %v\n%s", eml.header, eml.body)
	}
	mb := b.get(fmt.Sprintf("/l/crew@x.test/t/%d/conversation.mbox", p.Thread))
	if !strings.HasPrefix(mb.header.Get("Content-Disposition"), "attachment") || strings.Count(mb.body, "\nFrom ")+boolInt(strings.HasPrefix(mb.body, "From ")) != 2 {
		t.Errorf("mbox download: %v\n%s", mb.header, mb.body)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestReadingOnTheWebMarksSeen(t *testing.T) {
	w := newWorld(t)
	p1 := w.archive(t, crew, 0, "ann@x.test", "Ann", "Seeds", "Seeds?\r\n", vocab.VerifiedDKIM)
	p2 := w.archive(t, crew, p1.Thread, "ann@x.test", "Ann", "Re: Seeds", "Anyone?\r\n", vocab.VerifiedDKIM)
	p3 := w.archive(t, crew, 0, "ann@x.test", "Ann", "Tools", "Tools?\r\n", vocab.VerifiedDKIM)
	var bob store.Member
	err := w.st.Update(func(tx store.Tx) error {
		var err error
		if bob, err = tx.Member(crew, "bob@x.test"); err != nil {
			return err
		}
		return tx.SetFlags(crew, bob.ID, p2.Seq, store.FlagFlagged) // flagged over IMAP
	})
	if err != nil {
		t.Fatal(err)
	}
	b := w.browser(t)
	b.signIn("bob@x.test")
	page := b.get(fmt.Sprintf("/l/crew@x.test/t/%d", p1.Thread))
	if strings.Count(page.body, `class="new"`) != 2 {
		t.Errorf("the two unread messages are not marked new:\n%s", page.body)
	}
	flags := map[uint64]byte{}
	err = w.st.View(func(tx store.Tx) error {
		return tx.FlagsOf(crew, bob.ID, func(seq uint64, f byte) error { flags[seq] = f; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if flags[p1.Seq] != store.FlagSeen || flags[p2.Seq] != store.FlagSeen|store.FlagFlagged || flags[p3.Seq] != 0 {
		t.Errorf("flags after reading the conversation: %v", flags)
	}
	if page := b.get(fmt.Sprintf("/l/crew@x.test/t/%d", p1.Thread)); strings.Contains(page.body, `class="new"`) {
		t.Error("messages read are still new")
	}
	// The permalink of one message marks that one.
	b.get(fmt.Sprintf("/l/crew@x.test/m/%d", p3.Seq))
	err = w.st.View(func(tx store.Tx) error {
		return tx.FlagsOf(crew, bob.ID, func(seq uint64, f byte) error { flags[seq] = f; return nil })
	})
	if err != nil || flags[p3.Seq] != store.FlagSeen {
		t.Errorf("after its permalink: %v %v", flags, err)
	}
}

func TestListAndConversationPages(t *testing.T) {
	w := newWorld(t)
	p1 := w.archive(t, crew, 0, "ann@x.test", "Ann Example", "Seed swap", "Who has tomato seeds?\r\n", vocab.VerifiedDKIM)
	w.archive(t, crew, p1.Thread, "bob@x.test", "Bob", "Re: Seed swap",
		"I do.\r\n\r\nOn Wed, 25 Nov 2026, Ann Example wrote:\r\n> Who has tomato seeds?\r\n\r\nTwo kinds.\r\n", vocab.VerifiedConfirmed)
	w.archive(t, crew, p1.Thread, "carl@y.test", "Carl", "Re: Seed swap", "Me too\r\n", "")
	for i := range PageSize + 2 {
		w.archive(t, crew, 0, "ann@x.test", "Ann Example", fmt.Sprintf("Topic %d", i), "text\r\n", vocab.VerifiedDKIM)
	}
	b := w.browser(t)
	b.signIn("bob@x.test")
	home := b.get("/")
	if !strings.Contains(home.body, fmt.Sprintf("%d new", PageSize+5)) {
		t.Errorf("the home page does not count what is new:\n%s", home.body)
	}
	second := b.get("/l/crew@x.test/?page=2")
	first := b.get("/l/crew@x.test/")
	if !strings.Contains(first.body, "Topic 26") || strings.Contains(first.body, "Seed swap") || !strings.Contains(first.body, `rel="next"`) {
		t.Errorf("the first page is not the latest %d conversations with a link to older ones:\n%s", PageSize, first.body)
	}
	for _, want := range []string{"Seed swap", "Ann Example, Bob, Carl</span>", "3 messages", "✓ 2 proven", "3 new"} {
		if !strings.Contains(second.body, want) {
			t.Errorf("the second page lacks %q:\n%s", want, second.body)
		}
	}
	if again := b.get("/l/crew@x.test/?page=2"); strings.Contains(again.body, "new") {
		t.Errorf("after looking at the list, nothing is new any more:\n%s", again.body)
	}
	conv := b.get(fmt.Sprintf("/l/crew@x.test/t/%d", p1.Thread))
	for _, want := range []string{
		"<h1>Seed swap</h1>", "Who has tomato seeds?", "signed by their provider (x.test)", "confirmed by reply", "not proven",
		`<details class="quote"><summary>show quoted text</summary><pre>On Wed, 25 Nov 2026, Ann Example wrote:` + "\n&gt; Who has tomato seeds?</pre></details>",
		"<pre>Two kinds.</pre>", `href="mailto:crew&#43;r-`, `href="mailto:crew&#43;p-`, "Reply to the author only",
		fmt.Sprintf(`href="/l/crew@x.test/m/%d"`, p1.Seq), `<time datetime="`, "Wed 25 Nov 2026, 10:00 UTC",
	} {
		if !strings.Contains(conv.body, want) {
			t.Errorf("the conversation page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(conv.body)
	}
	// The Reply address is the digest's: it names this post.
	if !strings.Contains(conv.body, strings.ReplaceAll(w.svc.ReplyAddress(crew, p1.Seq), "+", "&#43;")) {
		t.Errorf("the Reply link is not the post's Reply address %s", w.svc.ReplyAddress(crew, p1.Seq))
	}
}

func TestHostileHTMLPostIsInert(t *testing.T) {
	w := newWorld(t)
	hostile := "Content-Type: text/html; charset=utf-8\r\n\r\n" +
		`<html><head><style>body{background:url(http://evil.test/track.png)}</style><script>alert(1)</script></head>` +
		`<body onload="alert(2)"><p>Hello <b>crew</b></p><img src="http://evil.test/pixel.gif" onerror="alert(3)">` +
		`<a href="javascript:alert(4)">click</a><iframe src="http://evil.test/"></iframe><svg onload=alert(5)></svg>` +
		`<form action="http://evil.test/"><input name=x></form></body></html>`
	p := w.archive(t, crew, 0, "ann@x.test", "Ann <script>alert(6)</script>", "<img src=x onerror=alert(7)>", hostile, "")
	b := w.browser(t)
	b.signIn("bob@x.test")
	for _, path := range []string{fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread), "/l/crew@x.test/", fmt.Sprintf("/l/crew@x.test/m/%d", p.Seq)} {
		page := b.get(path).body
		if bad := activeContent(page); bad != "" {
			t.Errorf("%s has active content: %s\n%s", path, bad, page)
		}
	}
	page := b.get(fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread)).body
	if !strings.Contains(page, "Hello crew") || !strings.Contains(page, "&lt;img src=x onerror=alert(7)&gt;") {
		t.Errorf("the post's text and subject are not shown as text:\n%s", page)
	}
	if ct := b.get("/style.css").header.Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("style sheet type %q", ct)
	}
}

// activeContent names what in page could run or load something: an element other than the
// reader's own kinds, an event handler attribute, a URL that is not the reader's (or mailto).
func activeContent(page string) string {
	allowed := map[string]bool{"html": true, "head": true, "meta": true, "title": true, "link": true, "body": true, "header": true,
		"a": true, "nav": true, "span": true, "form": true, "input": true, "button": true, "main": true, "h1": true, "h2": true, "h3": true,
		"p": true, "ol": true, "ul": true, "li": true, "strong": true, "b": true, "article": true, "time": true, "div": true,
		"details": true, "summary": true, "pre": true, "footer": true, "label": true, "mark": true, "code": true,
		// What htmlpost's policy lets through of an HTML post.
		"br": true, "em": true, "i": true, "u": true, "s": true, "small": true, "sub": true, "sup": true, "blockquote": true,
		"hr": true, "h4": true, "h5": true, "h6": true, "table": true, "thead": true, "tbody": true, "tfoot": true, "tr": true,
		"th": true, "td": true, "caption": true}
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if !allowed[tok.Data] {
				return "element " + tok.Data
			}
			// A post's own link leads out (http or https), but tells nobody where it was
			// followed from.
			rel := ""
			for _, a := range tok.Attr {
				if a.Key == "rel" {
					rel = a.Val
				}
			}
			outward := tok.Data == "a" && strings.Contains(rel, "nofollow") && strings.Contains(rel, "noreferrer")
			for _, a := range tok.Attr {
				v := strings.ToLower(strings.TrimSpace(a.Val))
				switch {
				case strings.HasPrefix(a.Key, "on"), a.Key == "style", a.Key == "src", a.Key == "srcset":
					return "attribute " + a.Key + " on " + tok.Data
				case a.Key == "href" && outward && (strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://")):
				case (a.Key == "href" || a.Key == "action") && !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "mailto:") && !strings.HasPrefix(v, "#"):
					return a.Key + "=" + a.Val
				}
			}
		}
	}
}

// TestHTMLPostThroughThePolicy: an HTML-only post is shown as HTML through htmlpost, the
// digests' policy: its paragraphs, links (with their URLs shown, trackers removed) and tables
// stay; script, style, event handlers, javascript: links, remote images, forms and
// frames go, and the page's Content-Security-Policy is the reader's own.
func TestHTMLPostThroughThePolicy(t *testing.T) {
	w := newWorld(t)
	post := "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		`<html><head><style>p{color:red}</style><script>alert(1)</script></head><body onload="alert(2)">` +
		`<p style="font-size:40px">Hello <b>crew</b>, the <a href="https://example.org/plan?utm_source=mail&amp;id=7" onclick="alert(3)">sowing plan</a> is up.</p>` +
		`<table><tr><th>Bed</th><th>Crop</th></tr><tr><td>North</td><td>Beans</td></tr></table>` +
		`<p><img src="https://evil.test/pixel.gif" alt="pixel"><a href="javascript:alert(4)">click me</a></p>` +
		`<iframe src="https://evil.test/"></iframe><form action="https://evil.test/"><input name=x></form></body></html>`
	p := w.archive(t, crew, 0, "ann@x.test", "Ann", "Plan", post, "")
	b := w.browser(t)
	b.signIn("bob@x.test")
	for _, path := range []string{fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread), fmt.Sprintf("/l/crew@x.test/m/%d", p.Seq)} {
		a := b.get(path)
		if bad := activeContent(a.body); bad != "" {
			t.Errorf("%s has active content: %s\n%s", path, bad, a.body)
		}
		if got := a.header.Get("Content-Security-Policy"); got != "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'" {
			t.Errorf("%s: Content-Security-Policy %q", path, got)
		}
		for _, want := range []string{
			`<p>Hello crew, the <a href="https://example.org/plan?id=7" rel="nofollow noreferrer">sowing plan</a> <small>(example.org/plan?id=7)</small> is up.</p>`,
			"<table><tr><th>Bed</th><th>Crop</th></tr><tr><td>North</td><td>Beans</td></tr></table>",
			"<p>click me</p>",
		} {
			if !strings.Contains(a.body, want) {
				t.Errorf("%s lacks %s:\n%s", path, want, a.body)
			}
		}
		for _, bad := range []string{"utm_source", "evil.test", "alert(", "javascript:", "<script", "<style>p", "font-size:40px", "<img", "<iframe", "<form action=\"https", "\ue001"} {
			if strings.Contains(a.body, bad) {
				t.Errorf("%s shows %q:\n%s", path, bad, a.body)
			}
		}
	}
}

func TestReaderUnderAPath(t *testing.T) {
	w := newWorld(t)
	r, err := New(w.st, w.svc, Config{BaseURL: w.srv.URL + "/read/"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/read/")
	if err != nil {
		t.Fatal(err)
	}
	home := read(t, resp)
	for _, want := range []string{`action="/read/signin"`, `href="/read/style.css"`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("the reader at /read/ lacks %s:\n%s", want, home.body)
		}
	}
	if c := home.header.Get("Set-Cookie"); !strings.Contains(c, "Path=/read/") {
		t.Errorf("cookie %q is not for /read/", c)
	}
	if got := ConversationURL(w.srv.URL+"/read/", crew, 7); got != w.srv.URL+"/read/l/crew@x.test/t/7" {
		t.Errorf("ConversationURL = %s", got)
	}
	if got := MessageURL("https://x.test", "a b@x.test", 3); got != "https://x.test/l/a%20b@x.test/m/3" {
		t.Errorf("MessageURL = %s", got)
	}
	if got := AttachmentURL("https://x.test", crew, 3, 2, "../my plan.pdf"); got != "https://x.test/l/crew@x.test/m/3/a/2/my%20plan.pdf" {
		t.Errorf("AttachmentURL = %s", got)
	}
}

// TestIndexFollowsNewPostsAndMerges: the reader's picture of an archive, kept and extended as
// posts come, is the one a fresh reading of the records gives, also after a post joins two
// conversations.
func TestIndexFollowsNewPostsAndMerges(t *testing.T) {
	w := newWorld(t)
	kept := &archiveIndex{}
	picture := func(a *archiveIndex) string {
		t.Helper()
		var out []string
		err := w.st.View(func(tx store.Tx) error {
			l, err := tx.List(crew)
			if err != nil {
				return err
			}
			idx, err := a.of(tx, l)
			if err != nil {
				return err
			}
			for _, c := range idx.convos {
				out = append(out, fmt.Sprintf("%d:%v:%v:%d", c.Thread, c.Seqs, c.Authors, c.Proven))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	same := func(what string) {
		t.Helper()
		if got, want := picture(kept), picture(&archiveIndex{}); got != want {
			t.Errorf("%s: kept %s, read again %s", what, got, want)
		}
	}
	index := func(p store.Post, id string) {
		if err := w.st.Update(func(tx store.Tx) error { return tx.IndexThread(crew, p.Thread, []string{id}, "", time.Time{}) }); err != nil {
			t.Fatal(err)
		}
	}
	p1 := w.archive(t, crew, 0, "ann@x.test", "Ann", "One", "1\r\n", vocab.VerifiedDKIM)
	index(p1, "one@x")
	p2 := w.archive(t, crew, 0, "bob@x.test", "Bob", "Two", "2\r\n", "")
	index(p2, "two@x")
	same("two conversations")
	w.archive(t, crew, p2.Thread, "ann@x.test", "Ann", "Re: Two", "3\r\n", vocab.VerifiedDKIM)
	same("a reply")
	if got := picture(kept); !strings.HasPrefix(got, fmt.Sprintf("%d:[2 3]", p2.Thread)) {
		t.Errorf("the conversation with the latest post is not first: %s", got)
	}
	var th uint64
	err := w.st.Update(func(tx store.Tx) error {
		var err error
		th, err = tx.FindThread(crew, []string{"one@x", "two@x"}) // a post answering both, the older first
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.archive(t, crew, th, "carl@x.test", "Carl", "Re: One and two", "4\r\n", "")
	same("a post joining the two")
	if got := picture(kept); got != "1:[1 2 3 4]:[ann@x.test bob@x.test carl@x.test]:2" {
		t.Errorf("after the merge: %s", got)
	}
}

func TestSearchPage(t *testing.T) {
	w := newWorld(t)
	p1 := w.archive(t, crew, 0, "ann@x.test", "Ann", "Seeds", "Who has tomato seeds for the café?\r\n", vocab.VerifiedDKIM)
	w.archive(t, crew, p1.Thread, "bob@x.test", "Bob", "Re: Seeds", "I have Tomatoes, not seeds.\r\n\r\nAnn wrote:\r\n> Who has tomato seeds?\r\n", "")
	w.archive(t, crew, 0, "bob@x.test", "Bob", "Tools", "The spade is in the shed.\r\n", "")
	b := w.browser(t)
	b.signIn("ann@x.test")
	if page := b.get("/l/crew@x.test/"); !strings.Contains(page.body, `action="/l/crew@x.test/search"`) {
		t.Errorf("the list page has no search form:\n%s", page.body)
	}
	a := b.get(SearchURL("", crew, "tomato"))
	if a.status != http.StatusOK || !strings.Contains(a.body, "1 conversation matches") || !strings.Contains(a.body, "<mark>tomato</mark>") ||
		!strings.Contains(a.body, fmt.Sprintf(`href="/l/crew@x.test/t/%d"`, p1.Thread)) || strings.Contains(a.body, "Tools") {
		t.Errorf("search for tomato: %d\n%s", a.status, a.body)
	}
	if a := b.get(SearchURL("", crew, "cafe")); !strings.Contains(a.body, "<mark>café</mark>") {
		t.Errorf("cafe does not find café:\n%s", a.body)
	}
	if a := b.get(SearchURL("", crew, "from:bob spade")); !strings.Contains(a.body, "Tools") || strings.Contains(a.body, "Seeds") {
		t.Errorf("from:bob spade:\n%s", a.body)
	}
	if a := b.get(SearchURL("", crew, "before:yesterday")); a.status != http.StatusBadRequest || !strings.Contains(a.body, `class="problem"`) {
		t.Errorf("a query that does not parse: %d\n%s", a.status, a.body)
	}
	if a := b.get(SearchURL("", crew, "")); !strings.Contains(a.body, "How to search") {
		t.Errorf("the empty search page has no help:\n%s", a.body)
	}
	if a := b.get(SearchURL("", crew, "<script>alert(1)</script>")); activeContent(a.body) != "" {
		t.Errorf("a hostile query: %s", activeContent(a.body))
	}
	// Not a member: the same not found as a list that is not there.
	olga := w.browser(t)
	olga.signIn("olga@x.test")
	missing := olga.get("/l/nolist@x.test/")
	if a := olga.get(SearchURL("", crew, "tomato")); a.status != http.StatusNotFound || a.body != missing.body {
		t.Errorf("a non-member's search: %d\n%s", a.status, a.body)
	}
}

// TestHiddenAddresses: on a list that hides addresses, members see names and never an author's
// address, "Reply to the author only" is the private reply address, and the downloads are the
// list copies (From the list).
func TestHiddenAddresses(t *testing.T) {
	w := newWorld(t)
	if _, err := w.svc.UpdateList(crew, lists.ListOptions{HideAddresses: new(true)}); err != nil {
		t.Fatal(err)
	}
	p := w.archive(t, crew, 0, "ann@x.test", "Ann", "Seeds", "Who has seeds?\r\n", vocab.VerifiedDKIM)
	w.archive(t, crew, p.Thread, "carl@x.test", "", "Re: Seeds", "Me.\r\n", "")
	b := w.browser(t)
	b.signIn("bob@x.test")
	for _, path := range []string{"/l/crew@x.test/", fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread), fmt.Sprintf("/l/crew@x.test/m/%d", p.Seq),
		SearchURL("", crew, "seeds"), fmt.Sprintf("/l/crew@x.test/m/%d/message.eml", p.Seq), fmt.Sprintf("/l/crew@x.test/t/%d/conversation.mbox", p.Thread)} {
		a := b.get(path)
		if a.status != http.StatusOK || strings.Contains(a.body, "ann@x.test") || strings.Contains(a.body, "carl@x.test") {
			t.Errorf("%s on a list that hides addresses: %d\n%s", path, a.status, a.body)
		}
	}
	page := b.get(fmt.Sprintf("/l/crew@x.test/t/%d", p.Thread)).body
	private := strings.ReplaceAll(w.svc.PrivateReplyAddress(crew, p.Seq), "+", "&#43;")
	if !strings.Contains(page, ">Ann <") || !strings.Contains(page, ">carl</h2>") || !strings.Contains(page, "mailto:"+private[:len("crew&#43;p-")]) {
		t.Errorf("names and the private reply address:\n%s", page)
	}
	if eml := b.get(fmt.Sprintf("/l/crew@x.test/m/%d/message.eml", p.Seq)).body; !strings.Contains(eml, "crew@x.test") || !strings.Contains(eml, "Who has seeds?") {
		t.Errorf("the .eml of a list that hides addresses:\n%s", eml)
	}
}
