package lists

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"crewmail/internal/vocab"
	"crewmail/store"
)

// TestSettingsOfAMemberAndWhatChangesThem: what the settings page reads and each change it
// makes, on the member's own membership only.
func TestSettingsOfAMemberAndWhatChangesThem(t *testing.T) {
	s := newTestService(t)
	const crew = "crew@lists.example.test"
	if _, err := s.CreateList(crew, ListOptions{Name: "Garden crew", Owners: []string{"olga@example.test"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddMember(crew, "ann@example.test", "daily", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddMember(crew, "bob@example.test", "", false); err != nil {
		t.Fatal(err)
	}
	var ann store.Member
	if err := s.st.Update(func(tx store.Tx) error {
		p, err := tx.AppendPost(crew, store.Post{MessageID: "1@x", From: "bob@example.test", Subject: "Compost"}, []byte("Subject: Compost\r\n\r\nx\r\n"))
		if err != nil {
			return err
		}
		if ann, err = tx.Member(crew, "ann@example.test"); err != nil {
			return err
		}
		return tx.Mute(crew, p.Seq, ann.ID)
	}); err != nil {
		t.Fatal(err)
	}
	set, err := s.SettingsOf("ann@example.test")
	if err != nil || len(set.Memberships) != 1 {
		t.Fatalf("settings: %+v %v", set, err)
	}
	m := set.Memberships[0]
	if m.Member.Mode != vocab.Daily || len(m.Muted) != 1 || m.Muted[0].Subject != "Compost" || m.BroughtBy != "added by the operator" || m.Directory || !set.AppPassword.IsZero() {
		t.Errorf("membership: %+v", m)
	}
	if err := s.SetMemberMode(crew, "ann@example.test", vocab.Weekly); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSelfCopy(crew, "ann@example.test", false); err != nil {
		t.Fatal(err)
	}
	if err := s.EndMarks(crew, "ann@example.test", m.Muted[0].Thread); err != nil {
		t.Fatal(err)
	}
	if err := s.PauseMember(crew, "ann@example.test", s.Now().Add(-time.Hour)); err == nil {
		t.Error("a pause until a past date was taken")
	}
	if err := s.PauseMember(crew, "ann@example.test", s.Now().Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	pw, err := s.ShowAppPassword("ann@example.test")
	if err != nil {
		t.Fatal(err)
	}
	set, _ = s.SettingsOf("ann@example.test")
	m = set.Memberships[0]
	if m.Member.Mode != vocab.Weekly || !m.Member.NoOwnPosts || len(m.Muted) != 0 || m.Member.AwayUntil.IsZero() || set.AppPassword.IsZero() {
		t.Errorf("after the changes: %+v, password %v", m, set.AppPassword)
	}
	if err := s.st.View(func(tx store.Tx) error {
		p, err := tx.AppPasswordOf("ann@example.test")
		if err == nil && bcrypt.CompareHashAndPassword(p.Hash, []byte(pw)) != nil {
			t.Error("the password shown is not the one kept")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResumeMember(crew, "ann@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAppPassword("ann@example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ShowAppPassword("stranger@example.test"); err == nil {
		t.Error("a stranger got an app password")
	}
	if err := s.SetSelfCopy(crew, "stranger@example.test", true); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Errorf("a stranger's change: %v", err)
	}
	set, _ = s.SettingsOf("ann@example.test")
	if m = set.Memberships[0]; !m.Member.AwayUntil.IsZero() || !set.AppPassword.IsZero() {
		t.Errorf("after resume and revoke: %+v %v", m, set.AppPassword)
	}
	if err := s.LeaveList(crew, "ann@example.test"); err != nil {
		t.Fatal(err)
	}
	if set, _ = s.SettingsOf("ann@example.test"); len(set.Memberships) != 0 {
		t.Errorf("after leaving: %+v", set)
	}
}
