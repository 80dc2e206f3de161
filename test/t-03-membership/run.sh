#!/usr/bin/env bash
# Membership by email and one-click unsubscribe (RFC 8058): the crew list is opened to joining,
# with an owner; newbie@ writes to crew+subscribe@, answers the confirmation as a mail program
# would (Re:, In-Reply-To, the confirmation quoted) and is a member, welcomed, with a notice to
# the owner; newbie's copy of a post carries its own List-Unsubscribe link and
# List-Unsubscribe-Post; a GET of the link only shows a page, a POST without the RFC 8058 body is
# refused (400), a tampered link is unknown (404), and the POST a mail client sends takes newbie
# off at once, with a goodbye and a notice to the owner.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-03-membership
need go swaks smtp-sink curl python3

NEWBIE=newbie@example.test
OWNER=owner@example.test
start_crew
n_before3=$(find "$DUMP" -type f | wc -l) # this test's mail is what smtp-sink gets from now on

# 1. Open joining, and an owner to hear of it.
admin list set "$LIST" -join open -owner "$OWNER" >"$WORK/listset3.out" 2>&1 || fail "list set: $(cat "$WORK/listset3.out")"
admin list show "$LIST" >"$WORK/list3.out" 2>&1 || fail "list show: $(cat "$WORK/list3.out")"
if ! grep -q '^join: *open$' "$WORK/list3.out" || ! grep -qF "$OWNER" "$WORK/list3.out"; then
	fail "list set -join open -owner $OWNER did not take: $(cat "$WORK/list3.out")"
fi
is_member "$NEWBIE" && fail "$NEWBIE is a member before asking to join"
say "ok: list set: join open, owner $OWNER"

# 2. Ask to join: crew+subscribe@, from newbie (envelope and From).
SUB_ID="subscribe.$$.$(date +%s)@example.test"
printf 'From: New Bie <%s>\r\nTo: %s+subscribe@%s\r\nSubject: subscribe\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsubscribe' \
	"$NEWBIE" "$LIST_LOCAL" "$LIST_HOST" "$(LC_ALL=C date -R)" "$SUB_ID" >"$WORK/subscribe.eml"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from "$NEWBIE" --to "$LIST_LOCAL+subscribe@$LIST_HOST" \
	--data @"$WORK/subscribe.eml" >"$WORK/swaks-subscribe.out" 2>&1 ||
	fail "swaks to $LIST_LOCAL+subscribe@ failed (exit $?): $(replies "$WORK/swaks-subscribe.out")"
grep -q '^<-  250 ' "$WORK/swaks-subscribe.out" ||
	fail "the subscribe mail was not answered 250 after DATA: $(replies "$WORK/swaks-subscribe.out")"
wait_mail 1 "$NEWBIE" "Subject: Confirm: join" ||
	fail "no \"Confirm: join\" mail to $NEWBIE at smtp-sink within ${WAIT_SECONDS} s"
only_one "the join confirmation"
CONFIRM_MAIL=${found[0]}
grep -q '^X-Mail-Args: <>' "$CONFIRM_MAIL" ||
	fail "the join confirmation is not sent with the null return path: $(grep '^X-Mail-Args' "$CONFIRM_MAIL")"
[[ $(field Auto-Submitted "$CONFIRM_MAIL") == auto-replied ]] ||
	fail "the join confirmation has Auto-Submitted: $(field Auto-Submitted "$CONFIRM_MAIL"), expected auto-replied"
[[ $(field In-Reply-To "$CONFIRM_MAIL") == "<$SUB_ID>" ]] ||
	fail "the join confirmation's In-Reply-To is \"$(field In-Reply-To "$CONFIRM_MAIL")\", expected <$SUB_ID>"
CONFIRM_ADDR=$(field Reply-To "$CONFIRM_MAIL" | grep -oE "$LIST_LOCAL\+confirm-[a-z2-7]+@$LIST_HOST" | awk 'NR == 1') || true
[[ -n $CONFIRM_ADDR ]] ||
	fail "no $LIST_LOCAL+confirm-TOKEN@$LIST_HOST address in the confirmation's Reply-To: \"$(field Reply-To "$CONFIRM_MAIL")\""
[[ $(field From "$CONFIRM_MAIL") == *"<$CONFIRM_ADDR>" ]] ||
	fail "the confirmation's From is not its confirm address $CONFIRM_ADDR: $(field From "$CONFIRM_MAIL")"
body_of "$CONFIRM_MAIL" >"$WORK/confirm3.body"
grep -qF "$CONFIRM_ADDR" "$WORK/confirm3.body" || fail "the confirmation's text does not name $CONFIRM_ADDR"
is_member "$NEWBIE" && fail "$NEWBIE is a member before confirming"
say "ok: \"$(field Subject "$CONFIRM_MAIL")\" to $NEWBIE, from and Reply-To $CONFIRM_ADDR"

# 3. Confirm: answer the confirmation the way a mail program does, with Re:, In-Reply-To and
# References, a line on top and the confirmation quoted below. No "%" and no backslash (swaks).
CONFIRM_MSGID=$(field Message-ID "$CONFIRM_MAIL")
[[ $CONFIRM_MSGID == \<*@*\> ]] || fail "the confirmation has no usable Message-ID: \"$CONFIRM_MSGID\""
REPLY_ID="reply.$$.$(date +%s)@example.test"
{
	printf 'From: New Bie <%s>\n' "$NEWBIE"
	printf 'To: Crew <%s>\n' "$CONFIRM_ADDR"
	printf 'Subject: Re: %s\n' "$(field Subject "$CONFIRM_MAIL")"
	printf 'Date: %s\n' "$(LC_ALL=C date -R)"
	printf 'Message-ID: <%s>\n' "$REPLY_ID"
	printf 'In-Reply-To: %s\n' "$CONFIRM_MSGID"
	printf 'References: %s\n' "$CONFIRM_MSGID"
	printf 'User-Agent: interop\n'
	printf 'MIME-Version: 1.0\n'
	printf 'Content-Type: text/plain; charset=utf-8; format=flowed\n'
	printf 'Content-Transfer-Encoding: 7bit\n'
	printf '\n'
	printf 'Yes please, count me in.\n'
	printf '\n'
	printf 'New\n'
	printf '\n'
	printf 'On %s, Crew wrote:\n' "$(field Date "$CONFIRM_MAIL")"
	sed 's/^/> /; s/^> $/>/' "$WORK/confirm3.body" | tr -d '%\134'
} | sed 's/$/\r/' >"$WORK/confirm-reply.eml"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from "$NEWBIE" --to "$CONFIRM_ADDR" \
	--data @"$WORK/confirm-reply.eml" >"$WORK/swaks-confirm.out" 2>&1 ||
	fail "swaks to $CONFIRM_ADDR failed (exit $?): $(replies "$WORK/swaks-confirm.out")"
grep -q '^<-  250 ' "$WORK/swaks-confirm.out" ||
	fail "the reply to the confirmation was not answered 250 after DATA: $(replies "$WORK/swaks-confirm.out")"
joined=
for _ in $(seq 50); do
	if is_member "$NEWBIE"; then
		joined=1
		break
	fi
	sleep 0.1
done
[[ -n $joined ]] || fail "member ls does not show $NEWBIE after the confirmation was answered: $(cat "$WORK/members.out")"
awk -v a="$NEWBIE" '$1 == a && $2 == "each" { ok = 1 } END { exit !ok }' "$WORK/members.out" ||
	fail "$NEWBIE did not join in mode each: $(grep -F "$NEWBIE" "$WORK/members.out")"
say "ok: member ls shows $(grep -F "$NEWBIE" "$WORK/members.out" | tr -s ' ')"
wait_mail 1 "$NEWBIE" "Subject: Welcome to Crew" || fail "no \"Welcome to Crew\" to $NEWBIE within ${WAIT_SECONDS} s"
only_one "the welcome"
wait_mail 1 "$OWNER" "Subject: $NEWBIE joined Crew" || fail "no \"$NEWBIE joined Crew\" to $OWNER within ${WAIT_SECONDS} s"
only_one "the owner's notice of the join"
say "ok: \"Welcome to Crew\" to $NEWBIE and \"$NEWBIE joined Crew\" to $OWNER"

# 4. A post reaches newbie too, with newbie's own one-click link.
POST3_ID="post3.$$.$(date +%s)@example.test"
printf 'From: Alice Example <alice@example.test>\r\nTo: Crew <%s>\r\nSubject: hello newbie\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWelcome aboard.' \
	"$LIST" "$(LC_ALL=C date -R)" "$POST3_ID" >"$WORK/post3.eml"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
	--data @"$WORK/post3.eml" >"$WORK/swaks-post3.out" 2>&1 ||
	fail "swaks post failed (exit $?): $(replies "$WORK/swaks-post3.out")"
grep -q '^<-  250 .*queued' "$WORK/swaks-post3.out" ||
	fail "the post was not answered with 250 ... queued: $(replies "$WORK/swaks-post3.out")"
RECIPIENTS3=("${MEMBERS[@]}" "$NEWBIE")
wait_mail ${#RECIPIENTS3[@]} "" "Message-ID: <$POST3_ID>" ||
	fail "${#found[@]} copies of the post at smtp-sink within ${WAIT_SECONDS} s, expected ${#RECIPIENTS3[@]}"
got=$(sed -n 's/^X-Rcpt-Args: <\(.*\)>.*/\1/p' "${found[@]}" | sort | tr '\n' ' ')
want=$(printf '%s\n' "${RECIPIENTS3[@]}" | sort | tr '\n' ' ')
[[ $got == "$want" ]] || fail "copies of the post went to: $got; expected one each to: $want"
copies=("${found[@]}")
mapfile -t found < <(mail_for "$NEWBIE" "Message-ID: <$POST3_ID>")
only_one "$NEWBIE's copy of the post"
COPY=${found[0]}
[[ $(field List-Unsubscribe-Post "$COPY") == "List-Unsubscribe=One-Click" ]] ||
	fail "$NEWBIE's copy has List-Unsubscribe-Post: \"$(field List-Unsubscribe-Post "$COPY")\", expected List-Unsubscribe=One-Click"
UNSUB=$(field List-Unsubscribe "$COPY")
URL=$(sed -n 's/^<\(https\?:[^>]*\)>.*/\1/p' <<<"$UNSUB")
[[ $URL == "http://127.0.0.1:$HTTP_PORT/u/"?* ]] ||
	fail "$NEWBIE's List-Unsubscribe has no http://127.0.0.1:$HTTP_PORT/u/TOKEN link first: \"$UNSUB\""
[[ $UNSUB == "<$URL>, <mailto:$LIST_LOCAL+unsubscribe@$LIST_HOST>" ]] ||
	fail "$NEWBIE's List-Unsubscribe is \"$UNSUB\", expected <$URL>, <mailto:$LIST_LOCAL+unsubscribe@$LIST_HOST>"
# Each member's copy names that member: no two links alike.
urls=$(for f in "${copies[@]}"; do field List-Unsubscribe "$f" | sed -n 's/^<\(http[^>]*\)>.*/\1/p'; done | sort -u | wc -l)
((urls == ${#RECIPIENTS3[@]})) || fail "the ${#RECIPIENTS3[@]} copies carry $urls different one-click links, expected one each"
say "ok: ${#copies[@]} copies; $NEWBIE's has List-Unsubscribe-Post: List-Unsubscribe=One-Click and its own link $URL"

# 5. Opening the link (what a link scanner does too) only shows the page.
code=$(http_code "$WORK/u-get.html" "$URL")
[[ $code == 200 ]] || fail "GET $URL: $code, expected 200: $(head -c 300 "$WORK/u-get.html" 2>/dev/null)"
grep -qF "$NEWBIE" "$WORK/u-get.html" || fail "the page at $URL does not name $NEWBIE"
grep -qF '<form method="post">' "$WORK/u-get.html" || fail "the page at $URL has no <form method=\"post\">"
is_member "$NEWBIE" || fail "$NEWBIE is no longer a member after a GET of the link"
say "ok: GET: 200, a page naming $NEWBIE with a <form method=\"post\"> button; $NEWBIE still a member"

# 6. Leaving. First what must not work, while newbie is still a member: a POST without the
# RFC 8058 body, and a tampered link.
code=$(http_code "$WORK/u-nobody.html" -X POST "$URL")
[[ $code == 400 ]] || fail "POST $URL without a body: $code, expected 400: $(head -c 300 "$WORK/u-nobody.html" 2>/dev/null)"
token=${URL##*/u/}
tampered=aaa
[[ ${token: -3} != "$tampered" ]] || tampered=bbb
BAD_URL=${URL%???}$tampered
code=$(http_code "$WORK/u-tampered.html" -X POST -d 'List-Unsubscribe=One-Click' "$BAD_URL")
[[ $code == 404 ]] || fail "POST $BAD_URL (token tampered): $code, expected 404: $(head -c 300 "$WORK/u-tampered.html" 2>/dev/null)"
is_member "$NEWBIE" || fail "$NEWBIE was taken off by a POST without the body or with a tampered link"
say "ok: POST without the body: 400; POST to the link ending in \"$tampered\": 404; $NEWBIE still a member"

# Exactly what an RFC 8058 mail client sends.
code=$(http_code "$WORK/u-post.html" -X POST -d 'List-Unsubscribe=One-Click' "$URL")
[[ $code == 200 ]] || fail "POST $URL with List-Unsubscribe=One-Click: $code, expected 200: $(head -c 300 "$WORK/u-post.html" 2>/dev/null)"
grep -qF "$NEWBIE" "$WORK/u-post.html" || fail "the page after the POST does not name $NEWBIE"
is_member "$NEWBIE" && fail "member ls still shows $NEWBIE after the one-click POST: $(grep -F "$NEWBIE" "$WORK/members.out")"
wait_mail 1 "$NEWBIE" "Subject: You have left Crew" || fail "no \"You have left Crew\" to $NEWBIE within ${WAIT_SECONDS} s"
only_one "the goodbye"
wait_mail 1 "$OWNER" "Subject: $NEWBIE left Crew" || fail "no \"$NEWBIE left Crew\" to $OWNER within ${WAIT_SECONDS} s"
only_one "the owner's notice of the leaving"
say "ok: POST List-Unsubscribe=One-Click: 200; $NEWBIE gone from member ls; \"You have left Crew\" to $NEWBIE, \"$NEWBIE left Crew\" to $OWNER"

code=$(http_code "$WORK/u-again.html" -X POST -d 'List-Unsubscribe=One-Click' "$URL")
[[ $code == 200 ]] || fail "a second POST to $URL: $code, expected 200: $(head -c 300 "$WORK/u-again.html" 2>/dev/null)"
settle
# This test sent: the confirmation, the welcome and the owner's notice, the post's copies, the
# goodbye and the owner's notice; nothing else (nothing for the refused POSTs, the second POST,
# the GET, or to the nomail member).
n_after3=$(find "$DUMP" -type f | wc -l)
want3=$((3 + ${#RECIPIENTS3[@]} + 2))
((n_after3 - n_before3 == want3)) ||
	fail "the test caused $((n_after3 - n_before3)) mails at smtp-sink, expected $want3: $(find "$DUMP" -type f -newer "$CONFIRM_MAIL" -exec grep -H '^Subject: ' {} + | sed 's/^.*\///' | tr '\n' ';')"
say "ok: a second POST: 200 and nothing more; the test sent exactly $want3 mails"

success
