package lists

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"crewmail/internal/listcopy"
	"crewmail/templates"
)

// sharedDigest is a digest as digest.Renderer writes it (multipart/alternative, both parts
// quoted-printable), whose footer has the sign-in mark; paras paragraphs of text make it long.
func sharedDigest(t testing.TB, paras int) []byte {
	t.Helper()
	long := strings.Repeat("Ripe tomatoes by the shed, and beans along the north fence. ", 12)
	text := templates.FlowDelSp(strings.Repeat(long+"\n\n", paras) + "Help: crew+help@example.org\nRead and search the archive: " + listcopy.SignInMark + "\n")
	page := "<html><body>" + strings.Repeat("<p>"+long+"</p>\n", paras) + `<p><a href="` + listcopy.SignInMark + `">Read and search the archive</a></p></body></html>`
	var h mail.Header
	h.SetContentType("multipart/alternative", map[string]string{"boundary": "=_b"})
	h.Set("MIME-Version", "1.0")
	h.SetSubject("[Garden crew] Daily digest")
	h.SetAddressList("From", []*mail.Address{{Name: "Garden crew", Address: "crew@example.org"}})
	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ typ, body string }{{"text/plain; charset=utf-8; format=flowed; delsp=yes", text}, {"text/html; charset=utf-8", page}} {
		var ph message.Header
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		ph.Set("Content-Type", p.typ)
		pw, err := w.CreatePart(ph)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(pw, p.body) //nolint:errcheck // a bytes.Buffer
		pw.Close()
	}
	w.Close()
	return buf.Bytes()
}

// TestSignInReplacesTheMark: the member's link stands where the shared digest has the mark, in
// both parts, the header unchanged, and the text part's lines stay within 78 columns; a mail
// without the mark is returned as it is.
func TestSignInReplacesTheMark(t *testing.T) {
	msg := sharedDigest(t, 3)
	link := "https://lists.example.org/s/aaaaaaaanmoibkdcn5reazlymfwxa3dffz2gk43usne3wsueaibpgiqek6wrfsfqju&x"
	out, err := signIn(msg, link)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(out, head) {
		t.Errorf("the header changed:\n%s", out)
	}
	r, err := mail.CreateReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		parts = append(parts, string(b))
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts", len(parts))
	}
	text, page := parts[0], parts[1]
	for line := range strings.SplitSeq(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if n := len([]rune(line)); n > 78 {
			t.Errorf("a text line of %d columns: %q", n, line)
		}
	}
	// Read flowed with delsp=yes (RFC 3676 §4.2): the link is whole again.
	joined := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), " \n", "")
	if !strings.Contains(joined, "Read and search the archive:"+link) && !strings.Contains(joined, "Read and search the archive: "+link) {
		t.Errorf("the text part lacks the link:\n%s", text)
	}
	if !strings.Contains(page, `<a href="`+strings.ReplaceAll(link, "&", "&amp;")+`">`) || strings.Contains(page+text, listcopy.SignInMark) {
		t.Errorf("the HTML part:\n%s", page)
	}
	plain := []byte("From: crew@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nno mark here\r\n")
	if got, err := signIn(plain, link); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("a mail without the mark: %v\n%s", err, got)
	}
}

// BenchmarkSignIn is what putting a member's link in costs per member and digest, for a digest
// of about 100 KB (the HTML part near max_html_bytes).
func BenchmarkSignIn(b *testing.B) {
	msg := sharedDigest(b, 65)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := signIn(msg, "https://lists.example.org/s/aaaaaaaanmoibkdcn5reazlymfwxa3dffz2gk43usne3wsueaibpgiqek6wrfsfqju"); err != nil {
			b.Fatal(err)
		}
	}
}
