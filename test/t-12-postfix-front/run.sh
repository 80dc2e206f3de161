#!/usr/bin/env bash
# Behind a front MTA: a private Postfix instance (its own configuration and queue directories,
# on loopback) relays the list domain to crewmail, the way operators deploy it (docs/operator.md,
# "Behind Postfix"). dnsmasq publishes SPF for far.test, which allows only 127.0.0.3.
#   - carol@far.test (SPF only, no DKIM) posts from 127.0.0.3 through Postfix: crewmail trusts
#     Postfix ([smtp] trusted_relays), checks SPF for the client Postfix recorded in its Received
#     field, and delivers her post on a "verified" list at once; the copies say spf=pass and
#     name the relay.
#   - the same post sent straight to crewmail from 127.0.0.4, with a forged Received chain
#     claiming 127.0.0.3, is held, and carol is asked.
#   - a recipient the lists do not have gets 550 at Postfix (relay_recipient_maps made by
#     "crewmail recipients"), and 550 too where Postfix asks crewmail instead
#     (reject_unverified_recipient with unverified_recipient_reject_code = 550).
# crewmail sends through the same Postfix as its smarthost, which hands the members' mail to
# smtp-sink: the outbound recipe of docs/operator.md as well.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
init t-12-postfix-front
need go swaks smtp-sink curl python3 dnsmasq dig postfix postmap script

LIST_DOMAIN=lists.example.test
AUTHOR=carol@far.test
OTHER=alice@example.test

build_crewmail
DNS_PORT=$(new_dns_port)
SINK_PORT=$(new_port)
SMTP_PORT=$(new_port)
HTTP_PORT=$(new_port)
MX_PORT=$(new_port)    # Postfix's smtpd, with relay_recipient_maps
PROBE_PORT=$(new_port) # another smtpd of it, with reject_unverified_recipient instead
DUMP="$WORK/dump"
CFG="$WORK/crewmail.toml"
cat >"$CFG" <<EOF
hostname = "$LIST_DOMAIN"
data_dir = "$WORK/data"
[smtp]
listen = "127.0.0.1:$SMTP_PORT"
trusted_relays = ["127.0.0.1/32"]
trusted_authserv_ids = ["mx.example.test"]
[http]
listen = "127.0.0.1:$HTTP_PORT"
[imap]
listen = ""
[delivery]
mode = "smarthost"
smarthost = "127.0.0.1:$MX_PORT"
smarthost_tls = "none"
[dns]
resolver = "127.0.0.1:$DNS_PORT"
EOF

cat >"$WORK/dns.conf" <<CONF
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
local=/test/
txt-record=far.test,"v=spf1 ip4:127.0.0.3 -all"
txt-record=_dmarc.far.test,"v=DMARC1; p=none"
txt-record=example.test,"v=spf1 ip4:127.0.0.1 -all"
txt-record=$LIST_DOMAIN,"v=spf1 ip4:127.0.0.1 -all"
CONF
say "starting dnsmasq on 127.0.0.1:$DNS_PORT"
start_dnsmasq "$WORK/dns.conf" "$DNS_PORT" "$WORK/dnsmasq.log" far.test
say "starting smtp-sink on 127.0.0.1:$SINK_PORT and crewmail on 127.0.0.1:$SMTP_PORT (smarthost: Postfix)"
start_sink "$DUMP" "$SINK_PORT" "$WORK/sink.log"
start_crewmail "$CFG" "$WORK/crewmail.log" "$HTTP_PORT" crewmail
admin list create "$LIST" -name Crew -post verified -owner "$OTHER" >"$WORK/admin.out" 2>&1 || fail "list create: $(cat "$WORK/admin.out")"
admin member add "$LIST" "$AUTHOR" "$OTHER" >>"$WORK/admin.out" 2>&1 || fail "member add: $(cat "$WORK/admin.out")"

# ---------------------------------------------------------------------------------------------
# Postfix, a private instance: configuration in $PF/etc, queue in $PF/spool, log in $PF/log.
PF="$WORK/postfix"
mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
chown postfix "$PF/data"
admin recipients "$LIST_DOMAIN" >"$PF/etc/recipients" 2>"$WORK/recipients.err" || fail "crewmail recipients: $(cat "$WORK/recipients.err")"
grep -qxF "$LIST OK" "$PF/etc/recipients" || fail "crewmail recipients does not name $LIST: $(cat "$PF/etc/recipients")"
grep -qxF "postmaster@$LIST_DOMAIN OK" "$PF/etc/recipients" || fail "crewmail recipients does not name postmaster@: $(cat "$PF/etc/recipients")"
# The list domain goes to crewmail; the members' domains (crewmail's outbound mail) to smtp-sink.
printf '%s\n' "$LIST_DOMAIN smtp:[127.0.0.1]:$SMTP_PORT" "far.test smtp:[127.0.0.1]:$SINK_PORT" \
	"example.test smtp:[127.0.0.1]:$SINK_PORT" >"$PF/etc/transport"
cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $PF
maillog_file = $PF/log
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.test
mydestination =
mynetworks = 127.0.0.1/32
alias_maps =
local_recipient_maps =
smtpd_tls_security_level = none
smtp_tls_security_level = none
# The recipe of docs/operator.md, "Behind Postfix".
relay_domains = $LIST_DOMAIN
transport_maps = hash:$PF/etc/transport
relay_recipient_maps = hash:$PF/etc/recipients
recipient_delimiter = +
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_send_xforward_command = yes
EOF
# Debian's services, without chroot (the private queue has no chroot tree), smtpd on MX_PORT.
awk -v port="$MX_PORT" '/^#/ || /^[ \t]/ || NF < 8 { print; next }
	{ $5 = "n"; if ($1 == "smtp" && $2 == "inet") $1 = "127.0.0.1:" port; print }' /etc/postfix/master.cf >"$PF/etc/master.cf"
# The other recipe: Postfix asks crewmail about each address (address verification) and answers
# 550, not its default 450, for one crewmail refuses.
cat >>"$PF/etc/master.cf" <<EOF
127.0.0.1:$PROBE_PORT inet n - n - - smtpd
  -o relay_recipient_maps=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject_unauth_destination,reject_unverified_recipient
  -o unverified_recipient_reject_code=550
EOF
postmap -c "$PF/etc" "$PF/etc/transport" "$PF/etc/recipients" || fail "postmap failed"
# postfix writes its complaints to stderr only on a terminal: script gives it one.
script -qec "postfix -c $PF/etc start" /dev/null >"$WORK/postfix-start.out" 2>&1 ||
	fail "postfix start: $(cat "$WORK/postfix-start.out") $(tail -5 "$PF/log" 2>/dev/null)"
for _ in $(seq 50); do [[ -s $PF/spool/pid/master.pid ]] && break; sleep 0.1; done
PF_PID=$(tr -d ' \n' <"$PF/spool/pid/master.pid")
started "$PF_PID"
wait_tcp "$MX_PORT" || fail "Postfix does not listen on 127.0.0.1:$MX_PORT: $(tail -5 "$PF/log")"
say "Postfix $(postconf -c "$PF/etc" -h mail_version) on 127.0.0.1:$MX_PORT relays $LIST_DOMAIN to crewmail"

# make_post FILE MSGID [EXTRA HEADER LINES]: carol's post, CRLF line endings, ending with the
# end-of-data dot (swaks --no-data-fixup).
make_post() {
	{
		printf '%b' "${3:-}"
		printf 'From: Carol <%s>\r\n' "$AUTHOR"
		printf 'To: %s\r\n' "$LIST"
		printf 'Subject: from afar %s\r\n' "$2"
		printf 'Date: %s\r\n' "$(LC_ALL=C date -R)"
		printf 'Message-ID: <%s>\r\n' "$2"
		printf '\r\nSPF only, no DKIM.\r\n.\r\n'
	} >"$1"
}
# swaks_to OUT PORT LOCAL_IP RCPT FILE: sends FILE from LOCAL_IP as mail.far.test; exit in $rc.
swaks_to() {
	rc=0
	swaks --server 127.0.0.1 --port "$2" --local-interface "$3" --helo mail.far.test --from "$AUTHOR" --to "$4" \
		--no-data-fixup --data @"$5" >"$1" 2>&1 || rc=$?
}

# 1. Through Postfix from carol's server (127.0.0.3, which far.test's SPF allows).
make_post "$WORK/relayed.eml" relayed@far.test
swaks_to "$WORK/relayed.out" "$MX_PORT" 127.0.0.3 "$LIST" "$WORK/relayed.eml"
((rc == 0)) || fail "Postfix refused carol's post: $(replies "$WORK/relayed.out")"
wait_mail 2 "" "Message-ID: <relayed@far.test>" ||
	fail "carol's post through Postfix did not reach both members within ${WAIT_SECONDS} s (Postfix log: $(tail -5 "$PF/log" | tr '\n' ' '))"
for f in "${found[@]}"; do
	ar=$(field Authentication-Results "$f")
	[[ $ar == "$LIST_DOMAIN;"*"spf=pass (client 127.0.0.3 as recorded by trusted relay 127.0.0.1) smtp.mailfrom=far.test"* ]] ||
		fail "the copy $f does not say spf=pass for the client Postfix recorded: $ar"
	# smtp-sink's own Received comes first, then Postfix's: crewmail sent through Postfix.
	hop=$(header_of "$f" | grep -i '^Received:' | awk 'NR == 2')
	[[ $hop == *"from $LIST_DOMAIN"*"by mx.example.test (Postfix)"* ]] || fail "the copy $f did not leave through Postfix: $hop"
done
[[ $(recipients "${found[@]}") == "$OTHER $AUTHOR " ]] || fail "copies went to $(recipients "${found[@]}")"
grep -q "Did you send this" "$DUMP"/* && fail "carol was asked to confirm a post Postfix relayed"
say "through Postfix: delivered at once, Authentication-Results: $(field Authentication-Results "${found[0]}" | cut -c1-140)…"

# 2. Straight to crewmail from 127.0.0.4, claiming the same chain.
forged="Received: from mail.far.test (mail.far.test [127.0.0.3])\r\n\tby mx.example.test (Postfix) with ESMTP id 4ABC; $(LC_ALL=C date -R)\r\nAuthentication-Results: mx.example.test; spf=pass smtp.mailfrom=far.test\r\n"
make_post "$WORK/forged.eml" forged@far.test "$forged"
swaks_to "$WORK/forged.out" "$SMTP_PORT" 127.0.0.4 "$LIST" "$WORK/forged.eml"
((rc == 0)) || fail "crewmail refused the forged post (it should be held): $(replies "$WORK/forged.out")"
grep -q "held" "$WORK/forged.out" || fail "the forged post was not held: $(replies "$WORK/forged.out")"
wait_mail 1 "$AUTHOR" "Did you send this" || fail "carol was not asked about the forged post"
settle
[[ -z $(mail_for "" "Message-ID: <forged@far.test>") ]] || fail "the forged post went out"
admin archive ls "$LIST" -json >"$WORK/archive.json" 2>&1 || fail "archive ls: $(cat "$WORK/archive.json")"
grep -q forged@far.test "$WORK/archive.json" && fail "the forged post is in the archive"
say "straight from 127.0.0.4 with a forged Received chain: held, carol asked"

# 3. Unknown recipient: 550 at Postfix, at RCPT.
make_post "$WORK/unknown.eml" unknown@far.test
swaks_to "$WORK/unknown.out" "$MX_PORT" 127.0.0.3 "nobody@$LIST_DOMAIN" "$WORK/unknown.eml"
grep -qE '^ *<\*\* +550 5\.1\.1 ' "$WORK/unknown.out" || fail "unknown recipient at Postfix: $(replies "$WORK/unknown.out"), want 550 5.1.1"
say "unknown recipient at Postfix: $(grep -E '^ *<\*\* +550' "$WORK/unknown.out" | head -1 | sed 's/^ *<\*\* *//')"

# 4. The same with reject_unverified_recipient and unverified_recipient_reject_code = 550: Postfix
# probes crewmail, which refuses the address, and the sender gets 550 (not 450) at RCPT.
wait_tcp "$PROBE_PORT" || fail "Postfix does not listen on 127.0.0.1:$PROBE_PORT"
swaks_to "$WORK/probe.out" "$PROBE_PORT" 127.0.0.3 "nobody@$LIST_DOMAIN" "$WORK/unknown.eml"
grep -qE '^ *<\*\* +550 5\.1\.1 ' "$WORK/probe.out" || fail "unknown recipient at Postfix with reject_unverified_recipient: $(replies "$WORK/probe.out"), want 550 5.1.1"
say "with reject_unverified_recipient: $(grep -E '^ *<\*\* +550' "$WORK/probe.out" | head -1 | sed 's/^ *<\*\* *//')"
success
