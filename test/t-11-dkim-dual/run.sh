#!/usr/bin/env bash
# Two DKIM keys per domain (RFC 8463 §4): "crewmail dkim keygen" makes an RSA key, then
# "-algo ed25519" beside it adds the selector crewmail-ed25519; "dkim show" and "crewmail check"
# report both. dnsmasq serves both records; a post through crewmail reaches smtp-sink carrying
# two signatures of the list domain, and dkimpy verifies each one (asking dnsmasq), also with the
# other taken off; OpenDKIM (opendkim -t, its test mode) verifies the copy and each signature
# alone too. OpenDKIM gets the two records from a TestDNSData file: its resolver (libunbound)
# never queries a loopback address, and Debian's opendkim-testmsg fails on every input with
# "dkim_chunk(): Syntax error".
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-11-dkim-dual
need go swaks smtp-sink curl dnsmasq dig opendkim
need_python_dkim

build_crewmail
DNS_PORT=$(new_dns_port)
SINK_PORT=$(new_port)
SMTP_PORT=$(new_port)
HTTP_PORT=$(new_port)
CFG="$WORK/crewmail.toml"
write_config "$CFG" "$WORK/data" "$SMTP_PORT" "$HTTP_PORT" "" "$SINK_PORT" "workers = 2
[dns]
resolver = \"127.0.0.1:$DNS_PORT\""

admin dkim keygen "$LIST_HOST" >"$WORK/keygen-rsa.out" 2>&1 || fail "dkim keygen: $(cat "$WORK/keygen-rsa.out")"
admin dkim keygen "$LIST_HOST" -algo ed25519 >"$WORK/keygen-ed.out" 2>&1 || fail "dkim keygen -algo ed25519: $(cat "$WORK/keygen-ed.out")"
grep -q "crewmail-ed25519._domainkey.$LIST_HOST. IN TXT \"v=DKIM1; k=ed25519; p=" "$WORK/keygen-ed.out" ||
	fail "the second key is not under the selector crewmail-ed25519: $(cat "$WORK/keygen-ed.out")"
! admin dkim keygen "$LIST_HOST" -algo ed25519 -selector again >"$WORK/keygen-3.out" 2>&1 ||
	fail "a second Ed25519 key was made: $(cat "$WORK/keygen-3.out")"
admin dkim show "$LIST_HOST" >"$WORK/show.out" 2>&1 || fail "dkim show: $(cat "$WORK/show.out")"
[[ $(wc -l <"$WORK/show.out") == 2 ]] || fail "dkim show does not print two records: $(cat "$WORK/show.out")"
say "ok: an RSA key (selector crewmail) and an Ed25519 key (selector crewmail-ed25519)"

# Each record as NAME and one value string (the quoted strings joined).
declare -A RECORD
while IFS= read -r line; do
	RECORD[${line%%. *}]=$(grep -o '"[^"]*"' <<<"${line#* TXT }" | tr -d '"\n')
done <"$WORK/show.out"
cat >"$WORK/dns.conf" <<CONF
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
local=/test/
CONF
for name in "${!RECORD[@]}"; do
	printf 'txt-record=%s,"%s"\n' "$name" "${RECORD[$name]}" >>"$WORK/dns.conf"
done
start_dnsmasq "$WORK/dns.conf" "$DNS_PORT" "$WORK/dnsmasq.log" "crewmail._domainkey.$LIST_HOST"
for name in "${!RECORD[@]}"; do
	[[ $(dig_txt "$DNS_PORT" "$name") == "${RECORD[$name]}" ]] || fail "dnsmasq does not serve $name"
done

# crewmail check: one DKIM line per selector, both OK (the rest fails on loopback: no MX here).
admin check "$LIST_HOST" >"$WORK/check.out" 2>&1 || true
for sel in crewmail crewmail-ed25519; do
	grep -q "^OK  *DKIM  *$sel._domainkey.$LIST_HOST matches crewmail's key" "$WORK/check.out" ||
		fail "crewmail check does not report $sel as OK: $(cat "$WORK/check.out")"
done
say "ok: crewmail check reports both selectors OK"

DUMP="$WORK/dump"
start_sink "$DUMP" "$SINK_PORT" "$WORK/sink.log"
start_crewmail "$CFG" "$WORK/crewmail.log" "$HTTP_PORT" crewmail
admin list create "$LIST" -name Crew -post members >"$WORK/admin.out" 2>&1 || fail "list create: $(cat "$WORK/admin.out")"
admin member add "$LIST" alice@example.test -mode each >>"$WORK/admin.out" 2>&1 || fail "member add: $(cat "$WORK/admin.out")"

MSGID="dual.$$.$(date +%s)@example.test"
make_crew_post "$WORK/post.eml" "$MSGID"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
	--data @"$WORK/post.eml" >"$WORK/swaks.out" 2>&1 || fail "swaks: $(replies "$WORK/swaks.out")"
wait_mail 1 alice@example.test "Message-ID: <$MSGID>" || fail "no copy at smtp-sink within $WAIT_SECONDS s"
only_one "the copy"
OUTDIR=$WORK /usr/bin/python3 "$PY/dkim_dual.py" "${found[0]}" "$DNS_PORT" "$LIST_HOST" crewmail crewmail-ed25519 >"$WORK/verify.out" 2>&1 ||
	fail "dkimpy: $(cat "$WORK/verify.out")"
while IFS= read -r line; do say "$line"; done <"$WORK/verify.out"

# OpenDKIM: its test mode verifies a message file and says so on stderr, exit status 0 either way.
for name in "${!RECORD[@]}"; do
	printf '%s %s\n' "$name" "${RECORD[$name]}"
done >"$WORK/opendkim-keys"
cat >"$WORK/opendkim.conf" <<CONF
Mode v
Syslog no
TestDNSData file:$WORK/opendkim-keys
CONF
opendkim_says() { opendkim -x "$WORK/opendkim.conf" -t "$1" 2>&1; }
declare -A KEYSIZE=([crewmail]="2048-bit key" [crewmail-ed25519]="0-bit key") # OpenDKIM gives Ed25519 no size
for sel in crewmail crewmail-ed25519; do
	out=$(opendkim_says "$WORK/alone-$sel.eml")
	[[ $out == *"verification (s=$sel, d=$LIST_HOST, ${KEYSIZE[$sel]}) succeeded"* ]] ||
		fail "OpenDKIM does not verify the $sel signature alone: $out"
	say "ok: OpenDKIM verifies the $sel signature alone"
done
out=$(opendkim_says "$WORK/sent.eml")
[[ $out == *"verification (s=crewmail"*", d=$LIST_HOST, "*") succeeded"* ]] || fail "OpenDKIM does not verify the copy: $out"
sed 's/interop check/interop check!/' "$WORK/sent.eml" >"$WORK/changed.eml"
out=$(opendkim_says "$WORK/changed.eml")
[[ $out == *"failed"* && $out != *"succeeded"* ]] || fail "OpenDKIM accepts the copy with its Subject changed: $out"
say "ok: OpenDKIM verifies the copy with both signatures, and fails it with its Subject changed"
success
