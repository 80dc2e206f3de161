package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var data = map[string]any{
	"ListName": "Garden crew", "List": "crew@x.test", "Post": "crew@x.test", "Help": "crew+help@x.test",
	"Unsubscribe": "crew+unsubscribe@x.test", "Policy": "members", "Hostname": "x.test",
	"Address": "bob@x.test", "Confirm": "crew+confirm-abc@x.test", "Expires": "Monday",
	"Subject": "Tomatoes", "Received": "Tuesday", "Reason": "no DKIM",
}

func TestBuiltinTemplatesRender(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"help":                "crew+unsubscribe@x.test",
		"unsubscribe-confirm": "crew+confirm-abc@x.test",
		"unsubscribed":        "bob@x.test is no longer on Garden crew",
		"confirm-post":        "Subject:  Tomatoes",
	} {
		subject, body, err := s.Render(name, data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if subject == "" || strings.Contains(subject, "\n") || !strings.Contains(body, want) || strings.HasPrefix(body, "\n") {
			t.Errorf("%s: subject %q, body:\n%s", name, subject, body)
		}
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
	if _, body, _ := s.Render("unsubscribed", data); !strings.Contains(body, "no longer on") {
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
