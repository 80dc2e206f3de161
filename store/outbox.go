package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Delivery is one message to one recipient, waiting in the outbox. Rows are keyed by the time
// of their next attempt, so the due ones come first.
type Delivery struct {
	ID        uint64    `json:"id"`
	Due       time.Time `json:"due"`
	List      string    `json:"list"`
	Seq       uint64    `json:"seq,omitempty"`     // the archived post it carries; 0 for a notice
	Message   []byte    `json:"message,omitempty"` // the whole message, for notices
	Blob      uint64    `json:"blob,omitempty"`    // or a message shared by many deliveries (digests)
	From      string    `json:"from"`              // envelope sender ("" = null sender)
	To        string    `json:"to"`
	Member    uint64    `json:"member,omitempty"` // the member it goes to, for their own links
	Created   time.Time `json:"created"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	Leased    bool      `json:"leased,omitempty"` // an attempt is under way
}

// Failure records a delivery that failed for good.
type Failure struct {
	Delivery
	Failed time.Time `json:"failed"`
	Error  string    `json:"error"`
}

func outboxKey(due time.Time, id uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(due.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], id)
	return k
}

// Enqueue adds d to the outbox, due at d.Due (or at once when zero), and returns it with its ID.
func (t *boltTx) Enqueue(d Delivery) (Delivery, error) {
	b := t.tx.Bucket(bucketOutbox)
	id, err := b.NextSequence()
	if err != nil {
		return d, err
	}
	d.ID = id
	if d.Due.IsZero() {
		d.Due = d.Created
	}
	return d, putJSON(b, outboxKey(d.Due, d.ID), d)
}

// ClaimDue takes up to max deliveries due at now and leases them until now+lease: the attempt
// is recorded (Attempts+1) before anyone dials, and a crash leaves the row to be retried.
func (t *boltTx) ClaimDue(now time.Time, lease time.Duration, max int) ([]Delivery, error) {
	b := t.tx.Bucket(bucketOutbox)
	limit := outboxKey(now, ^uint64(0))
	var due []Delivery
	c := b.Cursor()
	for k, v := c.First(); k != nil && bytes.Compare(k, limit) <= 0 && len(due) < max; k, v = c.Next() {
		var d Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, fmt.Errorf("damaged outbox row %x: %w", k, err)
		}
		due = append(due, d)
	}
	for i := range due {
		d := &due[i]
		if err := b.Delete(outboxKey(d.Due, d.ID)); err != nil {
			return nil, err
		}
		d.Attempts++
		d.Leased = true
		d.Due = now.Add(lease)
		if err := putJSON(b, outboxKey(d.Due, d.ID), d); err != nil {
			return nil, err
		}
	}
	return due, nil
}

// Delivered removes a leased delivery from the outbox.
func (t *boltTx) Delivered(d Delivery) error {
	if err := t.tx.Bucket(bucketOutbox).Delete(outboxKey(d.Due, d.ID)); err != nil {
		return err
	}
	return t.unrefBlob(d.Blob)
}

// blobChunk is the size of the pieces a shared message is stored in. bbolt rewrites a leaf
// with every value in it when it adds to it, so large values side by side are copied again
// and again; pieces smaller than a page fill leaves and are written once.
const blobChunk = 1024

func blobKey(id uint64, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(u64(id), chunk)
}

// PutBlob stores a message that refs deliveries will carry, and returns its ID. It is removed
// when the last of them is delivered or fails.
func (t *boltTx) PutBlob(data []byte, refs int) (uint64, error) {
	b := t.tx.Bucket(bucketBlobs)
	b.FillPercent = 0.95 // keys only ever grow: fill the leaves
	id, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	for i := 0; i == 0 || i*blobChunk < len(data); i++ {
		if err := b.Put(blobKey(id, uint32(i)), data[i*blobChunk:min(len(data), (i+1)*blobChunk)]); err != nil {
			return 0, err
		}
	}
	return id, t.tx.Bucket(bucketBlobRefs).Put(u64(id), u64(uint64(refs)))
}

// Blob returns a copy of a stored message.
func (t *boltTx) Blob(id uint64) ([]byte, error) {
	var out []byte
	found := false
	c := t.tx.Bucket(bucketBlobs).Cursor()
	for k, v := c.Seek(blobKey(id, 0)); len(k) == 12 && binary.BigEndian.Uint64(k) == id; k, v = c.Next() {
		out, found = append(out, v...), true
	}
	if !found {
		return nil, fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	return out, nil
}

func (t *boltTx) unrefBlob(id uint64) error {
	if id == 0 {
		return nil
	}
	refs := t.tx.Bucket(bucketBlobRefs)
	v := refs.Get(u64(id))
	if len(v) != 8 {
		return nil
	}
	if n := binary.BigEndian.Uint64(v); n > 1 {
		return refs.Put(u64(id), u64(n-1))
	}
	if err := refs.Delete(u64(id)); err != nil {
		return err
	}
	c := t.tx.Bucket(bucketBlobs).Cursor()
	for k, _ := c.Seek(blobKey(id, 0)); len(k) == 12 && binary.BigEndian.Uint64(k) == id; k, _ = c.Seek(blobKey(id, 0)) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Retry moves a leased delivery to a new due time, keeping the error that delayed it.
func (t *boltTx) Retry(d Delivery, next time.Time, reason string) error {
	b := t.tx.Bucket(bucketOutbox)
	if err := b.Delete(outboxKey(d.Due, d.ID)); err != nil {
		return err
	}
	d.Due, d.Leased, d.LastError = next, false, reason
	return putJSON(b, outboxKey(d.Due, d.ID), d)
}

// Fail removes a leased delivery from the outbox and records it as failed for good.
func (t *boltTx) Fail(d Delivery, now time.Time, reason string) error {
	if err := t.Delivered(d); err != nil {
		return err
	}
	d.Leased = false
	d.Message = nil
	return putJSON(t.tx.Bucket(bucketFailures), u64(d.ID), Failure{Delivery: d, Failed: now, Error: reason})
}

// ReleaseLeases makes every leased delivery due at now. Only one process uses the file, so at
// start-up every lease belongs to a process that is gone.
func (t *boltTx) ReleaseLeases(now time.Time) (int, error) {
	b := t.tx.Bucket(bucketOutbox)
	var leased []Delivery
	err := b.ForEach(func(k, v []byte) error {
		var d Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("damaged outbox row %x: %w", k, err)
		}
		if d.Leased {
			leased = append(leased, d)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, d := range leased {
		if err := t.Retry(d, now, d.LastError); err != nil {
			return 0, err
		}
	}
	return len(leased), nil
}

// NextDue is the due time of the earliest outbox row, ok false when the outbox is empty.
func (t *boltTx) NextDue() (due time.Time, ok bool, err error) {
	k, _ := t.tx.Bucket(bucketOutbox).Cursor().First()
	if k == nil {
		return time.Time{}, false, nil
	}
	if len(k) != 16 {
		return time.Time{}, false, fmt.Errorf("damaged outbox row key %x", k)
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))), true, nil
}

// Outbox calls fn for every waiting delivery, earliest first.
func (t *boltTx) Outbox(fn func(Delivery) error) error {
	return t.tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		var d Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("damaged outbox row %x: %w", k, err)
		}
		return fn(d)
	})
}

// Failures calls fn for every delivery that failed for good, oldest first.
func (t *boltTx) Failures(fn func(Failure) error) error {
	return t.tx.Bucket(bucketFailures).ForEach(func(k, v []byte) error {
		var f Failure
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("damaged failure row %x: %w", k, err)
		}
		return fn(f)
	})
}

// OutboxSize is the number of deliveries waiting in the outbox.
func (t *boltTx) OutboxSize() (int, error) {
	return t.tx.Bucket(bucketOutbox).Stats().KeyN, nil
}

// ErrLeased: the delivery is being attempted right now, and cannot be changed until the
// attempt ends.
var ErrLeased = errors.New("an attempt is under way")

// findDelivery returns the outbox row of id.
func (t *boltTx) findDelivery(id uint64) (Delivery, error) {
	var found *Delivery
	err := t.Outbox(func(d Delivery) error {
		if d.ID == id {
			found = &d
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return Delivery{}, err
	}
	if found == nil {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return *found, nil
}

// errStop ends a walk over the outbox early.
var errStop = errors.New("stop")

// Reschedule makes the waiting delivery id due at due (an operator's "retry now"), keeping its
// attempts and last error. ErrNotFound when it is not in the outbox, ErrLeased while it is
// being attempted.
func (t *boltTx) Reschedule(id uint64, due time.Time) (Delivery, error) {
	d, err := t.findDelivery(id)
	if err != nil {
		return Delivery{}, err
	}
	if d.Leased {
		return d, fmt.Errorf("delivery %d: %w", id, ErrLeased)
	}
	b := t.tx.Bucket(bucketOutbox)
	if err := b.Delete(outboxKey(d.Due, d.ID)); err != nil {
		return Delivery{}, err
	}
	d.Due = due
	return d, putJSON(b, outboxKey(d.Due, d.ID), d)
}

// Drop removes the waiting delivery id from the outbox without sending it, and records it
// among the failures with reason. ErrNotFound when it is not in the outbox, ErrLeased while
// it is being attempted.
func (t *boltTx) Drop(id uint64, now time.Time, reason string) (Delivery, error) {
	d, err := t.findDelivery(id)
	if err != nil {
		return Delivery{}, err
	}
	if d.Leased {
		return d, fmt.Errorf("delivery %d: %w", id, ErrLeased)
	}
	return d, t.Fail(d, now, reason)
}
