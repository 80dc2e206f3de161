#!/usr/bin/env bash
# Delivery to a real Postfix as the MX: a private Postfix instance (its own configuration,
# queue and data directories under the work directory, on a loopback port) is the MX of
# dest.test, found through dnsmasq. It refuses a HELO name that is not fully qualified
# (reject_non_fqdn_helo_hostname) and offers STARTTLS with a self-signed certificate. crewmail
# in mx mode delivers a post to three members there: the copies arrive over TLS, with the HELO
# name crewmail is configured with, all three over one TCP connection, which ends with QUIT.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-10-postfix-mx
need go swaks curl python3 dnsmasq dig postfix postconf openssl

DEST=dest.test
MXHOST=mx.$DEST
RCPTS=(ann@$DEST ben@$DEST cat@$DEST)

build_crewmail
DNS_PORT=$(new_dns_port)
MX_PORT=$(new_port)
SMTP_PORT=$(new_port)
HTTP_PORT=$(new_port)

# ---------------------------------------------------------------------------------------------
# The private Postfix instance.
PF="$WORK/postfix"
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/mail"
chown postfix "$PF/data"
chown nobody:nogroup "$PF/mail"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$MXHOST" \
	-keyout "$PF/etc/key.pem" -out "$PF/etc/cert.pem" >"$WORK/openssl.out" 2>&1 ||
	fail "openssl: $(cat "$WORK/openssl.out")"
cat >"$PF/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
mail_owner = postfix
setgid_group = postdrop
myhostname = $MXHOST
mydomain = $DEST
mydestination =
alias_maps =
alias_database =
inet_protocols = ipv4
inet_interfaces = loopback-only
mynetworks = 127.0.0.0/8
smtpd_helo_required = yes
# The HELO restriction applies at EHLO itself, before STARTTLS (by default Postfix waits for
# RCPT, when the name given after STARTTLS is the one checked).
smtpd_delay_reject = no
smtpd_helo_restrictions = reject_non_fqdn_helo_hostname
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
virtual_mailbox_domains = $DEST
virtual_mailbox_base = $PF/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
smtpd_tls_security_level = may
smtpd_tls_cert_file = $PF/etc/cert.pem
smtpd_tls_key_file = $PF/etc/key.pem
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtputf8_enable = no
biff = no
CF
cat >"$PF/etc/master.cf" <<CF
127.0.0.1:$MX_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
# Postfix reports to stderr only when it is a terminal (else to syslog, absent here): script(1)
# gives it one, so that a refusal of this configuration says why.
script -qec "postfix -c '$PF/etc' check" /dev/null >"$WORK/postfix-check.out" 2>&1 ||
	fail "postfix check: $(cat "$WORK/postfix-check.out")"
say "starting a private Postfix on 127.0.0.1:$MX_PORT as the MX of $DEST"
script -qec "postfix -c '$PF/etc' start" /dev/null >"$WORK/postfix-start.out" 2>&1 || fail "postfix start: $(cat "$WORK/postfix-start.out")"
# postfix start daemonizes its master; it is stopped by its PID (from its pid file) at exit.
PF_PID=$(tr -d ' ' <"$PF/queue/pid/master.pid")
started "$PF_PID"
wait_tcp "$MX_PORT" || fail "Postfix does not listen on 127.0.0.1:$MX_PORT: $(tail -5 "$PF/maillog")"

# ---------------------------------------------------------------------------------------------
# dnsmasq: dest.test's MX is the Postfix instance; every other name under .test is NXDOMAIN.
cat >"$WORK/dns.conf" <<CONF
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
local=/test/
mx-host=$DEST,$MXHOST,10
host-record=$MXHOST,127.0.0.1
txt-record=$DEST,"v=spf1 -all"
CONF
say "starting dnsmasq on 127.0.0.1:$DNS_PORT"
start_dnsmasq "$WORK/dns.conf" "$DNS_PORT" "$WORK/dnsmasq.log" "$DEST"

# ---------------------------------------------------------------------------------------------
# crewmail in mx mode, one connection at a time to a destination so that the three copies share
# one session.
CFG="$WORK/crewmail.toml"
cat >"$CFG" <<TOML
hostname = "lists.example.test"
data_dir = "$WORK/data"
[smtp]
listen = "127.0.0.1:$SMTP_PORT"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[imap]
listen = ""
[delivery]
mode = "mx"
mx_port = $MX_PORT
max_connections_per_domain = 1
[dns]
resolver = "127.0.0.1:$DNS_PORT"
TOML
say "starting crewmail (SMTP 127.0.0.1:$SMTP_PORT) delivering to MX hosts"
start_crewmail "$CFG" "$WORK/crewmail.log" "$HTTP_PORT" crewmail
admin list create "$LIST" -name Crew -post members >"$WORK/admin.out" 2>&1 || fail "list create: $(cat "$WORK/admin.out")"
admin member add "$LIST" "${RCPTS[@]}" -mode each >>"$WORK/admin.out" 2>&1 || fail "member add: $(cat "$WORK/admin.out")"
admin member add "$LIST" alice@example.test -mode nomail >>"$WORK/admin.out" 2>&1 || fail "member add: $(cat "$WORK/admin.out")"

# The connections Postfix saw so far (wait_tcp's probe) are not crewmail's.
conns_before=$(grep -c 'postfix/smtpd\[[0-9]*\]: connect from ' "$PF/maillog" || true)
POST="$WORK/post.eml"
make_crew_post "$POST" "postfix-mx.$$@example.test"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from alice@example.test --to "$LIST" \
	--data @"$POST" >"$WORK/swaks-post.out" 2>&1 ||
	fail "swaks post failed: $(grep -E '^ *(<\*\*|\*\*\*)' "$WORK/swaks-post.out" | head -5)"

say "waiting (up to ${WAIT_SECONDS} s) for ${#RCPTS[@]} copies in Postfix's mailbox"
INBOX="$PF/mail/inbox/new"
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
	n=$( (find "$INBOX" -type f 2>/dev/null || true) | wc -l)
	((n >= ${#RCPTS[@]})) && break
	((SECONDS < deadline)) || fail "Postfix delivered $n copies within ${WAIT_SECONDS} s, expected ${#RCPTS[@]}: $(grep -E 'reject|warning|lost' "$PF/maillog" | tail -5)"
	sleep 0.2
done
((n == ${#RCPTS[@]})) || fail "Postfix delivered $n copies, expected ${#RCPTS[@]}"

for f in "$INBOX"/*; do
	# The Received field Postfix wrote: "from HELO (rDNS [IP]) (using TLSv1.3 with cipher ...)
	# by mx.dest.test (Postfix) with ESMTPS id ... for <rcpt>", unfolded.
	recv=$(header_of "$f" | grep -m1 '^Received: from .*[[:space:]]by '"$MXHOST"' (Postfix)') ||
		fail "no Received field from the Postfix MX in $(basename "$f"): $(header_of "$f" | head -5)"
	[[ $recv == "Received: from lists.example.test ("* ]] ||
		fail "the HELO name Postfix saw is not lists.example.test: $recv"
	[[ $recv == *"(using TLS"* && $recv == *" with ESMTPS "* ]] ||
		fail "the copy did not arrive over TLS: $recv"
done
say "ok: ${#RCPTS[@]} copies arrived over TLS with HELO lists.example.test"

grep -q 'reject: .*Helo command rejected' "$PF/maillog" && fail "Postfix refused a HELO: $(grep -m1 'Helo command rejected' "$PF/maillog")"
conns=$(($(grep -c 'postfix/smtpd\[[0-9]*\]: connect from ' "$PF/maillog" || true) - conns_before))
((conns == 1)) || fail "crewmail made $conns TCP connections to Postfix for ${#RCPTS[@]} copies, expected 1: $(grep 'connect from' "$PF/maillog")"
say "ok: one TCP connection for the three copies"

# Stopping crewmail ends its idle session with QUIT: Postfix logs quit=1, no lost connection.
stop_pid "$CREWMAIL_PID"
deadline=$((SECONDS + 10))
until grep -q 'disconnect from .* quit=' "$PF/maillog"; do
	((SECONDS < deadline)) || fail "Postfix did not see the session end: $(tail -3 "$PF/maillog")"
	sleep 0.1
done
disc=$(grep -m1 'disconnect from .* mail=' "$PF/maillog")
[[ $disc == *" ehlo=2 starttls=1 "* && $disc == *" quit=1 "* ]] ||
	fail "the session did not go EHLO, STARTTLS, EHLO ... QUIT: $disc"
# (wait_tcp's probe is "lost connection after CONNECT": it says nothing.)
lost=$(grep 'lost connection after' "$PF/maillog" | grep -v 'after CONNECT' || true)
[[ -z $lost ]] || fail "Postfix lost a connection: $lost"
say "ok: the session was EHLO, STARTTLS, EHLO and ended with QUIT ($disc)"
success
