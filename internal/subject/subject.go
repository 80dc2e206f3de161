// Package subject owns what a conversation is called: a mail's subject without the reply and
// forward prefixes ("Re:", "Fwd:", "AW:", "SV:", "Antw:", …) and list tags ("[Garden crew]")
// mail programs and lists put in front of it. Threading matches posts on its Key; digests and
// `crewmail archive ls` show its Base.
package subject

import (
	"regexp"
	"strings"
)

// prefixes are what mail clients put in front of a subject when replying or forwarding, in
// the languages they most often come in.
var prefixes = []string{"re", "aw", "sv", "vs", "antw", "odp", "ynt", "fw", "fwd", "wg", "tr", "rv", "enc"}

// IsReply reports whether s starts with a reply prefix ("Re:", "AW:", "Re[2]:"), after any
// "[list]" tags.
func IsReply(s string) bool {
	w, _, ok := prefix(strings.TrimSpace(stripTags(s, false)))
	if !ok {
		return false
	}
	return w == "re" || w == "aw" || w == "sv" || w == "vs" || w == "antw" || w == "odp" || w == "ynt"
}

// Key is what the posts of one thread have in common: the subject without prefixes and list
// tags, white space folded, lowercased. Threading looks a reply up by it (lists).
func Key(s string) string {
	return strings.ToLower(strip(s, false))
}

// Base is the subject a conversation is shown under: without prefixes and list tags, white
// space folded, its case kept. A tag that says what kind of post it is ("[PATCH v2 1/3]",
// "[RFC]", "[ANN]") is no list's and stays. The subject of a reply to a digest ("Re: [Crew] Daily digest: 3
// conversations, 11 messages", Mailman's "Re: Crew Digest, Vol 12, Issue 3") says nothing
// about the conversation: it comes out as the digest's name alone ("Daily digest", "Crew
// Digest"), and IsDigest tells it apart.
func Base(s string) string {
	b := strip(s, true)
	if m := digestRE.FindStringSubmatch(b); m != nil {
		return m[1] + m[2]
	}
	return b
}

// IsDigest reports whether s is the subject of a digest, or of a reply to one.
func IsDigest(s string) bool {
	return digestRE.MatchString(strip(s, true))
}

// digestRE matches a digest's subject after its list tag: crewmail's own ("Daily digest: …",
// "While you were away: …") and Mailman's ("Crew Digest, Vol 12, Issue 3").
var digestRE = regexp.MustCompile(`(?i)^((?:daily|weekly) digest|while you were away)(?:: .*)?$|^(.+ digest), vol \d+, issue \d+$`)

// strip takes prefixes and tags off s, in any order and any number, and folds white space.
// With kinds, the tags that say what kind of post it is stay, and what follows them.
func strip(s string, kinds bool) string {
	kept := ""
	for {
		s = strings.TrimSpace(stripTags(s, kinds))
		if kinds {
			if m := kindRE.FindString(s); m != "" {
				kept += m + " "
				s = s[len(m):]
				continue
			}
		}
		w, rest, ok := prefix(s)
		if !ok {
			break
		}
		known := false
		for _, p := range prefixes {
			known = known || w == p
		}
		if !known {
			break
		}
		s = rest
	}
	return strings.Join(strings.Fields(kept+s), " ")
}

// kindRE matches a leading tag that says what kind of post it is rather than which list.
var kindRE = regexp.MustCompile(`(?i)^\[(?:patch|rfc|ann|announce|resend|wip|ot)\b[^\]]*\]`)

// prefix splits s at its first colon: the word before it lowercased, without a counter such
// as "[2]" or "(2)", and what follows.
func prefix(s string) (word, rest string, ok bool) {
	w, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", s, false
	}
	w = strings.ToLower(strings.TrimSpace(w))
	if i := strings.IndexAny(w, "[("); i > 0 {
		w = w[:i]
	}
	return w, rest, true
}

// stripTags removes leading "[tag]" groups, as lists put in subjects; with kinds, up to one
// kindRE matches.
func stripTags(s string, kinds bool) string {
	for {
		t := strings.TrimSpace(s)
		if !strings.HasPrefix(t, "[") || kinds && kindRE.MatchString(t) {
			return t
		}
		end := strings.Index(t, "]")
		if end < 0 {
			return t
		}
		s = t[end+1:]
	}
}

// Title is what a conversation whose posts have the given subjects (oldest first) is called:
// the Base of the first that is not a digest's, else of the first that is, else "".
func Title(subjects []string) string {
	first := ""
	for _, s := range subjects {
		b := Base(s)
		if b == "" {
			continue
		}
		if !IsDigest(s) {
			return b
		}
		if first == "" {
			first = b
		}
	}
	return first
}
