// Package refusal reads whether a person's answer to a confirmation says no: "No. I never
// asked for this.", "Nein, das war ich nicht", "Ta bort mig". A confirmation is carried out by
// any reply, so a reply that refuses in words must be recognised before it confirms.
package refusal

import (
	"strings"
	"unicode"
)

// Refuses reports whether lines, the first lines a person wrote themselves in answer to a
// confirmation (quotations and signatures left out), refuse it. leaving: the confirmation is
// for leaving a list, where "unsubscribe" or "remove me" agrees instead of refusing.
//
// An answer beginning with a word of agreement (yes, ok, ja, oui, sí, …) never refuses; one
// beginning with a word of refusal (no, stop, nein, non, nee, nej, …) or holding a phrase of
// refusal (didn't ask, not me, remove me, …) in English, German, French, Spanish, Dutch or
// Swedish does.
func Refuses(lines []string, leaving bool) bool {
	text := normalize(strings.Join(lines[:min(len(lines), maxLines)], " "))
	if text == " " {
		return false
	}
	for _, p := range agree {
		if strings.HasPrefix(text, " "+p+" ") {
			return false
		}
	}
	if leaving && holds(text, leave) {
		return false
	}
	for _, w := range noWords {
		if strings.HasPrefix(text, " "+w+" ") {
			return true
		}
	}
	if holds(text, noPhrases) {
		return true
	}
	return !leaving && holds(text, leave)
}

// maxLines bounds what is read: the answer is on top.
const maxLines = 3

// holds reports whether text holds one of phrases from the start of a word; a phrase ending in
// "-" may end within a word (a stem: "désinscri-" for désinscrire, désinscrivez).
func holds(text string, phrases []string) bool {
	for _, p := range phrases {
		if stem, ok := strings.CutSuffix(p, "-"); ok {
			if strings.Contains(text, " "+stem) {
				return true
			}
		} else if strings.Contains(text, " "+p+" ") {
			return true
		}
	}
	return false
}

// normalize lowercases s, makes apostrophes one kind, and puts one space between words and
// around the whole, punctuation left out (an apostrophe and a hyphen inside a word stay).
func normalize(s string) string {
	s = strings.NewReplacer("’", "'", "‘", "'", "´", "'", "`", "'").Replace(strings.ToLower(s))
	var b strings.Builder
	b.WriteByte(' ')
	space := true
	rs := []rune(s)
	for i, r := range rs {
		inWord := unicode.IsLetter(r) || unicode.IsDigit(r) ||
			(r == '\'' || r == '-') && i > 0 && i+1 < len(rs) && unicode.IsLetter(rs[i-1]) && unicode.IsLetter(rs[i+1])
		if inWord {
			b.WriteRune(r)
			space = false
		} else if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	if !space {
		b.WriteByte(' ')
	}
	return b.String()
}

// agree are answers that begin by agreeing.
var agree = []string{
	"yes", "yep", "yeah", "ok", "okay", "sure", "confirm", "confirmed", "please do", "no problem", "no worries", "of course",
	"ja", "jawohl", "bestätigt", "bestätige",
	"oui", "d'accord", "bien sûr", "je confirme", "confirmé",
	"sí", "si", "vale", "claro", "confirmo", "de acuerdo",
	"akkoord", "bevestigd", "prima",
	"japp", "jo", "visst", "bekräftar",
}

// noWords begin an answer that refuses.
var noWords = []string{
	"no", "nope", "nah", "never", "stop", "cancel", "reject", "decline", "deny", "don't", "dont", "do not",
	"nein", "nö", "stopp", "niemals", "nicht",
	"non", "jamais", "arrêtez", "arrête", "pas",
	"nunca", "basta", "pare", "para",
	"nee", "neen", "nooit", "niet",
	"nej", "aldrig", "sluta", "inte",
}

// noPhrases refuse wherever they are in the answer.
var noPhrases = []string{
	"not me", "wasn't me", "was not me", "didn't ask", "did not ask", "never asked", "didn't request", "did not request",
	"never requested", "didn't sign up", "did not sign up", "never signed up", "didn't subscribe", "did not subscribe",
	"didn't send", "did not send", "not sent by me", "don't want", "do not want", "don't add", "do not add", "leave me alone",
	"nicht ich", "war ich nicht", "nicht angefordert", "nie angefordert", "nicht bestellt", "habe ich nicht", "hab ich nicht",
	"nicht angemeldet", "will nicht", "möchte nicht", "nicht gewollt",
	"pas moi", "n'est pas moi", "je n'ai pas", "jamais demandé", "pas demandé", "ne veux pas", "n'ai rien demandé",
	"no fui yo", "no soy yo", "no lo pedí", "no pedí", "no he pedido", "nunca pedí", "no quiero", "no me suscribí", "no me he suscrito",
	"niet ik", "was ik niet", "niet aangevraagd", "nooit aangevraagd", "niet aangemeld", "wil niet", "heb ik niet",
	"inte jag", "var inte jag", "har inte bett", "aldrig bett", "inte anmält", "vill inte", "har inte anmält",
}

// leave are the words of leaving: a refusal of anything but leaving, agreement to leave.
var leave = []string{
	"unsubscribe", "remove me", "take me off", "leave the list",
	"abmelden", "austragen", "entfernen sie mich", "löschen sie mich", "bitte entfernen", "entfernt mich",
	"désinscri-", "désabonne-", "retirez-moi", "supprimez-moi", "enlevez-moi",
	"darme de baja", "dar de baja", "bórrenme", "borrarme", "quítenme", "eliminarme",
	"afmelden", "uitschrijven", "verwijder me", "verwijder mij", "haal me eraf",
	"avregistrera", "ta bort mig", "avprenumerera", "avsluta",
}
