package lists

import "crewmail/internal/token"

// tokenList is list as its tokens are bound to it: with its incarnation (store.List).
func (s *Service) tokenList(list string) token.List {
	return token.List{Address: list, Incarnation: s.st.Incarnation(list)}
}

// seqToken names a number of list (an archived post, a thread) for one purpose.
func (s *Service) seqToken(list string, p token.Purpose, n uint64) string {
	return s.tokens.Seq(s.tokenList(list), p, n)
}

// parseSeqToken returns the number a token names, if the token is genuine for list and purpose.
func (s *Service) parseSeqToken(list string, p token.Purpose, t string) (uint64, bool) {
	return s.tokens.ParseSeq(s.tokenList(list), p, t)
}

// verpToken names a member of a list in the list's bounce address.
func (s *Service) verpToken(list string, memberID uint64) string {
	return s.seqToken(list, token.VERP, memberID)
}

// parseVERPToken returns the member ID a bounce token names, if the token is genuine.
func (s *Service) parseVERPToken(list, t string) (uint64, bool) {
	return s.parseSeqToken(list, token.VERP, t)
}
