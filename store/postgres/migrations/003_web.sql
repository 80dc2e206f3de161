-- crewmail schema 3 on PostgreSQL: what the web reader keeps (store.Web).
--
--   web_signins       the single-use sign-in links used, until they expire
--   web_sessions      members' sessions: the SHA-256 of the cookie's secret, the address, the
--                     browser in a few words; found by ID and by address
--   web_signin_mails  when a sign-in link was last mailed to an address
--   web_looked        where each member last looked in each list (goes with the list)
--
-- A copy between backends (crewmail migrate) does not carry them: members sign in again.
CREATE TABLE web_signins (
	id      bytea PRIMARY KEY,
	expires timestamptz NOT NULL
);

CREATE TABLE web_sessions (
	id      bytea PRIMARY KEY,
	address text NOT NULL,
	created timestamptz NOT NULL,
	seen    timestamptz NOT NULL,
	expires timestamptz NOT NULL,
	agent   text NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_address ON web_sessions (address);

CREATE TABLE web_signin_mails (
	address text PRIMARY KEY,
	at      timestamptz NOT NULL
);

CREATE TABLE web_looked (
	list    text NOT NULL REFERENCES lists ON DELETE CASCADE,
	address text NOT NULL,
	seq     bigint NOT NULL,
	PRIMARY KEY (list, address)
);
