#!/usr/bin/env bash
# Digests: bob switches to daily digests, alice posts twice, "digest send -now" sends bob one
# digest (subject, Reply-To, multipart/alternative with UTF-8 quoted-printable text and HTML; a
# second round sends nothing; the text part format=flowed, no line over 78 columns, Reply lines
# with the bare address); bob answers the first post through its Reply link with swaks and
# no In-Reply-To, and the each-mode copies carry In-Reply-To and References naming that post,
# which the archive threads the answer under. The HTML part has no http(s) URL, src= or
# <script, and headless Chromium renders it to a PNG with host names made to fail, its NetLog
# showing no http(s) request from the page. A digest like a real day's (HTML posts with links
# and a table, hard-wrapped and flowed posts) is rendered at 390 and 1024 px, kept with KEEP=1.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-04-digests
need go swaks smtp-sink curl python3 chromium

start_crew
DIGEST_MEMBER=bob@example.test
EACH4=() # the members who still get each post as it comes
for m in "${MEMBERS[@]}"; do
	[[ $m == "$DIGEST_MEMBER" ]] || EACH4+=("$m")
done
BASE_URL="http://127.0.0.1:$HTTP_PORT" # http.base_url is unset: crewmail uses its HTTP address
n_before4=$(find "$DUMP" -type f | wc -l)
want4=$(printf '%s\n' "${EACH4[@]}" | sort | tr '\n' ' ')

# 1. bob: daily digests from now on (his digest starts after the posts already archived).
admin member mode "$LIST" "$DIGEST_MEMBER" daily >"$WORK/mode4.out" 2>&1 || fail "member mode: $(cat "$WORK/mode4.out")"
is_member "$DIGEST_MEMBER" || fail "$DIGEST_MEMBER is not a member of $LIST"
awk -v a="$DIGEST_MEMBER" '$1 == a && $2 == "daily" { ok = 1 } END { exit !ok }' "$WORK/members.out" ||
	fail "member mode did not put $DIGEST_MEMBER in daily mode: $(cat "$WORK/mode4.out"); member ls: $(grep -F "$DIGEST_MEMBER" "$WORK/members.out")"
say "ok: $(cat "$WORK/mode4.out")"

# 2. Two posts by alice, in two conversations. The first has 8-bit UTF-8 text; the second has
# markup in its text, which the HTML part must show as text. No "%" and no backslash (swaks).
POST4_IDS=("digest-one.$$.$(date +%s)@example.test" "digest-two.$$.$(date +%s)@example.test")
POST4_SUBJECTS=("Digest check one" "Digest check two")
POST4_LINES=($'Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln: the first post of the digest.' 'Second post: <script>alert(1)</script> & <b>bold</b> stay text.')
for i in 0 1; do
	printf 'From: Alice Example <alice@example.test>\r\nTo: Crew <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n\r\nAlice' \
		"$LIST" "${POST4_SUBJECTS[i]}" "$(LC_ALL=C date -R)" "${POST4_IDS[i]}" "${POST4_LINES[i]}" >"$WORK/post4-$i.eml"
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
		--data @"$WORK/post4-$i.eml" >"$WORK/swaks-post4-$i.out" 2>&1 ||
		fail "swaks post \"${POST4_SUBJECTS[i]}\" failed (exit $?): $(replies "$WORK/swaks-post4-$i.out")"
	grep -q '^<-  250 .*queued' "$WORK/swaks-post4-$i.out" ||
		fail "the post \"${POST4_SUBJECTS[i]}\" was not answered with 250 ... queued: $(replies "$WORK/swaks-post4-$i.out")"
	wait_mail ${#EACH4[@]} "" "Message-ID: <${POST4_IDS[i]}>" ||
		fail "${#found[@]} copies of \"${POST4_SUBJECTS[i]}\" at smtp-sink within ${WAIT_SECONDS} s, expected ${#EACH4[@]}"
	[[ $(recipients "${found[@]}") == "$want4" ]] ||
		fail "copies of \"${POST4_SUBJECTS[i]}\" went to: $(recipients "${found[@]}"); expected one each to: $want4 (not to the digest member)"
done
say "ok: 2 posts by alice, each copied to ${EACH4[*]} only"

# 3. The digest: one, to bob, with both posts; a second round right after has nothing to send.
admin digest send -now >"$WORK/digest-send.out" 2>&1 || fail "digest send -now: $(cat "$WORK/digest-send.out")"
[[ $(cat "$WORK/digest-send.out") == "sent 1 digests to 1 members (2 messages)" ]] ||
	fail "digest send -now printed \"$(cat "$WORK/digest-send.out")\", expected \"sent 1 digests to 1 members (2 messages)\""
say "ok: digest send -now: $(cat "$WORK/digest-send.out")"
admin digest send -now >"$WORK/digest-send2.out" 2>&1 || fail "a second digest send -now: $(cat "$WORK/digest-send2.out")"
[[ $(cat "$WORK/digest-send2.out") == "sent 0 digests to 0 members (0 messages)" ]] ||
	fail "a second digest send -now printed \"$(cat "$WORK/digest-send2.out")\", expected nothing sent"
wait_mail 1 "$DIGEST_MEMBER" "Subject: [Crew] Daily digest" ||
	fail "no \"[Crew] Daily digest\" to $DIGEST_MEMBER at smtp-sink within ${WAIT_SECONDS} s"
only_one "the digest"
DIGEST_MAIL=${found[0]}
want_subject="[Crew] Daily digest: 2 conversations, 2 messages"
[[ $(field Subject "$DIGEST_MAIL") == "$want_subject" ]] ||
	fail "the digest's Subject is \"$(field Subject "$DIGEST_MAIL")\", expected \"$want_subject\""
[[ $(field Reply-To "$DIGEST_MAIL") == "<$LIST_LOCAL+digest@$LIST_HOST>" ]] ||
	fail "the digest's Reply-To is \"$(field Reply-To "$DIGEST_MAIL")\", expected <$LIST_LOCAL+digest@$LIST_HOST>"
[[ $(field List-Unsubscribe "$DIGEST_MAIL") == "<$BASE_URL/u/"* ]] ||
	fail "the digest has no one-click link of its own: List-Unsubscribe: \"$(field List-Unsubscribe "$DIGEST_MAIL")\""
say "ok: \"$want_subject\" to $DIGEST_MEMBER, Reply-To <$LIST_LOCAL+digest@$LIST_HOST>; a second send -now: $(cat "$WORK/digest-send2.out")"

# The digest's MIME structure, then its text and HTML parts, decoded (test/py/mime.py).
python3 "$PY/mime.py" parts "$DIGEST_MAIL" >"$WORK/digest.parts" 2>&1 || fail "cannot read the digest's MIME structure: $(cat "$WORK/digest.parts")"
printf '%s\n' multipart/alternative 'text/plain utf-8 quoted-printable' 'text/html utf-8 quoted-printable' |
	cmp -s - "$WORK/digest.parts" ||
	fail "the digest is not multipart/alternative with a text/plain and a text/html part, UTF-8, quoted-printable: $(tr '\n' ';' <"$WORK/digest.parts")"
python3 "$PY/mime.py" part "$DIGEST_MAIL" text/plain >"$WORK/digest.txt" 2>"$WORK/digest.err" || fail "the text part: $(cat "$WORK/digest.err")"
python3 "$PY/mime.py" part "$DIGEST_MAIL" text/html >"$WORK/digest.html" 2>"$WORK/digest.err" || fail "the HTML part: $(cat "$WORK/digest.err")"
for i in 0 1; do
	grep -qF -- "${POST4_LINES[i]}" "$WORK/digest.txt" || fail "the digest's text part does not hold the text of \"${POST4_SUBJECTS[i]}\""
done
say "ok: multipart/alternative: text/plain and text/html, both UTF-8 quoted-printable; the text part holds both posts"

# 4. The first post's Reply line: the first "Reply: " line after its text, the bare address
# (the text part is format=flowed and at most 78 columns wide; the mailto: URL with its
# percent-encoded subject is the HTML part's).
long4=$(python3 -c 'import sys; print("\n".join(l for l in open(sys.argv[1], encoding="utf-8").read().splitlines() if len(l) > 78))' "$WORK/digest.txt")
[[ -z $long4 ]] || fail "the text part has lines longer than 78 columns: $long4"
grep -q 'format=flowed' "$DIGEST_MAIL" || fail "the digest's text part is not format=flowed"
REPLY_ADDR=$(awk -v text="${POST4_LINES[0]}" '$0 == text { seen = 1 } seen && /^Reply: / { print substr($0, 8); exit }' "$WORK/digest.txt")
n=$(grep -c "^Reply: $LIST_LOCAL+r-" "$WORK/digest.txt" || true)
((n == 2)) || fail "the text part has $n Reply lines, expected 2 (one per message)"
n=$(grep -cE "mailto:$LIST_LOCAL\+mute-[^@[:space:]]+@$LIST_HOST" "$WORK/digest.txt" || true)
((n == 2)) || fail "the text part has $n Mute links, expected 2 (one per conversation)"
[[ $REPLY_ADDR =~ ^$LIST_LOCAL\+r-[^@?[:space:]]+@${LIST_HOST//./\\.}$ ]] ||
	fail "no \"Reply: $LIST_LOCAL+r-TOKEN@$LIST_HOST\" line after the first post's text: \"$REPLY_ADDR\""
# The HTML part links the same address, with the subject (its "+" may be written &#43;).
REPLY_LINK=$(sed 's/&#43;/+/g' "$WORK/digest.html" | grep -oE "href=\"mailto:${REPLY_ADDR//+/\\+}\\?subject=[^\"]+" | head -1 | cut -c7-)
[[ $REPLY_LINK =~ \?subject=([^[:space:]]+)$ ]] || fail "the HTML part has no Reply link to $REPLY_ADDR with a subject"
reply_subject=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.argv[1]))' "${BASH_REMATCH[1]}")
[[ $reply_subject == "Re: ${POST4_SUBJECTS[0]}" ]] ||
	fail "the Reply link's subject is \"$reply_subject\", expected \"Re: ${POST4_SUBJECTS[0]}\""
say "ok: the first post's Reply line: $REPLY_ADDR; its link in the HTML part: $REPLY_LINK"

# 5. bob answers with swaks, as a mail program writing to a mailto: link does: no In-Reply-To,
# no References.
ANSWER_ID="answer.$$.$(date +%s)@example.test"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from "$DIGEST_MEMBER" --to "$REPLY_ADDR" \
	--header "Subject: $reply_subject" --header "Message-Id: <$ANSWER_ID>" \
	--body "Count me in for the first one. Bob" >"$WORK/swaks-answer.out" 2>&1 ||
	fail "swaks to $REPLY_ADDR failed (exit $?): $(replies "$WORK/swaks-answer.out")"
grep -q '^<-  250 .*queued' "$WORK/swaks-answer.out" ||
	fail "the answer to $REPLY_ADDR was not answered with 250 ... queued: $(replies "$WORK/swaks-answer.out")"
if grep -i '^ -> \(In-Reply-To\|References\):' "$WORK/swaks-answer.out" >/dev/null; then
	fail "swaks sent In-Reply-To or References itself"
fi
wait_mail ${#EACH4[@]} "" "<$ANSWER_ID>" ||
	fail "${#found[@]} copies of the answer at smtp-sink within ${WAIT_SECONDS} s, expected ${#EACH4[@]}"
[[ $(recipients "${found[@]}") == "$want4" ]] ||
	fail "copies of the answer went to: $(recipients "${found[@]}"); expected one each to: $want4"
for f in "${found[@]}"; do
	[[ $(field In-Reply-To "$f") == "<${POST4_IDS[0]}>" ]] ||
		fail "$(basename "$f"): the answer's In-Reply-To is \"$(field In-Reply-To "$f")\", expected <${POST4_IDS[0]}>"
	[[ $(field References "$f") == *"<${POST4_IDS[0]}>" ]] ||
		fail "$(basename "$f"): the answer's References \"$(field References "$f")\" does not end with <${POST4_IDS[0]}>"
done
say "ok: the answer's copies to ${EACH4[*]} carry In-Reply-To: <${POST4_IDS[0]}> and References: $(field References "${found[0]}")"

# thread_of ID: the thread of the post with Message-ID ID in archive ls -json.
admin archive ls "$LIST" -json >"$WORK/archive4.json" 2>"$WORK/archive4.err" || fail "archive ls failed: $(cat "$WORK/archive4.err")"
thread_of() { python3 "$PY/archive_thread.py" "$WORK/archive4.json" "$1"; }
t1=$(thread_of "${POST4_IDS[0]}")
t2=$(thread_of "${POST4_IDS[1]}")
ta=$(thread_of "$ANSWER_ID")
[[ $t1 =~ ^[0-9]+$ && $t2 =~ ^[0-9]+$ ]] || fail "archive ls -json: the two posts' threads are \"$t1\" and \"$t2\""
[[ $ta == "$t1" ]] || fail "archive ls -json puts the answer in thread \"$ta\", not the first post's thread $t1"
[[ $t2 != "$t1" ]] || fail "archive ls -json puts both posts in thread $t1"
say "ok: archive ls -json: the answer is in the first post's thread ($t1); the second post is in thread $t2"

# 6. The HTML part, on its own: no way to fetch anything. Links are mailto: and #anchors; only
# crewmail's own base URL may appear (it has none today).
grep -oiE 'https?://[^"<>[:space:]]*' "$WORK/digest.html" | grep -vF "$BASE_URL/" >"$WORK/digest-urls.out" || true
[[ ! -s $WORK/digest-urls.out ]] || fail "the HTML part names http(s) URLs other than $BASE_URL: $(sort -u "$WORK/digest-urls.out" | tr '\n' ' ')"
for bad in 'src=' '<script' 'url('; do
	! grep -iF -- "$bad" "$WORK/digest.html" >/dev/null || fail "the HTML part has \"$bad\": $(grep -iF -- "$bad" "$WORK/digest.html" | head -3)"
done
grep -F '&lt;script&gt;alert(1)&lt;/script&gt;' "$WORK/digest.html" >/dev/null ||
	fail "the HTML part does not show the second post's <script> as text"
say "ok: the HTML part has no http(s) URL, no src=, no <script, no url(; the second post's <script> is shown as text"

# chromium_shot HTML PNG NETLOG: headless Chromium renders HTML into an 800x1600 PNG, with every
# host name made to fail (no DNS, no connection out) and its network events in a NetLog; its
# stderr (and log, --enable-logging) in PNG.log. Bounded by timeout. Its profile, and what it
# writes under HOME (crash reports, caches, dconf), stay in a directory of $WORK.
chromium_shot() {
	local home
	home=$(mktemp -d "$WORK/chromium.XXXXXX")
	HOME=$home XDG_CONFIG_HOME=$home/.config XDG_CACHE_HOME=$home/.cache \
		timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$home/profile" --host-resolver-rules="MAP * ~NOTFOUND" \
		--enable-logging=stderr --v=0 --log-net-log="$3" \
		--screenshot="$2" --window-size="${4:-800,1600}" "file://$1" >"$2.log" 2>&1
}
# page_requests NETLOG: the http(s) URLs the page asked for, one a line. Chromium asks for some
# of its own (update checks, the time); the page's requests are those keyed to its file:// site.
page_requests() { /usr/bin/python3 "$PY/netlog_requests.py" "$1"; }
# The check sees a page's requests: a page with one image on loopback (nothing listens there).
CANARY_URL="http://127.0.0.1:$(new_port)/canary.png"
printf '<!DOCTYPE html>\n<html><body><p>canary</p><img src="%s" alt=""></body></html>\n' "$CANARY_URL" >"$WORK/canary.html"
chromium_shot "$WORK/canary.html" "$WORK/canary.png" "$WORK/canary.netlog" ||
	fail "chromium on a test page: exit $?: $(grep -v dbus "$WORK/canary.png.log" | tail -5)"
[[ $(page_requests "$WORK/canary.netlog" | sort -u) == "$CANARY_URL" ]] ||
	fail "Chromium's NetLog does not show the test page's one request to $CANARY_URL: $(page_requests "$WORK/canary.netlog" | tr '\n' ' ')"

say "rendering the digest's HTML part with $(chromium --version 2>/dev/null | grep -v '^/' | head -1) (headless)"
chromium_shot "$WORK/digest.html" "$WORK/digest.png" "$WORK/digest.netlog" ||
	fail "chromium on the digest: exit $?: $(grep -v dbus "$WORK/digest.png.log" | tail -5)"
[[ -f $WORK/digest.png ]] || fail "chromium wrote no screenshot: $(grep -v dbus "$WORK/digest.png.log" | tail -5)"
png_size=$(wc -c <"$WORK/digest.png")
[[ $(head -c 8 "$WORK/digest.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$WORK/digest.png is not a PNG"
png_dims=$(od -An -tu1 -j16 -N8 "$WORK/digest.png" | awk '{ printf "%dx%d", (($1 * 256 + $2) * 256 + $3) * 256 + $4, (($5 * 256 + $6) * 256 + $7) * 256 + $8 }')
[[ $png_dims == 800x1600 ]] || fail "the screenshot is $png_dims, expected 800x1600"
((png_size > 10240)) || fail "the screenshot is only $png_size bytes: a blank page?"
page_requests "$WORK/digest.netlog" >"$WORK/digest-requests.out"
[[ ! -s $WORK/digest-requests.out ]] || fail "rendering the digest asked for: $(sort -u "$WORK/digest-requests.out" | tr '\n' ' ')"
say "ok: screenshot $png_dims, $png_size bytes; Chromium's NetLog shows no http(s) request from the page (the test page's one request was seen)"
[[ -z ${KEEP:-} ]] || say "the digest's screenshot: $WORK/digest.png (its HTML: $WORK/digest.html)"

# 7. A digest like a real day's, as a phone and a laptop show it: the hand-written posts of
# digest/testdata/posts (an HTML-only post with links and a table, a hard-wrapped post with a
# list, code and a poem, a flowed one, a quote under a Cyrillic subject) and, when the corpus is
# there, HTML-only and hard-wrapped posts of real lists, imported (nothing sent), previewed
# as HTML, rendered by Chromium 390 and 1024 pixels wide. KEEP=1 keeps the PNGs.
like=("$ROOT"/digest/testdata/posts/*.eml)
corpus=${CREWMAIL_CORPUS:-}
if [[ -n $corpus && -d $corpus/mime ]]; then
	like+=("$corpus"/mime/28-html-alternative-users-ponymail.eml "$corpus"/mime/22-html-only-related-nexus.eml
		"$corpus"/threads/notmuch-0{1,2,3}.eml "$corpus"/mime/20-utf8-bilingual.eml)
fi
python3 - "$WORK/like.mbox" "${like[@]}" <<'PY' || fail "cannot write the mbox of the corpus-like posts"
import re, sys
with open(sys.argv[1], "wb") as out:
    for name in sys.argv[2:]:
        raw = open(name, "rb").read().replace(b"\r\n", b"\n")
        out.write(b"From crewmail-test Thu Jan  1 00:00:00 1970\n")
        out.write(re.sub(rb"(?m)^(>*From )", rb">\1", raw).rstrip(b"\n") + b"\n\n")
PY
admin import "$LIST" "$WORK/like.mbox" >"$WORK/import4.out" 2>&1 || fail "import of the corpus-like posts: $(cat "$WORK/import4.out")"
admin digest preview "$LIST" -period daily -html >"$WORK/like.html" 2>"$WORK/like.err" || fail "digest preview -html: $(cat "$WORK/like.err")"
for bad in '<script' 'src=' 'url(' 'onload' 'javascript:' 'utm_'; do
	! grep -iF -- "$bad" "$WORK/like.html" >/dev/null || fail "the corpus-like digest has \"$bad\": $(grep -iF -- "$bad" "$WORK/like.html" | head -2)"
done
grep -qF 'href="https://example.org/frost?id=7"' "$WORK/like.html" || fail "the corpus-like digest lost the HTML post's link"
for w in 390 1024; do
	chromium_shot "$WORK/like.html" "$WORK/like-$w.png" "$WORK/like-$w.netlog" "$w,3000" ||
		fail "chromium on the corpus-like digest at $w px: exit $?: $(grep -v dbus "$WORK/like-$w.png.log" | tail -5)"
	[[ -f $WORK/like-$w.png ]] || fail "chromium wrote no screenshot at $w px"
	page_requests "$WORK/like-$w.netlog" >"$WORK/like-$w-requests.out"
	[[ ! -s $WORK/like-$w-requests.out ]] || fail "rendering the corpus-like digest asked for: $(sort -u "$WORK/like-$w-requests.out" | tr '\n' ' ')"
done
say "ok: the corpus-like digest (${#like[@]} posts imported) rendered at 390 and 1024 px, no request from the page"
[[ -z ${KEEP:-} ]] || say "its screenshots: $WORK/like-390.png $WORK/like-1024.png (its HTML: $WORK/like.html)"

settle
# This test sent: two copies of each post, the digest, two copies of the answer.
n_after4=$(find "$DUMP" -type f | wc -l)
want4n=$((3 * ${#EACH4[@]} + 1))
((n_after4 - n_before4 == want4n)) ||
	fail "the test caused $((n_after4 - n_before4)) mails at smtp-sink, expected $want4n"
say "ok: the test sent exactly $want4n mails"


success
