#!/usr/bin/env bash
# Mail clients with their default settings open a list's mailbox: crewmail serves IMAP with
# STARTTLS (a self-signed certificate the clients are told to trust); alice posts and gets an
# app password by mail.
#   - mutt (no muttrc: -n -F /dev/null; only the password and the certificate are set) opens
#     imap://alice@localhost:PORT/crew and shows the post in its index (driven through
#     script(1) for a terminal, quit by a pushed <quit>).
#   - mbsync pulls every mailbox LIST offers (Patterns *) into a Maildir with its default
#     folder settings, and finds the post in crew/.
# Mailbox names hold no "." (mutt took the dots of "crew@lists.example.test" for hierarchy
# delimiters and found no mailbox).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-13-mail-clients
need go swaks smtp-sink curl python3 mutt mbsync openssl script

MEMBER=alice@example.test
build_crewmail
SINK_PORT=$(new_port)
SMTP_PORT=$(new_port)
HTTP_PORT=$(new_port)
IMAP_PORT=$(new_port)
DUMP="$WORK/dump"
CFG="$WORK/crewmail.toml"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >"$WORK/openssl.out" 2>&1 ||
	fail "openssl req: $(cat "$WORK/openssl.out")"
write_config "$CFG" "$WORK/data" "$SMTP_PORT" "$HTTP_PORT" "" "$SINK_PORT"
# IMAP on IMAP_PORT with STARTTLS.
sed -i "s|^listen = \"\"$|listen = \"127.0.0.1:$IMAP_PORT\"\ntls_cert = \"$WORK/cert.pem\"\ntls_key = \"$WORK/key.pem\"|" "$CFG"
grep -q "tls_cert = \"$WORK/cert.pem\"" "$CFG" || fail "cannot set [imap] in $CFG"
start_sink "$DUMP" "$SINK_PORT" "$WORK/sink.log"
start_crewmail "$CFG" "$WORK/crewmail.log" "$HTTP_PORT" crewmail
wait_tcp "$IMAP_PORT" || fail "crewmail does not listen for IMAP on 127.0.0.1:$IMAP_PORT"
admin list create "$LIST" -name Crew -post members >"$WORK/admin.out" 2>&1 || fail "list create: $(cat "$WORK/admin.out")"
admin member add "$LIST" "$MEMBER" >>"$WORK/admin.out" 2>&1 || fail "member add: $(cat "$WORK/admin.out")"

POST_ID="clients.$$.$(date +%s)@example.test"
make_crew_post "$WORK/post.eml" "$POST_ID"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from "$MEMBER" --to "$LIST" --data @"$WORK/post.eml" >"$WORK/swaks.out" 2>&1 ||
	fail "swaks post failed: $(replies "$WORK/swaks.out")"
app_password "$MEMBER"

# 1. mutt. HOME is the work directory: no ~/.muttrc, no header cache, nothing of the machine's.
# ~/Mail exists, as on a machine mutt has run on (else mutt asks to create it).
mkdir -p "$WORK/Mail"
cat >"$WORK/mutt.cmds" <<CMDS
set certificate_file="$WORK/cert.pem"
set imap_pass="$IMAP_PASSWORD"
push "<quit>"
CMDS
printf '#!/bin/sh\nexec mutt -n -F /dev/null -f "imap://alice%%40example.test@localhost:%s/crew" -e "source %s"\n' \
	"$IMAP_PORT" "$WORK/mutt.cmds" >"$WORK/mutt.sh"
chmod +x "$WORK/mutt.sh"
mutt_version=$(mutt -v | awk 'NR == 1')
rc=0
HOME=$WORK TERM=xterm timeout ${MUTT_TIMEOUT:-60} script -qec "$WORK/mutt.sh" "$WORK/mutt.typescript" </dev/null >/dev/null 2>&1 || rc=$?
# The screen, without its escape sequences.
sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1b[()][A-Z0-9]//g; s/\x1b[=>]//g' "$WORK/mutt.typescript" | tr -c '[:print:]\n' ' ' >"$WORK/mutt.screen"
((rc == 0)) || fail "mutt did not finish (exit $rc): $(tail -c 600 "$WORK/mutt.screen")"
grep -q "No mailbox" "$WORK/mutt.screen" && fail "mutt found no mailbox: $(tail -c 600 "$WORK/mutt.screen")"
grep -q "Selecting crew" "$WORK/mutt.screen" || fail "mutt did not select crew: $(tail -c 600 "$WORK/mutt.screen")"
grep -q "interop check" "$WORK/mutt.screen" || fail "mutt's index does not show the post: $(tail -c 600 "$WORK/mutt.screen")"
grep -q "Msgs:1 " "$WORK/mutt.screen" || fail "mutt's status line does not count one message: $(tail -c 600 "$WORK/mutt.screen")"
say "ok: $mutt_version opened imap://…/crew with default settings; its index shows the post"

# 2. mbsync, every mailbox LIST offers, default folder settings.
MB="$WORK/mbsync"
mkdir -p "$MB/mail" "$MB/state"
cat >"$MB/mbsyncrc" <<EOF
IMAPAccount crew
Host localhost
Port $IMAP_PORT
User $MEMBER
Pass $IMAP_PASSWORD
CertificateFile $WORK/cert.pem

IMAPStore crew-far
Account crew

MaildirStore crew-near
Path $MB/mail/
Inbox $MB/mail/INBOX

Channel crew
Far :crew-far:
Near :crew-near:
Patterns *
Sync Pull
Create Near
Expunge None
SyncState $MB/state/
EOF
chmod 600 "$MB/mbsyncrc"
rc=0
timeout 120 mbsync -c "$MB/mbsyncrc" -a >"$WORK/mbsync.out" 2>&1 || rc=$?
((rc == 0)) || fail "mbsync -a (exit $rc): $(tail -5 "$WORK/mbsync.out" | tr '\n' ' ')"
n=$(grep -rlF "Message-ID: <$POST_ID>" "$MB/mail/crew/" 2>/dev/null | wc -l)
((n == 1)) || fail "mbsync put $n copies of the post in $MB/mail/crew: $(find "$MB/mail" | head -20 | tr '\n' ' ')"
say "ok: $(mbsync --version 2>&1 | head -1) pulled the mailbox crew (Patterns *) into $MB/mail/crew"
success
