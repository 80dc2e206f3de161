package lists

import (
	"strings"

	"crewmail/internal/vocab"
)

// singletons are the fields RFC 5322 §3.6 (Table on p. 21) and RFC 2045 §4, §5 allow at most
// once, besides From (checked on its own). A DKIM signature covers the last instance of a field
// it names (RFC 6376 §5.4.2) while readers, and this server, read the first: a second Subject
// or Message-ID put on top of a member's signed post would ride along its valid signature.
// In-Reply-To and References are left out: they are read together (every id in every
// instance), never shown, and real mail has them doubled (git send-email 2.13 wrote both twice).
var singletons = []string{"Sender", "Reply-To", "To", "Cc", "Subject", "Message-ID", "Date", "MIME-Version", "Content-Type"}

// singleFields refuses a message with two different values of a field allowed once. The same
// value twice (Mailman repeats MIME-Version) shows the same thing whichever one is read.
func singleFields(values func(string) []string) error {
	for _, name := range singletons {
		vs := values(name)
		for _, v := range vs[min(1, len(vs)):] {
			if strings.Join(strings.Fields(v), " ") != strings.Join(strings.Fields(vs[0]), " ") {
				return refuse(550, [3]int{5, 7, 1}, "the message has %d %s headers with different values; at most one is allowed", len(vs), name)
			}
		}
	}
	return nil
}

// forPost is a for a post to list: a DKIM pass counts only when the signed To or Cc names the
// list (its address, or one of its Reply addresses). Every member receives a signed post
// intact, and could re-send it to another list its author is on.
func (a Auth) forPost(list, sep string) Auth {
	local, domain := splitAddress(list)
	return a.onlyFor(list, func(addr string) bool {
		l, d := splitAddress(addr)
		return d == domain && (l == local || strings.HasPrefix(l, local+sep+"r-"))
	})
}

// forCommand is a for mail to the command address of t: a DKIM pass counts only when the
// signed To or Cc names that very address. A member's signed post to the list re-sent to
// crew+nomail@ must not pass for its author's own request.
func (a Auth) forCommand(t Target, sep string) Auth {
	want := commandAddress(t, sep)
	return a.onlyFor(want, func(addr string) bool { return want != "" && addr == want })
}

// onlyFor is a with a DKIM pass counted only when one of the addresses in the signed To and
// Cc (normalized by ParseAddress) is one that names says; otherwise an aligned SPF pass still
// proves the mail, or nothing does. to says where the mail went, for the reason.
func (a Auth) onlyFor(to string, names func(addr string) bool) Auth {
	if !a.Pass || a.Method != vocab.VerifiedDKIM {
		return a
	}
	for _, r := range a.DKIMRecipients {
		if addr, err := ParseAddress(r); err == nil && names(addr) {
			return a
		}
	}
	if a.SPFDomain != "" {
		a.Method, a.Domain = vocab.VerifiedSPF, a.SPFDomain
		return a
	}
	a.Pass, a.Method, a.Domain = false, vocab.Unverified, ""
	a.Reason = "its DKIM signature was made for mail to other addresses than " + to
	return a
}

// commandAddress is the address that leads to t (see Route), "" for a kind without one.
func commandAddress(t Target, sep string) string {
	local, domain := splitAddress(t.List)
	switch t.Kind {
	case KindPost:
		return t.List
	case KindRequest:
		return local + "-request@" + domain
	}
	cmd := map[Kind]string{
		KindHelp: "help", KindUnsubscribe: "unsubscribe", KindSubscribe: "subscribe", KindOwner: "owner",
		KindPassword: "password", KindDigestReply: "digest", KindMuteThread: "mute", KindFollow: "follow", KindPause: "pause", KindMode: t.Token, KindReply: "r-" + t.Token, KindPrivate: "p-" + t.Token,
		KindMute: "mute-" + t.Token, KindUnmute: "unmute-" + t.Token, KindConfirm: "confirm-" + t.Token,
		KindBounce: "bounces-" + t.Token,
	}[t.Kind]
	if cmd == "" {
		return ""
	}
	return local + sep + cmd + "@" + domain
}
