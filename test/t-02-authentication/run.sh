#!/usr/bin/env bash
# Authentication: dnsmasq serves SPF, DMARC and DKIM records for example.test and the list
# domain, and crewmail asks it for every DNS answer ([dns] resolver); crewmail check finds the
# list domain's MX, SPF, DKIM and DMARC all OK. On a list with the default policy, "verified",
# posts signed by dkimpy (RSA and Ed25519) pass: the copies carry the author's signed message
# unchanged, Authentication-Results, and crewmail's own DKIM signature, which dkimpy checks
# against dnsmasq. A forged post is held and only its author is asked; with the DNS server gone
# a post is deferred with 451 4.7.0.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-02-authentication
need go swaks smtp-sink curl python3 dnsmasq dig dknewkey dkimsign
need_python_dkim

LIST2=verified@lists.example.test
LIST_DOMAIN=lists.example.test
HOST2=lists.example.test # crewmail's hostname: the authserv-id of its Authentication-Results
MEMBERS2=(alice@example.test bob@example.test)
KEYS="$WORK/keys"
mkdir -p "$KEYS"

build_crewmail
DNS_PORT=$(new_dns_port)
SINK_PORT=$(new_port)
SMTP_PORT=$(new_port)
HTTP_PORT=$(new_port)
CFG="$WORK/crewmail.toml"
write_config "$CFG" "$WORK/data" "$SMTP_PORT" "$HTTP_PORT" "" "$SINK_PORT" "workers = 4
[dns]
resolver = \"127.0.0.1:$DNS_PORT\""

# The list domain's DKIM key, made before the server starts (so it signs from its first mail);
# the record it prints goes into dnsmasq. The output names the record and gives its value as
# one or more quoted strings, e.g. NAME. IN TXT ( "v=DKIM1; k=rsa; p=MIIB..." "...AQAB" ).
admin dkim keygen "$LIST_DOMAIN" >"$WORK/keygen.out" 2>&1 || fail "dkim keygen: $(cat "$WORK/keygen.out")"
rec_line=$(grep -E '^[^ ]+\._domainkey\.[^ ]+\. +IN +TXT ' "$WORK/keygen.out" | head -1)
[[ -n $rec_line ]] || fail "dkim keygen printed no TXT record: $(cat "$WORK/keygen.out")"
LIST_KEY_NAME=${rec_line%%. *}
LIST_KEY_RECORD=$(grep -o '"[^"]*"' <<<"${rec_line#* TXT }" | tr -d '"\n')
[[ $LIST_KEY_NAME == crewmail._domainkey.$LIST_DOMAIN && $LIST_KEY_RECORD == v=DKIM1\;*p=* ]] ||
	fail "cannot make out the record dkim keygen printed: $rec_line"
admin dkim show "$LIST_DOMAIN" >"$WORK/dkimshow.out" 2>&1 || fail "dkim show: $(cat "$WORK/dkimshow.out")"
grep -qxF "$rec_line" "$WORK/dkimshow.out" || fail "dkim show does not print what keygen printed: $(cat "$WORK/dkimshow.out")"

# The author's keys, made by dkimpy: RSA under sel1, Ed25519 under ed1. NAME.dns holds the
# record value, NAME.key the private key.
(cd "$KEYS" && dknewkey sel1 && dknewkey --ktype ed25519 ed1) >"$WORK/dknewkey.out" 2>&1 ||
	fail "dknewkey: $(cat "$WORK/dknewkey.out")"

# local=/test/: dnsmasq answers every other name under .test itself, NXDOMAIN (no upstream).
# local-ttl=0 (dnsmasq's default, written out since part of the test depends on it): its records
# carry TTL 0, so crewmail's cache keeps none of them and asks again for every message; its
# NXDOMAIN answers have no SOA, and crewmail keeps those for five minutes.
cat >"$WORK/dns.conf" <<CONF
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
local=/test/
local-ttl=0
log-queries
txt-record=example.test,"v=spf1 ip4:127.0.0.1 -all"
txt-record=_dmarc.example.test,"v=DMARC1; p=reject"
txt-record=sel1._domainkey.example.test,"$(cat "$KEYS/sel1.dns")"
txt-record=ed1._domainkey.example.test,"$(cat "$KEYS/ed1.dns")"
txt-record=$LIST_KEY_NAME,"$LIST_KEY_RECORD"
txt-record=$LIST_DOMAIN,"v=spf1 ip4:127.0.0.1 -all"
txt-record=_dmarc.$LIST_DOMAIN,"v=DMARC1; p=none"
mx-host=$LIST_DOMAIN,$HOST2,10
host-record=$HOST2,127.0.0.1
CONF

say "starting dnsmasq on 127.0.0.1:$DNS_PORT (UDP and TCP)"
start_dnsmasq "$WORK/dns.conf" "$DNS_PORT" "$WORK/dnsmasq.log" example.test
DNS_PID=$STARTED_PID
[[ $(dig_txt "$DNS_PORT" sel1._domainkey.example.test) == "$(cat "$KEYS/sel1.dns")" ]] ||
	fail "dnsmasq does not serve the sel1 key: $(dig_txt "$DNS_PORT" sel1._domainkey.example.test)"
[[ $(dig_txt "$DNS_PORT" ed1._domainkey.example.test +tcp) == "$(cat "$KEYS/ed1.dns")" ]] ||
	fail "dnsmasq does not serve the ed1 key over TCP: $(dig_txt "$DNS_PORT" ed1._domainkey.example.test +tcp)"
[[ $(dig_txt "$DNS_PORT" "$LIST_KEY_NAME") == "$LIST_KEY_RECORD" ]] ||
	fail "dnsmasq does not serve crewmail's key: $(dig_txt "$DNS_PORT" "$LIST_KEY_NAME")"
dig @127.0.0.1 -p "$DNS_PORT" +time=1 +tries=1 TXT nothing.example.test | grep -q 'status: NXDOMAIN' ||
	fail "dnsmasq does not answer NXDOMAIN for names it does not know"
say "ok: dnsmasq serves SPF, DMARC and the sel1 (RSA), ed1 (Ed25519) and crewmail DKIM keys"

# crewmail check: MX, SPF, DKIM (does the published record hold crewmail's key?) and DMARC of the
# list domain, through [dns] resolver, all OK; nothing FAILs (on loopback the host address and
# the missing TLS certificate are only warnings).
admin check "$LIST_DOMAIN" >"$WORK/check.out" 2>&1 || fail "crewmail check $LIST_DOMAIN failed: $(cat "$WORK/check.out")"
for what in MX SPF DKIM DMARC; do
	grep -q "^OK  *$what " "$WORK/check.out" || fail "crewmail check $LIST_DOMAIN: $what is not OK: $(cat "$WORK/check.out")"
done
! grep -q '^FAIL' "$WORK/check.out" || fail "crewmail check $LIST_DOMAIN: something FAILs: $(cat "$WORK/check.out")"
say "ok: crewmail check $LIST_DOMAIN finds MX, SPF, DKIM and DMARC all OK, nothing failing"

DUMP="$WORK/dump"
say "starting smtp-sink on 127.0.0.1:$SINK_PORT (dumps in $DUMP)"
start_sink "$DUMP" "$SINK_PORT" "$WORK/sink.log"

say "starting crewmail (SMTP 127.0.0.1:$SMTP_PORT, DNS 127.0.0.1:$DNS_PORT)"
start_crewmail "$CFG" "$WORK/crewmail.log" "$HTTP_PORT" crewmail

admin list create "$LIST2" -name Verified >"$WORK/admin.out" 2>&1 || fail "list create: $(cat "$WORK/admin.out")"
admin member add "$LIST2" "${MEMBERS2[@]}" -mode each >>"$WORK/admin.out" 2>&1 || fail "member add: $(cat "$WORK/admin.out")"
admin list show "$LIST2" >"$WORK/list.out" 2>&1 || fail "list show: $(cat "$WORK/list.out")"
grep -q '^post: *verified$' "$WORK/list.out" || fail "the list's policy is not \"verified\": $(cat "$WORK/list.out")"
say "list $LIST2 created with the default policy (verified) and ${#MEMBERS2[@]} members"

# check_copy DUMP [AUTHOR_DOMAIN AUTHOR_ALGO]: a copy checked with dkimpy, asking dnsmasq for the
# keys (test/py/check_copy.py says what it checks).
check_copy() { /usr/bin/python3 "$PY/check_copy.py" "$1" "$DNS_PORT" "$LIST_DOMAIN" "$HOST2" "${@:2}"; }

# wait_for N PATTERN: waits (bounded) until N dumps in $DUMP contain the fixed string PATTERN
# and are complete; leaves their names in $found.
wait_for() {
	local n=$1 pattern=$2 deadline=$((SECONDS + WAIT_SECONDS))
	while :; do
		mapfile -t found < <(grep -rlF -- "$pattern" "$DUMP" | sort)
		((${#found[@]} >= n)) && dumps_complete "${found[@]}" && return 0
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}
CHECKS="$WORK/checks" # check_copy's findings, one file per dump
mkdir -p "$CHECKS"

# post2 OUTFILE MAILFROM HELO FILE [swaks options]: sends FILE as it is (--no-data-fixup: the file
# is dot-stuffed and ends with its own end-of-data dot), to the list; swaks' exit status in $rc.
post2() {
	local out=$1 from=$2 helo=$3 file=$4
	rc=0
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --helo "$helo" --from "$from" --to "$LIST2" \
		--no-data-fixup --data @"$file" "${@:5}" >"$out" 2>&1 || rc=$?
}

# make_post FILE MSGID SUBJECT [FROM]: an author's message with CRLF line endings (the form SMTP
# carries, and the one that is signed). Its lines starting with "." test dot-stuffing; the UTF-8
# line is 8-bit text. No "%" and no backslash (swaks tokens).
make_post() {
	{
		printf 'From: %s\r\n' "${4:-Alice Example <alice@example.test>}"
		printf 'To: Verified <%s>\r\n' "$LIST2"
		printf 'Subject: %s\r\n' "$3"
		printf 'Date: %s\r\n' "$(LC_ALL=C date -R)"
		printf 'Message-ID: <%s>\r\n' "$2"
		printf 'MIME-Version: 1.0\r\n'
		printf 'Content-Type: text/plain; charset=utf-8\r\n'
		printf 'Content-Transfer-Encoding: 8bit\r\n'
		printf '\r\n'
		printf 'Hello,\r\n'
		printf '.a line starting with a dot\r\n'
		printf 'Gr\xc3\xbc\xc3\x9fe \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n'
		printf '  indented, with trailing spaces   \r\n'
		printf '\r\n'
		printf 'From the last paragraph\r\n'
	} >"$1"
}
# wire FILE OUT: FILE dot-stuffed, with the end-of-data dot (swaks adds the CRLF after it).
wire() {
	sed 's/^\./../' "$1" >"$2"
	printf '.' >>"$2"
}

# ---------------------------------------------------------------------------------------------
# Signed posts. The envelope comes from relay.elsewhere.test, which has no SPF record (NXDOMAIN),
# so SPF cannot vouch for alice: only her DKIM signature can pass DMARC for example.test.
ALGOS=(rsa-sha256 ed25519-sha256)
declare -A SELECTOR=([rsa-sha256]=sel1 [ed25519-sha256]=ed1)
SIGNED_IDS=()
for algo in "${ALGOS[@]}"; do
	sel=${SELECTOR[$algo]}
	id="signed-$sel.$$.$(date +%s)@example.test"
	SIGNED_IDS+=("$id")
	make_post "$WORK/$sel.eml" "$id" "signed with $algo"
	dkimsign --signalg "$algo" "$sel" example.test "$KEYS/$sel.key" <"$WORK/$sel.eml" >"$WORK/$sel.signed" 2>"$WORK/$sel.sign.err"
	[[ $(head -c 16 "$WORK/$sel.signed") == "DKIM-Signature: " ]] ||
		fail "dkimsign did not sign with $algo: $(cat "$WORK/$sel.sign.err")"
	# dkimsign keeps the message's line endings (CRLF here) and writes its field the same way.
	[[ $(grep -c $'\r$' "$WORK/$sel.signed") == $(wc -l <"$WORK/$sel.signed") ]] ||
		fail "dkimsign's output ($algo) has lines ending in LF alone"
	# dkimpy itself accepts the signature, with the key from dnsmasq.
	check_sig=$(/usr/bin/python3 "$PY/dkim_verify.py" "$DNS_PORT" "$WORK/$sel.signed" 2>&1)
	[[ $check_sig == True ]] || fail "dkimpy does not verify its own $algo signature: $check_sig"
	wire "$WORK/$sel.signed" "$WORK/$sel.wire"

	say "posting as alice, signed with $algo (selector $sel), envelope from relay.elsewhere.test"
	post2 "$WORK/swaks-$sel.out" bounces@relay.elsewhere.test relay.elsewhere.test "$WORK/$sel.wire"
	((rc == 0)) || fail "signed post ($algo): swaks exit $rc: $(replies "$WORK/swaks-$sel.out")"
	grep -q '^<-  250 .*queued' "$WORK/swaks-$sel.out" ||
		fail "signed post ($algo) was not answered 250 ... queued: $(replies "$WORK/swaks-$sel.out")"

	wait_for 2 "Message-ID: <$id>" ||
		fail "signed post ($algo): ${#found[@]} copies at smtp-sink within ${WAIT_SECONDS} s, expected ${#MEMBERS2[@]}"
	got=$(sed -n 's/^X-Rcpt-Args: <\(.*\)>.*/\1/p' "${found[@]}" | sort | tr '\n' ' ')
	want=$(printf '%s\n' "${MEMBERS2[@]}" | sort | tr '\n' ' ')
	[[ $got == "$want" ]] || fail "signed post ($algo): copies went to: $got; expected one each to: $want"
	# The author's signed message, byte for byte, ends each copy (LF in the dump, plus the LF
	# smtp-sink adds).
	tr -d '\r' <"$WORK/$sel.signed" >"$WORK/$sel.expected"
	printf '\n' >>"$WORK/$sel.expected"
	for f in "${found[@]}"; do
		tail -c "$(wc -c <"$WORK/$sel.expected")" "$f" | cmp -s - "$WORK/$sel.expected" ||
			fail "signed post ($algo): the author's signed message is not carried unchanged at the end of $f"
		grep -q '^From: Alice Example <alice@example.test>$' "$f" ||
			fail "signed post ($algo): From was rewritten in $f"
		check_copy "$f" example.test "$algo" >"$CHECKS/${f##*/}" 2>&1 ||
			fail "signed post ($algo), copy ${f##*/}: $(cat "$CHECKS/${f##*/}")"
	done
	say "ok: ${#found[@]} copies; the signed message byte-identical at the end of each; $(grep -h '^ok: Auth' "$CHECKS/${found[0]##*/}" | cut -c5-)"
	say "ok: crewmail's DKIM signature verifies with dkimpy; $(grep -h "^ok: the author" "$CHECKS/${found[0]##*/}" | cut -c5-)"
done

# ---------------------------------------------------------------------------------------------
# A forgery: alice's address, no signature, from a server example.test's SPF does not name. The
# Authentication-Results field claiming a pass under crewmail's own authserv-id must not help.
say "posting a forged, unsigned post as alice from evil.test (expect 250, held)"
FORGED_ID="forged.$$.$(date +%s)@example.test"
make_post "$WORK/forged.eml" "$FORGED_ID" "forged post"
{
	printf 'Authentication-Results: %s; dkim=pass header.d=example.test; spf=pass smtp.mailfrom=example.test; dmarc=pass header.from=example.test\r\n' "$HOST2"
	cat "$WORK/forged.eml"
} >"$WORK/forged.full"
wire "$WORK/forged.full" "$WORK/forged.wire"
n_before=$(find "$DUMP" -type f | wc -l)
post2 "$WORK/swaks-forged.out" bulk@evil.test mail.evil.test "$WORK/forged.wire"
((rc == 0)) || fail "forged post: swaks exit $rc, expected 0 (250, held): $(replies "$WORK/swaks-forged.out")"
grep -q '^<-  250 .*held' "$WORK/swaks-forged.out" ||
	fail "forged post was not answered 250 ... held: $(replies "$WORK/swaks-forged.out")"
wait_for 1 "Did you send this" || fail "no confirmation request reached smtp-sink within ${WAIT_SECONDS} s"
sleep 1 # anything else the forgery caused was queued with the 250, and is delivered by now
n_after=$(find "$DUMP" -type f | wc -l)
((n_after == n_before + 1 && ${#found[@]} == 1)) ||
	fail "the forged post caused $((n_after - n_before)) deliveries, expected only the confirmation request"
confirm=${found[0]}
if [[ $(grep -c '^X-Rcpt-Args: ' "$confirm") != 1 ]] || ! grep -q '^X-Rcpt-Args: <alice@example.test>' "$confirm"; then
	fail "the confirmation request went to $(grep '^X-Rcpt-Args' "$confirm" | tr '\n' ' '), expected alice@example.test alone"
fi
grep -q '^Subject: Did you send this' "$confirm" || fail "the confirmation request has no \"Did you send this\" Subject"
grep -q '^To: .*alice@example\.test' "$confirm" || fail "the confirmation request is not addressed To alice"
! grep -rqF "Message-ID: <$FORGED_ID>" "$DUMP" || fail "the forged post itself reached smtp-sink"
! grep -rq '^X-Rcpt-Args: <bob@example.test>' "$confirm" || fail "bob got mail about the forged post"
check_copy "$confirm" >"$CHECKS/${confirm##*/}" 2>&1 || fail "confirmation request: $(cat "$CHECKS/${confirm##*/}")"
say "ok: held; the one mail sent is the confirmation request to alice, signed by $LIST_DOMAIN (dkimpy verifies it)"

# ---------------------------------------------------------------------------------------------
# The DNS server goes away. dnsmasq's answers had TTL 0, so crewmail has none of example.test's
# records cached and must ask again: SPF of example.test and _dmarc.example.test now fail
# (connection refused / timeout, each tried twice), and a DMARC record that cannot be looked up
# leaves the verdict open: 451 4.7.0, nothing accepted unverified. Verification runs at DATA,
# before the list's membership and policy are looked at, so every post to the list gets there.
# A second post from a domain crewmail has never asked about (fresh.test) shows the same without
# relying on the TTL.
say "stopping dnsmasq (PID $DNS_PID), then posting as alice again (expect 451 4.7.0)"
stop_pid "$DNS_PID"
kill -0 "$DNS_PID" 2>/dev/null && fail "dnsmasq (PID $DNS_PID) is still running"
! dig @127.0.0.1 -p "$DNS_PORT" +time=1 +tries=1 TXT example.test >/dev/null 2>&1 || fail "something still answers DNS on 127.0.0.1:$DNS_PORT"
n_before=$(find "$DUMP" -type f | wc -l)
DEFER_IDS=()
for who in alice@example.test carol@fresh.test; do
	id="nodns.${who%@*}.$$.$(date +%s)@${who#*@}"
	DEFER_IDS+=("$id")
	make_post "$WORK/nodns-${who%@*}.eml" "$id" "while DNS is down" "$who"
	wire "$WORK/nodns-${who%@*}.eml" "$WORK/nodns-${who%@*}.wire"
	t0=$SECONDS
	post2 "$WORK/swaks-nodns-${who%@*}.out" "$who" "client.${who#*@}" "$WORK/nodns-${who%@*}.wire" --timeout 60
	[[ $rc == 26 ]] || fail "post from $who without DNS: swaks exit $rc, expected 26: $(replies "$WORK/swaks-nodns-${who%@*}.out")"
	grep -q '^<\*\* *451 4\.7\.0 ' "$WORK/swaks-nodns-${who%@*}.out" ||
		fail "post from $who without DNS was not deferred with 451 4.7.0: $(replies "$WORK/swaks-nodns-${who%@*}.out")"
	say "ok: $who, $((SECONDS - t0)) s: $(grep -m1 '^<\*\* *451' "$WORK/swaks-nodns-${who%@*}.out" | sed 's/^<\*\* *//')"
done

# ---------------------------------------------------------------------------------------------
say "checking the list's archive"
admin archive ls "$LIST2" -json >"$WORK/archive.json" 2>"$WORK/archive.err" ||
	fail "archive ls failed: $(cat "$WORK/archive.err")"
n=$(grep -c . "$WORK/archive.json" || true)
[[ $n == "${#SIGNED_IDS[@]}" ]] || fail "archive ls -json shows $n posts, expected ${#SIGNED_IDS[@]}: $(cat "$WORK/archive.json")"
for id in "${SIGNED_IDS[@]}"; do
	grep -qF "\"message_id\":\"$id\"" "$WORK/archive.json" || fail "the signed post $id is not in the archive"
done
for id in "$FORGED_ID" "${DEFER_IDS[@]}"; do
	! grep -qF "$id" "$WORK/archive.json" || fail "$id is in the archive: $(cat "$WORK/archive.json")"
done
sleep 0.5
n_after=$(find "$DUMP" -type f | wc -l)
((n_after == n_before)) || fail "the deferred posts caused $((n_after - n_before)) deliveries"
((n_after == 2 * ${#SIGNED_IDS[@]} + 1)) || fail "smtp-sink holds $n_after mails, expected $((2 * ${#SIGNED_IDS[@]} + 1))"
say "ok: the archive holds the ${#SIGNED_IDS[@]} signed posts only; no other mail went out"

success
