package main

import (
	"fmt"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

// TestMergeByReferencesKeepsMutesToTheirConversation: a post whose References name posts of
// two conversations merges them, but a member's mute stays with the conversation she muted.
// When her muted conversation is merged into another, the other still reaches her; when
// another is merged into her muted one, hers stays muted — in her copies and her digest.
func TestMergeByReferencesKeepsMutesToTheirConversation(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	const bob = "bob@example.test"
	n := 0
	postAs := func(id, subject, body string, refs ...string) {
		t.Helper()
		msg := post("alice@example.test", subject, id, body)
		if len(refs) > 0 {
			msg = append([]byte("In-Reply-To: <"+refs[0]+">\r\nReferences: <"+strings.Join(refs, "> <")+">\r\n"), msg...)
		}
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg); err != nil {
			t.Fatal(err)
		}
		n += 2 // alice's copy and bob's, unless muted
		settle(t, ts)
	}
	for i, subject := range []string{"Alpha", "Beta", "Gamma", "Delta"} { // threads 1 to 4
		postAs(fmt.Sprintf("t%d@example.test", i+1), subject, "first of "+subject+"\r\n")
	}
	sink.Wait(t, n)
	// Bob mutes Beta (2) and Gamma (3) from their Mute links.
	for _, th := range []uint64{2, 3} {
		if err := ask(t, ts, bob, ts.svc.MuteAddress(crew, th), "", true); err != nil {
			t.Fatal(err)
		}
		n++
		expect(t, sink, n, bob, "Muted:")
	}
	// Beta (muted) is merged into the older Alpha; Delta into the older, muted Gamma.
	postAs("merge-ab@example.test", "Re: Alpha", "joining alpha and beta\r\n", "t1@example.test", "t2@example.test")
	postAs("merge-gd@example.test", "Re: Delta", "joining delta and gamma\r\n", "t4@example.test", "t3@example.test")
	// Replies in each of the four conversations, after the merges.
	for _, r := range []struct{ id, subject, parent string }{
		{"alpha-2@example.test", "Re: Alpha", "t1@example.test"},
		{"beta-2@example.test", "Re: Beta", "t2@example.test"},
		{"gamma-2@example.test", "Re: Gamma", "t3@example.test"},
		{"delta-2@example.test", "Re: Delta", "t4@example.test"},
	} {
		postAs(r.id, r.subject, "reply "+r.id+"\r\n", r.parent)
	}
	got := map[string]bool{}
	for _, m := range sink.Messages() {
		if m.To[0] == bob {
			for _, id := range []string{"alpha-2", "beta-2", "gamma-2", "delta-2", "merge-ab", "merge-gd"} {
				got[id] = got[id] || strings.Contains(string(m.Data), "Message-ID: <"+id+"@")
			}
		}
	}
	for id, want := range map[string]bool{"alpha-2": true, "beta-2": false, "gamma-2": false, "delta-2": true, "merge-ab": true, "merge-gd": true} {
		if got[id] != want {
			t.Errorf("bob got %s: %v, want %v", id, got[id], want)
		}
	}
	// His digest agrees.
	preview := ts.mustCLI(t, "digest", "preview", crew, "-member", bob)
	for id, want := range map[string]bool{"alpha-2": true, "beta-2": false, "gamma-2": false, "delta-2": true} {
		if strings.Contains(preview, "reply "+id) != want {
			t.Errorf("bob's digest shows %s: %v, want %v\n%s", id, !want, want, preview)
		}
	}
}
