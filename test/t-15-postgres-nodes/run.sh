#!/usr/bin/env bash
# Two crewmail nodes on one PostgreSQL, and a failover under load. scripts/pg-standby starts a
# primary and a synchronous streaming standby on loopback; nodes A and B (each its own process,
# data folder and ports) share one database through the multi-host DSN
# (postgres://127.0.0.1:P1,127.0.0.1:P2/crewmail?target_session_attrs=read-write) and deliver
# to one smtp-sink. The list is the crash test's: "-post members", 4 members in mode "each".
#
# 1. Both nodes at once: the crash test's load generator (test/py/loadgen.py) posts into A and
#    into B together, bounded by count and time; every post is answered 250, every member gets
#    every post exactly once (no duplicate), the archive holds each once, numbered 1…N without
#    a gap (the IMAP UIDs).
# 2. Failover: the generator posts into both nodes again; the primary is stopped (immediate
#    shutdown: a crash as its clients see it) and, a moment later, the standby promoted; the
#    generator goes on posting for a while. Answers during the switch may be 4xx, never 5xx;
#    afterwards the nodes accept posts again (through the promoted standby, found by the DSN).
#    Then the crash test's checks (test/py/crash_check.py) over both parts: every acknowledged
#    post is archived exactly once and reached every member; nothing refused is archived.
#
# Skipped, with one line, when PostgreSQL's binaries are missing (apt-get install postgresql;
# its own cluster service need not run). Run as root (smtp-sink -u postfix, PostgreSQL as the
# postgres user). Environment: LOAD_SECONDS (3) and LOAD_MAX (per connection, 150) bound each
# round of load; THREADS (4) connections per node; DRAIN_TIMEOUT (120 s).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-15-postgres-nodes pgnodes
if ! ls /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1 && [[ -z ${PG_BIN:-} ]]; then
	say "skipped: PostgreSQL is not installed (apt-get install postgresql)"
	exit 0
fi
need go smtp-sink curl python3 setpriv

LOAD_SECONDS=${LOAD_SECONDS:-3}
LOAD_MAX=${LOAD_MAX:-150}
THREADS=${THREADS:-4}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
START_TIMEOUT=30
POSTER=alice@example.test
CREW=(alice@example.test bob@example.test carol@example.test dave@example.test)

PGDIR="$WORK/pg"
# On exit: the nodes first (lib.sh's stop_all), then both PostgreSQL servers, then the rest of
# lib.sh's cleanup, with the script's exit status.
trap 'rc=$?; stop_all; "$ROOT/scripts/pg-standby" stop "$PGDIR" >/dev/null 2>&1 || true; (exit $rc); cleanup' EXIT

build_crewmail
say "starting PostgreSQL: a primary and a synchronous streaming standby (scripts/pg-standby)"
"$ROOT/scripts/pg-standby" start "$PGDIR" >"$WORK/pg.env" 2>"$WORK/pg.err" ||
	fail "scripts/pg-standby start: $(cat "$WORK/pg.err")"
. "$WORK/pg.env"
say "primary 127.0.0.1:$PG_PRIMARY_PORT, standby 127.0.0.1:$PG_STANDBY_PORT"

SINK_PORT=$(new_port)
DUMP="$WORK/dump"
start_sink "$DUMP" "$SINK_PORT" "$WORK/sink.log"

# node NAME: the configuration of node NAME ($WORK/NAME.toml), its ports in SMTP_NAME and
# HTTP_NAME.
node() {
	local name=$1 smtp http
	smtp=$(new_port)
	http=$(new_port)
	printf -v "SMTP_$name" %s "$smtp"
	printf -v "HTTP_$name" %s "$http"
	write_config "$WORK/$name.toml" "$WORK/data-$name" "$smtp" "$http" "" "$SINK_PORT" \
		"$(printf '[store]\nbackend = "postgres"\ndsn = "%s"' "$PG_DSN")"
}
node A
node B
CFG="$WORK/A.toml" # admin commands go to the database through node A's configuration
start_crewmail "$WORK/A.toml" "$WORK/A.log" "$HTTP_A" "node A"
PID_A=$CREWMAIL_PID
start_crewmail "$WORK/B.toml" "$WORK/B.log" "$HTTP_B" "node B"
PID_B=$CREWMAIL_PID
CREWMAIL_LOG="$WORK/A.log"
say "nodes A (SMTP $SMTP_A) and B (SMTP $SMTP_B) on one database"

admin list create "$LIST" -name Crew -post members >"$WORK/admin.out" 2>&1 || fail "list create: $(cat "$WORK/admin.out")"
"$BIN" member add "$LIST" "${CREW[@]}" -mode each -config "$WORK/B.toml" >>"$WORK/admin.out" 2>&1 ||
	fail "member add through node B's configuration: $(cat "$WORK/admin.out")"

RECORDS="$WORK/records"
: >"$RECORDS"

# load ROUND [ACTION]: the generator posts into both nodes (THREADS connections each, at most
# LOAD_MAX posts a connection) for LOAD_SECONDS, running ACTION (a command) after the first
# second; then it is stopped (bounded) and must have exited cleanly.
load() {
	local round=$1 action=${2:-} pids=() p n rc
	for n in A B; do
		local port_var="SMTP_$n"
		python3 "$PY/loadgen.py" "${!port_var}" "$RECORDS" "$$.$round.$n" "$POSTER" "$LIST" "$THREADS" "$LOAD_MAX" \
			>"$WORK/loadgen.$round.$n.log" 2>&1 &
		p=$!
		started "$p"
		pids+=("$p")
	done
	for n in A B; do
		for _ in $(seq 300); do
			grep -q '^ready$' "$WORK/loadgen.$round.$n.log" 2>/dev/null && break
			sleep 0.1
		done
		grep -q '^ready$' "$WORK/loadgen.$round.$n.log" || fail "round $round: the load generator for $n did not start within 30 s"
	done
	sleep 1
	if [[ -n $action ]]; then
		$action
	fi
	sleep "$LOAD_SECONDS"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 300); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$p" 2>/dev/null && fail "round $round: a load generator did not stop within 30 s"
		rc=0
		wait "$p" || rc=$?
		forget_pid "$p"
		((rc == 0)) || fail "round $round: a load generator exited $rc"
	done
	kill -0 "$PID_A" 2>/dev/null || fail "node A died in round $round"
	kill -0 "$PID_B" 2>/dev/null || fail "node B died in round $round"
}

# outbox_state: what the outbox holds, read from the database: rows, and rows leased (by which
# node, until when).
outbox_state() {
	"$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/psql" -X -At "$PG_DSN" -c "
		SELECT count(*) || ' rows in the outbox, ' || count(lease_node) || ' of them leased'
			|| coalesce(' (' || string_agg(DISTINCT 'node ' || lease_node || ' until '
				|| to_char(to_timestamp(due / 1e9) AT TIME ZONE 'UTC', 'HH24:MI:SS') || ' UTC', ', ') || ')', '')
		FROM outbox" 2>&1 | tr '\n' ' '
}

# drain: waits (bounded) until every archived post has reached every member at smtp-sink, then
# until no more mail arrives for 3 s; the archive in $WORK/archive.json.
drain() {
	local deadline=$((SECONDS + DRAIN_TIMEOUT)) poll missing n last stable=0
	while :; do
		admin archive ls "$LIST" -json >"$WORK/archive.json" 2>"$WORK/archive.err" ||
			fail "archive ls: $(cat "$WORK/archive.err")"
		poll=$(python3 "$PY/crash_check.py" poll "$RECORDS" "$WORK/archive.json" "$DUMP" "${CREW[@]}") ||
			fail "the check script failed: $poll"
		read -r missing n <<<"$poll"
		((missing == 0)) && break
		((SECONDS < deadline)) || fail "the outbox did not drain within $DRAIN_TIMEOUT s: $missing deliveries missing ($n dumps); $(outbox_state)"
		sleep 1
	done
	last=$(find "$DUMP" -type f | wc -l)
	while ((stable < 3 && SECONDS < deadline + 30)); do
		sleep 1
		n=$(find "$DUMP" -type f | wc -l)
		if ((n == last)); then stable=$((stable + 1)); else stable=0 last=$n; fi
	done
	admin archive ls "$LIST" -json >"$WORK/archive.json" 2>"$WORK/archive.err" ||
		fail "archive ls: $(cat "$WORK/archive.err")"
}

# check WHAT [MODE]: the crash test's checks (crash_check.py MODE, default final) over everything
# posted so far; the summary in
# $WORK/check.WHAT.
check() {
	local rc=0
	python3 "$PY/crash_check.py" "${2:-final}" "$RECORDS" "$WORK/archive.json" "$DUMP" "${CREW[@]}" >"$WORK/check.$1" || rc=$?
	if ((rc != 0)); then
		grep '^FAIL: ' "$WORK/check.$1" | sed 's/^FAIL: /  /' >&2 || true
		fail "$1: $(grep -c '^FAIL: ' "$WORK/check.$1" || true) violation(s) of the crash guarantees (records: $RECORDS, dumps: $DUMP)"
	fi
}

# ---------------------------------------------------------------------------------------------
say "1. posts into A and B at once (${THREADS}+${THREADS} connections, ${LOAD_SECONDS}+1 s, at most $LOAD_MAX posts each)"
load 1
drain
check both-nodes
acks=$(grep -c '^ack ' "$RECORDS" || true)
other=$(grep -vc -e '^ack ' -e '^sent ' "$RECORDS" || true)
((other == 0)) || fail "with both nodes up, $other posts were not answered 250: $(grep -v -e '^ack ' -e '^sent ' "$RECORDS" | head -n 3 | tr '\n' ' ')"
dups=$(sed -n 's/^duplicate deliveries: *\([0-9]*\).*/\1/p' "$WORK/check.both-nodes")
[[ $dups == 0 ]] || fail "with both nodes up, $dups deliveries were duplicates: each member must get each post once"
python3 - "$WORK/archive.json" "$acks" <<'EOF' || fail "the archive is not numbered 1…N without a gap"
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
if seqs != list(range(1, n + 1)):
    print("sequences %s… (%d), want 1…%d" % (seqs[:10], len(seqs), n), file=sys.stderr)
    sys.exit(1)
EOF
posts_a=$(grep -c "^ack ct\.$$\.1\.A\." "$RECORDS" || true)
posts_b=$(grep -c "^ack ct\.$$\.1\.B\." "$RECORDS" || true)
((posts_a > 0 && posts_b > 0)) || fail "one node took no post: A $posts_a, B $posts_b"
say "1. ok: $acks posts (A $posts_a, B $posts_b), each archived once (sequences 1…$acks) and delivered once to each of ${#CREW[@]} members"

# ---------------------------------------------------------------------------------------------
failover() {
	say "2. stopping the primary (immediate) under load"
	"$ROOT/scripts/pg-standby" stop-primary "$PGDIR" immediate 2>"$WORK/pg.err" || fail "stop-primary: $(cat "$WORK/pg.err")"
	sleep 1
	say "2. promoting the standby"
	"$ROOT/scripts/pg-standby" promote "$PGDIR" 2>"$WORK/pg.err" || fail "promote: $(cat "$WORK/pg.err")"
	PROMOTED_AT=$(wc -l <"$RECORDS")
}
before=$(wc -l <"$RECORDS")
load 2 failover
drain
check failover failover
# Never a 5xx, before or after the data; 4xx while no database takes writes.
fivexx=$(awk '$1 == "refused" || ($1 == "unsent" && $4 ~ /^5[0-9][0-9]$/)' "$RECORDS" | wc -l)
((fivexx == 0)) || fail "answers with 5xx during the failover: $(awk '$1 == "refused" || ($1 == "unsent" && $4 ~ /^5[0-9][0-9]$/)' "$RECORDS" | head -n 3 | tr '\n' ' ')"
tail -n +"$((before + 1))" "$RECORDS" >"$WORK/records.2"
acks2=$(grep -c '^ack ' "$WORK/records.2" || true)
temp2=$(awk '$1 == "tempfail" || ($1 == "unsent" && $4 ~ /^4[0-9][0-9]$/)' "$WORK/records.2" | wc -l)
lost2=$(grep -c '^lost ' "$WORK/records.2" || true)
after=$(tail -n +"$((PROMOTED_AT + 1))" "$RECORDS" | grep -c '^ack ' || true)
((after > 0)) || fail "no post was accepted after the standby was promoted: the nodes did not find it through $PG_DSN"
say "2. ok: $acks2 posts acknowledged ($after after the promotion), $temp2 answered 4xx during the switch, $lost2 in flight, none 5xx"
sed 's/^/  /' "$WORK/check.failover"
success
