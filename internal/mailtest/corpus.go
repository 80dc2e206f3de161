package mailtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Corpus returns the *.eml files of the real-mail corpus's folders subs, from the folder
// CREWMAIL_CORPUS names, and skips the test, saying so, when it is not set. A relative
// CREWMAIL_CORPUS is taken from the project's root, where people run "go test ./...", not from
// the package's folder, where the test runs.
func Corpus(t testing.TB, subs ...string) []string {
	t.Helper()
	dir := os.Getenv("CREWMAIL_CORPUS")
	if dir == "" {
		t.Skip("CREWMAIL_CORPUS is not set, so the real-mail corpus is skipped; CREWMAIL_CORPUS=DIR go test ./... runs it")
	}
	if !filepath.IsAbs(dir) {
		root, err := projectRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, dir)
	}
	var files []string
	for _, sub := range subs {
		matches, err := filepath.Glob(filepath.Join(dir, sub, "*.eml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(matches) == 0 {
			t.Fatalf("CREWMAIL_CORPUS=%s has no messages in %s/", os.Getenv("CREWMAIL_CORPUS"), sub)
		}
		files = append(files, matches...)
	}
	return files
}

// projectRoot is the folder holding go.mod, above the test's working folder.
func projectRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// SMTPForm gives a message read from a file the line endings SMTP carries, without the mbox
// "From " envelope line some files begin with (it is not part of the message).
func SMTPForm(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("From ")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}
