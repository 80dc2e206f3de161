package mimetree

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

const hdr = "From: a@example.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"

// texts walks msg within lim and returns what its leaves say, in order.
func texts(t *testing.T, msg []byte, lim Limits) (*Part, []string) {
	t.Helper()
	var out []string
	w := Walker{Limits: lim, Leaf: func(p *Part, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		out = append(out, strings.TrimSpace(string(b)))
		return nil
	}}
	root, err := w.Walk(msg)
	if err != nil {
		t.Fatal(err)
	}
	return root, out
}

// deepest follows the first child down and returns the last part.
func deepest(p *Part) *Part {
	for len(p.Children) > 0 {
		p = p.Children[0]
	}
	return p
}

func TestMultipartsNestedToTheDepthLimitAreRead(t *testing.T) {
	lim := Limits{Depth: 5, Parts: 100}
	msg := mailtest.NestedMultipart(hdr, lim.Depth, "help")
	root, got := texts(t, msg, lim)
	if len(got) != 1 || got[0] != "help" {
		t.Fatalf("leaves say %q, want the innermost text", got)
	}
	leaf := deepest(root)
	if leaf.Depth != lim.Depth || leaf.Type != "text/plain" || leaf.Flat {
		t.Errorf("innermost part: depth %d, %s, flat %v", leaf.Depth, leaf.Type, leaf.Flat)
	}
}

func TestMultipartOneLevelBeyondTheDepthLimitIsFlat(t *testing.T) {
	lim := Limits{Depth: 5, Parts: 100}
	msg := mailtest.NestedMultipart(hdr, lim.Depth+1, "help")
	root, got := texts(t, msg, lim)
	if len(got) != 0 {
		t.Fatalf("leaves say %q; the text beyond the limit must not be read", got)
	}
	flat := deepest(root)
	if flat.Depth != lim.Depth || !flat.Flat || flat.Type != "multipart/mixed" || flat.Size == 0 {
		t.Errorf("part at the limit: depth %d, %s, flat %v, %d bytes", flat.Depth, flat.Type, flat.Flat, flat.Size)
	}
	// Its size is that of its whole body, as a part of its parent.
	w := Walker{Limits: lim, Keep: flat.Pos()}
	again, err := w.Walk(msg)
	if err != nil {
		t.Fatal(err)
	}
	kept := deepest(again)
	if int64(len(kept.Body)) != flat.Size || !bytes.Contains(kept.Body, []byte("help")) {
		t.Errorf("the flat part's body is %d bytes (%q…), its size %d", len(kept.Body), kept.Body[:min(40, len(kept.Body))], flat.Size)
	}
}

func TestMessagesNestedToTheDepthLimitAreRead(t *testing.T) {
	lim := Limits{Depth: 6, Parts: 100}
	root, got := texts(t, mailtest.NestedMessage(hdr, lim.Depth, "help"), lim)
	if len(got) != 1 || got[0] != "help" {
		t.Fatalf("leaves say %q, want the innermost text", got)
	}
	if leaf := deepest(root); leaf.Depth != lim.Depth || leaf.Type != "text/plain" {
		t.Errorf("innermost part: depth %d, %s", leaf.Depth, leaf.Type)
	}
	root, got = texts(t, mailtest.NestedMessage(hdr, lim.Depth+1, "help"), lim)
	if len(got) != 0 {
		t.Fatalf("leaves say %q; the message beyond the limit must not be read", got)
	}
	if flat := deepest(root); flat.Depth != lim.Depth || !flat.Flat || flat.Type != "message/rfc822" {
		t.Errorf("part at the limit: depth %d, %s, flat %v", flat.Depth, flat.Type, flat.Flat)
	}
}

// mixed returns a multipart/mixed message of n text parts.
func mixed(n int) []byte {
	var b bytes.Buffer
	b.WriteString(hdr + "Content-Type: multipart/mixed; boundary=b\r\n\r\n")
	for i := range n {
		fmt.Fprintf(&b, "--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--b--\r\n")
	return b.Bytes()
}

func TestPartsUpToTheLimitAreListed(t *testing.T) {
	lim := Limits{Depth: 10, Parts: 20}
	// The message itself is a part: 19 more fit.
	root, got := texts(t, mixed(lim.Parts-1), lim)
	if root.Flat || len(root.Children) != lim.Parts-1 || len(got) != lim.Parts-1 {
		t.Fatalf("flat %v, %d parts listed, %d read", root.Flat, len(root.Children), len(got))
	}
	root, _ = texts(t, mixed(lim.Parts), lim)
	if !root.Flat || len(root.Children) != 0 || root.Type != "multipart/mixed" {
		t.Fatalf("one part too many: flat %v, %d parts listed", root.Flat, len(root.Children))
	}
	if want := int64(len(mixed(lim.Parts))) - int64(len(hdr)+len("Content-Type: multipart/mixed; boundary=b\r\n\r\n")); root.Size != want {
		t.Errorf("flat size %d, want the whole body, %d", root.Size, want)
	}
}

func TestMultipartWithTooManyPartsIsFlatAndItsSiblingsStay(t *testing.T) {
	lim := Limits{Depth: 10, Parts: 10}
	inner := string(mixed(20)[len(hdr):]) // Content-Type, blank line, 20 parts
	msg := hdr + "Content-Type: multipart/mixed; boundary=outer\r\n\r\n" +
		"--outer\r\n" + inner + "\r\n--outer\r\nContent-Type: text/plain\r\n\r\nafter\r\n--outer--\r\n"
	root, _ := texts(t, []byte(msg), lim)
	if root.Flat || len(root.Children) != 2 {
		t.Fatalf("flat %v, %d parts", root.Flat, len(root.Children))
	}
	if a := root.Children[0]; !a.Flat || len(a.Children) != 0 {
		t.Errorf("the multipart of 20 parts: flat %v, %d parts listed", a.Flat, len(a.Children))
	}
	if b := root.Children[1]; b.Flat || b.Type != "text/plain" {
		t.Errorf("the part after it: flat %v, %s", b.Flat, b.Type)
	}
}

func TestMultipartWithoutItsBoundaryIsText(t *testing.T) {
	msg := hdr + "Content-Type: multipart/mixed; boundary=nowhere\r\n\r\nJust text.\r\n"
	root, got := texts(t, []byte(msg), Default)
	if !root.Broken || root.Type != "text/plain" || len(got) != 1 || got[0] != "Just text." {
		t.Fatalf("broken %v, %s, leaves %q", root.Broken, root.Type, got)
	}
	if root.Size != int64(len("Just text.\r\n")) || root.Lines != 1 {
		t.Errorf("size %d, lines %d", root.Size, root.Lines)
	}
}

// The 10,000-level messages of the tests of the servers: walked at once, within the limits.
func TestTenThousandLevelsAreWalkedWithinTheLimits(t *testing.T) {
	for name, msg := range map[string][]byte{
		"multipart": mailtest.NestedMultipart(hdr, 10000, "help"),
		"message":   mailtest.NestedMessage(hdr, 10000, "help"),
	} {
		root, got := texts(t, msg, Default)
		if len(got) != 0 {
			t.Errorf("%s: the text beyond the limit was read: %q", name, got)
		}
		flat := deepest(root)
		if flat.Depth != Default.Depth || !flat.Flat {
			t.Errorf("%s: deepest part at %d, flat %v", name, flat.Depth, flat.Flat)
		}
		if int64(len(msg)) < root.Size || root.Size < int64(len(msg))-200 {
			t.Errorf("%s: body of %d bytes in a message of %d", name, root.Size, len(msg))
		}
	}
}

func TestPosNamesThePartKeepKeeps(t *testing.T) {
	msg := hdr + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\none\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ntwo\r\n" +
		"--b--\r\n"
	root, err := Walk([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	inner := root.Children[1].Children[0]
	if !root.Children[1].Message() || inner.Header.Get("Subject") != "inner" {
		t.Fatalf("second part: %s, message %v", root.Children[1].Type, root.Children[1].Message())
	}
	w := Walker{Limits: Default, Keep: inner.Pos()}
	root, err = w.Walk([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(root.Children[1].Children[0].Body); got != "two" {
		t.Errorf("kept %q, want the carried message's body", got)
	}
	if root.Children[1].Size != int64(len("Subject: inner\r\n\r\ntwo")) || root.Children[1].Lines != 2 {
		t.Errorf("message part: %d bytes, %d lines", root.Children[1].Size, root.Children[1].Lines)
	}
}
