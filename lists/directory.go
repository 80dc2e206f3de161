package lists

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"crewmail/internal/mailaddr"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// The crew's directory (issue 21, "who vouched for whom"): every member, since when, who brought
// them in, and how many of their posts were proven theirs (DMARC-aligned DKIM or SPF). Owners
// always see it; members when the list says so (List.Directory "members").

// Directory settings (store.List.Directory).
const (
	DirectoryOwners  = "owners"
	DirectoryMembers = "members"
	DirectoryOff     = "off"
)

// Entry is one member as the directory shows them.
type Entry struct {
	Name   string // the address, or its local part on a list that hides addresses
	Member store.Member
	// BroughtBy says who vouched for the member, in words: "invited by ann@…", "approved by
	// …", "joined on their own", "added by the operator"; empty when it was not recorded.
	BroughtBy string
	Proven    int // posts proven theirs
	Posts     int
}

// Directory is the members of l as its directory shows them, ordered by when they joined.
func Directory(tx store.Tx, l store.List) ([]Entry, error) {
	members, err := tx.Members(l.Address)
	if err != nil {
		return nil, err
	}
	proven, posts := map[string]int{}, map[string]int{}
	if err := tx.Posts(l.Address, func(p store.Post) error {
		posts[p.From]++
		if p.Verified == vocab.VerifiedDKIM || p.Verified == vocab.VerifiedSPF {
			proven[p.From]++
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var out []Entry
	for _, m := range members {
		e := Entry{Name: m.Address, Member: m, Proven: proven[m.Address], Posts: posts[m.Address], BroughtBy: BroughtBy(m)}
		if l.HideAddresses {
			e.Name, _, _ = mailaddr.Split(m.Address)
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return a.Member.Added.Compare(b.Member.Added) })
	return out, nil
}

// BroughtBy says in words how m's membership began (store.Member.BroughtBy).
func BroughtBy(m store.Member) string { return m.BroughtBy() }

// directory is the directory of l as result lines of a mail to crew-request@ (a notice's
// values are one line each), a member a line; owners see each member's address and mode too.
func (s *Service) directory(tx store.Tx, l store.List, owner bool) ([]string, error) {
	entries, err := Directory(tx, l)
	if err != nil {
		return nil, err
	}
	r := []string{fmt.Sprintf("who: %d members:", len(entries))}
	for _, e := range entries {
		line := e.Name
		if owner {
			line = e.Member.Address + " (" + string(e.Member.Mode) + ")"
		}
		if !e.Member.Added.IsZero() {
			line += ", since " + e.Member.Added.UTC().Format("2 January 2006")
		}
		if e.BroughtBy != "" {
			line += ", " + e.BroughtBy
		}
		line += fmt.Sprintf(", %d of %d posts proven", e.Proven, e.Posts)
		r = append(r, "  - "+line)
	}
	return r, nil
}

// memberWho answers "who" from a member who is not an owner: the directory, where the list
// lets members see it.
func (s *Service) memberWho(tx store.Tx, c *command) ([]string, error) {
	l := c.l
	if _, err := tx.Member(l.Address, c.m.from); errors.Is(err, store.ErrNotFound) {
		return []string{"who: the members of " + l.Address + " are shown only to its members."}, nil
	} else if err != nil {
		return nil, err
	}
	if l.Directory != DirectoryMembers {
		return []string{"who: only the owners of " + l.Address + " may see its directory."}, nil
	}
	return s.directory(tx, l, false)
}

// memberInvite carries out "invite ADDRESS…" from a member who is not an owner, where the list
// lets members invite (List.InviteBy "members"): from a proven address only, and the invitee's
// acceptance goes to the owners for approval unless the list is open (confirmPending).
func (s *Service) memberInvite(tx store.Tx, c *command, rest string) (string, error) {
	l := c.l
	if _, err := tx.Member(l.Address, c.m.from); errors.Is(err, store.ErrNotFound) || l.InviteBy != DirectoryMembers {
		return "invite: only the owners of " + l.Address + " may invite.", nil
	} else if err != nil {
		return "", err
	}
	if !c.verified {
		return "invite: your address could not be verified, so nobody was invited; send the invitation from a mail server that signs your mail (DKIM) or is allowed to send it (SPF).", nil
	}
	results, err := s.ownerCommands(tx, l, c.m.from, []string{strings.TrimSpace("invite " + rest)}, c.m.messageID, c.res)
	if err != nil {
		return "", err
	}
	return strings.Join(results, "\n"), nil
}
