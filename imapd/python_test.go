package imapd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// imaplibScript reads a list's archive with Python's imaplib, as a third-party client, and
// prints what it found; the expected messages are files 1.eml, 2.eml… in its last argument.
const imaplibScript = `
import imaplib, os, re, sys
host, port, user, password, mailbox, expected = sys.argv[1:]
M = imaplib.IMAP4(host, int(port))
print("CAPS", " ".join(sorted(c.decode() if isinstance(c, bytes) else c for c in M.capabilities)))
typ, _ = M.login(user, password)
assert typ == "OK", typ
typ, data = M.list()
assert typ == "OK", typ
for line in data:
    print("LIST", line.decode())
typ, data = M.lsub()
assert typ == "OK", typ
print("LSUB", len(data))
typ, data = M.select(mailbox, readonly=True)
assert typ == "OK", (typ, data)
n = int(data[0])
print("EXISTS", n)
typ, data = M.fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[])")
assert typ == "OK", typ
seen = 0
for item in data:
    if not isinstance(item, tuple):
        continue
    meta, body = item
    seq = int(meta.split()[0])
    size = int(re.search(rb"RFC822.SIZE (\d+)", meta).group(1))
    with open(os.path.join(expected, "%d.eml" % seq), "rb") as f:
        want = f.read()
    if body != want:
        print("DIFFERS", seq, len(body), len(want))
    elif size != len(want):
        print("SIZE", seq, size, len(want))
    else:
        seen += 1
print("IDENTICAL", seen)
typ, data = M.uid("search", None, "TEXT", "pineapple")
print("UID SEARCH TEXT", data[0].decode())
typ, data = M.search(None, "SUBJECT", "charts")
print("SEARCH SUBJECT", data[0].decode())
typ, data = M.search(None, "SINCE", "5-Mar-2026")
print("SEARCH SINCE", data[0].decode())
typ, data = M.fetch("1", "(FLAGS)")
print("FLAGS", data[0].decode())
typ, data = M.store("1", "+FLAGS", "(\\Deleted)")
print("STORE", typ)
M.close()
typ, _ = M.logout()
print("LOGOUT", typ)
`

func TestPythonImaplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH")
	}
	e := newEnv(t)
	dir := t.TempDir()
	for i, raw := range crewPosts {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.eml", i+1)), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(e.addr)
	cmd := exec.Command(python, "-c", imaplibScript, host, port, carol, passwords[carol], crew, dir)
	out, err := cmd.CombinedOutput()
	t.Logf("imaplib:\n%s", out)
	if err != nil {
		t.Fatalf("the imaplib script failed: %v", err)
	}
	for _, want := range []string{
		`LIST (\Noinferiors) "/" "crew"`,
		`LIST (\Noinferiors) "/" "other"`,
		"LSUB 2",
		"EXISTS 6",
		"IDENTICAL 6",
		"UID SEARCH TEXT 4",
		"SEARCH SUBJECT 3 4",
		"SEARCH SINCE 5 6",
		"FLAGS 1 (UID 1 FLAGS ())",
		"STORE NO",
		"LOGOUT BYE",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("imaplib output lacks %q", want)
		}
	}
	if strings.Contains(string(out), "DIFFERS") || strings.Contains(string(out), "SIZE ") {
		t.Error("imaplib got messages that differ from the archive")
	}
}
