#!/usr/bin/env bash
# Delivery: alice posts to a "-post members" list with swaks; Postfix's smtp-sink plays the
# smarthost and dumps every list copy to a file, and each copy is compared byte for byte with
# what was sent. A non-member's post and a post with a bare LF are refused with 550; the archive
# holds exactly the one post; the nomail member gets nothing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-01-delivery
need go swaks smtp-sink curl python3 cmp

start_crew
admin list ls >"$WORK/lists.out" 2>&1 || fail "list ls: $(cat "$WORK/lists.out")"
grep -q "^$LIST .* 4\$" "$WORK/lists.out" || fail "list ls does not show $LIST with 4 members: $(cat "$WORK/lists.out")"
say "list $LIST created with ${#MEMBERS[@]} members in mode each and 1 in mode nomail"

# ---------------------------------------------------------------------------------------------
POST="$WORK/post.eml"
MSGID="interop.$$.$(date +%s)@example.test"
make_crew_post "$POST" "$MSGID"

# What a dump must hold. smtp-sink writes LF line endings, undoes dot-stuffing and ends each
# dump with one extra LF; swaks adds the CRLF before the final dot.
tr -d '\r' <"$POST" >"$WORK/expected.msg"
printf '\n\n' >>"$WORK/expected.msg"
sed '1,/^$/d' "$WORK/expected.msg" >"$WORK/expected.body"

say "posting as alice with swaks"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
	--data @"$POST" >"$WORK/swaks-post.out" 2>&1 ||
	fail "swaks post failed (exit $?): $(grep -E '^ *(<\*\*|\*\*\*)' "$WORK/swaks-post.out" | head -5)"
grep -q '^<-  250 .*queued' "$WORK/swaks-post.out" ||
	fail "the post was not answered with 250 ... queued: $(grep -E '^ *<' "$WORK/swaks-post.out" | tail -3)"

# check_dump FILE: prints nothing when FILE is a complete, correct list copy, else why not.
check_dump() {
	local f=$1 hdr
	hdr="$WORK/$(basename "$f").hdr"
	sed '/^$/q' "$f" >"$hdr"
	# The body (everything after the first empty line) equals what was sent, byte for byte.
	if ! sed '1,/^$/d' "$f" | cmp -s - "$WORK/expected.body"; then
		echo "body differs from the one sent: $(sed '1,/^$/d' "$f" | cmp - "$WORK/expected.body" 2>&1 | head -1)"
		return
	fi
	# The author's whole message (header included) is the tail of the copy, unchanged.
	if ! tail -c "$(wc -c <"$WORK/expected.msg")" "$f" | cmp -s - "$WORK/expected.msg"; then
		echo "the author's message is not carried unchanged at the end of the copy"
		return
	fi
	grep -q "^List-Id: .*<crew\.lists\.example\.test>" "$hdr" || { echo "no List-Id header for the list"; return; }
	for h in List-Post List-Help List-Unsubscribe Precedence X-Loop; do
		grep -qi "^$h: " "$hdr" || { echo "no $h header"; return; }
	done
	grep -q '^Received: from .* by lists\.example\.test (crewmail)\|^[[:space:]]*by lists\.example\.test (crewmail)' "$hdr" ||
		{ echo "no Received header from crewmail"; return; }
	[[ $(grep -c '^X-Rcpt-Args: ' "$hdr") == 1 ]] || { echo "not exactly one recipient in the transaction"; return; }
	grep -q '^X-Mail-Args: <crew+bounces-[^@>]*@lists\.example\.test>' "$hdr" ||
		{ echo "envelope sender is not the list's VERP address: $(grep '^X-Mail-Args' "$hdr")"; return; }
}

say "waiting (up to ${WAIT_SECONDS} s) for ${#MEMBERS[@]} list copies at smtp-sink"
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
	mapfile -t dumps < <(find "$DUMP" -type f | sort)
	problems=()
	if ((${#dumps[@]} >= ${#MEMBERS[@]})); then
		for f in "${dumps[@]}"; do
			why=$(check_dump "$f")
			[[ -z $why ]] || problems+=("$(basename "$f"): $why")
		done
		((${#problems[@]} == 0)) && break
	fi
	if ((SECONDS >= deadline)); then
		((${#problems[@]} > 0)) && fail "$(printf '%s\n' "${problems[@]}")"
		fail "smtp-sink got ${#dumps[@]} copies within ${WAIT_SECONDS} s, expected ${#MEMBERS[@]}"
	fi
	sleep 0.2
done
((${#dumps[@]} == ${#MEMBERS[@]})) || fail "smtp-sink got ${#dumps[@]} copies, expected ${#MEMBERS[@]}"
got=$(sed -n 's/^X-Rcpt-Args: <\(.*\)>.*/\1/p' "${dumps[@]}" | sort | tr '\n' ' ')
want=$(printf '%s\n' "${MEMBERS[@]}" | sort | tr '\n' ' ')
[[ $got == "$want" ]] || fail "copies went to: $got; expected exactly one each to: $want"
say "ok: ${#MEMBERS[@]} copies, one per member, body and author's message byte-identical, list headers present"

# ---------------------------------------------------------------------------------------------
say "posting as a non-member (expect 550)"
NONMEMBER="$WORK/nonmember.eml"
printf 'From: Mallory <mallory@example.test>\r\nTo: %s\r\nSubject: not a member\r\nMessage-ID: <nm.%s>\r\n\r\nhello' \
	"$LIST" "$MSGID" >"$NONMEMBER"
rc=0
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from mallory@example.test --to "$LIST" \
	--data @"$NONMEMBER" >"$WORK/swaks-nonmember.out" 2>&1 || rc=$?
[[ $rc == 26 ]] || fail "non-member post: swaks exit $rc, expected 26 (mail refused after DATA)"
grep -q '^<\*\* *550 5\.7\.1 ' "$WORK/swaks-nonmember.out" ||
	fail "non-member post was not refused with 550 5.7.1: $(grep -E '^ *<' "$WORK/swaks-nonmember.out" | tail -2)"
say "ok: $(grep -m1 '^<\*\* *550' "$WORK/swaks-nonmember.out" | sed 's/^<\*\* *//')"

say "posting a message with a bare LF (expect 550)"
# --no-data-fixup sends the file as it is (swaks would otherwise turn LF into CRLF); the file
# therefore carries its own end-of-data dot, and swaks adds the CRLF after it.
BARELF="$WORK/barelf.eml"
printf 'From: Alice Example <alice@example.test>\r\nTo: %s\r\nSubject: bare LF\r\nMessage-ID: <lf.%s>\r\n\r\nline one\nline two\r\n.' \
	"$LIST" "$MSGID" >"$BARELF"
rc=0
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
	--no-data-fixup --data @"$BARELF" >"$WORK/swaks-barelf.out" 2>&1 || rc=$?
[[ $rc == 26 ]] || fail "bare-LF post: swaks exit $rc, expected 26 (mail refused after DATA)"
grep -q '^<\*\* *550 ' "$WORK/swaks-barelf.out" ||
	fail "bare-LF post was not refused with 550: $(grep -E '^ *<' "$WORK/swaks-barelf.out" | tail -2)"
say "ok: $(grep -m1 '^<\*\* *550' "$WORK/swaks-barelf.out" | sed 's/^<\*\* *//')"

# ---------------------------------------------------------------------------------------------
say "checking the archive"
admin archive ls "$LIST" -json >"$WORK/archive.json" 2>"$WORK/archive.err" ||
	fail "archive ls failed: $(cat "$WORK/archive.err")"
n=$(grep -c . "$WORK/archive.json" || true)
[[ $n == 1 ]] || fail "archive ls -json shows $n posts, expected 1: $(cat "$WORK/archive.json")"
grep -qF "\"message_id\":\"$MSGID\"" "$WORK/archive.json" ||
	fail "the archived post is not the one sent: $(cat "$WORK/archive.json")"
say "ok: the archive holds exactly the one post"

# Refused posts made no deliveries, and nothing was sent twice or to the nomail member.
mapfile -t dumps < <(find "$DUMP" -type f)
((${#dumps[@]} == ${#MEMBERS[@]})) || fail "smtp-sink now holds ${#dumps[@]} copies, expected ${#MEMBERS[@]}"
! grep -q "^X-Rcpt-Args: <$QUIET_MEMBER>" "${dumps[@]}" || fail "the nomail member $QUIET_MEMBER got a copy"

success
