package delivery

import (
	"testing"

	"crewmail/internal/mailaddr"
)

// TestIsLoopback: the password may go over plain text only to these addresses.
func TestIsLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:587", true},
		{"127.0.0.2:25", true},
		{"127.255.255.254:25", true},
		{"[::1]:587", true},
		{"localhost:25", true},
		{"[::ffff:127.0.0.1]:25", true},
		{"192.0.2.1:587", false},
		{"10.0.0.1:25", false},
		{"[2001:db8::1]:587", false},
		{"smtp.example.test:587", false},
		{"localhost.example.test:587", false},
		{"0.0.0.0:25", false},
		{"127.0.0.1", false}, // no port: not an address we dial
		{"", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.addr); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestASCIIAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr, want string
		wantErr    bool
	}{
		{addr: "ann@example.test", want: "ann@example.test"},
		{addr: "ann@bücher.example", want: "ann@xn--bcher-kva.example"},
		{addr: "ann@BÜCHER.example", want: "ann@xn--bcher-kva.example"},
		{addr: "\"odd@local\"@münchen.example", want: "\"odd@local\"@xn--mnchen-3ya.example"},
		{addr: "jörg@example.test", wantErr: true},
		{addr: "no-at-sign", wantErr: true},
	}
	for _, tt := range tests {
		got, err := mailaddr.ToASCII(tt.addr)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("mailaddr.ToASCII(%q) = %q, %v; want %q, error=%v", tt.addr, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestSignerSignsEachPostOnce: the copies members receive of one post are identical, and only
// the first is hashed and signed; the others reuse its signature.
func TestSignerSignsEachPostOnce(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := GenerateKey(dir, "x.test", "s", "ed25519"); err != nil {
		t.Fatal(err)
	}
	s := NewSigner(dir)
	post := []byte("From: a@x.test\r\nSubject: one\r\n\r\nbody\r\n")
	for range 8 {
		if _, err := s.Sign("x.test", post); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.cache.m) != 1 {
		t.Fatalf("8 identical copies made %d signatures, want 1", len(s.cache.m))
	}
	if _, err := s.Sign("x.test", []byte("From: a@x.test\r\nSubject: two\r\n\r\nbody\r\n")); err != nil || len(s.cache.m) != 2 {
		t.Fatalf("a second post: %d signatures, %v", len(s.cache.m), err)
	}
}
