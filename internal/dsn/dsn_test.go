package dsn

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// TestFixtures reads each message in testdata as received, with the CRLF of SMTP, and also with
// LF line ends, as a message read from a file has them.
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Report
	}{
		// RFC 3464 reports. Postfix's carry Auto-Submitted: auto-replied: the structure wins.
		{"postfix-user-unknown.eml", Report{Failed, "5.1.1", "member@example.net",
			"550 5.1.1 <member@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
			"relay.example.net"}},
		{"postfix-delayed.eml", Report{Delayed, "4.4.1", "member@example.net",
			"connect to mx.example.net[192.0.2.25]:25: Connection timed out", "relay.example.net"}},
		{"postfix-success.eml", Report{Delivered, "2.0.0", "member@example.net",
			"250 2.0.0 Ok: queued as 4Qx2Bg3RT1z1Q", "relay.example.net"}},
		{"exchange-online-dmarc.eml", Report{Policy, "5.7.1", "member@contoso.com",
			"550 5.7.1 Message rejected due to DMARC policy of example.com (p=reject); the message failed DMARC authentication",
			"AM9PR01MB7420.eurprd01.prod.exchangelabs.com"}},
		// A forwarder's report of Gmail's refusal: the final recipient is the forwarded-to one.
		{"forwarded-gmail-unauthenticated.eml", Report{Policy, "5.7.26", "member.name@gmail.com",
			"550 5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. " +
				"The sender must authenticate with at least one of SPF or DKIM. For this message, DKIM checks did not pass and SPF " +
				"check for [lists.example.org] did not pass with ip: [203.0.113.7",
			"mail.example.net"}},
		// The failed recipient is reported, not the one before it that was relayed.
		{"sendmail-two-recipients.eml", Report{Failed, "5.1.1", "old.address@example.net",
			"550 5.1.1 <old.address@example.net>... User unknown", "mail.example.net"}},
		// RFC 6533: a UTF-8 address, the status part in base64.
		{"global-dsn-utf8.eml", Report{Failed, "5.1.1", "jürgen@bücher.example",
			"550 5.1.1 <jürgen@bücher.example>: Empfänger unbekannt", "mx.bücher.example"}},
		// A mailer that types its status part text/plain; a full mailbox is reported as the
		// failure it says it is.
		{"broken-text-status-quota.eml", Report{Failed, "5.2.2", "member@example.net",
			"552 5.2.2 Mailbox full: quota of 2 GB exceeded", "mail.example.net"}},

		// Bounces without a status part.
		{"qmail-no-mailbox.eml", Report{Failed, "5.1.1", "member@example.net",
			"Sorry, no mailbox here by that name. (#5.1.1)", "MAILER-DAEMON@mail.example.net"}},
		{"exim-user-unknown.eml", Report{Failed, "5.1.1", "member@example.net",
			"550 5.1.1 <member@example.net>: Recipient address rejected: User unknown in local recipient table",
			"Mailer-Daemon@mx1.example.net"}},
		{"exim-delayed.eml", Report{Delayed, "4.7.1", "member@example.net",
			"451 4.7.1 Greylisting in action, please come back later", "Mailer-Daemon@mx1.example.net"}},
		// No enhanced code, but the words of a block list.
		{"exim-spamhaus.eml", Report{Policy, "", "member@example.org",
			"550 Rejected: 203.0.113.7 is listed in the Spamhaus block list (SBL)", "Mailer-Daemon@smarthost.example.net"}},
		{"gmail-address-not-found.eml", Report{Failed, "5.1.1", "member@example.net",
			"550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's " +
				"email address for typos or unnecessary spaces. For more information, go to " +
				"https://support.google.com/mail/?p=NoSuchUser 41be03b00d2f7-b2c1e5a9f3bsi1234567a12.321 - gsmtp",
			"mailer-daemon@googlemail.com"}},
		{"gmail-delayed.eml", Report{Delayed, "", "member@example.net",
			"The recipient server did not accept our requests to connect. Learn more at " +
				"https://support.google.com/mail/answer/7720 [mx.example.net. 192.0.2.25: timed out]",
			"mailer-daemon@googlemail.com"}},
		{"exchange-plain-ndr.eml", Report{Failed, "5.1.1", "member@contoso.com",
			"550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", "postmaster@contoso.com"}},
		{"yahoo-no-account.eml", Report{Failed, "", "member@yahoo.com",
			"554: delivery error: dd This user doesn't have a yahoo.com account (member@yahoo.com) [0] - mta1047.mail.ir2.yahoo.com",
			"MAILER-DAEMON@yahoo.com"}},

		// No bounces at all.
		{"sieve-vacation.eml", Report{Kind: AutoReply, Reporter: "member@example.net"}},
		// Its text says the mail "could not be delivered"; its subject says what it is.
		{"outlook-automatic-reply.eml", Report{Kind: AutoReply, Reporter: "member@contoso.com"}},
		{"notes-abwesenheitsnotiz.eml", Report{Kind: AutoReply, Reporter: "juergen@example.de"}},
		{"thunderbird-mdn.eml", Report{AutoReply, "", "member@example.net",
			"manual-action/MDN-sent-manually; displayed", "member@example.net"}},
		{"arf-abuse.eml", Report{Policy, "", "member@example.com", "spam complaint", "mail.example.com"}},
		{"garbage.eml", Report{}},
	} {
		raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		crlf := mailtest.SMTPForm(raw)
		lf := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n"))
		for name, msg := range map[string][]byte{"CRLF": crlf, "LF": lf} {
			t.Run(tc.file+"/"+name, func(t *testing.T) {
				got, err := Parse(msg)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got != tc.want {
					t.Errorf("Parse:\n got %s\nwant %s", show(got), show(tc.want))
				}
			})
		}
	}
}

func show(r Report) string {
	return fmt.Sprintf("{%v %q %q %q %q}", r.Kind, r.Status, r.Recipient, r.Diagnostic, r.Reporter)
}

// TestUnreadableHeader: the error is for a header that cannot be read, and only for that.
func TestUnreadableHeader(t *testing.T) {
	for _, msg := range []string{
		" Subject: a continuation first\r\n\r\nbody\r\n",
		"Subject: bounce\r\nthis line is no field\r\n\r\nbody\r\n",
	} {
		if r, err := Parse([]byte(msg)); err == nil {
			t.Errorf("Parse(%q) = %s, want an error", msg, show(r))
		}
	}
	for _, msg := range []string{"", "\r\n", "Subject: x", "Subject: x\r\n\r\n"} {
		if r, err := Parse([]byte(msg)); err != nil || r.Kind != Unknown {
			t.Errorf("Parse(%q) = %s, %v; want Unknown and no error", msg, show(r), err)
		}
	}
}

// TestReturnedMessageNotRead: what the returned message says is not what the bounce says. A
// person's mail that speaks of delivery is not a bounce either.
func TestReturnedMessageNotRead(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		want      Kind
	}{
		{"inline after a marker", "From: MAILER-DAEMON@mx.example.net\r\nSubject: failure notice\r\n\r\n" +
			"Hi. This is the qmail-send program at mx.example.net.\r\n" +
			"<member@example.net>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n" +
			"--- Below this line is a copy of the message.\r\n\r\nSubject: x\r\n\r\n550 5.7.1 blocked by DMARC policy\r\n",
			Failed},
		{"a person's mail", "From: Ana <ana@example.com>\r\nSubject: Re: the list\r\n\r\n" +
			"My mail could not be delivered last week, the address does not exist any more.\r\n",
			Unknown},
		{"a person's mail with a version", "From: Ana <ana@example.com>\r\nSubject: Re: kernel\r\n\r\n" +
			"The fix was not delivered in time for 2.6.36, so the old path does not exist there.\r\n",
			Unknown},
	} {
		r, err := Parse([]byte(tc.msg))
		if err != nil || r.Kind != tc.want {
			t.Errorf("%s: Parse = %s, %v; want %v", tc.name, show(r), err, tc.want)
		}
	}
}

// TestHugeParts: of each part the first maxPart bytes are read, and a large returned message
// costs no more than reading past it.
func TestHugeParts(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: MAILER-DAEMON@relay.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n")
	b.WriteString(strings.Repeat("Your message could not be delivered.\r\n", 3*maxPart/38))
	b.WriteString("\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example.net\r\n\r\n" +
		"Final-Recipient: rfc822; member@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 " + strings.Repeat("x", 100_000) + "\r\n" +
		"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: big\r\n\r\n")
	b.WriteString(strings.Repeat(strings.Repeat("y", 76)+"\r\n", 20<<20/78))
	b.WriteString("\r\n--b--\r\n")

	start := time.Now()
	r, err := Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != Failed || r.Status != "5.1.1" || r.Recipient != "member@example.net" {
		t.Errorf("Parse = %s", show(r))
	}
	if n := len([]rune(r.Diagnostic)); n != maxDiagnostic {
		t.Errorf("Diagnostic has %d characters, want %d", n, maxDiagnostic)
	}
	t.Logf("%d MB read in %v", b.Len()>>20, time.Since(start))

	// A text part without a status part: only its first maxPart bytes are read.
	body := strings.Repeat("z", 2*maxPart) + " 550 5.1.1 far down\r\n"
	r, err = Parse([]byte("From: MAILER-DAEMON@relay.example.net\r\nSubject: failure notice\r\n\r\n" + body))
	if err != nil || r.Kind != Failed || r.Status != "" {
		t.Errorf("Parse of a long text = %s, %v; want Failed without a status", show(r), err)
	}
}

// TestDeepNesting: a message of multiparts inside multiparts is read to maxDepth.
func TestDeepNesting(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: MAILER-DAEMON@relay.example.net\r\n")
	for i := range 200 {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\n550 5.1.1 user unknown\r\n")
	if _, err := Parse([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Unknown: "unknown", Failed: "failed", Delayed: "delayed",
		Delivered: "delivered", Policy: "policy", AutoReply: "auto-reply", 42: "Kind(42)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// TestOneLine: a multi-line SMTP reply as a DSN quotes it reads as one reply.
func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"550-5.1.1 The email account that you tried to reach does not exist. Please try\n 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1\n unnecessary spaces. 550 5.1.1 https://support.google.com/mail/?p=NoSuchUser": "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser",
		"554-mx.example.net\r\n554-No SMTP service here\r\n554 go away": "554 mx.example.net No SMTP service here 554 go away",
		"#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##":           "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
		"a\x00b\tc\u2028d \xff":  "a b c d \uFFFD",
		strings.Repeat("é", 400): strings.Repeat("é", maxDiagnostic),
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

// TestCodes: an enhanced status code is not a part of a longer dotted number.
func TestCodes(t *testing.T) {
	for in, want := range map[string]string{
		"550 5.1.1 user unknown":        "5.1.1",
		"(#5.1.1)":                      "5.1.1",
		"Postfix 3.5.1.1 says 4.2.2":    "4.2.2",
		"dns 4.2.2.1 and 192.0.2.5.1.1": "",
		"5.9.1 is no status":            "",
		"status=5.7.26,":                "5.7.26",
	} {
		if got := findStatus(in); got != want {
			t.Errorf("findStatus(%q) = %q, want %q", in, got, want)
		}
	}
}
