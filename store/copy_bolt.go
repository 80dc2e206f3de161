package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

var _ Copier = (*Store)(nil)

// Dump calls fn for every record of the file, in one read transaction (Copier).
func (s *Store) Dump(fn func(Record) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := fn(Record{Kind: RecSecret, Data: meta.Get(keySecret)}); err != nil {
			return err
		}
		if err := fn(Record{Kind: RecSequences, Nums: []uint64{tx.Bucket(bucketOutbox).Sequence(), tx.Bucket(bucketBlobs).Sequence()}}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLists).ForEachBucket(func(k []byte) error {
			return dumpList(tx.Bucket(bucketLists).Bucket(k), string(k), fn)
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutbox).ForEach(func(_, v []byte) error {
			return fn(Record{Kind: RecDelivery, Data: v})
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketFailures).ForEach(func(k, v []byte) error {
			return fn(Record{Kind: RecFailure, Nums: []uint64{binary.BigEndian.Uint64(k)}, Data: v})
		}); err != nil {
			return err
		}
		t := &boltTx{tx: tx}
		if err := tx.Bucket(bucketBlobRefs).ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 8 {
				return fmt.Errorf("damaged blob reference %x", k)
			}
			id := binary.BigEndian.Uint64(k)
			data, err := t.Blob(id)
			if err != nil {
				return err
			}
			return fn(Record{Kind: RecBlob, Nums: []uint64{id, binary.BigEndian.Uint64(v)}, Data: data})
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketPasswords).ForEach(func(k, v []byte) error {
			return fn(Record{Kind: RecPassword, Key: string(k), Data: v})
		})
	})
}

func dumpList(b *bolt.Bucket, list string, fn func(Record) error) error {
	seq := func(name []byte) uint64 {
		if sub := b.Bucket(name); sub != nil {
			return sub.Sequence()
		}
		return 0
	}
	if err := fn(Record{Kind: RecList, List: list, Data: b.Get(keyConfig),
		Nums: []uint64{seq(subArchive), seq(subMembers), seq(subHeld), seq(subPending), seq(subBounces), seq(subMerged)}}); err != nil {
		return err
	}
	each := func(name []byte, rec func(k, v []byte) error) error {
		sub := b.Bucket(name)
		if sub == nil {
			return nil
		}
		return sub.ForEach(rec)
	}
	id := func(k []byte) uint64 { return binary.BigEndian.Uint64(k) }
	emit := func(r Record) error { r.List = list; return fn(r) }
	archive := b.Bucket(subArchive)
	steps := []struct {
		name []byte
		rec  func(k, v []byte) error
	}{
		{subMembers, func(_, v []byte) error { return emit(Record{Kind: RecMember, Data: v}) }},
		{subPosts, func(k, v []byte) error {
			return emit(Record{Kind: RecPost, Nums: []uint64{id(k)}, Data: v, Raw: archive.Get(k)})
		}},
		{subThreadIDs, func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("damaged thread index entry %q of %s", k, list)
			}
			return emit(Record{Kind: RecThreadID, Key: string(k), Nums: []uint64{id(v)}})
		}},
		{subSubjects, func(k, v []byte) error {
			if len(v) != 16 {
				return fmt.Errorf("damaged subject index entry %q of %s", k, list)
			}
			return emit(Record{Kind: RecSubject, Key: string(k), Nums: []uint64{id(v), id(v[8:])}})
		}},
		{subMerged, func(k, v []byte) error {
			var stamp uint64
			if len(v) >= 16 {
				stamp = id(v[8:])
			}
			if len(v) < 8 {
				return fmt.Errorf("damaged merge record %x of %s", k, list)
			}
			return emit(Record{Kind: RecMerge, Nums: []uint64{id(k), id(v), stamp}})
		}},
		{subMutes, marks(string(subMutes), emit, list)},
		{subFollows, marks(string(subFollows), emit, list)},
		{subCursors, func(k, v []byte) error { return emit(Record{Kind: RecCursor, Key: string(k), Data: v}) }},
		{subFlags, func(k, v []byte) error {
			if len(k) != 16 || len(v) != 1 {
				return fmt.Errorf("damaged flags entry %x of %s", k, list)
			}
			return emit(Record{Kind: RecFlags, Nums: []uint64{id(k), id(k[8:]), uint64(v[0])}})
		}},
		{subBounces, func(k, v []byte) error { return emit(Record{Kind: RecBounce, Nums: []uint64{id(k)}, Data: v}) }},
		{subHeld, func(k, v []byte) error { return emit(Record{Kind: RecHeld, Nums: []uint64{id(k)}, Data: v}) }},
		{subPending, func(k, v []byte) error { return emit(Record{Kind: RecPending, Nums: []uint64{id(k)}, Data: v}) }},
		{subSearchDocs, func(k, v []byte) error { return emit(Record{Kind: RecSearchDoc, Nums: []uint64{id(k)}, Data: v}) }},
	}
	for _, s := range steps {
		if err := each(s.name, s.rec); err != nil {
			return err
		}
	}
	return nil
}

func marks(kind string, emit func(Record) error, list string) func(k, v []byte) error {
	return func(k, v []byte) error {
		if len(k) != 16 {
			return fmt.Errorf("damaged %s entry %x of %s", kind, k, list)
		}
		var stamp uint64
		if len(v) == 8 {
			stamp = binary.BigEndian.Uint64(v)
		}
		return emit(Record{Kind: RecMark, Key: kind, Nums: []uint64{binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:]), stamp}})
	}
}

// boltLoader writes records into the file in batches: bbolt keeps a write transaction in
// memory, so a big archive goes in several (style.md).
type boltLoader struct {
	s     *Store
	batch []Record
	size  int
	lists []string // whose rosters are written at Close
}

// loadBatch is about how many bytes of records one write transaction takes.
const loadBatch = 16 << 20

// Loader starts loading records into the file, which must be empty (Copier).
func (s *Store) Loader() (Loader, error) {
	err := s.db.View(func(tx *bolt.Tx) error {
		empty := func(name []byte) bool { k, _ := tx.Bucket(name).Cursor().First(); return k == nil }
		if !empty(bucketLists) || !empty(bucketOutbox) || !empty(bucketFailures) || !empty(bucketPasswords) {
			return ErrNotEmpty
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &boltLoader{s: s}, nil
}

func (l *boltLoader) Add(r Record) error {
	r.Nums = slices.Clone(r.Nums)
	r.Data, r.Raw = slices.Clone(r.Data), slices.Clone(r.Raw)
	l.batch = append(l.batch, r)
	l.size += len(r.Data) + len(r.Raw) + 64
	if r.Kind == RecList {
		l.lists = append(l.lists, r.List)
	}
	if l.size >= loadBatch {
		return l.flush()
	}
	return nil
}

func (l *boltLoader) flush() error {
	err := l.s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range l.batch {
			if err := loadRecord(tx, r); err != nil {
				return fmt.Errorf("%s record of %q: %w", r.Kind, r.List, err)
			}
		}
		return nil
	})
	l.batch, l.size = l.batch[:0], 0
	return err
}

// Close writes the rest, then each list's roster (who receives each post) from its members,
// and takes the secret and the incarnations loaded for the store's own.
func (l *boltLoader) Close() error {
	if err := l.flush(); err != nil {
		return err
	}
	return l.s.db.Update(func(tx *bolt.Tx) error {
		for _, list := range l.lists {
			b := tx.Bucket(bucketLists).Bucket([]byte(list))
			if err := writeRoster(b); err != nil {
				return err
			}
			var c List
			if err := getJSON(b, keyConfig, &c); err != nil {
				return err
			}
			l.s.incarnations.Store(list, c.Incarnation)
		}
		l.s.secret = slices.Clone(tx.Bucket(bucketMeta).Get(keySecret))
		return nil
	})
}

func need(r Record, n int) error {
	if len(r.Nums) < n {
		return fmt.Errorf("the record has %d numbers, want %d", len(r.Nums), n)
	}
	return nil
}

func loadRecord(tx *bolt.Tx, r Record) error {
	list := func() (*bolt.Bucket, error) {
		b := tx.Bucket(bucketLists).Bucket([]byte(r.List))
		if b == nil {
			return nil, fmt.Errorf("list %s: %w", r.List, ErrNotFound)
		}
		return b, nil
	}
	switch r.Kind {
	case RecSecret:
		return tx.Bucket(bucketMeta).Put(keySecret, r.Data)
	case RecSequences:
		if err := need(r, 2); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutbox).SetSequence(r.Nums[0]); err != nil {
			return err
		}
		return tx.Bucket(bucketBlobs).SetSequence(r.Nums[1])
	case RecList:
		if err := need(r, 6); err != nil {
			return err
		}
		b, err := tx.Bucket(bucketLists).CreateBucket([]byte(r.List))
		if err != nil {
			return err
		}
		for _, name := range append(slices.Clone(listBuckets), subFollows) {
			if _, err := b.CreateBucket(name); err != nil {
				return err
			}
		}
		for i, name := range [][]byte{subArchive, subMembers, subHeld, subPending, subBounces, subMerged} {
			if err := b.Bucket(name).SetSequence(r.Nums[i]); err != nil {
				return err
			}
		}
		return b.Put(keyConfig, r.Data)
	case RecDelivery:
		var d Delivery
		if err := json.Unmarshal(r.Data, &d); err != nil {
			return err
		}
		return tx.Bucket(bucketOutbox).Put(outboxKey(d.Due, d.ID), r.Data)
	case RecFailure:
		if err := need(r, 1); err != nil {
			return err
		}
		return tx.Bucket(bucketFailures).Put(u64(r.Nums[0]), r.Data)
	case RecBlob:
		if err := need(r, 2); err != nil {
			return err
		}
		b := tx.Bucket(bucketBlobs)
		for i := 0; i == 0 || i*blobChunk < len(r.Data); i++ {
			if err := b.Put(blobKey(r.Nums[0], uint32(i)), r.Data[i*blobChunk:min(len(r.Data), (i+1)*blobChunk)]); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketBlobRefs).Put(u64(r.Nums[0]), u64(r.Nums[1]))
	case RecPassword:
		return tx.Bucket(bucketPasswords).Put([]byte(r.Key), r.Data)
	}
	b, err := list()
	if err != nil {
		return err
	}
	switch r.Kind {
	case RecMember:
		var m Member
		if err := json.Unmarshal(r.Data, &m); err != nil {
			return err
		}
		if err := b.Bucket(subMemberIDs).Put(u64(m.ID), []byte(m.Address)); err != nil {
			return err
		}
		return b.Bucket(subMembers).Put([]byte(m.Address), r.Data)
	case RecPost:
		if err := need(r, 1); err != nil {
			return err
		}
		var p Post
		if err := json.Unmarshal(r.Data, &p); err != nil {
			return err
		}
		key := u64(r.Nums[0])
		archive, posts := b.Bucket(subArchive), b.Bucket(subPosts)
		archive.FillPercent, posts.FillPercent = 0.95, 0.95
		if err := archive.Put(key, r.Raw); err != nil {
			return err
		}
		if err := posts.Put(key, r.Data); err != nil {
			return err
		}
		return b.Bucket(subMsgIDs).Put([]byte(p.MessageID), key)
	case RecThreadID:
		if err := need(r, 1); err != nil {
			return err
		}
		return b.Bucket(subThreadIDs).Put([]byte(r.Key), u64(r.Nums[0]))
	case RecSubject:
		if err := need(r, 2); err != nil {
			return err
		}
		return b.Bucket(subSubjects).Put([]byte(r.Key), binary.BigEndian.AppendUint64(u64(r.Nums[0]), r.Nums[1]))
	case RecMerge:
		if err := need(r, 3); err != nil {
			return err
		}
		return b.Bucket(subMerged).Put(u64(r.Nums[0]), binary.BigEndian.AppendUint64(u64(r.Nums[1]), r.Nums[2]))
	case RecMark:
		if err := need(r, 3); err != nil {
			return err
		}
		name := subMutes
		if r.Key == string(subFollows) {
			name = subFollows
		}
		return b.Bucket(name).Put(append(u64(r.Nums[0]), u64(r.Nums[1])...), u64(r.Nums[2]))
	case RecCursor:
		return b.Bucket(subCursors).Put([]byte(r.Key), r.Data)
	case RecFlags:
		if err := need(r, 3); err != nil {
			return err
		}
		return b.Bucket(subFlags).Put(flagKey(r.Nums[0], r.Nums[1]), []byte{byte(r.Nums[2])})
	case RecBounce:
		if err := need(r, 1); err != nil {
			return err
		}
		return b.Bucket(subBounces).Put(u64(r.Nums[0]), r.Data)
	case RecHeld:
		if err := need(r, 1); err != nil {
			return err
		}
		return b.Bucket(subHeld).Put(u64(r.Nums[0]), r.Data)
	case RecPending:
		if err := need(r, 1); err != nil {
			return err
		}
		var p Pending
		if err := json.Unmarshal(r.Data, &p); err != nil {
			return err
		}
		if err := b.Bucket(subPendKeys).Put(pendingKey(p.Kind, p.Address), u64(r.Nums[0])); err != nil {
			return err
		}
		return b.Bucket(subPending).Put(u64(r.Nums[0]), r.Data)
	case RecSearchDoc:
		if err := need(r, 1); err != nil {
			return err
		}
		d, err := decodeDoc(r.Data)
		if err != nil {
			return fmt.Errorf("search document %d: %w", r.Nums[0], err)
		}
		return (&boltTx{tx: tx}).IndexPost(r.List, r.Nums[0], d)
	}
	return fmt.Errorf("unknown kind of record %q", r.Kind)
}
