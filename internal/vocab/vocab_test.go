package vocab

import (
	"strings"
	"testing"
)

func TestParseTakesEveryWordAndRefusesOthersInASentence(t *testing.T) {
	for _, tc := range []struct {
		in    string
		parse func(string) (string, error)
		err   string // "" when in is a word
	}{
		{"each", parseAs(ParseMode), ""},
		{"daily", parseAs(ParseMode), ""},
		{"weekly", parseAs(ParseMode), ""},
		{"nomail", parseAs(ParseMode), ""},
		{"hourly", parseAs(ParseMode), `mode must be one of each, daily, weekly, nomail, not "hourly"`},
		{"Each", parseAs(ParseMode), `mode must be one of each, daily, weekly, nomail, not "Each"`},
		{"", parseAs(ParseMode), `mode must be one of each, daily, weekly, nomail, not ""`},
		{"open", parseAs(ParseJoinPolicy), ""},
		{"approve", parseAs(ParseJoinPolicy), ""},
		{"invite", parseAs(ParseJoinPolicy), ""},
		{"whenever", parseAs(ParseJoinPolicy), `join policy must be one of open, approve, invite, not "whenever"`},
		{"verified", parseAs(ParsePostPolicy), ""},
		{"members", parseAs(ParsePostPolicy), ""},
		{"anyone", parseAs(ParsePostPolicy), ""},
		{"everyone", parseAs(ParsePostPolicy), `post policy must be one of verified, members, anyone, not "everyone"`},
		{"reject", parseAs(ParseNonMembers), ""},
		{"hold", parseAs(ParseNonMembers), ""},
		{"drop", parseAs(ParseNonMembers), `posts from non-members are reject or hold, not "drop"`},
		{"reply-to", parseAs(ParseAuthorIn), ""},
		{"cc", parseAs(ParseAuthorIn), ""},
		{"bcc", parseAs(ParseAuthorIn), `the author goes in reply-to or cc, not "bcc"`},
	} {
		got, err := tc.parse(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.in):
			t.Errorf("parse %q = %q, %v; want the word", tc.in, got, err)
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("parse %q = %q, %v; want error %q", tc.in, got, err, tc.err)
		case err != nil && strings.Count(err.Error(), "\n") > 0:
			t.Errorf("parse %q: error of more than one line: %q", tc.in, err)
		}
	}
}

func parseAs[W ~string](parse func(string) (W, error)) func(string) (string, error) {
	return func(s string) (string, error) {
		w, err := parse(s)
		return string(w), err
	}
}

// TestWordsAreTheBytesOnDisk: the database and operators' scripts hold these texts; changing
// one is a schema migration, not a rename.
func TestWordsAreTheBytesOnDisk(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{string(Each), "each"}, {string(Daily), "daily"}, {string(Weekly), "weekly"}, {string(NoMail), "nomail"},
		{string(JoinOpen), "open"}, {string(JoinApprove), "approve"}, {string(JoinInvite), "invite"},
		{string(PostVerified), "verified"}, {string(PostMembers), "members"}, {string(PostAnyone), "anyone"},
		{string(NonMembersReject), "reject"}, {string(NonMembersHold), "hold"},
		{string(AuthorInReplyTo), "reply-to"}, {string(AuthorInCc), "cc"},
		{string(Unverified), ""}, {string(VerifiedDKIM), "dkim"}, {string(VerifiedSPF), "spf"},
		{string(VerifiedConfirmed), "confirmed"}, {string(VerifiedApproved), "approved"},
	} {
		if tc.got != tc.want {
			t.Errorf("word %q, want %q", tc.got, tc.want)
		}
	}
}

func TestReceivesEachPost(t *testing.T) {
	for _, tc := range []struct {
		mode   Mode
		paused bool
		want   bool
	}{
		{Each, false, true},
		{Each, true, false}, // paused for bouncing
		{Daily, false, false},
		{Weekly, false, false},
		{NoMail, false, false},
		{Daily, true, false},
	} {
		if got := ReceivesEachPost(tc.mode, tc.paused); got != tc.want {
			t.Errorf("ReceivesEachPost(%s, paused %v) = %v, want %v", tc.mode, tc.paused, got, tc.want)
		}
	}
}

func TestDigestStart(t *testing.T) {
	for _, tc := range []struct {
		mode   Mode
		newest uint64
		after  uint64
		ok     bool
	}{
		{Daily, 0, 0, true},    // an empty archive: her first digest has the first post
		{Daily, 41, 41, true},  // not the 41 posts before she started
		{Weekly, 41, 41, true}, // the same for weekly digests
		{Each, 41, 0, false},   // no digests, no place in the archive
		{NoMail, 41, 0, false},
	} {
		after, ok := DigestStart(tc.mode, tc.newest)
		if after != tc.after || ok != tc.ok {
			t.Errorf("DigestStart(%s, %d) = %d, %v; want %d, %v", tc.mode, tc.newest, after, ok, tc.after, tc.ok)
		}
	}
}

func TestVerifiedByAuthor(t *testing.T) {
	for v, want := range map[Verified]bool{
		VerifiedDKIM: true, VerifiedSPF: true, VerifiedConfirmed: true,
		VerifiedApproved: false, // a moderator let it through; nobody proved who wrote it
		Unverified:       false,
	} {
		if v.ByAuthor() != want {
			t.Errorf("%q.ByAuthor() = %v, want %v", v, !want, want)
		}
	}
}

// FuzzParse: whatever a person types, a Parse function returns exactly that word or an error.
func FuzzParse(f *testing.F) {
	f.Add("each")
	f.Add("approve")
	f.Add("reply-to")
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (string, error){parseAs(ParseMode), parseAs(ParseJoinPolicy), parseAs(ParsePostPolicy), parseAs(ParseNonMembers), parseAs(ParseAuthorIn)} {
			got, err := parse(s)
			if err == nil && got != s || err != nil && got != "" {
				t.Fatalf("parse %q = %q, %v", s, got, err)
			}
		}
	})
}
