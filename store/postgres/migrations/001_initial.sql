-- crewmail schema 1 on PostgreSQL: the records of store's roles. Records a caller reads whole
-- are kept as the JSON the bbolt backend keeps (data bytea), so both backends decode them the
-- same way and store.Copy moves them unchanged; what is looked up or ordered by gets a column.

CREATE TABLE meta (
	key   text PRIMARY KEY,
	value bytea NOT NULL
);

-- One row per list. Its counters are the list's sequences: seq numbers the archive (the IMAP
-- UID), updated in the posting transaction so that UIDs become visible in order and without
-- gaps; the others number members, held posts, pending actions, bounces and merges.
CREATE TABLE lists (
	address     text PRIMARY KEY,
	incarnation bigint NOT NULL,
	data        bytea NOT NULL,
	seq         bigint NOT NULL DEFAULT 0,
	member_seq  bigint NOT NULL DEFAULT 0,
	held_seq    bigint NOT NULL DEFAULT 0,
	pending_seq bigint NOT NULL DEFAULT 0,
	bounce_seq  bigint NOT NULL DEFAULT 0,
	merge_seq   bigint NOT NULL DEFAULT 0
);

CREATE TABLE members (
	list    text NOT NULL REFERENCES lists ON DELETE CASCADE,
	address text NOT NULL,
	id      bigint NOT NULL,
	data    bytea NOT NULL,
	-- receives: the member receives each post (vocab.ReceivesEachPost), kept with every write.
	receives boolean NOT NULL,
	PRIMARY KEY (list, address),
	UNIQUE (list, id)
);

CREATE TABLE posts (
	list       text NOT NULL REFERENCES lists ON DELETE CASCADE,
	seq        bigint NOT NULL,
	message_id text NOT NULL,
	meta       bytea NOT NULL,
	raw        bytea NOT NULL,
	PRIMARY KEY (list, seq),
	UNIQUE (list, message_id)
);

CREATE TABLE thread_ids (
	list       text NOT NULL REFERENCES lists ON DELETE CASCADE,
	message_id text NOT NULL,
	thread     bigint NOT NULL,
	PRIMARY KEY (list, message_id)
);

CREATE TABLE subjects (
	list    text NOT NULL REFERENCES lists ON DELETE CASCADE,
	subject text NOT NULL,
	thread  bigint NOT NULL,
	date    bigint NOT NULL,
	PRIMARY KEY (list, subject)
);

CREATE TABLE merged (
	list   text NOT NULL REFERENCES lists ON DELETE CASCADE,
	thread bigint NOT NULL,
	into_thread bigint NOT NULL,
	stamp  bigint NOT NULL,
	PRIMARY KEY (list, thread)
);

-- Mutes and follows: kind is 'mutes' or 'follows'; stamp the merge count when made.
CREATE TABLE marks (
	list   text NOT NULL REFERENCES lists ON DELETE CASCADE,
	kind   text NOT NULL,
	thread bigint NOT NULL,
	member bigint NOT NULL,
	stamp  bigint NOT NULL,
	PRIMARY KEY (list, kind, thread, member)
);

CREATE TABLE cursors (
	list    text NOT NULL REFERENCES lists ON DELETE CASCADE,
	address text NOT NULL,
	data    bytea NOT NULL,
	PRIMARY KEY (list, address)
);

CREATE TABLE flags (
	list   text NOT NULL REFERENCES lists ON DELETE CASCADE,
	member bigint NOT NULL,
	seq    bigint NOT NULL,
	flags  smallint NOT NULL,
	PRIMARY KEY (list, member, seq)
);

CREATE TABLE bounces (
	list text NOT NULL REFERENCES lists ON DELETE CASCADE,
	id   bigint NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (list, id)
);

CREATE TABLE held (
	list text NOT NULL REFERENCES lists ON DELETE CASCADE,
	id   bigint NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (list, id)
);

CREATE TABLE pending (
	list    text NOT NULL REFERENCES lists ON DELETE CASCADE,
	id      bigint NOT NULL,
	kind    text NOT NULL,
	address text NOT NULL,
	data    bytea NOT NULL,
	PRIMARY KEY (list, id),
	UNIQUE (list, kind, address)
);

-- The outbox, ordered by (due, id) as bbolt's keys order it; due in Unix nanoseconds. A
-- leased row names the node that holds the lease (lease_node).
CREATE SEQUENCE outbox_ids;
CREATE TABLE outbox (
	id         bigint PRIMARY KEY,
	due        bigint NOT NULL,
	lease_node text,
	data       bytea NOT NULL
);
CREATE INDEX outbox_due ON outbox (due, id);
CREATE INDEX outbox_lease ON outbox (lease_node) WHERE lease_node IS NOT NULL;

CREATE TABLE failures (
	id   bigint PRIMARY KEY,
	data bytea NOT NULL
);

CREATE SEQUENCE blob_ids;
CREATE TABLE blobs (
	id   bigint PRIMARY KEY,
	refs bigint NOT NULL,
	data bytea NOT NULL
);

CREATE TABLE app_passwords (
	address text PRIMARY KEY,
	data    bytea NOT NULL
);
