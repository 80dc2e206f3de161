#!/usr/bin/env bash
# Posts nested 10,000 levels deep: alice posts a message of 10,000 nested message/rfc822 parts
# and one of 10,000 nested multiparts (swaks); Python's imaplib FETCHes their BODYSTRUCTURE and
# SEARCHes TEXT, each answered within 10 s, the structure ending in one application/octet-stream
# part at the nesting limit; a mail of 10,000 nested multiparts to crew-request@ does not hold
# up the posts made while it is handled; crewmail's peak memory grows by less than 500 MiB, and
# it still answers.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-06-nested-mime
need go swaks smtp-sink curl python3

start_crew
IMAP_MEMBER=${MEMBERS[0]}
wait_tcp "$IMAP_PORT" || fail "crewmail does not listen for IMAP on 127.0.0.1:$IMAP_PORT ([imap] listen in $CFG)"
app_password "$IMAP_MEMBER"
hwm_kib() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$CREWMAIL_PID/status"; }
HWM6=$(hwm_kib)

# nested.py KIND LEVELS FROM TO MESSAGE-ID TEXT: a message whose body nests LEVELS multiparts
# (KIND multipart), each the only part of the one around it, or LEVELS message/rfc822 parts
# (KIND message), with a text/plain part saying TEXT at the bottom.
NESTED_IDS=()
for kind in message multipart; do
	id="nested-$kind.$$.$(date +%s)@example.test"
	python3 "$PY/nested.py" "$kind" 10000 "Alice Example <alice@example.test>" "$LIST" "$id" help >"$WORK/nested-$kind.eml"
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
		--data @"$WORK/nested-$kind.eml" >"$WORK/swaks-nested-$kind.out" 2>&1 ||
		fail "swaks post of 10,000 nested $kind parts failed (exit $?): $(replies "$WORK/swaks-nested-$kind.out")"
	grep -q '^<-  250 .*queued' "$WORK/swaks-nested-$kind.out" ||
		fail "the post of 10,000 nested $kind parts was not answered with 250 ... queued: $(replies "$WORK/swaks-nested-$kind.out")"
	NESTED_IDS+=("$id")
	say "ok: a post of 10,000 nested $kind parts ($(wc -c <"$WORK/nested-$kind.eml") bytes) archived"
done

# imap_nested.py PORT USER PASSWORD MAILBOX MESSAGE-ID...: FETCH BODYSTRUCTURE of each message
# and SEARCH TEXT help, each within 10 s; the structure is no deeper than the limit and ends in
# an application/octet-stream part; the text beyond the limit is not found.
/usr/bin/python3 "$PY/imap_nested.py" "$IMAP_PORT" "$IMAP_MEMBER" "$IMAP_PASSWORD" "$LIST" "${NESTED_IDS[@]}" \
	>"$WORK/imap6.out" 2>&1 || fail "Python imaplib: $(tail -n 3 "$WORK/imap6.out")"
while IFS= read -r line; do say "ok: imaplib: ${line#ok: }"; done <"$WORK/imap6.out"

# A mail of 10,000 nested multiparts to crew-request@, from someone who is no member, whose
# innermost text says help; alice posts until it has been answered, each post within 10 s.
REQUEST=${LIST/@/-request@}
python3 "$PY/nested.py" multipart 10000 "mallory@example.test" "$REQUEST" "nested-request.$$@example.test" help \
	>"$WORK/nested-request.eml"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from mallory@example.test --to "$REQUEST" \
	--data @"$WORK/nested-request.eml" >"$WORK/swaks-nested-request.out" 2>&1 &
REQUEST_PID=$!
posts6=0 slowest6=0
while :; do
	posts6=$((posts6 + 1))
	start=$(date +%s%N)
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
		--header "Subject: meanwhile $posts6" >"$WORK/swaks-meanwhile.out" 2>&1 ||
		fail "swaks post $posts6 while the nested request was handled failed (exit $?): $(replies "$WORK/swaks-meanwhile.out")"
	took=$((($(date +%s%N) - start) / 1000000))
	((took > slowest6)) && slowest6=$took
	grep -q '^<-  250 .*queued' "$WORK/swaks-meanwhile.out" ||
		fail "post $posts6 made while the nested request was handled: $(replies "$WORK/swaks-meanwhile.out")"
	kill -0 "$REQUEST_PID" 2>/dev/null || break
	((posts6 < 100)) || fail "the nested request to $REQUEST was not answered while 100 posts were made"
done
wait "$REQUEST_PID" || fail "swaks to $REQUEST failed: $(replies "$WORK/swaks-nested-request.out")"
grep -q '^<-  250 ' "$WORK/swaks-nested-request.out" ||
	fail "the nested request to $REQUEST was not accepted: $(replies "$WORK/swaks-nested-request.out")"
((slowest6 < 10000)) || fail "a post made while the nested request was handled took $slowest6 ms, expected under 10 s"
say "ok: the nested request to $REQUEST accepted; $posts6 posts made meanwhile, the slowest in $slowest6 ms"

grown6=$((($(hwm_kib) - HWM6) / 1024))
((grown6 < 500)) || fail "crewmail's peak memory grew by $grown6 MiB, expected under 500 MiB"
curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 || fail "crewmail no longer answers /healthz"
say "ok: crewmail's peak memory grew by $grown6 MiB; it still answers /healthz"


success
