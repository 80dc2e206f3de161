package templates

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// data has every value the lists package gives a notice (see lists.noticeData).
var data = map[string]any{
	"ListName": "Garden crew", "List": "crew@x.test", "Post": "crew@x.test", "Help": "crew+help@x.test",
	"Unsubscribe": "crew+unsubscribe@x.test", "Subscribe": "crew+subscribe@x.test",
	"Request": "crew-request@x.test", "Owner": "crew+owner@x.test",
	"Each": "crew+each@x.test", "Daily": "crew+daily@x.test", "Weekly": "crew+weekly@x.test", "Nomail": "crew+nomail@x.test",
	"Policy": "verified", "Join": "approve", "Moderated": true, "ArchiveURL": "https://x.test/crew/", "Hostname": "x.test",
	"Address": "bob@x.test", "Mode": "daily", "Confirm": "crew+confirm-abc@x.test",
	"Approve": "crew+confirm-app@x.test", "Reject": "crew+confirm-rej@x.test", "Expires": "Monday 30 November 2026",
	"Subject": "Tomatoes", "From": "Bob <bob@x.test>", "Received": "Tuesday 24 November 2026, 10:00 UTC",
	"Reason": "no DKIM", "By": "ann@x.test", "How": "they confirmed, and ann@x.test approved",
	"Lines":   []string{"invite carol@x.test", "remove dan@x.test"},
	"Results": []string{"daily: you now get a daily digest.", "who: only owners may use this command."},
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
		t.Run(name, func(t *testing.T) {
			subject, body, err := s.Render(name, data)
			if err != nil {
				t.Fatal(err)
			}
			if subject == "" || strings.Contains(subject, "\n") || strings.HasPrefix(body, "\n") || strings.Contains(body, "<no value>") {
				t.Errorf("subject %q, body:\n%s", subject, body)
			}
			got := "Subject: " + subject + "\n\n" + body
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
	if _, body, _ := s.Render("goodbye", data); !strings.Contains(body, "no longer on") {
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
	for policy, want := range map[string]string{
		"verified": "confirms it by replying",
		"members":  "Only members may post",
		"anyone":   "Anyone may post",
	} {
		d := map[string]any{}
		for k, v := range data {
			d[k] = v
		}
		d["Policy"] = policy
		_, body, err := s.Render("help", d)
		if err != nil || !strings.Contains(body, want) {
			t.Errorf("help for %s: %v\n%s", policy, err, body)
		}
	}
}
