package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"crewmail/internal/mailtest"
	"crewmail/store/postgres/pgtest"
)

// chromium is the browser the reader's test drives: $CHROMIUM, else Debian's chromium.
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

var signInLinkRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/s/[a-z2-7]+`)

// TestReaderInABrowser: a member signs in through the link mailed to her (caught by the test's
// SMTP server), searches, reads a conversation, downloads its attachment, and every page she sees loads
// nothing from outside the server, fits a 390 px screen, and has no serious or critical
// accessibility fault that axe-core finds. Screenshots at 390 and 1024 px (and 390 px dark)
// go to $CREWMAIL_SCREENSHOTS, else to a temporary folder.
func TestReaderInABrowser(t *testing.T) {
	shots := os.Getenv("CREWMAIL_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	readerInABrowser(t, func(sink *mailtest.Sink) *testServer { return newCrew(t, sink, "ann@example.test", "bob@example.test") }, shots)
}

// TestReaderInABrowserOnPostgres: the same on the PostgreSQL backend (skipped without
// CREWMAIL_TEST_POSTGRES), without the screenshots.
func TestReaderInABrowserOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	readerInABrowser(t, func(sink *mailtest.Sink) *testServer {
		ts := startTestServer(t, postgresConfig(t, t.TempDir(), sink.Addr, dsn))
		ts.mustCLI(t, "list", "create", "crew@"+testDomain, "-name", "Garden crew")
		ts.mustCLI(t, "member", "add", "crew@"+testDomain, "ann@example.test", "bob@example.test")
		return ts
	}, "")
}

// readerInABrowser is the browser test on the server start makes; screenshots go to shots,
// none when it is "".
func readerInABrowser(t *testing.T, start func(*mailtest.Sink) *testServer, shots string) {
	exe := chromium()
	if exe == "" {
		t.Skip("chromium is not installed (set CHROMIUM to a Chrome or Chromium binary)")
	}
	axe, err := os.ReadFile("../../web/testdata/axe.min.js")
	if err != nil {
		t.Fatal(err)
	}

	sink := mailtest.NewSink(t)
	ts := start(sink)
	base := "http://" + ts.HTTPAddr
	ann := signAsExampleTest(t, []byte("From: Ann Example <ann@example.test>\r\nTo: crew@"+testDomain+"\r\nSubject: Seed swap on Saturday\r\n"+
		"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <seeds@example.test>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Who brings what on Saturday? The list of seeds I have is attached; take what you like.\r\n\r\nAnn\r\n"+
		"--b\r\nContent-Type: text/plain; name=seeds.txt\r\nContent-Disposition: attachment; filename=seeds.txt\r\n\r\n"+
		"tomato: 40\r\nbean: 12\r\n--b--\r\n"))
	if err := send(t, ts.SMTPAddr, "ann@example.test", []string{"crew@" + testDomain}, ann); err != nil {
		t.Fatal(err)
	}
	bob := "From: Bob Builder <bob@example.test>\r\nTo: crew@" + testDomain + "\r\nSubject: Re: Seed swap on Saturday\r\n" +
		"Date: Wed, 25 Nov 2026 11:00:00 +0000\r\nMessage-ID: <re-seeds@example.test>\r\nIn-Reply-To: <seeds@example.test>\r\n" +
		"References: <seeds@example.test>\r\n\r\nI bring beans and a very long line without any spaces to see that the page wraps it: " +
		strings.Repeat("abcdefghij", 20) + "\r\n\r\nOn Wed, 25 Nov 2026, Ann Example wrote:\r\n> Who brings what on Saturday?\r\n> The list of seeds I have is attached.\r\n"
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{"crew@" + testDomain}, []byte(bob)); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 4) // each post to both members

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(390, 844))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute) // only a broken build gets near it
	defer cancelTimeout()

	var mu sync.Mutex
	var requests []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	// waitTitle waits until the page shown is titled title.
	waitTitle := func(title string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			for {
				got, err := chromedp.Run(ctx, chromedp.Title())
				if err != nil || got == title {
					return err
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("the page is %q, not %q: %w", got, title, ctx.Err())
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(what, js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	width := func(w int64, dark bool) {
		t.Helper()
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		do("viewport", chromedp.EmulateViewport(w, 844), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
			return err
		}))
	}
	// check looks at the page shown: it fits 390 px, and axe finds nothing serious.
	axeLoaded := false
	var axeCheck func(name string, dark bool)
	check := func(name string) {
		t.Helper()
		width(390, false)
		if sw := eval("scroll width", `Promise.resolve(String(document.documentElement.scrollWidth))`); sw > "390" || len(sw) > 3 {
			t.Errorf("%s: the page is %s px wide at 390 px: it scrolls sideways", name, sw)
		}
		if !axeLoaded || eval("axe loaded", `Promise.resolve(typeof axe)`) != "object" {
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](string(axe)+";0")); err != nil {
				t.Fatalf("loading axe-core: %v", err)
			}
			axeLoaded = true
		}
		for _, dark := range []bool{false, true} {
			width(390, dark)
			axeCheck(name, dark)
		}
		width(390, false)
	}
	axeCheck = func(name string, dark bool) {
		t.Helper()
		if dark {
			name += " (dark)"
		}
		res := eval("axe", `axe.run(document).then(r => JSON.stringify({passes: r.passes.length,
			violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html)}))}))`)
		var found struct {
			Passes     int
			Violations []struct {
				ID, Impact, Help string
				Nodes            []string
			}
		}
		if err := json.Unmarshal([]byte(res), &found); err != nil {
			t.Fatalf("axe's answer %q: %v", res, err)
		}
		if found.Passes < 5 {
			t.Errorf("%s: axe passed only %d rules: it did not look at the page", name, found.Passes)
		}
		for _, v := range found.Violations {
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Errorf("%s: accessibility (%s) %s: %s %q", name, v.Impact, v.ID, v.Help, v.Nodes)
			} else {
				t.Logf("%s: accessibility (%s) %s: %s", name, v.Impact, v.ID, v.Help)
			}
		}
	}
	shoot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		for _, s := range []struct {
			w    int64
			dark bool
			file string
		}{{390, false, name + "-390.png"}, {1024, false, name + "-1024.png"}, {390, true, name + "-390-dark.png"}} {
			width(s.w, s.dark)
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(shots, s.file), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		width(390, false)
	}

	// Signing in: the address, the mailed link, its button.
	do("open the reader", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#address")))
	check("sign-in")
	shoot("signin")
	do("ask for a link", chromedp.SendKeys(chromedp.CSS("#address"), "ann@example.test"), chromedp.Click(chromedp.CSS("form.signin button")),
		waitTitle("Check your mail"))
	check("link sent")
	mail := sink.Wait(t, 5)[4]
	if mail.To[0] != "ann@example.test" {
		t.Fatalf("the fifth mail went to %v, not ann", mail.To)
	}
	link := signInLinkRE.FindString(text(t, mail))
	if link == "" {
		t.Fatalf("no sign-in link in:\n%s", text(t, mail))
	}
	do("open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("main button")))
	check("sign-in button")
	do("sign in", chromedp.Click(chromedp.CSS("main button")), waitTitle("Your lists"))
	check("lists")
	shoot("lists")

	// Reading.
	do("open the list", chromedp.Click(chromedp.CSS("ul.lists a")), chromedp.WaitVisible(chromedp.CSS("ol.convos")))
	check("conversations")
	shoot("conversations")
	// Searching, from the list's page.
	do("search", chromedp.SendKeys(chromedp.CSS("#q"), "beans"), chromedp.Click(chromedp.CSS("form.search button")),
		waitTitle("beans · search Garden crew"))
	check("search")
	marks, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("ol.results")))
	if err != nil || !strings.Contains(marks, "<mark>beans</mark>") || !strings.Contains(marks, "Seed swap on Saturday") {
		t.Errorf("the search for beans: %v\n%s", err, marks)
	}
	shoot("search")
	do("open the conversation", chromedp.Click(chromedp.CSS("a.subject")), chromedp.WaitVisible(chromedp.CSS("article.message")))
	check("conversation")
	page, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Seed swap on Saturday", "Who brings what on Saturday?", "Ann Example", "Bob Builder", "signed by their provider",
		"show quoted text", "seeds.txt", "Reply to the author only"} {
		if !strings.Contains(page, want) {
			t.Errorf("the conversation page lacks %q", want)
		}
	}
	if open := eval("quote", `Promise.resolve(String(document.querySelector("details.quote").open))`); open != "false" {
		t.Error("the quoted text is not folded")
	}
	shoot("conversation")
	do("unfold the quote", chromedp.Click(chromedp.CSS("details.quote summary")))
	if open := eval("quote", `Promise.resolve(String(document.querySelector("details.quote").open))`); open != "true" {
		t.Error("the quoted text does not unfold")
	}

	// Downloading the attachment.
	dir := t.TempDir()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	do("download", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true)})
		return err
	}), chromedp.Click(chromedp.CSS("ul.files a")))
	for ev, err := range progress {
		if err != nil {
			t.Fatal(err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the download was cancelled")
		}
		if ev.State != browser.DownloadProgressStateCompleted {
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, ev.GUID))
		if err != nil || string(got) != "tomato: 40\r\nbean: 12" {
			t.Errorf("downloaded attachment %q %v", got, err)
		}
		break
	}

	do("sessions", chromedp.Navigate(base+"/settings/sessions"), waitTitle("Sessions"))
	check("sessions")
	shoot("sessions")
	// Her settings: the page, a new app password shown once.
	do("settings", chromedp.Navigate(base+"/settings"), waitTitle("Settings"))
	check("settings")
	shoot("settings")
	do("new app password", chromedp.Click(chromedp.CSS(`section[aria-labelledby="imap"] button`)), chromedp.WaitVisible(chromedp.CSS("code.password")))
	check("settings with a new password")
	if pw, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("code.password"))); err != nil || !regexp.MustCompile(`^[a-z2-7]{4}(-[a-z2-7]{4}){3}$`).MatchString(pw) {
		t.Errorf("the app password shown: %q %v", pw, err)
	}
	do("not found", chromedp.Navigate(base+"/l/nolist@"+testDomain+"/"), waitTitle("Not found"))
	check("not found")

	mu.Lock()
	defer mu.Unlock()
	if len(requests) < 10 {
		t.Errorf("only %d requests seen: %q", len(requests), requests)
	}
	for _, u := range requests {
		if !strings.HasPrefix(u, base+"/") {
			t.Errorf("a page asked for %s, outside %s", u, base)
		}
	}
	t.Logf("%d requests, all to %s; screenshots in %q", len(requests), base, shots)
}

// TestArchivePublicByCLI: a list's web archive is for its members until the owners make it
// public with list set -archive public; private takes that back.
func TestArchivePublicByCLI(t *testing.T) {
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "ann@example.test")
	if err := send(t, ts.SMTPAddr, "ann@example.test", []string{"crew@" + testDomain}, post("Ann <ann@example.test>", "Compost", "compost@example.test", "The compost is ready.\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 1)
	page := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + ts.HTTPAddr + "/l/crew@" + testDomain + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	if code, body := page(); code != http.StatusNotFound || strings.Contains(body, "Compost") {
		t.Errorf("a private list to a visitor: %d\n%s", code, body)
	}
	ts.mustCLI(t, "list", "set", "crew@"+testDomain, "-archive", "public")
	if out := ts.mustCLI(t, "list", "show", "crew@"+testDomain); !strings.Contains(out, "public (anyone reads it on the web)") {
		t.Errorf("list show after -archive public:\n%s", out)
	}
	if code, body := page(); code != http.StatusOK || !strings.Contains(body, "Compost") || strings.Contains(body, "ann@example.test") {
		t.Errorf("a public list to a visitor: %d\n%s", code, body)
	}
	ts.mustCLI(t, "list", "set", "crew@"+testDomain, "-archive", "private")
	if code, _ := page(); code != http.StatusNotFound {
		t.Errorf("a list made private again: %d", code)
	}
	if _, stderr, code := ts.cli(t, "list", "set", "crew@"+testDomain, "-archive", "open"); code == 0 || !strings.Contains(stderr, "private") {
		t.Errorf("-archive open: exit %d, %s", code, stderr)
	}
}
