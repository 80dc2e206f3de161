package templates

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crewmail/internal/vocab"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// data is a notice with every field filled in.
var data = Notice{
	ListName: "Garden crew", Description: "For the plot holders of the Elm Street allotments.",
	Welcome: []string{"We meet on the first Saturday of the month.", "Please sign your posts with your plot number."},
	Note:    "Hi Carol, this is where we swap seedlings.",
	List:    "crew@x.test", Post: "crew@x.test", Help: "crew+help@x.test",
	Unsubscribe: "crew+unsubscribe@x.test", Subscribe: "crew+subscribe@x.test",
	Request: "crew-request@x.test", Owner: "crew+owner@x.test",
	Each: "crew+each@x.test", Daily: "crew+daily@x.test", Weekly: "crew+weekly@x.test", Nomail: "crew+nomail@x.test",
	Policy: vocab.PostVerified, Join: vocab.JoinApprove, Moderated: true, ArchiveURL: "https://x.test/crew/", Hostname: "x.test", Guide: "https://x.test/guide",
	Address: "bob@x.test", Mode: vocab.Daily, Confirm: "crew+confirm-abc@x.test",
	Approve: "crew+confirm-app@x.test", Reject: "crew+confirm-rej@x.test", Expires: "Monday 30 November 2026",
	Subject: "Tomatoes", From: "Bob <bob@x.test>", Received: "Tuesday 24 November 2026, 10:00 UTC",
	Reason: "no DKIM", By: "ann@x.test", How: "they confirmed, and ann@x.test approved",
	Lines: []string{"invite carol@x.test", "remove dan@x.test"}, Used: "crew+unsubscribe@x.test",
	Excerpt:     []string{"The tomatoes are ripe.", "Who takes the first box?"},
	Results:     []string{"daily: you now get a daily digest.", "who: only owners may use this command."},
	NewPassword: "crew+password@x.test", Password: "k3v9-xq2a-7mfp-d8wz", IMAP: "x.test, port 993 (TLS)",
	Threads:  []ThreadLink{{"Seeds", "crew+r-abc@x.test"}, {"Tomatoes", "crew+r-def@x.test"}},
	SignIn:   "https://x.test/s/mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpiaq",
	Attached: true, Waiting: 12, Unnoticed: 5,
	DailyAt: "08:00", WeeklyOn: "Monday", Zone: "Europe/Berlin",
}

// TestGolden renders every built-in template with data and compares it with its golden file
// in testdata/; -update rewrites them.
func TestGolden(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(builtin, "text/*.txt")
	if err != nil || len(names) < 19 {
		t.Fatalf("built-in templates: %v %v", names, err)
	}
	for _, name := range names {
		name = strings.TrimSuffix(filepath.Base(name), ".txt")
		if name == "digest" { // its data is a digest.Digest; digest/render_test.go has its goldens
			continue
		}
		t.Run(name, func(t *testing.T) {
			if err := s.Check(name, Notice{}); err != nil {
				t.Fatal(err)
			}
			subject, body, err := s.Render(name, data)
			if err != nil {
				t.Fatal(err)
			}
			if subject == "" || strings.Contains(subject, "\n") || strings.HasPrefix(body, "\n") || strings.Contains(body, "<no value>") {
				t.Errorf("subject %q, body:\n%s", subject, body)
			}
			got := "Subject: " + subject + "\n\n" + Flow(body)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run with -update to accept):\n%s", name, golden, got)
			}
		})
	}
}

func TestOperatorOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "help.txt"), []byte("Subject: Our own help\nAsk {{.ListName}}.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	subject, body, err := s.Render("help", data)
	if err != nil || subject != "Our own help" || body != "Ask Garden crew.\n" {
		t.Errorf("override: %q %q %v", subject, body, err)
	}
	if _, body, _ := s.Render("goodbye", data); !strings.Contains(body, "removed you from the list") {
		t.Errorf("templates not overridden changed: %q", body)
	}
}

func TestBrokenOverrideIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "help.txt"), []byte("{{.ListName"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("broken override: %v", err)
	}
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Render("help", map[string]any{}); err == nil {
		t.Error("a missing value rendered silently")
	}
}

func TestHelpExplainsThePolicy(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	for policy, want := range map[vocab.PostPolicy]string{
		"verified": "until you confirm it by replying",
		"members":  "Only members may post",
		"anyone":   "Anyone may post",
	} {
		d := data
		d.Policy = policy
		_, body, err := s.Render("help", d)
		if err != nil || !strings.Contains(body, want) {
			t.Errorf("help for %s: %v\n%s", policy, err, body)
		}
	}
}

func TestHTMLOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "digest.html"), []byte("<p>Our own {{.ListName}}</p>\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.RenderHTML("digest", data)
	if err != nil || page != "<p>Our own Garden crew</p>\n" {
		t.Errorf("override: %q %v", page, err)
	}
	if _, body, err := s.Render("help", data); err != nil || !strings.Contains(body, "mailing list") {
		t.Errorf("text templates changed with an HTML override: %v\n%s", err, body)
	}
}

func TestBrokenHTMLOverrideIsAnError(t *testing.T) {
	for name, text := range map[string]string{
		"unclosed action": "<p>{{.ListName</p>",
		"unclosed tag":    "<a href=\"{{.Help}}>help</a>", // html/template refuses an action in an unfinished attribute
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "digest.html"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(dir); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestHTMLEscapes(t *testing.T) {
	dir := t.TempDir()
	page := `<p title="{{.Subject}}">{{.From}}</p><a href="{{.ArchiveURL}}">archive</a>`
	if err := os.WriteFile(filepath.Join(dir, "note.html"), []byte(page), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := map[string]any{"Subject": `"><script>x</script>`, "From": "<script>alert(1)</script> & co", "ArchiveURL": "javascript:alert(1)"}
	got, err := s.RenderHTML("note", d)
	if err != nil {
		t.Fatal(err)
	}
	want := `<p title="&#34;&gt;&lt;script&gt;x&lt;/script&gt;">&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p><a href="#ZgotmplZ">archive</a>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, err := s.RenderHTML("note", map[string]any{"Subject": "x"}); err == nil {
		t.Errorf("a missing value rendered silently: %s", got)
	}
}

// TestCheckFindsMisspelledFieldsOnEveryBranch: a field a notice lacks is found where it is
// read, whether or not the data at hand would take that branch, also inside range and with.
func TestCheckFindsMisspelledFieldsOnEveryBranch(t *testing.T) {
	for text, bad := range map[string]string{
		"Subject: x\n{{if .Moderated}}{{.Aprove}}{{end}}\n":                     "Aprove",
		"Subject: x\n{{if eq .Policy \"\"}}{{else}}{{.Polcy}}{{end}}\n":         "Polcy",
		"Subject: x\n{{range .Threads}}{{.Subjet}}{{end}}\n":                    "Subjet",
		"Subject: x\n{{range $i, $t := .Threads}}{{$t.Replyy}}{{end}}\n":        "Replyy",
		"Subject: x\n{{with .Excerpt}}{{.Len}}{{end}}\n":                        "Len",
		"Subject: x\n{{range .Lines}}{{$.ListNam}}{{end}}\n":                    "ListNam",
		"Subject: x\n{{if .Waiting}}{{len .Lines}} {{.Waiting.Count}}{{end}}\n": "Count",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "note.txt"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := New(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Render("note", Notice{}); err != nil {
			t.Fatalf("%q does not even run on an empty notice: %v", text, err)
		}
		if err := s.Check("note", Notice{}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Check of %q: %v, want an error naming %s", text, err, bad)
		}
	}
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check("moderation", struct{ ListName string }{}); err == nil {
		t.Error("a notice template checked against a type without its fields")
	}
}
