package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Copying a whole database from one backend to another (crewmail migrate): both backends
// keep the same records — most of them the same JSON — under the same IDs, so a copy moves raw
// records and keeps every number a token, a VERP address or an IMAP client holds: member IDs,
// archive sequences, thread numbers, incarnations, delivery IDs, and the server's secret.

// RecordKind names a kind of raw record.
type RecordKind string

// The kinds of records, in the order a dump gives them (a list before what it keeps).
const (
	RecSecret    RecordKind = "secret"    // Data: the server's secret
	RecSequences RecordKind = "sequences" // Nums: the last outbox and blob IDs given
	RecList      RecordKind = "list"      // Data: List; Nums: the list's last archive, member, held, pending, bounce and merge numbers
	RecMember    RecordKind = "member"    // Data: Member
	RecPost      RecordKind = "post"      // Nums[0]: sequence; Data: Post; Raw: the message
	RecThreadID  RecordKind = "thread-id" // Key: Message-ID; Nums[0]: thread
	RecSubject   RecordKind = "subject"   // Key: base subject; Nums: thread, Unix date
	RecMerge     RecordKind = "merge"     // Nums: thread, the thread it went into, the merge's number
	RecMark      RecordKind = "mark"      // Key: "mutes" or "follows"; Nums: thread, member, merge count
	RecCursor    RecordKind = "cursor"    // Key: address; Data: Cursor (as kept, even damaged)
	RecFlags     RecordKind = "flags"     // Nums: member, sequence, flag bits
	RecBounce    RecordKind = "bounce"    // Nums[0]: ID; Data: Bounce
	RecHeld      RecordKind = "held"      // Nums[0]: ID; Data: Held
	RecPending   RecordKind = "pending"   // Nums[0]: ID; Data: Pending
	RecDelivery  RecordKind = "delivery"  // Data: Delivery (its ID, due time and lease inside)
	RecFailure   RecordKind = "failure"   // Nums[0]: ID; Data: Failure
	RecBlob      RecordKind = "blob"      // Nums: ID, references; Data: the message
	RecPassword  RecordKind = "password"  // Key: address; Data: AppPassword
	// RecSearchDoc is a post's entry in its list's search index: Nums[0]: sequence; Data:
	// SearchDoc.Encode. A copy carries the index, so the copy answers searches (and IMAP's
	// narrowing) at once, as complete as the original's was, without reindexing.
	RecSearchDoc RecordKind = "search-doc"
)

// Record is one raw record, as Copier.Dump gives it and Loader.Add takes it. List names the
// list of a per-list record. Byte slices are valid only during the call they are given to.
type Record struct {
	Kind RecordKind
	List string
	Key  string
	Nums []uint64
	Data []byte
	Raw  []byte
}

// Copier is a backend whose whole content can be copied to another backend, keeping IDs.
type Copier interface {
	// Dump calls fn for every record, in one consistent read, each list before its records.
	Dump(fn func(Record) error) error
	// Loader starts loading records into this database, which must hold no list, delivery,
	// failure or app password yet (ErrNotEmpty).
	Loader() (Loader, error)
}

// Loader writes records into a database (Copier.Loader). Nothing needs to be visible before
// Close, which writes what remains; a loader not closed after an error may have written part.
type Loader interface {
	Add(r Record) error
	Close() error
}

// ErrNotEmpty: a copy goes only into an empty database.
var ErrNotEmpty = fmt.Errorf("the database to copy into is not empty")

// Summary is what a dump holds: how many records of each kind, and the SHA-256 of every
// archived message, by list and sequence.
type Summary struct {
	Counts  map[RecordKind]int
	Digests map[string][32]byte // list + "\x00" + big-endian sequence → SHA-256 of the message
}

func newSummary() Summary {
	return Summary{Counts: map[RecordKind]int{}, Digests: map[string][32]byte{}}
}

func (s Summary) add(r Record) {
	s.Counts[r.Kind]++
	if r.Kind == RecPost && len(r.Nums) > 0 {
		s.Digests[r.List+"\x00"+string(binary.BigEndian.AppendUint64(nil, r.Nums[0]))] = sha256.Sum256(r.Raw)
	}
}

// String says what the summary counts: "list: 2, member: 14, post: 1234, …".
func (s Summary) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.Counts)) {
		if k != RecSecret && k != RecSequences {
			parts = append(parts, fmt.Sprintf("%s: %d", k, s.Counts[k]))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// Summarize reads src through and summarizes it.
func Summarize(src Copier) (Summary, error) {
	s := newSummary()
	err := src.Dump(func(r Record) error { s.add(r); return nil })
	return s, err
}

// Copy copies every record of src into dst, which must be empty, then reads dst back and
// checks that it holds as many records of each kind as were copied and every archived message
// byte for byte (by its SHA-256). progress, when not nil, is called after every record copied.
// It returns what was copied.
func Copy(src, dst Copier, progress func(Summary)) (Summary, error) {
	load, err := dst.Loader()
	if err != nil {
		return Summary{}, err
	}
	sent := newSummary()
	err = src.Dump(func(r Record) error {
		if err := load.Add(r); err != nil {
			return fmt.Errorf("copy %s record of %q: %w", r.Kind, r.List, err)
		}
		sent.add(r)
		if progress != nil {
			progress(sent)
		}
		return nil
	})
	if cerr := load.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return sent, err
	}
	got, err := Summarize(dst)
	if err != nil {
		return sent, fmt.Errorf("read the copy back: %w", err)
	}
	return sent, sent.Check(got)
}

// Check says how got differs from s: the first kind whose count differs, or the first
// message whose digest differs; nil when they agree.
func (s Summary) Check(got Summary) error {
	for _, k := range slices.Sorted(maps.Keys(s.Counts)) {
		if s.Counts[k] != got.Counts[k] {
			return fmt.Errorf("the copy holds %d %s records, the original %d", got.Counts[k], k, s.Counts[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.Counts)) {
		if s.Counts[k] != got.Counts[k] {
			return fmt.Errorf("the copy holds %d %s records, the original %d", got.Counts[k], k, s.Counts[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Digests)) {
		if got.Digests[k] != s.Digests[k] {
			list, seq, _ := strings.Cut(k, "\x00")
			return fmt.Errorf("message %d of %s differs in the copy", binary.BigEndian.Uint64([]byte(seq)), list)
		}
	}
	return nil
}
