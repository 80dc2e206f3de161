package digest

import "crewmail/internal/mailaddr"

// hideAddress leaves the author's address out of what a digest shows of p, on a list that
// hides addresses (store.List.HideAddresses): she is named by her display name, or by the
// local part of her address when she has none, and the "Reply to … only" link (the private
// reply address) is how a member answers her alone. The templates show Address only beside a
// different name, so it is the name here.
func (p *post) hideAddress() {
	if p.author == p.From {
		p.author, _, _ = mailaddr.Split(p.From)
	}
	p.message.Author, p.message.Address = p.author, p.author
}
