package subject

import "testing"

func TestBase(t *testing.T) {
	for _, c := range []struct{ in, base, key string }{
		{"Tomatoes", "Tomatoes", "tomatoes"},
		{"Re: Tomatoes", "Tomatoes", "tomatoes"},
		{"RE: re: Fwd:  Tomatoes   again", "Tomatoes again", "tomatoes again"},
		{"[Garden crew] Re: Tomatoes", "Tomatoes", "tomatoes"},
		{"Re: [Garden crew] Re: [Garden crew] Tomatoes", "Tomatoes", "tomatoes"},
		{"AW: SV: Antw: Tomaten", "Tomaten", "tomaten"},
		{"Re[2]: Tomatoes", "Tomatoes", "tomatoes"},
		{"[notmuch] [PATCH] Typsos", "[PATCH] Typsos", "typsos"},
		{"Re: [notmuch] [PATCH v2 1/3] Re: fix", "[PATCH v2 1/3] fix", "fix"},
		{"Re: [Garden crew] Daily digest: 3 conversations, 11 messages", "Daily digest", "daily digest: 3 conversations, 11 messages"},
		{"Re: [Garden crew] Weekly digest: 1 conversation, 2 messages (part 1 of 2)", "Weekly digest", "weekly digest: 1 conversation, 2 messages (part 1 of 2)"},
		{"Re: Garden-crew Digest, Vol 12, Issue 3", "Garden-crew Digest", "garden-crew digest, vol 12, issue 3"},
		{"Re: 東京の天気", "東京の天気", "東京の天気"},
		{"Ответ: Re: Погода", "Ответ: Re: Погода", "ответ: re: погода"},
		{"Note: the shed key", "Note: the shed key", "note: the shed key"},
		{"Re:", "", ""},
		{"[tag only]", "", ""},
	} {
		if got := Base(c.in); got != c.base {
			t.Errorf("Base(%q) = %q, want %q", c.in, got, c.base)
		}
		if got := Key(c.in); got != c.key {
			t.Errorf("Key(%q) = %q, want %q", c.in, got, c.key)
		}
	}
}

func TestIsDigestAndIsReply(t *testing.T) {
	for _, c := range []struct {
		in            string
		digest, reply bool
	}{
		{"Re: [Crew] Daily digest: 2 conversations, 2 messages", true, true},
		{"[Crew] While you were away: 1 conversation, 1 message", true, false},
		{"Re: Crew Digest, Vol 1, Issue 9", true, true},
		{"Seed digest", false, false},
		{"Fwd: Tomatoes", false, false},
		{"[Crew] AW: Tomaten", false, true},
	} {
		if got := IsDigest(c.in); got != c.digest {
			t.Errorf("IsDigest(%q) = %v", c.in, got)
		}
		if got := IsReply(c.in); got != c.reply {
			t.Errorf("IsReply(%q) = %v", c.in, got)
		}
	}
}

func TestTitle(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"Re: [Garden crew] Daily digest: 3 conversations", "Re: Tomatoes", "Re: Re: Tomatoes"}, "Tomatoes"},
		{[]string{"Re: [Garden crew] Daily digest: 3 conversations"}, "Daily digest"},
		{[]string{"", "Re:", "Fwd: Frost"}, "Frost"},
		{nil, ""},
	} {
		if got := Title(c.in); got != c.want {
			t.Errorf("Title(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
