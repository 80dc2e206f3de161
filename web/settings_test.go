package web

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"crewmail/internal/vocab"
	"crewmail/lists"
	"crewmail/store"
)

// settingsPost sends one form of the settings page and returns the page it answers with.
func (b *browser) settingsPost(form url.Values) answer {
	b.t.Helper()
	form.Set("csrf", b.csrf("/settings"))
	a := b.post("/settings", form)
	if a.status != http.StatusOK {
		b.t.Fatalf("settings %v: %d\n%s", form, a.status, a.body)
	}
	return a
}

var shownPasswordRE = regexp.MustCompile(`<code class="password">([a-z2-7-]+)</code>`)

// TestSettingsPage: a member signed in by mail sees and changes her settings: mode, own
// posts, a pause and its end, a muted conversation unmuted, an app password shown once and
// revoked, and leaving a list; a member whose delivery is paused for bouncing is told so when
// she signs in and resumes it here. Nobody signed in gets no settings.
func TestSettingsPage(t *testing.T) {
	w := newWorld(t)
	p := w.archive(t, crew, 0, "bob@x.test", "Bob", "Compost", "Turn it.\r\n", vocab.VerifiedDKIM)
	if err := w.st.Update(func(tx store.Tx) error {
		m, err := tx.Member(crew, "ann@x.test")
		if err != nil {
			return err
		}
		m.Paused, m.PausedWhy = w.now(), "550 5.2.2 mailbox full"
		if err := tx.PutMember(crew, m); err != nil {
			return err
		}
		return tx.Mute(crew, p.Thread, m.ID)
	}); err != nil {
		t.Fatal(err)
	}
	if a := w.browser(t).get("/settings"); a.status != http.StatusSeeOther {
		t.Errorf("settings without signing in: %d", a.status)
	}
	b := w.browser(t)
	b.signIn("ann@x.test")
	if home := b.get("/"); !strings.Contains(home.body, "has been paused since") || !strings.Contains(home.body, "/settings") {
		t.Errorf("the lists page does not say her mail is paused:\n%s", home.body)
	}
	page := html.UnescapeString(b.get("/settings").body)
	for _, want := range []string{"Garden crew", "because it bounced", "550 5.2.2 mailbox full", "Resume my mail", "Muted: Compost", "You have no app password", `value="each" selected`} {
		if !strings.Contains(page, want) {
			t.Errorf("the settings page lacks %q:\n%s", want, page)
		}
	}
	b.settingsPost(url.Values{"do": {"resume"}, "list": {crew}})
	b.settingsPost(url.Values{"do": {"mode"}, "list": {crew}, "mode": {"weekly"}})
	b.settingsPost(url.Values{"do": {"selfcopy"}, "list": {crew}})
	b.settingsPost(url.Values{"do": {"unmark"}, "list": {crew}, "thread": {"1"}})
	until := w.now().Add(72 * time.Hour).Format("2006-01-02")
	if a := b.settingsPost(url.Values{"do": {"pause"}, "list": {crew}, "until": {until}}); !strings.Contains(a.body, "No mail from "+crew+" until "+until) {
		t.Errorf("pause:\n%s", a.body)
	}
	a := b.settingsPost(url.Values{"do": {"password"}})
	m := shownPasswordRE.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no password shown:\n%s", a.body)
	}
	if again := b.get("/settings"); strings.Contains(again.body, m[1]) {
		t.Error("the app password is shown a second time")
	}
	if err := w.st.View(func(tx store.Tx) error {
		mem, err := tx.Member(crew, "ann@x.test")
		if err != nil {
			return err
		}
		if mem.Mode != vocab.Weekly || !mem.NoOwnPosts || !mem.Paused.IsZero() || mem.AwayUntil.IsZero() {
			t.Errorf("after the changes: %+v", mem)
		}
		if muted, err := tx.Muted(crew, p); err != nil || muted[mem.ID] {
			t.Errorf("still muted: %v %v", muted, err)
		}
		pw, err := tx.AppPasswordOf("ann@x.test")
		if err != nil || bcrypt.CompareHashAndPassword(pw.Hash, []byte(m[1])) != nil {
			t.Errorf("the password shown is not kept: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.settingsPost(url.Values{"do": {"revoke"}})
	if a := b.settingsPost(url.Values{"do": {"mode"}, "list": {other}, "mode": {"daily"}}); !strings.Contains(a.body, "not a member of "+other) {
		t.Errorf("a change to a list she is not on:\n%s", a.body)
	}
	b.settingsPost(url.Values{"do": {"leave"}, "list": {crew}})
	if err := w.st.View(func(tx store.Tx) error {
		if _, err := tx.AppPasswordOf("ann@x.test"); err == nil {
			t.Error("the revoked password is kept")
		}
		if _, err := tx.Member(crew, "ann@x.test"); err == nil {
			t.Error("she is still a member after leaving")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(w.mailedTo(t, "ann@x.test", "Changed your mind?")) == 0 {
		t.Error("no goodbye with its undo went to her")
	}
}

// mailedTo are the messages in the outbox for addr whose text holds word.
func (w *world) mailedTo(t *testing.T, addr, word string) []string {
	t.Helper()
	var out []string
	if err := w.st.View(func(tx store.Tx) error {
		return tx.Outbox(func(d store.Delivery) error {
			text := strings.ReplaceAll(string(d.Message), "=\r\n", "")
			if d.To == addr && strings.Contains(text, word) {
				out = append(out, text)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSettingsDataAndDirectory: from the settings page a member asks for her data (mailed to
// her), a change of address (a confirmation to the new address) and to be forgotten (a
// confirmation to her); the directory is a page for members only where the list shows it.
func TestSettingsDataAndDirectory(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	b.signIn("ann@x.test")
	b.settingsPost(url.Values{"do": {"export"}, "list": {crew}})
	if len(w.mailedTo(t, "ann@x.test", "my-data.json")) != 1 {
		t.Error("no export went to her")
	}
	if a := b.settingsPost(url.Values{"do": {"address"}, "list": {crew}, "to": {"ann@new.x.test"}}); !strings.Contains(a.body, "a confirmation went to ann@new.x.test") {
		t.Errorf("change of address:\n%s", a.body)
	}
	if len(w.mailedTo(t, "ann@new.x.test", "Confirm")) != 1 {
		t.Error("no confirmation went to the new address")
	}
	// A second browser of hers confirms from the new address; the old address's sessions end.
	confirm := regexp.MustCompile(`crew\+confirm-[a-z2-7]+@x\.test`).FindString(w.mailedTo(t, "ann@new.x.test", "Confirm")[0])
	target, err := w.svc.Route(confirm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Accept(lists.Envelope{From: "ann@new.x.test", Targets: []lists.Target{target}}, []byte("From: ann@new.x.test\r\nTo: "+confirm+"\r\nSubject: yes\r\nMessage-ID: <c1@new.x.test>\r\n\r\nyes\r\n")); err != nil {
		t.Fatal(err)
	}
	if a := b.get("/settings"); a.status != http.StatusSeeOther {
		t.Errorf("the old address's session goes on after the change: %d", a.status)
	}
	b = w.browser(t)
	b.signIn("ann@new.x.test")
	b.settingsPost(url.Values{"do": {"forget"}, "list": {crew}, "posts": {"redact"}})
	if len(w.mailedTo(t, "ann@new.x.test", "your posts removed")) != 1 {
		t.Error("no confirmation of forgetting went to her")
	}
	if a := b.get("/l/crew@x.test/directory"); a.status != http.StatusNotFound {
		t.Errorf("the directory of a list that keeps it for owners: %d", a.status)
	}
	if _, err := w.svc.UpdateList(crew, lists.ListOptions{Directory: lists.DirectoryMembers}); err != nil {
		t.Fatal(err)
	}
	if a := b.get("/l/crew@x.test/directory"); a.status != http.StatusOK || !strings.Contains(a.body, "bob@x.test") || !strings.Contains(a.body, "posts proven") {
		t.Errorf("the directory for members: %d\n%s", a.status, a.body)
	}
	olga := w.browser(t)
	olga.signIn("olga@x.test")
	if a := olga.get("/l/crew@x.test/directory"); a.status != http.StatusNotFound || strings.Contains(a.body, "bob@x.test") {
		t.Errorf("a member of another list sees the directory: %d", a.status)
	}
}

// TestNewcomerShownBesideHerFirstPosts: a member invited by an owner a week ago has "new
// member, invited by …" beside her post on the conversation page; a month later, not.
func TestNewcomerShownBesideHerFirstPosts(t *testing.T) {
	w := newWorld(t)
	if err := w.st.Update(func(tx store.Tx) error {
		_, err := tx.AddMember(crew, store.Member{Address: "cat@x.test", Mode: vocab.Each, Added: w.now().Add(-7 * 24 * time.Hour), Origin: store.OriginInvited, InvitedBy: "bob@x.test"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p := w.archive(t, crew, 0, "cat@x.test", "Cat", "Hello", "I am new here.\r\n", vocab.VerifiedDKIM)
	b := w.browser(t)
	b.signIn("ann@x.test")
	path := fmt.Sprintf("/l/%s/t/%d", crew, p.Thread)
	if page := b.get(path); !strings.Contains(page.body, "new member, invited by bob@x.test") {
		t.Errorf("the conversation does not say who brought cat in:\n%s", page.body)
	}
	w.offset.Add(int64(40 * 24 * time.Hour))
	later := w.archive(t, crew, p.Thread, "cat@x.test", "Cat", "Re: Hello", "Still here.\r\n", vocab.VerifiedDKIM)
	b = w.browser(t)
	b.signIn("ann@x.test")
	if page := b.get(fmt.Sprintf("/l/%s/m/%d", crew, later.Seq)); !strings.Contains(page.body, "Still here.") || strings.Contains(page.body, "new member") {
		t.Errorf("a post of her second month still says new member:\n%s", page.body)
	}
}
