#!/usr/bin/env bash
# The member guide and the notices, as members read them: a new member's welcome (sent by
# smtp-sink's dump) is format=flowed text with no line over 78 characters, names the archive's
# password address and when digests come, and links to /guide for this list; that page is HTML
# with the list's own name and addresses, and headless Chromium renders it at a phone's width
# (390 px) and a laptop's (1024 px) without a horizontal scroll bar. KEEP=1 keeps the PNGs.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-14-guide
need go smtp-sink curl python3 chromium

start_crew
NEW=erin@example.test
admin member add "$LIST" "$NEW" -welcome -mode daily >"$WORK/add.out" 2>&1 || fail "member add -welcome: $(cat "$WORK/add.out")"
wait_mail 1 "$NEW" "Subject: Welcome to Crew" || fail "no welcome reached $NEW"
W=${found[0]}
[[ $(field Content-Type "$W") == *"format=flowed"* ]] || fail "the welcome is not format=flowed: $(field Content-Type "$W")"
body_of "$W" >"$WORK/welcome.txt"
long=$(awk 'length($0) > 78' "$WORK/welcome.txt" | head -3)
[[ -z $long ]] || fail "the welcome has lines over 78 characters: $long"
# Read as a mail program reads format=flowed (RFC 3676): soft line breaks joined.
python3 -c 'import sys
out = []
for line in sys.stdin.read().replace("\r\n", "\n").split("\n"):
    line = line[1:] if line.startswith(" ") else line
    out.append(line + ("" if line.endswith(" ") and line != "-- " else "\n"))
sys.stdout.write("".join(out))' <"$WORK/welcome.txt" >"$WORK/welcome.read"
for want in "You are now a member of Crew, as $NEW." "You get a daily digest." "A daily digest comes every day at 08:00" \
	"send any mail to crew+password@lists.example.test: a password for the archive (IMAP)"; do
	grep -qF -- "$want" "$WORK/welcome.read" || fail "the welcome does not say \"$want\": $(cat "$WORK/welcome.read")"
done
grep -qE 'DKIM|SPF|DMARC|\.\.\.\.\.' "$WORK/welcome.read" && fail "the welcome speaks of DKIM/SPF/DMARC or has dot leaders"
URL=$(grep -oE 'http://[^ ]+/guide\?list=[^ ]+' "$WORK/welcome.read" | head -1)
[[ -n $URL ]] || fail "the welcome links to no guide for the list: $(cat "$WORK/welcome.read")"
say "ok: the welcome is flowed, no line over 78, names crew+password@ and the digest time, links $URL"

curl -fsS -D "$WORK/guide.hdr" -o "$WORK/guide.html" "$URL" || fail "GET $URL failed"
grep -qi '^content-type: text/html; charset=utf-8' "$WORK/guide.hdr" || fail "the guide is not HTML: $(grep -i content-type "$WORK/guide.hdr")"
for want in '<h2 id="joining">Joining</h2>' 'crew+subscribe@lists.example.test' 'crew-request@lists.example.test' '<title>Crew: a guide for members</title>' '<table>'; do
	grep -qF -- "$want" "$WORK/guide.html" || fail "the guide lacks $want"
done
grep -qE 'example\.org|^## ' "$WORK/guide.html" && fail "the guide still shows the sample addresses or raw Markdown"
say "ok: /guide is HTML with the list's own name and addresses"

# shot WIDTH: headless Chromium renders the guide WIDTH px wide into guide-WIDTH.png, every host
# name made to fail; what it measures (the page's scroll width) is dumped to guide-WIDTH.dom.
shot() {
	local home
	home=$(mktemp -d "$WORK/chromium.XXXXXX")
	HOME=$home XDG_CONFIG_HOME=$home/.config XDG_CACHE_HOME=$home/.cache \
		timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
		--user-data-dir="$home/profile" --host-resolver-rules="MAP * ~NOTFOUND" \
		--screenshot="$WORK/guide-$1.png" --window-size="$1,2000" "file://$WORK/guide.html" >"$WORK/guide-$1.log" 2>&1
}
for width in 390 1024; do
	shot "$width" || fail "chromium at $width px: exit $?: $(grep -v dbus "$WORK/guide-$width.log" | tail -5)"
	png=$WORK/guide-$width.png
	[[ $(head -c 8 "$png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$png is not a PNG"
	dims=$(od -An -tu1 -j16 -N8 "$png" | awk '{ printf "%dx%d", (($1 * 256 + $2) * 256 + $3) * 256 + $4, (($5 * 256 + $6) * 256 + $7) * 256 + $8 }')
	[[ $dims == "${width}x2000" ]] || fail "the screenshot is $dims, expected ${width}x2000"
	size=$(wc -c <"$png")
	((size > 20480)) || fail "the screenshot at $width px is only $size bytes: a blank page?"
	say "ok: the guide rendered at $width px: $dims, $size bytes${KEEP:+ ($png)}"
done
# At the phone's width nothing is wider than the screen (an address that did not wrap would be):
# a copy of the page reports its scroll width into the DOM Chromium dumps.
sed 's|</body>|<script>document.body.setAttribute("data-scroll", document.documentElement.scrollWidth + "x" + innerWidth)</script></body>|' \
	"$WORK/guide.html" >"$WORK/guide-measure.html"
home=$(mktemp -d "$WORK/chromium.XXXXXX")
HOME=$home XDG_CONFIG_HOME=$home/.config XDG_CACHE_HOME=$home/.cache \
	timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
	--user-data-dir="$home/profile" --host-resolver-rules="MAP * ~NOTFOUND" --window-size=390,2000 \
	--dump-dom "file://$WORK/guide-measure.html" >"$WORK/guide-measure.dom" 2>"$WORK/guide-measure.log" ||
	fail "chromium --dump-dom: $(grep -v dbus "$WORK/guide-measure.log" | tail -5)"
scroll=$(grep -o 'data-scroll="[0-9]*x[0-9]*"' "$WORK/guide-measure.dom" | tr -dc 0-9x)
[[ -n $scroll ]] || fail "the page did not report its width"
# Headless Chromium lays a --dump-dom page out no narrower than its minimum window (500 px
# here), so the check is the page against its own window: no wider than that.
((${scroll%x*} <= ${scroll#*x})) || fail "the guide is ${scroll%x*} px wide in a window of ${scroll#*x} px: something does not wrap"
say "ok: the guide is ${scroll%x*} px wide in a window of ${scroll#*x} px (no sideways scrolling)"

success
