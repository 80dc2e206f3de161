package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

func TestMemberGuideEmbedded(t *testing.T) {
	if !strings.HasPrefix(Member, "# ") || !strings.Contains(Member, "crew@example.org") {
		t.Errorf("Member does not hold the member guide: %.80q", Member)
	}
}

var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link of the guides names a file that exists, and every #anchor a heading of
// the page it points into (as GitHub makes anchors from headings).
func TestLinks(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages: %v", err)
	}
	for _, page := range pages {
		text := read(t, page)
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %s: %v", page, target, err)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchors(read(t, path))[anchor] {
				t.Errorf("%s: link %s: %s has no heading for #%s", page, target, path, anchor)
			}
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// anchors returns the anchors GitHub gives the headings of a Markdown page: lower case, spaces
// to hyphens, punctuation dropped, duplicates numbered.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	fence := false
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		for i, base := 1, a; out[a]; i++ {
			a = base + "-" + string(rune('0'+i))
		}
		out[a] = true
	}
	return out
}

// TestREADMENamesEveryPackage: the README's package table has a row for every package of the
// module, so a newcomer finds what each one owns.
func TestREADMENamesEveryPackage(t *testing.T) {
	readme := read(t, "../README.md")
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != "..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../")))
		if !strings.Contains(readme, "| `"+pkg+"` |") {
			t.Errorf("the README's package table has no row for %s", pkg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
