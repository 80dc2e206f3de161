package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on contrib/crewmail.service, with the
// binary it starts replaced by one that exists here; skipped where systemd is not installed.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	unit, err := os.ReadFile("../contrib/crewmail.service")
	if err != nil {
		t.Fatal(err)
	}
	start := regexp.MustCompile(`(?m)^ExecStart=\S+`)
	if !start.Match(unit) {
		t.Fatal("the unit has no ExecStart")
	}
	unit = start.ReplaceAll(unit, []byte("ExecStart=/bin/true"))
	path := filepath.Join(t.TempDir(), "crewmail.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
