package replytext

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLinesFixtures reads each message in testdata as it would arrive, with LF line ends as
// stored and with the CRLF of SMTP.
func TestLinesFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"thunderbird-plain.eml", []string{"approve"}},
		{"gmail-alternative.eml", []string{"reject too much spam"}},
		{"outlook-html.eml", []string{"approve"}},
		{"apple-iphone-qp.eml", []string{"reject off-topic, please use the forum at https://forum.example.net/c/general"}},
		{"request-commands.eml", []string{"subscribe", "daily", "who", "invite a@example.org b@example.org"}},
		{"flowed-wrapped.eml", []string{"invite a@example.org b@example.org", "Obrigada,", "Inês"}},
		{"flowed-delsp.eml", []string{"invite a@example.org b@example.org c@example.com", "From now on please send me the digest.", "digest"}},
		{"outlook-original-message.eml", []string{"Approve", "Peter"}},
		{"base64-latin1.eml", []string{"reject Größe über dem Limit für Anhänge"}},
		{"pgp-signed.eml", []string{"unsubscribe"}},
		{"attachment-first.eml", []string{"invite a@example.org b@example.org", "who"}},
		{"html-body-text-attachment.eml", []string{"invite a@example.org b@example.org", "daily", "who"}},
		{"empty-body.eml", nil},
		{"unknown-charset.eml", []string{"approve"}},
		{"gmail-related-spanish.eml", []string{"reject Sin relación con la lista"}},
	} {
		msg, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		for name, m := range map[string][]byte{"LF": msg, "CRLF": bytes.ReplaceAll(msg, []byte("\n"), []byte("\r\n"))} {
			got, err := Lines(m, 10)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("%s (%s): Lines = %q, %v; want %q", tc.file, name, got, err, tc.want)
			}
		}
	}
}

func TestLinesMax(t *testing.T) {
	msg := []byte("From: a@example.org\r\n\r\none\r\ntwo\r\n\r\nthree\r\nfour\r\n")
	for max, want := range map[int][]string{
		-1: nil,
		0:  nil,
		1:  {"one"},
		3:  {"one", "two", "three"},
		10: {"one", "two", "three", "four"},
	} {
		if got, err := Lines(msg, max); err != nil || !slices.Equal(got, want) {
			t.Errorf("Lines(msg, %d) = %q, %v; want %q", max, got, err, want)
		}
	}
}

// TestLinesUnreadable covers how much of a damaged message is still used, and when there is
// nothing to use.
func TestLinesUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		msg     string
		want    []string
		wantErr bool
	}{
		{
			name: "blank lines before the header",
			msg:  "  \r\n\t\r\nFrom: a@example.org\r\n\r\napprove\r\n",
			want: []string{"approve"},
		},
		{
			name: "an empty line first is an empty header",
			msg:  "\r\nFrom: a@example.org\r\n",
			want: []string{"From: a@example.org"},
		},
		{
			name: "invalid UTF-8 in HTML",
			msg:  "Content-Type: text/html\r\n\r\n<p>approve \xff</p>\r\n",
			want: []string{"approve \uFFFD"},
		},
		{
			name:    "header line without a colon",
			msg:     "approve\r\n\r\n",
			wantErr: true,
		},
		{
			name: "unknown transfer encoding reads as sent",
			msg:  "Content-Type: text/plain\r\nContent-Transfer-Encoding: 8-bit\r\n\r\napprove\r\n",
			want: []string{"approve"},
		},
		{
			name: "base64 broken part way",
			msg:  "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nYXBwcm92ZQo=\r\n!!!!\r\n",
			want: []string{"approve"},
		},
		{
			name:    "base64 broken at once",
			msg:     "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n",
			wantErr: true,
		},
		{
			name: "multipart never closed",
			msg: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
				"Content-Type: text/plain\r\n\r\napprove\r\n",
			want: []string{"approve"},
		},
		{
			name:    "multipart without a boundary",
			msg:     "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\napprove\r\n--b--\r\n",
			wantErr: true,
		},
		{
			name: "html kept when the multipart breaks later",
			msg: "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n" +
				"Content-Type: text/html\r\n\r\n<p>approve</p>\r\n--b\r\nbroken header\r\n\r\nx\r\n--b--\r\n",
			want: []string{"approve"},
		},
		{
			name: "only an image",
			msg:  "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n",
		},
		{
			name: "only an attachment",
			msg:  "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\napprove\r\n",
		},
		{
			name: "Content-Type parameters that do not parse",
			msg:  "Content-Type: text/plain; charset=\r\n\r\napprove\r\n",
			want: []string{"approve"},
		},
		{
			name: "invalid UTF-8",
			msg:  "Content-Type: text/plain; charset=utf-8\r\n\r\napprove \xff\r\n",
			want: []string{"approve \uFFFD"},
		},
	} {
		got, err := Lines([]byte(tc.msg), 10)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Lines = %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestOwnLines checks where the person's own text is taken to end, on decoded text.
func TestOwnLines(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"quote", "approve\n  > quoted\nmore", []string{"approve"}},
		{"signature", "who\n-- \nName", []string{"who"}},
		{"signature without the space", "who\n--\nName", []string{"who"}},
		{"two dashes inside a line", "reject -- see the FAQ", []string{"reject -- see the FAQ"}},
		{"underscores", "approve\n________________________________\nFrom: Crew", []string{"approve"}},
		{"original message", "approve\n----- Original Message -----\n", []string{"approve"}},
		{"original message in capitals", "approve\n-----ORIGINAL MESSAGE-----", []string{"approve"}},
		{"outlook header block", "approve\n\nFrom: Crew <crew@lists.example.test>\nSent: Wednesday\nTo: x",
			[]string{"approve"}},
		{"outlook header block with date", "approve\nFrom: Crew\nTo: x\nCc: y\nDate: today", []string{"approve"}},
		{"from without a header block", "approve\nFrom: me, with thanks\nTo: x\nCc: y\nZ: z\nSent: z",
			[]string{"approve", "From: me, with thanks", "To: x", "Cc: y", "Z: z", "Sent: z"}},
		{"sent from my", "approve\nSent from my Galaxy", []string{"approve"}},
		{"get outlook", "approve\nGet Outlook for Android", []string{"approve"}},
		{"attribution", "approve\nOn Wed, 25 Nov 2026, Crew wrote:\nrest", []string{"approve"}},
		{"attribution without a space", "approve\nOn Wed, Crew <crew@lists.example.test>wrote:", []string{"approve"}},
		{"attribution over two lines", "approve\nOn Wed, Nov 25, 2026 at 10:00 AM Crew\n<crew@lists.example.test> wrote:",
			[]string{"approve"}},
		{"french", "approve\nLe mer. 25 nov. 2026 à 10:00, Crew <crew@lists.example.test> a écrit :", []string{"approve"}},
		{"french with a narrow no-break space", "approve\nLe 25/11/2026 à 10:00, Crew a écrit\u202f:", []string{"approve"}},
		{"german", "approve\nAm Mi., 25. Nov. 2026 um 10:00 Uhr schrieb Crew <crew@lists.example.test>:",
			[]string{"approve"}},
		{"spanish", "approve\nEl mié, 25 nov 2026 a las 10:00, Crew (<crew@x.test>) escribió:", []string{"approve"}},
		{"on without wrote", "on hold\nwho", []string{"on hold", "who"}},
		{"byte order mark", "\uFEFFapprove", []string{"approve"}},
		{"white space", "\t invite\u00a0 a@example.org \t b@example.org  \r\n\r\n\r\nwho", []string{"invite a@example.org b@example.org", "who"}},
		{"old Mac line ends", "subscribe\rwho\r", []string{"subscribe", "who"}},
		{"nothing", "\n \n\t\n", nil},
	} {
		if got := ownLines(tc.text, 10); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ownLines(%q) = %q; want %q", tc.name, tc.text, got, tc.want)
		}
	}
}

func TestUnflow(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		delsp    bool
		want     string
	}{
		{"joined", "invite a@example.org \r\nb@example.org\r\n", false, "invite a@example.org b@example.org\n\n"},
		{"delsp", "invite a@exam \nple.org\n", true, "invite a@example.org\n\n"},
		{"space-stuffed", " From here\n  >x\n", false, "From here\n >x\n\n"},
		{"signature stays fixed", "thanks \n-- \nName\n", false, "thanks -- \nName\n\n"},
		{"quote depth ends a paragraph", "approve \n> quoted \n> more\n>> deeper\n", false,
			"approve \n> quoted more\n>> deeper\n\n"},
		{"last line flowed", "approve ", false, "approve \n"},
	} {
		if got := unflow(tc.in, tc.delsp); got != tc.want {
			t.Errorf("%s: unflow(%q, %v) = %q; want %q", tc.name, tc.in, tc.delsp, got, tc.want)
		}
	}
}

func TestHTMLText(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"blocks and breaks", "<p>subscribe</p><div>daily<br>who</div><ul><li>help</li></ul><h1>x</h1>",
			[]string{"subscribe", "daily", "who", "help", "x"}},
		{"source line breaks are spaces", "<div>invite\na@example.org\r\n b@example.org</div>",
			[]string{"invite a@example.org b@example.org"}},
		{"pre keeps its lines", "<pre>subscribe\ndaily</pre>", []string{"subscribe", "daily"}},
		{"entities", "<p>reject &quot;spam&quot; &amp; ads&nbsp;&#x2014; &lt;sorry&gt;</p>",
			[]string{`reject "spam" & ads — <sorry>`}},
		{"table rows", "<table><tr><td>who</td><td>now</td></tr><tr><td>daily</td></tr></table>",
			[]string{"who now", "daily"}},
		{"hidden elements", "<html><head><title>t</title><style>p{}</style></head><body>" +
			"<script>x()</script><p>approve</p><!-- note --></body></html>", []string{"approve"}},
		{"blockquote dropped, text after kept", "<div>approve</div><blockquote type=\"cite\">reject</blockquote><div>thanks</div>",
			[]string{"approve", "thanks"}},
		{"thunderbird cite prefix", "<p>approve</p><div class=\"moz-cite-prefix\">On x, Crew wrote:<br></div>" +
			"<blockquote type=\"cite\">reject</blockquote>", []string{"approve"}},
		{"yahoo", "<div>approve</div><div id=\"yahoo_quoted_123\" class=\"yahoo_quoted\">reject</div>",
			[]string{"approve"}},
		{"outlook original is not in a blockquote", "<div>approve</div><div id=\"appendonsend\"></div><hr>" +
			"<div id=\"divRplyFwdMsg\"><b>From:</b> Crew</div><div>Reply with approve or reject</div>",
			[]string{"approve"}},
		{"nested deeper than html.Parse takes", strings.Repeat("<div>", 1000) + "approve", []string{"approve"}},
		{"nested quotes", "<p>approve</p><blockquote><blockquote>a</blockquote>b</blockquote><p>thanks</p>",
			[]string{"approve", "thanks"}},
		{"nested divs in a quote", "<div>approve</div><div class=\"gmail_quote\"><div><div>a</div></div>b</div>" +
			"<div>thanks</div>", []string{"approve", "thanks"}},
		{"head left open", "<head><title>t</title><body><p>approve</p>", []string{"approve"}},
		{"self-closing slash ignored", "<div>approve</div><blockquote/>reject", []string{"approve"}},
		{"end br", "subscribe</br>who", []string{"subscribe", "who"}},
		{"unclosed paragraphs and items", "<p>subscribe<p>daily<ul><li>who<li>help</ul>",
			[]string{"subscribe", "daily", "who", "help"}},
		{"tags inside a script", "<script>document.write('<blockquote>')</script><p>approve</p>", []string{"approve"}},
	} {
		if got := ownLines(htmlText([]byte(tc.in), false), 10); !slices.Equal(got, tc.want) {
			t.Errorf("%s: htmlText(%q) gives %q; want %q", tc.name, tc.in, got, tc.want)
		}
	}
}
