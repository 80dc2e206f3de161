package replytext

import "strings"

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
			text, _ := ownText(lines)
			if text != "" {
				owns = append(owns, text)
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
				rests = append(rests, strings.Join(r, "\n"))
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
