#!/usr/bin/env bash
# The members' web reader in a real browser: the Go test TestReaderInABrowser (cmd/crewmail)
# drives Debian's headless Chromium through chromedp — signs in through the link mailed to the
# member (caught by the test's SMTP server), reads a conversation, unfolds a quote, searches,
# downloads an attachment, opens the settings page — checks that no request leaves BASE_URL,
# that no page is wider than 390 px, and runs axe-core in light and dark mode. Its screenshots
# at 390 and 1024 px are written here for a person to look at (KEEP=1 keeps them).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-17-web-reader
need go chromium

mkdir -p "$WORK/screenshots"
(cd "$ROOT" && CREWMAIL_SCREENSHOTS="$WORK/screenshots" go test -v -count=1 -run '^TestReaderInABrowser$' ./cmd/crewmail) \
	>"$WORK/go-test.log" 2>&1 || fail "TestReaderInABrowser failed: $(tail -n 30 "$WORK/go-test.log")"
grep -q -- '--- SKIP' "$WORK/go-test.log" && fail "TestReaderInABrowser was skipped: $(grep -A2 -- '--- SKIP' "$WORK/go-test.log")"
shots=$(find "$WORK/screenshots" -name '*.png' | wc -l)
((shots >= 2)) || fail "the browser test saved $shots screenshots, expected some at 390 and 1024 px"
say "ok: signed in by mail, read, searched, downloaded, settings, axe-core clean; $shots screenshots in $WORK/screenshots"
success
