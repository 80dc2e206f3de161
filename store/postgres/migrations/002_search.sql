-- crewmail schema 2 on PostgreSQL: each list's search index (store.Search), one row per
-- indexed post. Words are normalized in Go (internal/searchq, the same code as the bbolt
-- index), not by a text search configuration, so that a query finds the same posts on both
-- backends.
--
--   terms  the keys the post is found under (store.SearchDoc.Terms: a field's letter and a
--          word: 'olake' is "lake" in the author's own text), looked up through the GIN index
--          with && (any of a term's fields) and NOT && (an exclusion)
--   words  every word of the post's fields, then the words IMAP's SEARCH TEXT reads elsewhere
--          (other), space-separated: strpos() finds the posts a substring search must read
--   doc    the rest of the document (store.SearchDoc.Encode without Other): the stored text a
--          phrase is checked on and a hit's lines are taken from
--   thread the thread the post was archived in (merges are followed when searching), date in
--          Unix seconds (0: none)
--
-- lists.search_count is how many posts are indexed: the index is complete (SearchIndexed)
-- when it is the list's seq. Lists archived before this schema have none until reindexed.
CREATE TABLE search_docs (
	list   text NOT NULL REFERENCES lists ON DELETE CASCADE,
	seq    bigint NOT NULL,
	thread bigint NOT NULL,
	date   bigint NOT NULL,
	terms  text[] NOT NULL,
	words  text NOT NULL,
	other  text NOT NULL,
	doc    bytea NOT NULL,
	PRIMARY KEY (list, seq)
);
CREATE INDEX search_docs_terms ON search_docs USING gin (terms);

ALTER TABLE lists ADD COLUMN search_count bigint NOT NULL DEFAULT 0;
