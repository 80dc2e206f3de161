package lists

import (
	"fmt"
	"testing"

	"crewmail/internal/vocab"
	"crewmail/store"
)

// TestPostPolicy is the whole post policy: for each list setting, what becomes of a post by a
// member or not, proven or not.
func TestPostPolicy(t *testing.T) {
	const (
		accept    = postAccept
		refuse    = postRefuse
		nonMember = postHoldNonMember
		confirm   = postConfirm
		moderated = postHoldModerated
	)
	type list struct {
		post       vocab.PostPolicy
		nonMembers vocab.NonMembers
		moderated  bool
	}
	// Each row: what becomes of a post by a proven member, an unproven member, a proven
	// non-member and an unproven non-member.
	for _, tc := range []struct {
		list list
		want [4]postDecision
	}{
		{list{vocab.PostVerified, vocab.NonMembersReject, false}, [4]postDecision{accept, confirm, refuse, refuse}},
		{list{vocab.PostVerified, vocab.NonMembersHold, false}, [4]postDecision{accept, confirm, nonMember, nonMember}},
		{list{vocab.PostVerified, vocab.NonMembersReject, true}, [4]postDecision{moderated, confirm, refuse, refuse}},
		{list{vocab.PostVerified, vocab.NonMembersHold, true}, [4]postDecision{moderated, confirm, nonMember, nonMember}},
		{list{vocab.PostMembers, vocab.NonMembersReject, false}, [4]postDecision{accept, accept, refuse, refuse}},
		{list{vocab.PostMembers, vocab.NonMembersHold, false}, [4]postDecision{accept, accept, nonMember, nonMember}},
		{list{vocab.PostMembers, vocab.NonMembersReject, true}, [4]postDecision{moderated, moderated, refuse, refuse}},
		{list{vocab.PostMembers, vocab.NonMembersHold, true}, [4]postDecision{moderated, moderated, nonMember, nonMember}},
		{list{vocab.PostAnyone, vocab.NonMembersReject, false}, [4]postDecision{accept, accept, accept, accept}},
		{list{vocab.PostAnyone, vocab.NonMembersHold, false}, [4]postDecision{accept, accept, accept, accept}},
		{list{vocab.PostAnyone, vocab.NonMembersReject, true}, [4]postDecision{moderated, moderated, moderated, moderated}},
		{list{vocab.PostAnyone, vocab.NonMembersHold, true}, [4]postDecision{moderated, moderated, moderated, moderated}},
	} {
		l := store.List{Post: tc.list.post, NonMembers: tc.list.nonMembers, Moderated: tc.list.moderated}
		for i, author := range []struct{ member, proven bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
			if got := decidePost(l, author.member, author.proven); got != tc.want[i] {
				t.Errorf("post %s, non-members %s, moderated %v: %s: %v, want %v", tc.list.post, tc.list.nonMembers, tc.list.moderated, who(author.member, author.proven), got, tc.want[i])
			}
		}
	}
}

func who(member, proven bool) string {
	return fmt.Sprintf("member %v, proven %v", member, proven)
}

func (d postDecision) String() string {
	return map[postDecision]string{postAccept: "accept", postRefuse: "refuse", postHoldNonMember: "hold (not a member)",
		postConfirm: "hold for the author's confirmation", postHoldModerated: "hold (moderated)"}[d]
}
