// Package vocab owns the words crewmail's lists are set up and described with — how a member
// receives a list (Mode), who may join it (JoinPolicy) and post to it (PostPolicy), what
// becomes of a post from a non-member (NonMembers), where the author goes when a copy must be
// sent From the list (AuthorIn), how a post's author was vouched for (Verified) — and the two
// rules that follow from a member's words alone: who receives each post as it is accepted
// (ReceivesEachPost) and where a member's digests start when she starts receiving them
// (DigestStart).
//
// It sits below every package that speaks these words, so that none has to import another
// for them: store keeps them, and applies the two rules inside the writes that change a
// member (its roster of who receives each post and its digest cursors must follow every such
// write, in the same transaction); lists and digest decide with them; cmd and the commands by
// email parse them from what people type. A word's text is what the database holds and what
// operators type, so a constant's value never changes.
package vocab

import (
	"fmt"
	"slices"
	"strings"
)

// Mode is how a member receives a list.
type Mode string

// The delivery modes.
const (
	Each   Mode = "each"   // every post, as it is accepted
	Daily  Mode = "daily"  // a digest a day
	Weekly Mode = "weekly" // a digest a week
	NoMail Mode = "nomail" // nothing; the member still may post and read the archive
)

// Modes are the delivery modes, in the order help texts name them.
var Modes = []Mode{Each, Daily, Weekly, NoMail}

// ParseMode reads a delivery mode as a person types it (a command line, a command by email).
func ParseMode(s string) (Mode, error) {
	return parse(s, Modes, "mode must be one of %s, not %q")
}

// Digest says whether mode is a digest mode (daily or weekly); it is then also the digest's
// period.
func (m Mode) Digest() bool { return m == Daily || m == Weekly }

// JoinPolicy is who may join a list.
type JoinPolicy string

// The join policies.
const (
	JoinOpen    JoinPolicy = "open"    // anyone who confirms their address
	JoinApprove JoinPolicy = "approve" // as open, and an owner approves
	JoinInvite  JoinPolicy = "invite"  // only whom an owner invites
)

// JoinPolicies are the join policies.
var JoinPolicies = []JoinPolicy{JoinOpen, JoinApprove, JoinInvite}

// ParseJoinPolicy reads a join policy as an operator types it.
func ParseJoinPolicy(s string) (JoinPolicy, error) {
	return parse(s, JoinPolicies, "join policy must be one of %s, not %q")
}

// PostPolicy is who may post to a list.
type PostPolicy string

// The post policies.
const (
	PostVerified PostPolicy = "verified" // members, proven by DKIM or SPF (DMARC-aligned) or by confirming
	PostMembers  PostPolicy = "members"  // members, by their From
	PostAnyone   PostPolicy = "anyone"   // anyone
)

// PostPolicies are the post policies.
var PostPolicies = []PostPolicy{PostVerified, PostMembers, PostAnyone}

// ParsePostPolicy reads a post policy as an operator types it.
func ParsePostPolicy(s string) (PostPolicy, error) {
	return parse(s, PostPolicies, "post policy must be one of %s, not %q")
}

// NonMembers is what becomes of a post from someone who is not a member, when the post policy
// wants members. A list that has none set rejects.
type NonMembers string

// What becomes of non-members' posts.
const (
	NonMembersReject NonMembers = "reject" // refused during the SMTP session (the default)
	NonMembersHold   NonMembers = "hold"   // held for the moderators
)

// ParseNonMembers reads what becomes of non-members' posts as an operator types it.
func ParseNonMembers(s string) (NonMembers, error) {
	switch v := NonMembers(s); v {
	case NonMembersReject, NonMembersHold:
		return v, nil
	}
	return "", fmt.Errorf("posts from non-members are reject or hold, not %q", s)
}

// AuthorIn is where the author goes when a copy must be sent From the list (DMARC): the
// header that keeps her reachable. A list that has none set uses Reply-To.
type AuthorIn string

// Where the author goes.
const (
	AuthorInReplyTo AuthorIn = "reply-to" // the default
	AuthorInCc      AuthorIn = "cc"
)

// ParseAuthorIn reads where the author goes as an operator types it.
func ParseAuthorIn(s string) (AuthorIn, error) {
	switch v := AuthorIn(s); v {
	case AuthorInReplyTo, AuthorInCc:
		return v, nil
	}
	return "", fmt.Errorf("the author goes in reply-to or cc, not %q", s)
}

// Verified is how a post's author was vouched for; empty when nobody vouched.
type Verified string

// How an author was vouched for.
const (
	Unverified Verified = ""
	// VerifiedDKIM and VerifiedSPF: a DMARC-aligned DKIM signature or SPF check of the From
	// domain passed (RFC 7489 §3.1), as the authentication method's name says.
	VerifiedDKIM Verified = "dkim"
	VerifiedSPF  Verified = "spf"
	// VerifiedConfirmed: the member confirmed by reply that the post is hers.
	VerifiedConfirmed Verified = "confirmed"
	// VerifiedApproved: a moderator or the operator let the post through; it says nothing
	// about who wrote it.
	VerifiedApproved Verified = "approved"
)

// ByAuthor says whether the author herself was proven to be who the From says: by DKIM or
// SPF, or by confirming; a moderator's approval is not such a proof.
func (v Verified) ByAuthor() bool {
	return v == VerifiedDKIM || v == VerifiedSPF || v == VerifiedConfirmed
}

// ReceivesEachPost is who receives each post as it is accepted: a member in each mode whose
// delivery is not paused (for bouncing, or by her own wish until a date). Members in a digest mode have the post in their next
// digest; a paused member gets nothing until she asks for mail again.
func ReceivesEachPost(mode Mode, paused bool) bool {
	return mode == Each && !paused
}

// DigestStart is where the digests of a member who starts receiving them (her mode is set to
// mode) begin: after newest, the newest post archived at that moment. She had the posts
// before it by mail, or joined after them, or asked for none while they came; her first
// digest is about what comes next. ok is false when mode sends no digests: she keeps no place
// in the archive. A member already receiving digests keeps the place she has.
func DigestStart(mode Mode, newest uint64) (after uint64, ok bool) {
	if !mode.Digest() {
		return 0, false
	}
	return newest, true
}

// parse finds s among words, or says in a sentence (format takes the words and s) that it is
// none of them.
func parse[W ~string](s string, words []W, format string) (W, error) {
	if slices.Contains(words, W(s)) {
		return W(s), nil
	}
	names := make([]string, len(words))
	for i, w := range words {
		names[i] = string(w)
	}
	return "", fmt.Errorf(format, strings.Join(names, ", "), s)
}
