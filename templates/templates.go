// Package templates owns every text a person reads in mail crewmail writes: help, notices,
// confirmations and digests. Plain-text templates (text/*.txt) are executed with text/template;
// the HTML ones (html/*.html, so far only the digest's) with html/template, which escapes every
// value for the place it lands in, so a post's text can never become markup. The built-in
// templates are embedded; an operator can override any of them with a file of the same name
// (*.txt or *.html) in a folder of their own. A notice's template reads a Notice, the digest's
// a digest.Digest; notices are written one paragraph a line and wrapped only when sent, by
// Flow (format=flowed, RFC 3676), so no address makes a line too long; Check finds a field a template reads that its data's type lacks, on every
// branch, which running the template finds only on the branches it takes.
package templates

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/template"
)

//go:embed text/*.txt html/*.html
var builtin embed.FS

// funcs are the functions every template may call, built-in or overridden.
var funcs = map[string]any{
	// inc numbers a range from 1: {{range $i, $t := .Threads}}{{inc $i}}.
	"inc": func(i int) int { return i + 1 },
}

// Set is a parsed collection of templates.
type Set struct {
	text *template.Template
	html *htmltemplate.Template
}

// New parses the built-in templates, then any *.txt and *.html files in overrideDir (if not
// empty), which replace the built-in template of the same name.
func New(overrideDir string) (*Set, error) {
	textFS, err := fs.Sub(builtin, "text")
	if err != nil {
		return nil, err
	}
	htmlFS, err := fs.Sub(builtin, "html")
	if err != nil {
		return nil, err
	}
	t, err := template.New("").Option("missingkey=error").Funcs(funcs).ParseFS(textFS, "*.txt")
	if err != nil {
		return nil, fmt.Errorf("built-in templates: %w", err)
	}
	h, err := htmltemplate.New("").Option("missingkey=error").Funcs(funcs).ParseFS(htmlFS, "*.html")
	if err != nil {
		return nil, fmt.Errorf("built-in templates: %w", err)
	}
	var overridden []string
	if overrideDir != "" {
		dir := os.DirFS(overrideDir)
		texts, err := glob(dir, overrideDir, "*.txt")
		if err != nil {
			return nil, err
		}
		if overridden, err = glob(dir, overrideDir, "*.html"); err != nil {
			return nil, err
		}
		if len(texts) > 0 {
			if t, err = t.ParseFS(dir, "*.txt"); err != nil {
				return nil, fmt.Errorf("templates in %s: %w", overrideDir, err)
			}
		}
		if len(overridden) > 0 {
			if h, err = h.ParseFS(dir, "*.html"); err != nil {
				return nil, fmt.Errorf("templates in %s: %w", overrideDir, err)
			}
		}
	}
	// html/template checks a template's markup (an action inside an unclosed attribute, say)
	// only when it escapes it, at its first execution: do that now, so that a broken override
	// fails here and not when a digest is due. Executing without data fails at the first value
	// even so; only the escaper's errors count.
	for _, x := range h.Templates() {
		var escErr *htmltemplate.Error
		if err := x.Execute(io.Discard, nil); errors.As(err, &escErr) {
			if slices.Contains(overridden, x.Name()) {
				return nil, fmt.Errorf("templates in %s: %w", overrideDir, err)
			}
			return nil, fmt.Errorf("built-in templates: %w", err)
		}
	}
	return &Set{text: t, html: h}, nil
}

// glob lists the files in dir (named name) that match pattern; ParseFS fails when none does.
func glob(dir fs.FS, name, pattern string) ([]string, error) {
	matches, err := fs.Glob(dir, pattern)
	if err != nil {
		return nil, fmt.Errorf("templates in %s: %w", name, err)
	}
	return matches, nil
}

// Render executes the template name.txt with data. The first line of a template that starts
// with "Subject: " is the subject of the mail; Render returns it apart from the body.
func (s *Set) Render(name string, data any) (subject, body string, err error) {
	var b strings.Builder
	if err := s.text.ExecuteTemplate(&b, name+".txt", data); err != nil {
		return "", "", fmt.Errorf("template %s: %w", name, err)
	}
	text := b.String()
	if rest, ok := strings.CutPrefix(text, "Subject: "); ok {
		subject, body, _ = strings.Cut(rest, "\n")
		return strings.TrimSpace(subject), strings.TrimLeft(body, "\n"), nil
	}
	return "", text, nil
}

// RenderHTML executes the HTML template name.html with data and returns the document. Every
// value is escaped for its context (element text, attribute, URL); URLs other than http(s) and
// mailto come out as "#ZgotmplZ".
func (s *Set) RenderHTML(name string, data any) (string, error) {
	var b strings.Builder
	if err := s.html.ExecuteTemplate(&b, name+".html", data); err != nil {
		return "", fmt.Errorf("template %s.html: %w", name, err)
	}
	return b.String(), nil
}
