package replytext

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"crewmail/internal/mailtest"
	"crewmail/internal/rawmsg"
)

// TestBodyFixtures reads each message in testdata/body as archived, with the CRLF of SMTP, and
// also with LF line ends. Sizes count the bytes as archived, so with LF only the text and the
// names of the files are compared: a message/rfc822 part is shorter by its line ends.
func TestBodyFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Text
	}{
		{"lkml-interleaved.eml", Text{
			Text: "Why only the dynamic ones? A static entry the bridge installed for a\n" +
				"port that is now down is just as stale.\n" +
				"\n" +
				"\tif (err)\n" +
				"\t\tdev_err(chip->dev, \"p%d: failed to flush ATU: %pe\\n\",\n" +
				"\t\t\tport, ERR_PTR(err));\n" +
				"\n" +
				"please, so that the reason ends up in the log.\n" +
				"\n" +
				"Thanks,\n" +
				"Ilse",
			Trimmed: true,
			Quoted:  true,
		}},
		{"gmail-top-post.eml", Text{
			Text:    "Count me in — I can be there from 10:30.\n\nCould someone bring the sign-up sheet?\n\nPriya",
			Trimmed: true,
			Quoted:  true,
		}},
		{"outlook-html-only.eml", Text{
			Text:    "Bonjour – I will come too, and I can bring the projector.\n\nRenée",
			Trimmed: true,
			Quoted:  true, // the original below Outlook's rule; "Get Outlook for iOS" alone would not be
		}},
		{"bottom-post.eml", Text{
			Text:    "Friday works for me. I'll be a bit late, though — 10:15 or so.\n\nJürgen",
			Trimmed: true,
			Quoted:  true,
		}},
		{"pdf-and-image.eml", Text{
			Text:        "Hi all,\n\nthe minutes are attached, with a photo of the whiteboard.\n\nJonas",
			Attachments: []File{{"Minutes 2026-11.pdf", 2682}, {"weißes Brett.png", 70}},
			Flowed:      true,
		}},
		{"forwarded-rfc822.eml", Text{
			Text:        "The table is booked, see below.",
			Attachments: []File{{"forwarded message: Booking confirmed: café table, Friday", 494}},
		}},
		{"flowed.eml", Text{
			Text: "I’ll come by bike, so I can pick up the cake from the bakery on the way. " +
				"Tell me if you want anything else from there.\n" +
				"\n" +
				"From now on I’ll also put these dates in the shared calendar.\n" +
				"\n" +
				"Obrigada,\n" +
				"Inês",
			Trimmed: true,
			Quoted:  true, Flowed: true,
		}},
		{"latin1-base64.eml", Text{
			Text: "Hallo zusammen,\n" +
				"\n" +
				"die Größe des Raums reicht für 14 Personen. Kaffee und Kuchen\n" +
				"bringe ich mit; bitte sagt mir bis Donnerstag, ob ihr kommt.\n" +
				"\n" +
				"Grüße\n" +
				"Jürgen",
			Trimmed: true, // the signature
		}},
		{"new-post.eml", Text{
			Text: "Hi everyone,\n" +
				"\n" +
				"here is what to bring:\n" +
				"\n" +
				"  - sleeping bag (the hut has blankets, but not enough)\n" +
				"  - head torch\n" +
				"\t- slippers for inside\n" +
				"\n" +
				"Cars leave at 8:00 from the station > car park. Greetings >from the\n" +
				"committee.\n" +
				"\n" +
				"Amara",
		}},
		{"apple-inline-image.eml", Text{
			Text:        "This is what we woke up to:\n\nBreakfast at 9.",
			Trimmed:     true, // "Sent from my iPhone"
			Attachments: []File{{"IMG_4821.jpeg", 770}},
		}},
	} {
		msg, err := os.ReadFile(filepath.Join("testdata", "body", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Body(mailtest.SMTPForm(msg), 10000)
		if err != nil || !equalText(got, tc.want) {
			t.Errorf("%s: Body = %+v, %v\nwant %+v", tc.file, got, err, tc.want)
		}
		lf, err := Body(msg, 10000)
		if err != nil || lf.Text != tc.want.Text || lf.Trimmed != tc.want.Trimmed || !slices.Equal(names(lf), names(tc.want)) {
			t.Errorf("%s (LF): Body = %+v, %v\nwant %+v", tc.file, lf, err, tc.want)
		}
	}
}

func equalText(a, b Text) bool {
	return a.Text == b.Text && a.Trimmed == b.Trimmed && a.Quoted == b.Quoted && a.Flowed == b.Flowed &&
		slices.Equal(a.Attachments, b.Attachments)
}

func names(t Text) []string {
	var n []string
	for _, f := range t.Attachments {
		n = append(n, f.Name)
	}
	return n
}

// TestBodyMaxChars cuts the text of a new post at several lengths.
func TestBodyMaxChars(t *testing.T) {
	msg, err := os.ReadFile(filepath.Join("testdata", "body", "new-post.eml"))
	if err != nil {
		t.Fatal(err)
	}
	all := "Hi everyone,\n\nhere is what to bring:\n\n" +
		"  - sleeping bag (the hut has blankets, but not enough)\n  - head torch\n\t- slippers for inside\n\n" +
		"Cars leave at 8:00 from the station > car park. Greetings >from the\ncommittee.\n\nAmara"
	for _, tc := range []struct {
		max     int
		want    string
		trimmed bool
	}{
		{-1, "", true},
		{0, "", true},
		{12, "Hi everyone,", true},
		{20, "Hi everyone,", true},
		{60, "Hi everyone,\n\nhere is what to bring:", true},
		{utf8.RuneCountInString(all), all, false},
		{1000, all, false},
	} {
		got, err := Body(mailtest.SMTPForm(msg), tc.max)
		if err != nil || got.Text != tc.want || got.Trimmed != tc.trimmed {
			t.Errorf("Body(msg, %d) = %q, trimmed %v, %v; want %q, trimmed %v", tc.max, got.Text, got.Trimmed, err, tc.want, tc.trimmed)
		}
	}
}

func TestCutText(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
		cut      bool
	}{
		{"fits", "one two", 7, "one two", false},
		{"empty", "", 0, "", false},
		{"nothing allowed", "one", 0, "", true},
		{"at a line end", "one two\nthree four\nfive", 12, "one two", true},
		{"exactly at a line end", "abc\ndef", 3, "abc", true},
		{"blank line before the cut", "para one\n\npara two", 10, "para one", true},
		{"line end too early, so a space", "a\nbbbb cccc dddd", 12, "a\nbbbb cccc", true},
		{"no place to cut", "abcdefghij", 4, "abcd", true},
		{"runes, not bytes", "ääää ööö", 6, "ääää", true},
		{"multibyte kept whole", "€€€€€", 3, "€€€", true},
	} {
		got, cut := cutText(tc.in, tc.max)
		if got != tc.want || cut != tc.cut {
			t.Errorf("%s: cutText(%q, %d) = %q, %v; want %q, %v", tc.name, tc.in, tc.max, got, cut, tc.want, tc.cut)
		}
	}
}

// TestOwnText checks what of a decoded text is the author's own, and when something was left out.
func TestOwnText(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string
		trimmed  bool
	}{
		{"plain", "Hello,\n\n  indented\tand tabbed  \n\n\n\nbye\n\n", "Hello,\n\n  indented\tand tabbed\n\nbye", false},
		{"leading blank lines", "\n \n\t\nHello", "Hello", false},
		{"byte order mark", "\uFEFFHello", "Hello", false},
		{"interleaved", "On Mon, 2 Mar 2026, Ann wrote:\n> q1\n> q1b\n\na1\n\n> q2\na2\n", "a1\n\na2", true},
		{"quote without attribution", "> q\nanswer", "answer", true},
		{"indented quote", "answer\n   > q", "answer", true},
		{"nested quotes", "a\n\n> q\n>> qq\n> q\n\nb", "a\n\nb", true},
		{"bottom post", "On Mon, Ann wrote:\n> q\n\nanswer\n", "answer", true},
		{"attribution over two lines", "On Tue, 22 Jun 2010 20:52:50 +0530\nSuresh <s@example.com> wrote:\n\n> q\n\nanswer",
			"answer", true},
		{"gmail wraps the address", "answer\n\nOn Wed, Nov 25, 2026 at 10:00 AM Crew <\ncrew@lists.example.test> wrote:\n\n> q",
			"answer", true},
		{"own line above a wrapped attribution stays", "I agree with what\nBob wrote:\n> q\nyes", "I agree with what\nyes", true},
		{"own line above a one-line attribution stays", "On 5.10 it works.\nOn Mon, 2 Mar 2026, Ann wrote:\n> q",
			"On 5.10 it works.", true},
		{"name wrote", "Suresh Jayaraman <s@example.com> wrote:\n\n> q\n\nSeems reasonable.", "Seems reasonable.", true},
		{"mutt star", "* Henrik <h@example.com> wrote:\n\n> q\n\nApplied.", "Applied.", true},
		{"gnus writes", "Xah <x@example.com> writes:\n> q\nNo.", "No.", true},
		{"lotus wrote on", "Steve <s@example.com> wrote on 06/25/2010 04:05:30 PM:\n\n> q\n\nNot yet.", "Not yet.", true},
		{"excerpts from", "Excerpts from Stefan's message of Thu Nov 26 09:17:15 +0100 2009:\n> q\nThanks!", "Thanks!", true},
		{"french", "Le 14/02/2011 11:56, Vasiliy a écrit :\n> q\nOK", "OK", true},
		{"french narrow no-break space", "Le 14/02/2011 11:56, Vasiliy a écrit\u202f:\n> q\nOK", "OK", true},
		{"german", "Am 25.11.26 um 17:30 schrieb Jonas Berg:\n> q\n\nJa.", "Ja.", true},
		{"spanish", "El mié, 25 nov 2026 a las 10:00, Crew escribió:\n> q\nSí.", "Sí.", true},
		{"rewrote is not wrote", "The code I rewrote:\n> q\nok", "The code I rewrote:\nok", true},
		{"header block above a quote", "From: Joe Perches <joe@perches.com>\nDate: Sun, 14 Nov 2010 19:04:58 -0800\n\n> q\n\nApplied.",
			"Applied.", true},
		{"patch header at the top stays", "From: Joe Perches <joe@perches.com>\nDate: Sun, 14 Nov 2010\n\nFix a typo.",
			"From: Joe Perches <joe@perches.com>\nDate: Sun, 14 Nov 2010\n\nFix a typo.", false},
		{"signature", "answer\n-- \nName\n> not a quote of ours", "answer", true},
		{"signature without the space", "answer\n--\nName", "answer", true},
		{"two dashes inside a line", "see -- the FAQ", "see -- the FAQ", false},
		{"original message", "Approve.\n\nPeter\n\n-----Original Message-----\nFrom: Crew\nSent: Wed\n\ntext",
			"Approve.\n\nPeter", true},
		{"outlook header block", "Approve.\n\n________________________________\nFrom: Crew <c@example.test>\nSent: Wednesday\nTo: x\n\ntext",
			"Approve.", true},
		{"outlook header block with date", "Yes.\nFrom: Crew\nTo: x\nCc: y\nDate: today\n\ntext", "Yes.", true},
		{"from without a header block", "Yes.\nFrom: me, with thanks\nTo: x\nCc: y\nZ: z\nSent: z",
			"Yes.\nFrom: me, with thanks\nTo: x\nCc: y\nZ: z\nSent: z", false},
		{"forward without a word of one's own stays", "-----Original Message-----\nFrom: Crew\nSent: Wed\n\ntext",
			"-----Original Message-----\nFrom: Crew\nSent: Wed\n\ntext", false},
		{"sent from my phone", "Yes.\n\nSent from my iPhone\n\nOn Mon, Ann wrote:\n> q", "Yes.", true},
		{"sent from in the middle stays", "Sent from my iPhone, which is why this is short.\nYes.",
			"Sent from my iPhone, which is why this is short.\nYes.", false},
		{"get outlook", "Yes.\nGet Outlook for Android", "Yes.", true},
		{"german phone", "Ja.\n\nVon meinem iPhone gesendet", "Ja.", true},
		{"mailman footer", "Hello.\n\n_______________________________________________\nnotmuch mailing list\nnotmuch@notmuchmail.org",
			"Hello.", true},
		{"rule that is not a footer stays", "Hello.\n\n____\nmore", "Hello.\n\n____\nmore", false},
		{"quote broken by its client", "On Mon, 2 Mar 2026, Ann wrote:\n" +
			"> Cc: Timur Tabi; Alexandre Bounine; linuxppc-dev@lists.ozlabs.org;\n" +
			"linux-kernel@vger.kernel.org;\n" +
			"> Subject: Re: [PATCH v2 5/7] powerpc/85xx: Add MChk handler for SRIO\n" +
			"port\n" +
			">\n" +
			"\n" +
			"Still broken.", "Still broken.", true},
		{"short answer below a short quote stays", "> Is it?\nYes.\n> Really?\nNo.", "Yes.\nNo.", true},
		{"long answer below a long quote stays",
			"> This line of the quote is long enough to have been wrapped by a client.\n" +
				"That is the answer, a full sentence of it.\n> next",
			"That is the answer, a full sentence of it.", true},
		{"quote mark of HTML", "answer\n" + quoteMark + "\nmore", "answer\nmore", true},
	} {
		got, trimmed, _ := ownText(splitLines(tc.in))
		if got != tc.want || trimmed != tc.trimmed {
			t.Errorf("%s: ownText(%q) = %q, %v; want %q, %v", tc.name, tc.in, got, trimmed, tc.want, tc.trimmed)
		}
	}
}

// TestBodyHTML covers what of an HTML-only message is shown.
func TestBodyHTML(t *testing.T) {
	for _, tc := range []struct {
		name, html string
		want       string
		trimmed    bool
	}{
		{"paragraphs", "<p>Hello</p><p>second <b>paragraph</b>\n  wrapped</p>", "Hello\n\nsecond paragraph wrapped", false},
		{"blockquote and the attribution above it", "<div>Yes.</div><div>On Mon, 2 Mar 2026, Ann wrote:</div>" +
			"<blockquote type=\"cite\">q</blockquote>", "Yes.", true},
		{"text between quotes", "<blockquote>q1</blockquote><p>a1</p><blockquote>q2</blockquote><p>a2</p>", "a1\n\na2", true},
		{"thunderbird", "<p>Yes.</p><div class=\"moz-cite-prefix\">On 25/11/2026 10:00, Ann wrote:<br></div>" +
			"<blockquote type=\"cite\">q</blockquote><br><pre class=\"moz-signature\" cols=\"72\">-- \nAnn</pre>", "Yes.", true},
		{"gmail signature", "<div dir=\"ltr\">Yes.<br clear=\"all\"><div><div dir=\"ltr\" class=\"gmail_signature\">Ann<br>CEO</div></div></div>",
			"Yes.", true},
		{"outlook", "<div>Yes.</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> Ann</div><div>q</div>",
			"Yes.", true},
		{"a void element with a quote class is not a quote", "<p>a<br class=\"gmail_quote\">b</p>", "a\nb", false},
		{"style and script are not quotes", "<style>p{}</style><script>x()</script><p>Yes.</p>", "Yes.", false},
	} {
		msg := "From: a@example.org\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + tc.html
		got, err := Body([]byte(msg), 1000)
		if err != nil || got.Text != tc.want || got.Trimmed != tc.trimmed {
			t.Errorf("%s: Body = %q, trimmed %v, %v; want %q, trimmed %v", tc.name, got.Text, got.Trimmed, err, tc.want, tc.trimmed)
		}
	}
}

// TestMarkQuotesKeepsTheRest checks that markQuotes changes nothing but where it adds a mark,
// whatever the tokenizer makes of the input.
func TestMarkQuotesKeepsTheRest(t *testing.T) {
	for _, in := range []string{
		"<p>x</p>", "<a hre", "<p>x</p><!-- unterminated", "<script>if (a<b) {</script", "x\x00y<b\x00>",
		"<![CDATA[ x", "<!DOCTYPE", "</", "<", "a<b c='d", "<textarea><blockquote></textarea>", "<title><p>",
	} {
		if got := markQuotes([]byte(in)); string(got) != in {
			t.Errorf("markQuotes(%q) = %q", in, got)
		}
	}
	in := "<p>a</p><blockquote>q</blockquote>"
	if got, want := string(markQuotes([]byte(in))), "<p>a</p><br>"+quoteMark+"<br><blockquote>q</blockquote>"; got != want {
		t.Errorf("markQuotes(%q) = %q; want %q", in, got, want)
	}
}

// TestBodyParts covers how the parts of a message are told apart: the text, the files, and
// what is neither.
func TestBodyParts(t *testing.T) {
	mixed := func(parts ...string) string {
		return "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
			strings.Join(parts, "\r\n--b\r\n") + "\r\n--b--\r\n"
	}
	for _, tc := range []struct {
		name string
		msg  string
		want Text
	}{
		{
			name: "no Content-Type is text/plain",
			msg:  "From: a@example.org\r\n\r\nHello\r\n",
			want: Text{Text: "Hello"},
		},
		{
			name: "a Content-Type that does not parse is text/plain",
			msg:  "From: a@example.org\r\nContent-Type: text plain\r\n\r\nHello\r\n",
			want: Text{Text: "Hello"},
		},
		{
			name: "only an image without a name",
			msg:  "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n",
		},
		{
			name: "only an attachment",
			msg:  "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\napprove\r\n",
			want: Text{Attachments: []File{{"a.txt", 9}}},
		},
		{
			name: "an attachment without a name",
			msg:  mixed("Content-Type: text/plain\r\n\r\nsee attached", "Content-Type: application/octet-stream\r\nContent-Disposition: attachment\r\n\r\nabc"),
			want: Text{Text: "see attached", Attachments: []File{{"unnamed (application/octet-stream)", 3}}},
		},
		{
			name: "a name from Content-Type, and a path cut off",
			msg:  mixed("Content-Type: text/plain\r\n\r\nsee attached", "Content-Type: application/pdf; name=\"C:\\\\Users\\\\ann\\\\report.pdf\"\r\n\r\nabc"),
			want: Text{Text: "see attached", Attachments: []File{{"report.pdf", 3}}},
		},
		{
			name: "RFC 2047 name",
			msg:  mixed("Content-Type: text/plain\r\n\r\nx", "Content-Type: application/pdf; name=\"=?UTF-8?Q?R=C3=A9sum=C3=A9.pdf?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJjZA=="),
			want: Text{Text: "x", Attachments: []File{{"Résumé.pdf", 4}}},
		},
		{
			name: "a text attachment's size is before charset conversion",
			msg:  mixed("Content-Type: text/plain\r\n\r\nx", "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\n\xe4\xf6\xfc"),
			want: Text{Text: "x", Attachments: []File{{"a.txt", 3}}},
		},
		{
			name: "a named text after the first is a file",
			msg:  mixed("Content-Type: text/plain\r\n\r\nx", "Content-Type: text/x-patch; name=fix.patch\r\n\r\n--- a\r\n+++ b", "Content-Type: text/plain; name=notes.txt\r\n\r\nnotes"),
			want: Text{Text: "x", Attachments: []File{{"fix.patch", 12}, {"notes.txt", 5}}},
		},
		{
			name: "the texts of a multipart/mixed are all shown",
			msg:  mixed("Content-Type: text/plain\r\n\r\nbefore", "Content-Type: image/jpeg; name=a.jpg\r\n\r\nabc", "Content-Type: text/plain\r\n\r\nafter"),
			want: Text{Text: "before\n\nafter", Attachments: []File{{"a.jpg", 3}}},
		},
		{
			name: "one alternative is shown, its files and the others' stay",
			msg: mixed("Content-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n" +
				"Content-Type: text/plain\r\n\r\nplain\r\n--c\r\n" +
				"Content-Type: multipart/related; boundary=d\r\n\r\n--d\r\n" +
				"Content-Type: text/html\r\n\r\n<p>html</p>\r\n--d\r\n" +
				"Content-Type: image/png; name=logo.png\r\nContent-ID: <logo>\r\n\r\nab\r\n--d--\r\n" +
				"\r\n--c--"),
			want: Text{Text: "plain", Attachments: []File{{"logo.png", 2}}},
		},
		{
			name: "html when the plain alternative is blank",
			msg: "Content-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n" +
				"Content-Type: text/plain\r\n\r\n \r\n--c\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--c--\r\n",
			want: Text{Text: "html"},
		},
		{
			name: "signatures are not files",
			msg: "Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\r\n\r\n--s\r\n" +
				"Content-Type: text/plain\r\n\r\nsigned\r\n--s\r\n" +
				"Content-Type: application/pgp-signature; name=signature.asc\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n--s--\r\n",
			want: Text{Text: "signed"},
		},
		{
			name: "forwarded message without a subject",
			msg:  mixed("Content-Type: text/plain\r\n\r\nfyi", "Content-Type: message/rfc822\r\n\r\nFrom: b@example.org\r\n\r\nhi"),
			want: Text{Text: "fyi", Attachments: []File{{"forwarded message", 25}}},
		},
		{
			name: "a multipart/digest holds messages",
			msg:  "Content-Type: multipart/digest; boundary=g\r\n\r\n--g\r\n\r\nSubject: one\r\n\r\n1\r\n--g\r\n\r\nSubject: two\r\n\r\n2\r\n--g--\r\n",
			want: Text{Attachments: []File{{"forwarded message: one", 17}, {"forwarded message: two", 17}}},
		},
		{
			name: "unquoted boundary with a =",
			msg: "Content-Type: multipart/alternative; boundary=----=_NextPart_000_0093\r\n\r\n" +
				"------=_NextPart_000_0093\r\nContent-Type: text/plain\r\n\r\nHello\r\n------=_NextPart_000_0093--\r\n",
			want: Text{Text: "Hello"},
		},
		{
			name: "salvaged boundary after invalid UTF-8", // found by FuzzBody: an index out of range
			msg: "Content-Type: multipart/mixed;\xa7BoundArY=b\r\n\r\n--b\r\n" +
				"Content-Type: text/plain\r\n\r\nHello\r\n--b--\r\n",
			want: Text{Text: "Hello"},
		},
		{
			name: "multipart without a boundary",
			msg:  "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\napprove\r\n--b--\r\n",
		},
		{
			name: "multipart never closed",
			msg:  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nHello\r\n",
			want: Text{Text: "Hello"},
		},
		{
			name: "what came before a broken part stays",
			msg:  mixed("Content-Type: text/plain\r\n\r\nHello", "broken header\r\n\r\nx"),
			want: Text{Text: "Hello"},
		},
		{
			name: "base64 broken at once",
			msg:  "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n",
		},
		{
			name: "unknown transfer encoding reads as sent",
			msg:  "Content-Type: text/plain\r\nContent-Transfer-Encoding: 8-bit\r\n\r\nHello\r\n",
			want: Text{Text: "Hello"},
		},
		{
			name: "unknown charset reads as sent",
			msg:  "Content-Type: text/plain; charset=x-unknown\r\n\r\nHello \xff\r\n",
			want: Text{Text: "Hello \uFFFD"},
		},
		{
			name: "blank lines before the header",
			msg:  "  \r\n\t\r\nFrom: a@example.org\r\n\r\nHello\r\n",
			want: Text{Text: "Hello"},
		},
	} {
		got, err := Body([]byte(tc.msg), 1000)
		if err != nil || !equalText(got, tc.want) {
			t.Errorf("%s: Body = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestBodyHeaderUnreadable(t *testing.T) {
	for _, msg := range []string{"approve\r\n\r\n", " folded\r\nFrom: a@example.org\r\n\r\nx"} {
		if got, err := Body([]byte(msg), 1000); err == nil || !equalText(got, Text{}) {
			t.Errorf("Body(%q) = %+v, %v; want an error", msg, got, err)
		}
	}
}

// TestBodyLongText checks the bound on how much of a text is read.
func TestBodyLongText(t *testing.T) {
	msg := "From: a@example.org\r\n\r\n" + strings.Repeat("word ", maxText/5+10)
	got, err := Body([]byte(msg), 50)
	if err != nil || !got.Trimmed || utf8.RuneCountInString(got.Text) > 50 {
		t.Errorf("Body = %q, trimmed %v, %v", got.Text, got.Trimmed, err)
	}
}

// TestBodyCorpus runs Body over real mail when CREWMAIL_CORPUS names the corpus.
func TestBodyCorpus(t *testing.T) {
	for _, path := range mailtest.Corpus(t, "threads", "mime", "malformed") {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		msg := mailtest.SMTPForm(b)
		_, headerErr := rawmsg.ReadHeader(msg)
		for _, max := range []int{80, 2000} {
			got, err := Body(msg, max)
			if err != nil {
				if headerErr == nil {
					t.Errorf("%s: %v, though its header reads", filepath.Base(path), err)
				}
				continue
			}
			checkText(t, filepath.Base(path), got, max)
		}
	}
}

// checkText checks what Body promises of any result.
func checkText(t *testing.T, name string, got Text, max int) {
	t.Helper()
	if !utf8.ValidString(got.Text) {
		t.Errorf("%s: text is not valid UTF-8: %q", name, got.Text)
	}
	if n := utf8.RuneCountInString(got.Text); n > max {
		t.Errorf("%s: text has %d runes, more than %d", name, n, max)
	}
	if strings.TrimRightFunc(got.Text, unicode.IsSpace) != got.Text || strings.HasPrefix(got.Text, "\n") {
		t.Errorf("%s: text begins with a blank line or ends in white space: %q", name, got.Text)
	}
	if strings.Contains(got.Text, "\n\n\n") || strings.Contains(got.Text, "\r") {
		t.Errorf("%s: text has a run of blank lines or a CR: %q", name, got.Text)
	}
	for _, f := range got.Attachments {
		if f.Name == "" || !utf8.ValidString(f.Name) || f.Size < 0 || f.Size > maxSize {
			t.Errorf("%s: attachment %+v", name, f)
		}
	}
}

// The seed corpus is in testdata/fuzz/FuzzBody, made from small messages in the styles of the
// fixtures; "go test" runs it, "go test -fuzz=FuzzBody ./internal/replytext" explores further.

// FuzzBody feeds Body arbitrary messages: it must not panic, and what it returns must keep its
// promises whatever the input.
func FuzzBody(f *testing.F) {
	const max = 200
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := Body(msg, max)
		if err != nil {
			if !equalText(got, Text{}) {
				t.Errorf("Body returned %+v with the error %v", got, err)
			}
			return
		}
		checkText(t, "input", got, max)

		// markQuotes adds its marks and changes nothing else, whatever the tokenizer reads.
		if !bytes.Contains(msg, []byte("<br>")) {
			marked := markQuotes(msg)
			for _, m := range []string{"<br>" + quoteMark + "<br>", "<br>-- <br>"} {
				marked = bytes.ReplaceAll(marked, []byte(m), nil)
			}
			if !bytes.Equal(marked, msg) {
				t.Errorf("markQuotes(%q) changed more than it marked: %q", msg, markQuotes(msg))
			}
		}
	})
}
