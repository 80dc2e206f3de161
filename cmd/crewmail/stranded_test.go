package main

import (
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

// TestNoStrandedJoinRequests: -join approve on a list without an owner is refused with one
// sentence; a request that waits on a list whose owner comes later reaches that owner, and the
// operator sees and decides requests with pending ls, approve and decline.
func TestNoStrandedJoinRequests(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")

	_, stderr, code := ts.cli(t, "list", "create", "team@"+testDomain, "-join", "approve")
	if code != 1 || !strings.Contains(stderr, "has no owner: add one with -owner ADDRESS") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("list create -join approve without an owner: exit %d, %q", code, stderr)
	}
	if _, stderr, code := ts.cli(t, "list", "set", crew, "-join", "approve"); code != 1 || !strings.Contains(stderr, "has no owner") {
		t.Errorf("list set -join approve without an owner: exit %d, %q", code, stderr)
	}

	// Carol and dave ask to join the owner-less list and confirm: their requests wait.
	for i, who := range []string{"carol@example.test", "dave@example.test"} {
		if err := ask(t, ts, who, "crew+subscribe@"+testDomain, "", false); err != nil {
			t.Fatal(err)
		}
		c := expect(t, sink, 2*i+1, who, "Subject: Confirm: join Garden crew")
		if err := answer(t, ts, c, gmailReply, who, "yes", false); err != nil {
			t.Fatal(err)
		}
		expect(t, sink, 2*i+2, who, "waits for the owners")
	}
	out := ts.mustCLI(t, "pending", "ls", crew)
	if !strings.Contains(out, "carol@example.test") || !strings.Contains(out, "dave@example.test") || !strings.HasPrefix(out, "ID") {
		t.Fatalf("pending ls:\n%s", out)
	}

	// An owner comes: she gets both requests that wait, and can decide them by mail.
	ts.mustCLI(t, "list", "set", crew, "-owner", owner)
	got := sink.Wait(t, 6)
	var asks []string
	for _, m := range got[4:6] {
		if m.To[0] != owner {
			t.Fatalf("mail to %v after the owner was added", m.To)
		}
		asks = append(asks, text(t, m))
	}
	if !strings.Contains(strings.Join(asks, ""), "Subject: carol@example.test asks to join") || !strings.Contains(strings.Join(asks, ""), "Subject: dave@example.test asks to join") {
		t.Errorf("the new owner did not get the waiting requests:\n%s", strings.Join(asks, "\n"))
	}

	// The operator decides: carol in, dave declined with a reason he reads.
	ids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(ts.mustCLI(t, "pending", "ls", crew)), "\n")[1:] {
		f := strings.Fields(line)
		ids[f[3]] = f[0]
	}
	if out := ts.mustCLI(t, "pending", "approve", crew, ids["carol@example.test"]); !strings.Contains(out, "carol@example.test is now a member") {
		t.Errorf("pending approve: %q", out)
	}
	ts.mustCLI(t, "pending", "decline", crew, ids["dave@example.test"], "-reason", "This list is for the allotment's plot holders.")
	got = sink.Wait(t, 9)
	byTo := map[string]string{}
	for _, m := range got[6:] {
		byTo[m.To[0]] += text(t, m)
	}
	if !strings.Contains(byTo["carol@example.test"], "Subject: Welcome to Garden crew") ||
		!strings.Contains(byTo["dave@example.test"], "This list is for the allotment's plot holders.") ||
		!strings.Contains(byTo[owner], "carol@example.test joined Garden crew") {
		t.Errorf("after the decisions:\n%v", byTo)
	}
	if out := ts.mustCLI(t, "pending", "ls", crew); strings.Contains(out, "example.test") {
		t.Errorf("decided requests still wait:\n%s", out)
	}
	if _, stderr, code := ts.cli(t, "pending", "approve", crew, ids["carol@example.test"]); code != 1 || !strings.Contains(stderr, "no join request") {
		t.Errorf("deciding twice: exit %d %q", code, stderr)
	}
}
