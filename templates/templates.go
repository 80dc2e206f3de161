// Package templates owns every text a person reads in mail crewmail writes: help, notices and,
// later, digests and confirmations. The built-in texts are embedded; an operator can override any
// of them with a file of the same name in a folder of their own.
package templates

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/template"
)

//go:embed text/*.txt
var builtin embed.FS

// Set is a parsed collection of templates.
type Set struct {
	t *template.Template
}

// New parses the built-in templates, then any *.txt files in overrideDir (if not empty), which
// replace the built-in template of the same name.
func New(overrideDir string) (*Set, error) {
	sub, err := fs.Sub(builtin, "text")
	if err != nil {
		return nil, err
	}
	t, err := template.New("").Option("missingkey=error").ParseFS(sub, "*.txt")
	if err != nil {
		return nil, fmt.Errorf("built-in templates: %w", err)
	}
	if overrideDir != "" {
		matches, err := fs.Glob(os.DirFS(overrideDir), "*.txt")
		if err != nil {
			return nil, fmt.Errorf("templates in %s: %w", overrideDir, err)
		}
		if len(matches) > 0 {
			if t, err = t.ParseFS(os.DirFS(overrideDir), "*.txt"); err != nil {
				return nil, fmt.Errorf("templates in %s: %w", overrideDir, err)
			}
		}
	}
	return &Set{t: t}, nil
}

// Render executes the template name.txt with data. The first line of a template that starts
// with "Subject: " is the subject of the mail; Render returns it apart from the body.
func (s *Set) Render(name string, data any) (subject, body string, err error) {
	var b strings.Builder
	if err := s.t.ExecuteTemplate(&b, name+".txt", data); err != nil {
		return "", "", fmt.Errorf("template %s: %w", name, err)
	}
	text := b.String()
	if rest, ok := strings.CutPrefix(text, "Subject: "); ok {
		subject, body, _ = strings.Cut(rest, "\n")
		return strings.TrimSpace(subject), strings.TrimLeft(body, "\n"), nil
	}
	return "", text, nil
}
