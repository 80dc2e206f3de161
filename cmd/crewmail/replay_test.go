package main

import (
	"bytes"
	"html"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestReplayedSignedPostWithNewHeadersRefused: every member receives a signed post intact.
// Re-sent with a Subject and a Message-ID of someone else's put on top of the signed ones, it
// still carries a valid signature (which covers the last instance of each field), so it was
// archived as proven, under the new Subject. Two different Subject or Message-ID fields are
// now refused.
func TestReplayedSignedPostWithNewHeadersRefused(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	signed := signAsExampleTest(t, post("alice@example.test", "Seeds", "seeds@example.test", "the seeds are in\r\n"))
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, signed); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 2)
	replay := append([]byte("Subject: Send me your IMAP password\r\nMessage-ID: <replay@evil.test>\r\n"), signed...)
	err := send(t, ts.SMTPAddr, "mallory@evil.test", []string{crew}, replay)
	if got := smtpCode(err); got != "550 5.7.1" || !strings.Contains(err.Error(), "Subject") {
		t.Errorf("replay with a new Subject and Message-ID: %v, want 550 5.7.1 naming the field", err)
	}
	if out := ts.mustCLI(t, "archive", "ls", crew, "-json"); strings.Contains(out, "replay@evil.test") || strings.Contains(out, "IMAP password") {
		t.Errorf("the replay is in the archive:\n%s", out)
	}
}

// TestSignedPostReplayedToAnotherListNotProven: a member replays Alice's signed post to crew@
// to another list Alice is on. The signature is valid but names crew@ in its To: the other
// list holds it and asks Alice, instead of posting it as proven.
func TestSignedPostReplayedToAnotherListNotProven(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	other := "council@" + testDomain
	ts.mustCLI(t, "list", "create", other, "-name", "Council")
	ts.mustCLI(t, "member", "add", other, "alice@example.test", "carol@example.test")
	ts.mustCLI(t, "list", "set", other, "-post", "verified")
	signed := signAsExampleTest(t, post("alice@example.test", "Seeds", "seeds@example.test", "the seeds are in\r\n"))
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, signed); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 1)
	if err := send(t, ts.SMTPAddr, "mallory@evil.test", []string{other}, signed); err != nil {
		t.Fatalf("replay to %s: %v (it is held, not refused)", other, err)
	}
	got := sink.Wait(t, 2)
	if got[1].To[0] != "alice@example.test" || !bytes.Contains(got[1].Data, []byte("Did you send this")) {
		t.Errorf("after the replay to %s the sink got for %v:\n%s", other, got[1].To, got[1].Data)
	}
	if out := ts.mustCLI(t, "archive", "ls", other, "-json"); out != "" {
		t.Errorf("the replay is in the archive of %s:\n%s", other, out)
	}
	// Sent by Alice to both lists, her signature names both: proven on each.
	both := bytes.Replace(post("alice@example.test", "Both", "both@example.test", "to both\r\n"), []byte("To: crew@"+testDomain), []byte("To: crew@"+testDomain+"\r\nCc: Council <"+other+">"), 1)
	if err := send(t, ts.SMTPAddr, "bounces@relay.elsewhere", []string{other}, signAsExampleTest(t, both)); err != nil {
		t.Fatal(err)
	}
	if out := ts.mustCLI(t, "archive", "ls", other, "-json"); !strings.Contains(out, "both@example.test") || !strings.Contains(out, `"verified":"dkim"`) {
		t.Errorf("a post signed for both lists is not proven on %s:\n%s", other, out)
	}
}

// TestDigestNamesTheAddressOfAProvenAuthor: Mallory, a member whose own address is proven,
// writes as "Alice Smith". The digest read "Alice Smith ✓"; it now shows her address beside
// the name and the ✓, in the text and the HTML part.
func TestDigestNamesTheAddressOfAProvenAuthor(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "mallory@example.test", "bob@example.test")
	ts.mustCLI(t, "member", "mode", crew, "bob@example.test", "daily")
	msg := post(`"Alice Smith" <mallory@example.test>`, "Board meeting moved", "moved@example.test", "Send the minutes to me.\r\n")
	if err := send(t, ts.SMTPAddr, "mallory@example.test", []string{crew}, msg); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 1)
	settle(t, ts)
	ts.mustCLI(t, "digest", "send", "-now")
	d := expect(t, sink, 2, "bob@example.test", "Daily digest: 1 conversation, 1 message")
	text, page := digestParts(t, d)
	if !strings.Contains(text, "Alice Smith <mallory@example.test> ✓") || strings.Contains(text, "Alice Smith ✓") {
		t.Errorf("text part:\n%s", text)
	}
	if !strings.Contains(html.UnescapeString(page), "<mallory@example.test></span> <span role=\"img\" title=\"verified sender\"") {
		t.Errorf("HTML part:\n%s", page)
	}
}

// TestSignedPostReplayedToACommandAddressNotProven: Alice's signed post to crew@, which every
// member receives, replayed to crew+nomail@ would stop her mail at once as a proven request of
// hers. Her signature names crew@, not crew+nomail@: she is asked to confirm instead.
func TestSignedPostReplayedToACommandAddressNotProven(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	signed := signAsExampleTest(t, post("alice@example.test", "Seeds", "seeds@example.test", "the seeds are in\r\n"))
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, signed); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 2)
	if err := send(t, ts.SMTPAddr, "mallory@evil.test", []string{"crew+nomail@" + testDomain}, signed); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 3)
	var mode string
	if err := ts.st.View(func(tx store.Tx) error {
		m, err := tx.Member(crew, "alice@example.test")
		mode = string(m.Mode)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if mode == "nomail" {
		t.Errorf("a replayed post to crew+nomail@ stopped Alice's mail without asking her")
	}
	if got[2].To[0] != "alice@example.test" || !bytes.Contains(got[2].Data, []byte("confirm")) {
		t.Errorf("the sink got for %v:\n%s", got[2].To, got[2].Data)
	}
}
