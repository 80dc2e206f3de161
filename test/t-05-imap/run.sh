#!/usr/bin/env bash
# The archive over IMAP: alice posts (one post with lines starting with "." and 8-bit text, one
# with lines an mbox must quote), an app password for alice comes by mail (member password);
# mbsync (isync) pulls the list's mailbox into a Maildir, and each file, once mbsync's own
# changes are undone, is the archived message byte for byte (crewmail export, archive ls
# -json); a second mbsync run fetches nothing. Python's imaplib logs in, EXAMINEs, SEARCHes,
# FETCHes BODY.PEEK[] (the archived bytes), sets \Seen after a SELECT (kept for the next
# session), and is refused an APPEND with NO [CANNOT].
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-05-imap
need go swaks smtp-sink curl python3 mbsync

start_crew
IMAP_MEMBER=${MEMBERS[0]}
wait_tcp "$IMAP_PORT" || fail "crewmail does not listen for IMAP on 127.0.0.1:$IMAP_PORT ([imap] listen in $CFG)"

# 0. The post of t-01-delivery, so that the archive read over IMAP holds lines starting with "."
# and 8-bit text too.
CREW_POST_ID="interop.$$.$(date +%s)@example.test"
make_crew_post "$WORK/post1.eml" "$CREW_POST_ID"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
	--data @"$WORK/post1.eml" >"$WORK/swaks-post1.out" 2>&1 ||
	fail "swaks post failed (exit $?): $(replies "$WORK/swaks-post1.out")"
grep -q '^<-  250 .*queued' "$WORK/swaks-post1.out" ||
	fail "the post was not answered with 250 ... queued: $(replies "$WORK/swaks-post1.out")"

# 1. A post with a line starting with "From " and one with ">From ": crewmail export quotes them
# (mboxrd), and the comparison below must undo exactly that. No "%" and no backslash (swaks).
POST5_ID="imap.$$.$(date +%s)@example.test"
printf 'From: Alice Example <alice@example.test>\r\nTo: Crew <%s>\r\nSubject: read me over IMAP\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nFrom the top: a line starting with From.\r\n>From a line quoted once already.\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n\r\nAlice' \
	"$LIST" "$(LC_ALL=C date -R)" "$POST5_ID" >"$WORK/post5.eml"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
	--data @"$WORK/post5.eml" >"$WORK/swaks-post5.out" 2>&1 ||
	fail "swaks post failed (exit $?): $(replies "$WORK/swaks-post5.out")"
grep -q '^<-  250 .*queued' "$WORK/swaks-post5.out" ||
	fail "the post was not answered with 250 ... queued: $(replies "$WORK/swaks-post5.out")"
admin archive ls "$LIST" -json >"$WORK/archive5.json" 2>"$WORK/archive5.err" || fail "archive ls failed: $(cat "$WORK/archive5.err")"
grep -qF "\"message_id\":\"$POST5_ID\"" "$WORK/archive5.json" || fail "the post $POST5_ID is not in archive ls -json"
admin export "$LIST" >"$WORK/export5.mbox" 2>"$WORK/export5.err" || fail "export failed: $(cat "$WORK/export5.err")"
N5=$(grep -c . "$WORK/archive5.json")
say "ok: alice's post archived; archive ls -json shows $N5 posts, crewmail export wrote $(wc -c <"$WORK/export5.mbox") bytes of mboxrd"

# 2. An app password for alice, by mail: xxxx-xxxx-xxxx-xxxx after "Password:" in the body.
admin member password "$LIST" "$IMAP_MEMBER" >"$WORK/password5.out" 2>&1 || fail "member password: $(cat "$WORK/password5.out")"
wait_mail 1 "$IMAP_MEMBER" "Subject: Your password for reading" ||
	fail "no \"Your password for reading ...\" mail to $IMAP_MEMBER at smtp-sink within ${WAIT_SECONDS} s"
only_one "the password mail"
body_of "${found[0]}" >"$WORK/password5.body"
IMAP_PASSWORD=$(password_in "$WORK/password5.body")
[[ $IMAP_PASSWORD =~ ^[a-z2-7]{4}(-[a-z2-7]{4}){3}$ ]] ||
	fail "no \"Password:  xxxx-xxxx-xxxx-xxxx\" line (exactly one) in the password mail: $(head -c 600 "$WORK/password5.body")"
say "ok: $(cat "$WORK/password5.out"); \"$(field Subject "${found[0]}")\" at smtp-sink holds it"

# split_archive.py ARCHIVE_JSON EXPORT OUTDIR: the archived messages, out of crewmail export
# (mboxrd, LF): each message between its "From " line and the empty line after it, one level of
# ">" taken off lines matching ^>+From , lines ended with CRLF again (the archive keeps messages
# as SMTP carried them). Each is written to OUTDIR/SEQ.eml; its length must be the size
# archive ls -json gives, which also catches a message whose last line had no line end (export
# cannot show that).
python3 "$PY/split_archive.py" "$WORK/archive5.json" "$WORK/export5.mbox" "$WORK/archived5" >"$WORK/split5.out" 2>&1 ||
	fail "cannot take the archived messages out of crewmail export: $(cat "$WORK/split5.out")"

# 3. mbsync: the list's mailbox, pulled into a Maildir under $WORK. Only pulling (Sync Pull): the
# mailbox is read-only, so nothing is pushed, created or expunged on the server. isync 1.5
# renamed SSLType to TLSType.
MB="$WORK/mbsync"
mkdir -p "$MB/mail" "$MB/state"
mbsync_version=$(mbsync --version 2>&1 | awk 'NR == 1 { print $NF }') # "isync 1.4.4"
tls_option=SSLType
if [[ $mbsync_version =~ ^([0-9]+)\.([0-9]+) ]] &&
	((BASH_REMATCH[1] > 1 || (BASH_REMATCH[1] == 1 && BASH_REMATCH[2] >= 5))); then
	tls_option=TLSType
fi
cat >"$MB/mbsyncrc" <<EOF
IMAPAccount crew
Host 127.0.0.1
Port $IMAP_PORT
User $IMAP_MEMBER
Pass $IMAP_PASSWORD
$tls_option None
AuthMechs LOGIN
Timeout 20

IMAPStore crew-far
Account crew

MaildirStore crew-near
Path $MB/mail/
Inbox $MB/mail/INBOX
SubFolders Verbatim

Channel crew
Far :crew-far:$LIST
Near :crew-near:crew
Sync Pull
Create Near
Expunge None
SyncState $MB/state/
EOF
chmod 600 "$MB/mbsyncrc"
MAILDIR5="$MB/mail/crew"
# run_mbsync OUT: mbsync -a, bounded; its output (less its warning that LOGIN without TLS sends
# the password in the clear, which is what loopback allows) in OUT.
run_mbsync() {
	local rc=0 why
	timeout 120 mbsync -c "$MB/mbsyncrc" -a >"$1" 2>&1 || rc=$?
	((rc == 0)) && return
	why="exit $rc"
	((rc != 124)) || why="timed out after 120 s"
	fail "mbsync -c $MB/mbsyncrc -a: $why: $(grep -v 'Password is being sent in the clear' "$1" | tail -5 | tr '\n' ' ')"
}
maildir_files() { find "$MAILDIR5/cur" "$MAILDIR5/new" -type f -printf '%f\n' 2>/dev/null | sort; }

say "pulling $LIST into a Maildir with mbsync $mbsync_version ($tls_option None, AuthMechs LOGIN, Sync Pull)"
run_mbsync "$WORK/mbsync1.out"
[[ -d $MAILDIR5/cur && -d $MAILDIR5/new ]] || fail "mbsync made no Maildir at $MAILDIR5: $(cat "$WORK/mbsync1.out")"

# maildir_check.py MAILDIR ARCHIVED_DIR ARCHIVE_JSON: each file of the Maildir is an archived
# message, byte for byte, once mbsync's own changes are undone. isync 1.4 writes a message into
# a Maildir with the line ends of the system (LF: it drops the CR of each CRLF that IMAP
# carries) and adds an "X-TUID: " field of 12 characters at the end of the header (its
# temporary id for finding a message it stored). So: that field is taken out and LF becomes
# CRLF (a file that kept CRLF is compared as it is). The files are matched to posts by
# Message-ID; none may carry the S (seen) flag, since mbsync reads with BODY.PEEK[].
python3 "$PY/maildir_check.py" "$MAILDIR5" "$WORK/archived5" "$WORK/archive5.json" >"$WORK/maildir5.out" 2>&1 ||
	fail "the Maildir mbsync wrote: $(cat "$WORK/maildir5.out")"
say "ok: mbsync: $(cat "$WORK/maildir5.out") ($(cat "$WORK/split5.out") in the archive)"

# 4. Again: nothing changed on the server, so nothing new in the Maildir.
maildir_files >"$WORK/maildir5.before"
run_mbsync "$WORK/mbsync2.out"
maildir_files >"$WORK/maildir5.after"
cmp -s "$WORK/maildir5.before" "$WORK/maildir5.after" ||
	fail "a second mbsync run changed the Maildir: $(diff "$WORK/maildir5.before" "$WORK/maildir5.after" | grep '^[<>]' | head -5 | tr '\n' ' ')"
say "ok: a second mbsync run: the same $(wc -l <"$WORK/maildir5.after") files, nothing new"

# 5. Python's imaplib (stdlib), as a mail program's IMAP code would: LOGIN, LIST, EXAMINE,
# SEARCH ALL, FETCH 1 BODY.PEEK[] (the first archived message's bytes), STORE refused after
# EXAMINE, SELECT, STORE +FLAGS (\Seen), FLAGS kept for a second session, APPEND refused with
# NO [CANNOT], LOGOUT. Prints one line per finding; exit 1 on the first failure. LIST names the
# mailbox after the list's local part ($LIST_LOCAL); mbsync above opened it by its older,
# address-shaped name, which still works.
FIRST_SEQ=$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["seq"])' "$WORK/archive5.json")
/usr/bin/python3 "$PY/imap_check.py" "$IMAP_PORT" "$IMAP_MEMBER" "$IMAP_PASSWORD" "$LIST_LOCAL" "$N5" \
	"$WORK/archived5/$FIRST_SEQ.eml" >"$WORK/imap5.out" 2>&1 || fail "Python imaplib: $(tail -n 3 "$WORK/imap5.out")"
while IFS= read -r line; do say "ok: imaplib: ${line#ok: }"; done <"$WORK/imap5.out"


success
