package replytext

import (
	"strings"

	"crewmail/internal/htmlpost"
)

// Split returns the author's own text of msg, as Body gives it but uncut, and the rest of the
// text of the same parts: the quoted lines, their attributions, the signature and the original
// below a top-posted reply, which Body leaves out. Search keeps them apart, to look in an
// author's own words only, or in the quotes too. files are msg's attachments, as Body lists
// them. The error is only for a header that cannot be read.
func Split(msg []byte) (own, rest string, files []File, err error) {
	var w walker
	if err := w.walk(skipBlankLines(msg)); err != nil {
		return "", "", nil, err
	}
	kind := w.kind()
	var owns, rests []string
	first := true
	for _, p := range w.parts {
		if kind != "" && p.kind == kind && !p.blank && (first || p.name == "") {
			first = false
			lines := p.lines()
			text, _, _ := ownText(lines)
			if text != "" {
				owns = append(owns, plain(text))
			}
			// The rest is every line that is not one of the author's, as often as it is
			// more in the part than in the own text.
			left := map[string]int{}
			for _, l := range strings.Split(text, "\n") {
				left[strings.TrimRight(l, " \t")]++
			}
			var r []string
			for _, l := range lines {
				k := strings.TrimRight(l, " \t")
				if left[k] > 0 {
					left[k]--
					continue
				}
				if strings.TrimSpace(k) != "" {
					r = append(r, k)
				}
			}
			if len(r) > 0 {
				rests = append(rests, plain(strings.Join(r, "\n")))
			}
			continue
		}
		if !p.skip && (p.kind == "" || p.name != "") {
			name := p.name
			if name == "" {
				name = "unnamed (" + p.typ + ")"
			}
			files = append(files, File{Name: name, Size: p.size})
		}
	}
	return strings.Join(owns, "\n\n"), strings.Join(rests, "\n"), files, nil
}

// plain is text as a reader sees it: the marks an HTML part's links and tables leave in its
// lines (htmlpost) turned into words, a link's URL after the text.
func plain(text string) string {
	if !strings.ContainsFunc(text, isMark) {
		return text
	}
	p := htmlpost.FromMarked(text)
	if len(p.Refs) == 0 {
		return p.Text
	}
	return p.Text + "\n" + strings.Join(p.Refs, "\n")
}
