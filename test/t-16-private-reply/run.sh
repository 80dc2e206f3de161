#!/usr/bin/env bash
# The private reply relay, driven by swaks: bob reads the crew list as a daily digest; alice
# posts; bob answers her alone through the digest's "Reply to Alice Example only" link, and
# smtp-sink receives one mail, to alice: From "Bob via Crew" <crew@…>, Reply-To bob, In-Reply-To
# her post, X-Loop; it is not in the archive. mallory, not a member, is refused at RCPT with
# 550 5.7.1, and the same token on another list with 550 5.1.1. Then the list hides addresses:
# carol's copy of alice's next post names alice, never her address, and its Reply-To is the
# post's private reply address.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-16-private-reply
need go swaks smtp-sink python3

start_crew
AUTHOR=alice@example.test
REPLIER=bob@example.test
admin member mode "$LIST" "$REPLIER" daily >"$WORK/mode.out" 2>&1 || fail "member mode: $(cat "$WORK/mode.out")"

# post ID SUBJECT: alice posts to the list (swaks), answered 250.
post() {
	printf 'From: Alice Example <%s>\r\nTo: Crew <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n\r\nBeans by the shed.\r\n\r\nAlice' \
		"$AUTHOR" "$LIST" "$2" "$(LC_ALL=C date -R)" "$1" >"$WORK/post-$1.eml"
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --from "$AUTHOR" --to "$LIST" \
		--data @"$WORK/post-$1.eml" >"$WORK/swaks-post-$1.out" 2>&1 ||
		fail "swaks post \"$2\" failed (exit $?): $(replies "$WORK/swaks-post-$1.out")"
}

# 1. alice's post; bob's digest with its "Reply to Alice Example only" link.
POST_ID="private-one.$$.$(date +%s)@example.test"
post "$POST_ID" "Private check"
wait_mail 2 "" "<$POST_ID>" || fail "${#found[@]} copies of alice's post at smtp-sink, expected 2"
admin digest send -now >"$WORK/digest-send.out" 2>&1 || fail "digest send -now: $(cat "$WORK/digest-send.out")"
wait_mail 1 "$REPLIER" "Subject: [Crew] Daily digest" || fail "no digest to $REPLIER at smtp-sink"
python3 "$PY/mime.py" part "${found[0]}" text/plain >"$WORK/digest.txt" 2>"$WORK/digest.err" || fail "the text part: $(cat "$WORK/digest.err")"
# The text part is format=flowed; delsp=yes (RFC 3676): read it as a mail program shows it, each
# soft line break (a line ending in a space) joined and that space deleted.
python3 -c 'import sys
out = []
for line in sys.stdin.read().replace("\r\n", "\n").split("\n"):
    line = line[1:] if line.startswith(" ") else line
    soft = line.endswith(" ") and line != "-- "
    out.append(line[:-1] if soft else line + "\n")
sys.stdout.write("".join(out))' <"$WORK/digest.txt" >"$WORK/digest.read"
LINK=$(sed -n 's/^Reply to Alice Example only: //p' "$WORK/digest.read")
[[ $LINK =~ ^($LIST_LOCAL\+p-([a-z2-7]+)@${LIST_HOST//./\\.})$ ]] ||
	fail "no \"Reply to Alice Example only: $LIST_LOCAL+p-TOKEN@$LIST_HOST\" line in the digest: \"$LINK\""
PRIV=${BASH_REMATCH[1]}
TOKEN=${BASH_REMATCH[2]}
say "ok: the digest's private reply link: $LINK"
settle

# 2. bob answers alice alone, as a mail program writing to the link does (no In-Reply-To).
ANSWER_ID="private-answer.$$.$(date +%s)@example.test"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from "$REPLIER" --to "$PRIV" \
	--header "From: Bob <$REPLIER>" --header "Subject: Re: Private check" --header "Message-Id: <$ANSWER_ID>" \
	--body "Just between us: count me in. Bob" >"$WORK/swaks-answer.out" 2>&1 ||
	fail "swaks to $PRIV failed (exit $?): $(replies "$WORK/swaks-answer.out")"
wait_mail 1 "" "<$ANSWER_ID>" || fail "bob's answer did not reach smtp-sink"
settle
mapfile -t found < <(mail_for "" "<$ANSWER_ID>")
only_one "bob's private answer"
A=${found[0]}
[[ $(recipients "$A") == "$AUTHOR " ]] || fail "bob's answer went to $(recipients "$A"), expected $AUTHOR alone"
[[ $(field From "$A") == "\"Bob via Crew\" <$LIST>" ]] || fail "From of the answer: \"$(field From "$A")\""
[[ $(field Reply-To "$A") == "\"Bob\" <$REPLIER>" ]] || fail "Reply-To of the answer: \"$(field Reply-To "$A")\""
[[ $(field In-Reply-To "$A") == "<$POST_ID>" ]] || fail "In-Reply-To of the answer: \"$(field In-Reply-To "$A")\""
[[ $(field X-Loop "$A") == "$LIST" ]] || fail "X-Loop of the answer: \"$(field X-Loop "$A")\""
admin archive ls "$LIST" -json >"$WORK/archive.json" 2>&1 || fail "archive ls: $(cat "$WORK/archive.json")"
! grep -F "$ANSWER_ID" "$WORK/archive.json" >/dev/null || fail "bob's private answer is in the archive"
say "ok: one mail, to $AUTHOR alone, From \"Bob via Crew\" <$LIST>, Reply-To $REPLIER, In-Reply-To <$POST_ID>; not archived"

# 3. Refused at RCPT: a stranger; the token on another list.
rc=0
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from mallory@example.test --to "$PRIV" \
	--body "hello" >"$WORK/swaks-mallory.out" 2>&1 || rc=$?
[[ $rc == 24 ]] || fail "mallory: swaks exit $rc, expected 24 (recipient refused)"
grep -q '^<\*\* *550 5\.7\.1 ' "$WORK/swaks-mallory.out" || fail "mallory was not refused with 550 5.7.1: $(replies "$WORK/swaks-mallory.out")"
say "ok: mallory at RCPT: $(grep -m1 '^<\*\* *550' "$WORK/swaks-mallory.out" | sed 's/^<\*\* *//')"
SEEDS=seeds@$LIST_HOST
admin list create "$SEEDS" -name Seeds -post members >"$WORK/seeds.out" 2>&1 || fail "list create: $(cat "$WORK/seeds.out")"
admin member add "$SEEDS" "$REPLIER" "$AUTHOR" -mode nomail >>"$WORK/seeds.out" 2>&1 || fail "member add: $(cat "$WORK/seeds.out")"
rc=0
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from "$REPLIER" --to "seeds+p-$TOKEN@$LIST_HOST" \
	--body "hello" >"$WORK/swaks-replay.out" 2>&1 || rc=$?
[[ $rc == 24 ]] || fail "the token on another list: swaks exit $rc, expected 24 (recipient refused)"
grep -q '^<\*\* *550 5\.1\.1 ' "$WORK/swaks-replay.out" || fail "the token on another list was not refused with 550 5.1.1: $(replies "$WORK/swaks-replay.out")"
say "ok: the token on $SEEDS at RCPT: $(grep -m1 '^<\*\* *550' "$WORK/swaks-replay.out" | sed 's/^<\*\* *//')"

# 4. The list hides addresses: carol's copy names alice, never her address.
admin list set "$LIST" -hide-addresses true >"$WORK/hide.out" 2>&1 || fail "list set -hide-addresses: $(cat "$WORK/hide.out")"
HIDDEN_ID="private-two.$$.$(date +%s)@example.test"
post "$HIDDEN_ID" "Hidden check"
wait_mail 1 carol@example.test "<$HIDDEN_ID>" || fail "carol got no copy of alice's second post"
C=${found[0]}
[[ $(field From "$C") == "\"Alice Example via Crew\" <$LIST>" ]] || fail "From of carol's copy: \"$(field From "$C")\""
[[ $(field Reply-To "$C") =~ ^\<$LIST_LOCAL\+p-[a-z2-7]+@${LIST_HOST//./\\.}\>$ ]] || fail "Reply-To of carol's copy: \"$(field Reply-To "$C")\""
! grep -iF "$AUTHOR" "$C" >/dev/null || fail "carol's copy shows alice's address: $(grep -iF "$AUTHOR" "$C" | head -3 | tr '\n' ' ')"
say "ok: carol's copy comes From \"Alice Example via Crew\" <$LIST>, Reply-To $(field Reply-To "$C"), and nowhere names $AUTHOR"

success
