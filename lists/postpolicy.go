package lists

import (
	"crewmail/internal/vocab"
	"crewmail/store"
)

// postDecision is what becomes of a post under its list's policy.
type postDecision int

const (
	postAccept        postDecision = iota + 1 // archived and sent
	postRefuse                                // refused in the SMTP session: only members may post, and non-members are refused
	postHoldNonMember                         // held for the moderators: a non-member, where non-members are held
	postConfirm                               // held until its author confirms by reply: unproven, where posts must be proven
	postHoldModerated                         // held for the moderators: the list is moderated
	postHoldFirst                             // held for the moderators: a member's first post, where the list wants that
)

// decidePost says what becomes of a post to l: who may post (l.Post), what becomes of a
// non-member's post (l.NonMembers) and whether the list is moderated, against whether its
// author is a member and is proven (a DMARC-aligned DKIM or SPF pass for the list). A
// non-member is refused or held before anything else; an unproven member of a list that
// wants proof confirms before a moderator sees the post.
func decidePost(l store.List, member, proven bool) postDecision {
	switch {
	case !member && l.Post != vocab.PostAnyone && l.NonMembers != vocab.NonMembersHold:
		return postRefuse
	case !member && l.Post != vocab.PostAnyone:
		return postHoldNonMember
	case l.Post == vocab.PostVerified && !proven:
		return postConfirm
	case l.Moderated:
		return postHoldModerated
	}
	return postAccept
}
