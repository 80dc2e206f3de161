package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

var crew = "crew@" + testDomain

func TestPostReachesEveryMemberOnce(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test", "carol@example.test")
	ts.mustCLI(t, "member", "add", crew, "dave@example.test", "-mode", "daily")

	msg := post("Alice <alice@example.test>", "Tomatoes", "t1@example.test", "The tomatoes are ripe.\r\n.A line that starts with a dot.\r\n\r\nGrüße\r\n")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg); err != nil {
		t.Fatalf("post refused: %v", err)
	}
	got := sink.Wait(t, 3)
	var rcpts []string
	for _, m := range got {
		if len(m.To) != 1 {
			t.Fatalf("a delivery to %d recipients, want one per member: %v", len(m.To), m.To)
		}
		rcpts = append(rcpts, m.To[0])
		// The author's message, header and body, is there byte for byte under what we add.
		if !bytes.HasSuffix(m.Data, msg) {
			t.Errorf("copy to %s does not end with the author's message unchanged:\n%s", m.To[0], m.Data)
		}
		if !strings.HasPrefix(m.From, "crew+bounces-") || !strings.HasSuffix(m.From, "@"+testDomain) {
			t.Errorf("envelope sender %q is not the list's VERP address", m.From)
		}
		added := string(m.Data[:len(m.Data)-len(msg)])
		for _, want := range []string{
			"List-Id: Garden crew <crew.lists.example.test>\r\n",
			"List-Post: <mailto:crew@lists.example.test>\r\n",
			"List-Help: <mailto:crew+help@lists.example.test>\r\n",
			"List-Unsubscribe: <http://" + ts.HTTPAddr + "/u/",
			", <mailto:crew+unsubscribe@lists.example.test>\r\n",
			"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
			"Precedence: list\r\n",
			"X-Loop: crew@lists.example.test\r\n",
			"Received: from client.example.test ([127.0.0.1])\r\n\tby lists.example.test (crewmail) with ESMTP",
		} {
			if !strings.Contains(added, want) {
				t.Errorf("copy to %s lacks %q; added on top:\n%s", m.To[0], want, added)
			}
		}
		if strings.Contains(added, "List-Archive") {
			t.Errorf("List-Archive added though the list has no archive URL")
		}
	}
	slices.Sort(rcpts)
	if want := []string{"alice@example.test", "bob@example.test", "carol@example.test"}; !slices.Equal(rcpts, want) {
		t.Errorf("delivered to %v, want %v (dave is in daily mode)", rcpts, want)
	}
	// VERP addresses differ per member.
	if got[0].From == got[1].From {
		t.Errorf("two members share the return path %s", got[0].From)
	}

	out := ts.mustCLI(t, "archive", "ls", crew, "-json")
	var entry struct {
		Seq       uint64 `json:"seq"`
		MessageID string `json:"message_id"`
		Thread    uint64 `json:"thread"`
		From      string `json:"from"`
		Subject   string `json:"subject"`
	}
	if err := json.Unmarshal([]byte(out), &entry); err != nil {
		t.Fatalf("archive ls -json: %v\n%s", err, out)
	}
	if entry.Seq != 1 || entry.MessageID != "t1@example.test" || entry.Thread != 1 || entry.From != "alice@example.test" || entry.Subject != "Tomatoes" {
		t.Errorf("archive entry = %+v", entry)
	}
}

func TestReplyJoinsItsThread(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	for _, m := range []struct{ from, msgid, extra string }{
		{"alice@example.test", "a1@example.test", ""},
		{"bob@example.test", "b1@example.test", ""},
		{"bob@example.test", "b2@example.test", "In-Reply-To: <a1@example.test>\r\nReferences: <a1@example.test>\r\n"},
	} {
		msg := append([]byte(m.extra), post(m.from, "Seeds", m.msgid, "text\r\n")...)
		if err := send(t, ts.SMTPAddr, m.from, []string{crew}, msg); err != nil {
			t.Fatal(err)
		}
	}
	out := ts.mustCLI(t, "archive", "ls", crew, "-json")
	var threads []uint64
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e struct{ Thread uint64 }
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		threads = append(threads, e.Thread)
	}
	if want := []uint64{1, 2, 1}; !slices.Equal(threads, want) {
		t.Errorf("threads = %v, want %v", threads, want)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	dir := t.TempDir()
	ts := startTestServer(t, testConfig(t, dir, sink.Addr, "max_message_bytes = 4096\nmax_recipients = 3"))
	ts.mustCLI(t, "list", "create", crew)
	ts.mustCLI(t, "member", "add", crew, "alice@example.test", "bob@example.test")
	alice := "alice@example.test"
	ok := post(alice, "hi", "ok@example.test", "hello\r\n")

	tests := []struct {
		name     string
		from     string
		to       []string
		msg      []byte
		want     string
		contains string
	}{
		{"non-member", "mallory@evil.test", []string{crew}, post("mallory@evil.test", "hi", "m@evil.test", "buy\r\n"), "550 5.7.1", "not a member"},
		{"unknown recipient", alice, []string{"nobody@" + testDomain}, ok, "550 5.1.1", "no list"},
		{"unknown command address", alice, []string{"crew+frobnicate@" + testDomain}, ok, "550 5.1.1", ""},
		{"forged bounce address", alice, []string{"crew+bounces-aaaaaaaaaaaa@" + testDomain}, ok, "550 5.1.1", ""},
		{"foreign domain", alice, []string{"someone@gmail.example"}, ok, "550 5.7.1", "relaying"},
		{"relay trick with percent", alice, []string{"someone%gmail.example@" + testDomain}, ok, "550 5.1.1", ""},
		{"too big", alice, []string{crew}, post(alice, "big", "big@example.test", strings.Repeat(strings.Repeat("x", 70)+"\r\n", 70)), "552 5.3.4", ""},
		{"line too long", alice, []string{crew}, post(alice, "long", "long@example.test", strings.Repeat("x", 2100)+"\r\n"), "550 5.6.0", "longer than"},
		{"too many recipients", alice, []string{crew, crew, crew, crew}, ok, "452 4.5.3", ""},
		{"two From headers", alice, []string{crew}, append([]byte("From: bob@example.test\r\n"), post(alice, "hi", "two@example.test", "x\r\n")...), "550 5.7.1", "From"},
		{"no From header", alice, []string{crew}, []byte("Subject: x\r\nMessage-ID: <nf@example.test>\r\n\r\nx\r\n"), "550 5.7.1", "From"},
		{"unparsable From", alice, []string{crew}, []byte("From: <<<\r\nSubject: x\r\n\r\nx\r\n"), "550 5.7.1", "From"},
		{"null sender post", "", []string{crew}, post(alice, "hi", "null@example.test", "x\r\n"), "550 5.7.1", "null sender"},
		{"loop by List-Id", alice, []string{crew}, append([]byte("List-Id: Crew <crew.lists.example.test>\r\n"), post(alice, "hi", "loop1@example.test", "x\r\n")...), "550 5.4.6", "loop"},
		{"loop by X-Loop", alice, []string{crew}, append([]byte("X-Loop: crew@lists.example.test\r\n"), post(alice, "hi", "loop2@example.test", "x\r\n")...), "550 5.4.6", "loop"},
		{"auto-submitted", alice, []string{crew}, append([]byte("Auto-Submitted: auto-replied\r\n"), post(alice, "Out of office", "auto@example.test", "x\r\n")...), "550 5.7.1", "Auto-Submitted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := send(t, ts.SMTPAddr, tc.from, tc.to, tc.msg)
			if got := smtpCode(err); got != tc.want {
				t.Errorf("reply %s (%v), want %s", got, err, tc.want)
			}
			if tc.contains != "" && (err == nil || !strings.Contains(err.Error(), tc.contains)) {
				t.Errorf("reply %v does not say %q", err, tc.contains)
			}
		})
	}
	// Auto-Submitted: no is an ordinary post.
	if err := send(t, ts.SMTPAddr, alice, []string{crew}, append([]byte("Auto-Submitted: no\r\n"), ok...)); err != nil {
		t.Errorf("Auto-Submitted: no refused: %v", err)
	}
	out := ts.mustCLI(t, "archive", "ls", crew, "-json")
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("archive has %d posts after the refusals, want only the one accepted:\n%s", n, out)
	}
}

func TestBareLineEndingsRefused(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	head := "From: alice@example.test\r\nSubject: smuggle\r\nMessage-ID: <s@example.test>\r\n\r\n"
	for name, data := range map[string]string{
		"bare LF":           head + "hello\n.\nMAIL FROM:<x@y>\r\n.\r\n",
		"bare CR":           head + "hello\r.\rMAIL FROM:<x@y>\r\n.\r\n",
		"dot and bare CR":   head + "hello\r\n.\rMAIL FROM:<x@y>\r\n.\r\n", // go-smtp drops the ".\r" unseen
		"bare LF in header": "From: alice@example.test\nSubject: x\r\n\r\nx\r\n.\r\n",
	} {
		if reply := rawSMTP(t, ts.SMTPAddr, "alice@example.test", crew, data); !strings.HasPrefix(reply, "550 5.6.0") {
			t.Errorf("%s: reply %q, want 550 5.6.0", name, reply)
		}
	}
	if reply := rawSMTP(t, ts.SMTPAddr, "alice@example.test", crew, head+"fine\r\n.\r\n"); !strings.HasPrefix(reply, "250") {
		t.Errorf("a clean message after the refusals: %q", reply)
	}
	if got := sink.Wait(t, 1); len(got) != 1 || !bytes.HasSuffix(got[0].Data, []byte("fine\r\n")) {
		t.Errorf("delivered %d messages, want only the clean one", len(got))
	}
}

func TestDuplicateMessageIDNotRedistributed(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	msg := post("alice@example.test", "Once", "once@example.test", "only once\r\n")
	for i := range 3 {
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// A different message after the duplicates: when its copies arrive, the duplicates' would
	// have arrived before them.
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Next", "next@example.test", "next\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 4)
	ts.waitOutbox(t, "empty", func(rows []store.Delivery) bool { return len(rows) == 0 })
	got := sink.Messages()
	count := 0
	for _, m := range got {
		if bytes.Contains(m.Data, []byte("only once")) {
			count++
		}
	}
	if count != 2 || len(got) != 4 {
		t.Errorf("got %d copies of the duplicated post (want 2) and %d in all (want 4)", count, len(got))
	}
	if out := ts.mustCLI(t, "archive", "ls", crew); strings.Count(out, "once@example.test") != 1 {
		t.Errorf("archive lists the duplicate more than once:\n%s", out)
	}
}

func TestSmarthostTemporaryFailureRetried(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	var refused atomic.Int32
	failedOnce := make(chan struct{})
	sink.Reject = func(m mailtest.Message) error {
		if refused.Add(1) == 1 {
			close(failedOnce)
			return mailtest.ErrTemporary
		}
		return nil
	}
	ts := newCrew(t, sink, "alice@example.test")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Retry", "retry@example.test", "again\r\n")); err != nil {
		t.Fatal(err)
	}
	<-failedOnce
	rows := ts.waitOutbox(t, "a deferred delivery", func(rows []store.Delivery) bool {
		return len(rows) == 1 && !rows[0].Leased
	})
	if d := rows[0]; d.Attempts != 1 || !strings.Contains(d.LastError, "451") || d.Due.Sub(ts.clock.Now()) < 30*time.Second {
		t.Errorf("deferred delivery: attempts %d, due in %s, last error %q; want 1 attempt, due in about a minute, the 451",
			d.Attempts, d.Due.Sub(ts.clock.Now()), d.LastError)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("sink kept %d messages after answering 451", n)
	}
	// The retry is due a minute later: move the clock past it and wake the queue.
	ts.clock.Advance(2 * time.Minute)
	ts.queue.Wake()
	got := sink.Wait(t, 1)
	if !bytes.Contains(got[0].Data, []byte("again")) {
		t.Errorf("retried message: %s", got[0].Data)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink)
	resp, err := http.Get("http://" + ts.HTTPAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz = %d", resp.StatusCode)
	}
}

func TestHelpAndUnsubscribeByEmail(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")

	// Help answers the sender, as an automatic reply with the null return path.
	if err := send(t, ts.SMTPAddr, "carol@example.test", []string{"crew+help@" + testDomain}, post("carol@example.test", "help?", "h1@example.test", "how?\r\n")); err != nil {
		t.Fatalf("help: %v", err)
	}
	got := sink.Wait(t, 1)
	help := string(got[0].Data)
	if got[0].To[0] != "carol@example.test" || got[0].From != "" || !strings.Contains(help, "Auto-Submitted: auto-replied") ||
		!strings.Contains(help, "In-Reply-To: <h1@example.test>") || !strings.Contains(help, "crew+unsubscribe@lists.example.test") {
		t.Errorf("help reply from <%s> to %v:\n%s", got[0].From, got[0].To, help)
	}
	if !strings.HasPrefix(help, "From: ") {
		t.Errorf("help reply does not start with From (fields out of order):\n%s", help)
	}

	// Someone forging bob's From asks to unsubscribe him: the confirmation goes to bob.
	if err := send(t, ts.SMTPAddr, "mallory@evil.test", []string{"crew+unsubscribe@" + testDomain}, post("bob@example.test", "bye", "u1@evil.test", "\r\n")); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	got = sink.Wait(t, 2)
	confirm := got[1]
	if confirm.To[0] != "bob@example.test" {
		t.Fatalf("confirmation went to %v, want the member's address on file", confirm.To)
	}
	var confirmAddr string
	for _, line := range strings.Split(string(confirm.Data), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Reply-To: "); ok {
			confirmAddr = strings.Trim(v, "<>")
		}
	}
	if !strings.HasPrefix(confirmAddr, "crew+confirm-") || !strings.Contains(string(confirm.Data), confirmAddr) {
		t.Fatalf("confirmation has no confirm address in Reply-To:\n%s", confirm.Data)
	}
	if out := ts.mustCLI(t, "member", "ls", crew); !strings.Contains(out, "bob@example.test") {
		t.Fatal("bob removed before confirming")
	}
	// A tampered token is refused.
	bad := confirmAddr[:len("crew+confirm-")] + "a" + confirmAddr[len("crew+confirm-")+1:]
	if bad == confirmAddr {
		bad = confirmAddr[:len("crew+confirm-")] + "b" + confirmAddr[len("crew+confirm-")+1:]
	}
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{bad}, post("bob@example.test", "Re: confirm", "c0@example.test", "yes\r\n")); smtpCode(err) != "550 5.7.1" {
		t.Errorf("tampered confirmation: %v, want 550 5.7.1", err)
	}
	// Bob replies to the confirmation: he is off the list and told so.
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{confirmAddr}, post("bob@example.test", "Re: confirm", "c1@example.test", "> To leave, reply\r\nyes\r\n")); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	got = sink.Wait(t, 3)
	if got[2].To[0] != "bob@example.test" || !strings.Contains(string(got[2].Data), "no longer on") {
		t.Errorf("farewell notice: %v\n%s", got[2].To, got[2].Data)
	}
	if out := ts.mustCLI(t, "member", "ls", crew); strings.Contains(out, "bob@example.test") || !strings.Contains(out, "alice@example.test") {
		t.Errorf("after confirming, members are:\n%s", out)
	}
	// Confirming again is harmless; automatic mail to the help address gets no answer.
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{confirmAddr}, post("bob@example.test", "Re: confirm", "c2@example.test", "yes\r\n")); err != nil {
		t.Errorf("second confirmation: %v", err)
	}
	if err := send(t, ts.SMTPAddr, "", []string{"crew+help@" + testDomain}, post("mailer-daemon@example.test", "bounce", "b1@example.test", "\r\n")); err != nil {
		t.Errorf("null-sender mail to help: %v", err)
	}
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "after", "after@example.test", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	got = sink.Wait(t, 4)
	if len(got) != 4 || got[3].To[0] != "alice@example.test" {
		t.Errorf("after the unsubscribe, a post went to %v (%d messages in all)", got[len(got)-1].To, len(got))
	}
}

// TestPostmaster: RFC 5321 §4.5.1 asks every SMTP server to take mail for postmaster. It
// reaches the owners of the domain's lists, unchanged; without owners it is refused.
func TestPostmaster(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink)
	pm := "postmaster@" + testDomain
	msg := post("someone@example.test", "Your server", "pm1@example.test", "hello postmaster\r\n")
	if err := send(t, ts.SMTPAddr, "someone@example.test", []string{pm}, msg); smtpCode(err) != "550 5.1.1" {
		t.Errorf("postmaster with no owner anywhere: %v, want 550 5.1.1", err)
	}
	ts.mustCLI(t, "list", "set", crew, "-owner", "olga@example.test")
	if err := send(t, ts.SMTPAddr, "someone@example.test", []string{pm}, msg); err != nil {
		t.Fatalf("postmaster: %v", err)
	}
	got := sink.Wait(t, 1)
	if got[0].To[0] != "olga@example.test" || got[0].From != "" || !bytes.HasSuffix(got[0].Data, msg) {
		t.Errorf("postmaster mail went from <%s> to %v:\n%s", got[0].From, got[0].To, got[0].Data)
	}
	// RFC 2142: abuse@ is read by the same people.
	abuse := post("someone@example.test", "Spam from your list", "ab1@example.test", "a complaint\r\n")
	if err := send(t, ts.SMTPAddr, "someone@example.test", []string{"abuse@" + testDomain}, abuse); err != nil {
		t.Fatalf("abuse: %v", err)
	}
	got = sink.Wait(t, 2)
	if got[1].To[0] != "olga@example.test" || got[1].From != "" || !bytes.HasSuffix(got[1].Data, abuse) {
		t.Errorf("abuse mail went from <%s> to %v:\n%s", got[1].From, got[1].To, got[1].Data)
	}
}

// TestOutboundDKIM: after "crewmail dkim keygen", what the list sends carries a signature of the
// list's domain that verifies against the record keygen printed.
func TestOutboundDKIM(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	out := ts.mustCLI(t, "dkim", "keygen", testDomain, "-selector", "s2026", "-algo", "ed25519")
	line := out[strings.Index(out, "s2026._domainkey."):]
	name, value, ok := strings.Cut(strings.TrimSpace(line), ". IN TXT ")
	if !ok || name != "s2026._domainkey."+testDomain {
		t.Fatalf("keygen printed:\n%s", out)
	}
	value = strings.Trim(value, `"`)
	if again, _, code := ts.cli(t, "dkim", "show", testDomain); code != 0 || !strings.Contains(again, value) {
		t.Errorf("dkim show: %s", again)
	}
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Signed", "signed@example.test", "hello\r\n")); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 1)
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(got[0].Data), &dkim.VerifyOptions{LookupTXT: func(q string) ([]string, error) {
		if q == name {
			return []string{value}, nil
		}
		return nil, errors.New("no such record")
	}})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != testDomain {
		t.Fatalf("list copy's signature: %v %+v", err, vs)
	}
}

// TestVerifiedPolicy: on a list with the verified policy, a post from a member's own server
// (SPF aligned with From) goes out at once; the same From sent by a stranger's server is held,
// the member alone is asked, and only the member's confirmation releases it.
func TestVerifiedPolicy(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "list", "set", crew, "-post", "verified")

	// Alice's server: MAIL FROM in example.test, whose SPF allows 127.0.0.1.
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Real", "real@example.test", "from alice\r\n")); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 2)
	for _, m := range got {
		if !bytes.Contains(m.Data, []byte("Authentication-Results: lists.example.test;")) || !bytes.Contains(m.Data, []byte("spf=pass")) || !bytes.Contains(m.Data, []byte("dmarc=pass")) {
			t.Errorf("verified copy to %v lacks our Authentication-Results:\n%s", m.To, m.Data)
		}
	}

	// A stranger's server (its own envelope domain, no signature) claims to be Alice, and
	// forges an Authentication-Results in our name.
	forged := append([]byte("Authentication-Results: lists.example.test; dmarc=pass\r\n"), post("alice@example.test", "Buy now", "forged@evil.test", "cheap pills\r\n")...)
	err := send(t, ts.SMTPAddr, "bulk@evil.test", []string{crew}, forged)
	if err != nil {
		t.Fatalf("forged post: %v (it is held, not refused)", err)
	}
	got = sink.Wait(t, 3)
	ask := got[2]
	if len(ask.To) != 1 || ask.To[0] != "alice@example.test" || !bytes.Contains(ask.Data, []byte("Did you send this")) {
		t.Fatalf("after the forged post the sink got a mail to %v:\n%s", ask.To, ask.Data)
	}
	var confirmAddr string
	for _, line := range strings.Split(string(ask.Data), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Reply-To: "); ok {
			confirmAddr = strings.Trim(v, "<>")
		}
	}
	// The stranger guesses at the confirm address: nothing.
	guess := "crew+confirm-aiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@" + testDomain
	if err := send(t, ts.SMTPAddr, "bulk@evil.test", []string{guess}, post("bulk@evil.test", "yes", "g@evil.test", "yes\r\n")); smtpCode(err) != "550 5.7.1" {
		t.Errorf("guessed confirmation: %v", err)
	}
	if out := ts.mustCLI(t, "archive", "ls", crew, "-json"); strings.Contains(out, "forged@evil.test") {
		t.Fatal("the forged post is in the archive before anyone confirmed it")
	}
	// Alice confirms (say the forger was her own other mail program): it goes out, once.
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{confirmAddr}, post("alice@example.test", "Re: Did you send this", "c@example.test", "yes\r\n")); err != nil {
		t.Fatal(err)
	}
	got = sink.Wait(t, 5)
	for _, m := range got[3:] {
		if !bytes.Contains(m.Data, []byte("cheap pills")) {
			t.Errorf("after the confirmation %v got:\n%s", m.To, m.Data)
		}
		// Our verdict replaced the forged one.
		if bytes.Count(m.Data, []byte("Authentication-Results: lists.example.test;")) != 1 || bytes.Contains(m.Data, []byte("lists.example.test; dmarc=pass\r\n")) {
			t.Errorf("the forged Authentication-Results survived:\n%s", m.Data)
		}
	}
}

// TestDMARCSafeCopy: an unsigned post from a domain that publishes p=reject goes out From the
// list, with the author in Reply-To, so members' servers do not reject it.
func TestDMARCSafeCopy(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "dora@strict.test", "alice@example.test")
	msg := post("Dora <dora@strict.test>", "Strict", "strict@strict.test", "hello\r\n")
	if err := send(t, ts.SMTPAddr, "dora@strict.test", []string{crew}, msg); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 2)
	for _, m := range got {
		for _, want := range []string{"From: \"Dora via Garden crew\" <crew@lists.example.test>\r\n", "Reply-To: \"Dora\" <dora@strict.test>\r\n", "X-Original-From: Dora <dora@strict.test>\r\n"} {
			if !bytes.Contains(m.Data, []byte(want)) {
				t.Errorf("copy to %v lacks %q:\n%s", m.To, want, m.Data)
			}
		}
		if !bytes.HasSuffix(m.Data, mailtest.Body(msg)) {
			t.Error("the body changed")
		}
	}
}

// TestSignedPostFromAnyServerIsVerified: a member's post DKIM-signed by their domain passes on
// a verified list even when it comes through a server SPF does not know (a forwarder, a
// phone's provider), and a tampered copy of it does not.
func TestSignedPostFromAnyServerIsVerified(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	signed := signAsExampleTest(t, post("alice@example.test", "Signed", "dkim@example.test", "signed text\r\n"))
	if err := send(t, ts.SMTPAddr, "bounces@relay.elsewhere", []string{crew}, signed); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 1)
	if !bytes.HasSuffix(got[0].Data, signed) || !bytes.Contains(got[0].Data, []byte("dkim=pass")) || !bytes.Contains(got[0].Data, []byte("dmarc=pass")) {
		t.Fatalf("signed post:\n%s", got[0].Data)
	}
	tampered := bytes.Replace(signAsExampleTest(t, post("alice@example.test", "Signed", "dkim2@example.test", "signed text\r\n")), []byte("signed text"), []byte("changed text"), 1)
	if err := send(t, ts.SMTPAddr, "bounces@relay.elsewhere", []string{crew}, tampered); err != nil {
		t.Fatal(err)
	}
	got = sink.Wait(t, 2)
	if !bytes.Contains(got[1].Data, []byte("Did you send this")) || got[1].To[0] != "alice@example.test" {
		t.Errorf("tampered post was not held for confirmation; sink got for %v:\n%s", got[1].To, got[1].Data)
	}
}

// TestDNSFailureDefers: when DNS cannot answer, the sender is told to try later (451 4.7.0)
// and nothing is archived; when it answers again, the post goes through.
func TestDNSFailureDefers(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	d, _ := dnsOf.Load(ts.cfgPath)
	dns := d.(*mailtest.DNS)
	dns.Fail(true)
	msg := post("alice@example.test", "Later", "later@example.test", "x\r\n")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg); smtpCode(err) != "451 4.7.0" {
		t.Fatalf("with DNS down: %v, want 451 4.7.0", err)
	}
	if out := ts.mustCLI(t, "archive", "ls", crew, "-json"); out != "" {
		t.Fatalf("archived while DNS was down:\n%s", out)
	}
	dns.Fail(false)
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg); err != nil {
		t.Fatalf("with DNS back: %v", err)
	}
	sink.Wait(t, 1)
}

// TestHeldByOperator: the operator sees held posts and approves or rejects them.
func TestHeldByOperator(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	for i, subject := range []string{"Spam", "Real but unsigned"} {
		msg := post("alice@example.test", subject, fmt.Sprintf("held%d@example.test", i), "text\r\n")
		if err := send(t, ts.SMTPAddr, "relay@elsewhere.example", []string{crew}, msg); err != nil {
			t.Fatal(err)
		}
	}
	sink.Wait(t, 2) // the two questions to alice
	out := ts.mustCLI(t, "held", "ls", crew)
	if !strings.Contains(out, "Spam") || !strings.Contains(out, "Real but unsigned") || !strings.Contains(out, "alice@example.test") {
		t.Fatalf("held ls:\n%s", out)
	}
	ts.mustCLI(t, "held", "reject", crew, "1")
	if out := ts.mustCLI(t, "held", "approve", crew, "2"); !strings.Contains(out, "posted held post 2") {
		t.Errorf("approve: %s", out)
	}
	got := sink.Wait(t, 4)
	for _, m := range got[2:] {
		if !bytes.Contains(m.Data, []byte("Subject: Real but unsigned")) {
			t.Errorf("after approving, %v got:\n%s", m.To, m.Data)
		}
	}
	if out := ts.mustCLI(t, "held", "ls", crew); strings.Contains(out, "alice@example.test") {
		t.Errorf("held posts left after deciding:\n%s", out)
	}
	if _, errOut, code := ts.cli(t, "held", "approve", crew, "1"); code != 1 || !strings.Contains(errOut, "no held post 1") {
		t.Errorf("approving a rejected post: exit %d %s", code, errOut)
	}
	if out := ts.mustCLI(t, "archive", "ls", crew, "-json"); strings.Contains(out, "held0@") || !strings.Contains(out, `"message_id":"held1@example.test","thread":1,"from":"alice@example.test","subject":"Real but unsigned","size":`) || !strings.Contains(out, `"verified":"approved"`) {
		t.Errorf("archive after deciding:\n%s", out)
	}
}
