package store

import (
	"strings"
	"testing"
	"time"
)

const searchDocMessage = "From: =?UTF-8?Q?Zo=C3=AB_Martin?= <Zoe@Example.org>\r\n" +
	"To: crew@lists.example.test\r\n" +
	"Subject: Re: the =?UTF-8?Q?caf=C3=A9?= on Friday\r\n" +
	"Date: Wed, 25 Nov 2026 10:00:00 +0100\r\n" +
	"Message-ID: <abc123.xyz@mail.example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=b1\r\n\r\n" +
	"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
	"Friday works for me.\r\n\r\nOn Tuesday, Sam wrote:\r\n> Shall we try the new bakery?\r\n\r\n" +
	"--b1\r\nContent-Type: application/pdf; name=menu.pdf\r\nContent-Disposition: attachment; filename=menu.pdf\r\n" +
	"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"

func TestNewSearchDoc(t *testing.T) {
	d := NewSearchDoc([]byte(searchDocMessage))
	if d.FromName != "Zoë Martin" || !strings.EqualFold(d.FromAddr, "zoe@example.org") {
		t.Errorf("from: %q <%s>", d.FromName, d.FromAddr)
	}
	if d.Subject != "Re: the café on Friday" {
		t.Errorf("subject %q", d.Subject)
	}
	if d.Own != "Friday works for me." {
		t.Errorf("own %q", d.Own)
	}
	if !strings.Contains(d.Quoted, "> Shall we try the new bakery?") || strings.Contains(d.Quoted, "Friday works") {
		t.Errorf("quoted %q", d.Quoted)
	}
	if !d.Attachment {
		t.Error("the PDF is not seen as an attachment")
	}
	if !d.Date.Equal(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("date %v", d.Date)
	}
	// What IMAP's TEXT also reads: the other header fields, the MIME headers of the parts.
	other := " " + d.Other + " "
	for _, w := range []string{"abc123", "xyz", "lists", "menu", "pdf", "mixed"} {
		if !strings.Contains(other, " "+w+" ") {
			t.Errorf("Other lacks %q: %q", w, d.Other)
		}
	}
	// Words the fields above have are not repeated.
	for _, w := range []string{"friday", "bakery", "zoe"} {
		if strings.Contains(other, " "+w+" ") {
			t.Errorf("Other repeats %q: %q", w, d.Other)
		}
	}
	// For takes the archive's record: its thread, date, sender and subject.
	p := Post{Seq: 7, Origin: 3, Thread: 5, From: "zoe@example.org", Subject: "Re: the café on Friday", Received: time.Now()}
	f := d.For(p)
	if f.Thread != 3 || !f.Date.Equal(d.Date) || f.FromAddr != "zoe@example.org" {
		t.Errorf("For: %+v", f)
	}
	if got := d.For(Post{Received: p.Received}).Date; !got.Equal(d.Date) {
		t.Errorf("For without a record date keeps %v", got)
	}
	if got := (SearchDoc{}).For(Post{Received: p.Received}).Date; !got.Equal(p.Received) {
		t.Errorf("a document without a date takes the received time, got %v", got)
	}
}

// FuzzNewSearchDoc: any bytes give a document, and its words stay words.
func FuzzNewSearchDoc(f *testing.F) {
	f.Add([]byte(searchDocMessage))
	f.Add([]byte("Subject: x\r\n\r\nhello"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := NewSearchDoc(raw)
		for _, w := range strings.Fields(d.Other) {
			if strings.ContainsAny(w, " \x00") {
				t.Fatalf("Other has %q", w)
			}
		}
		if _, err := decodeDoc(must(encodeDoc(d))); err != nil {
			t.Fatal(err)
		}
	})
}

func must(v []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return v
}
