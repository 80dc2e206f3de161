package refusal

import (
	"strings"
	"testing"
)

func TestRefuses(t *testing.T) {
	for _, c := range []struct {
		text    string
		leaving bool
		want    bool
	}{
		// Agreement, in the six languages.
		{"yes", false, false},
		{"Yes please!", false, false},
		{"OK", false, false},
		{"", false, false},
		{"Thanks, looking forward to it", false, false},
		{"No problem, go ahead", false, false},
		{"Ja, gerne.", false, false},
		{"Oui, merci", false, false},
		{"Sí, claro", false, false},
		{"Ja graag", false, false},
		{"Ja tack", false, false},
		{"Yes, please unsubscribe me", true, false},
		{"Please remove me", true, false},
		{"Bitte abmelden", true, false},
		{"Désinscrivez-moi svp", true, false},
		{"Quiero darme de baja", true, false},
		{"Graag afmelden", true, false},
		{"Ta bort mig tack", true, false},
		// Refusal: English.
		{"NO. I never asked for this. Please remove me.", false, true},
		{"no", false, true},
		{"Nope", false, true},
		{"Stop sending me these", false, true},
		{"Don't", false, true},
		{"Please don't add me", false, true},
		{"I didn't ask for this", false, true},
		{"Who is this? I never signed up.", false, true},
		{"unsubscribe", false, true},
		{"remove me", false, true},
		{"That was not me", false, true},
		{"I didn’t send that", false, true},
		// German, French, Spanish, Dutch, Swedish.
		{"Nein danke", false, true},
		{"Das habe ich nicht angefordert!", false, true},
		{"Bitte abmelden", false, true},
		{"Non merci", false, true},
		{"Je n'ai jamais demandé ça", false, true},
		{"Ce n’est pas moi", false, true},
		{"Désinscrivez-moi", false, true},
		{"No, gracias", false, true},
		{"Yo no lo pedí", false, true},
		{"Por favor, darme de baja", false, true},
		{"Nee, bedankt", false, true},
		{"Dit heb ik niet aangevraagd", false, true},
		{"Graag uitschrijven", false, true},
		{"Nej tack", false, true},
		{"Det var inte jag", false, true},
		{"Avregistrera mig", false, true},
		// Refusing to leave.
		{"No, I want to stay", true, true},
		{"I didn't ask to leave", true, true},
		{"Nein", true, true},
	} {
		if got := Refuses(strings.Split(c.text, "\n"), c.leaving); got != c.want {
			t.Errorf("Refuses(%q, leaving %v) = %v, want %v", c.text, c.leaving, got, c.want)
		}
	}
}

// TestOnlyTheFirstLines: a refusal quoted or far below is not the answer.
func TestOnlyTheFirstLines(t *testing.T) {
	if Refuses([]string{"Sounds good", "see you", "there", "PS: I don't want the digest"}, false) {
		t.Error("a fourth line refused")
	}
}
