# test/lib.sh — what crewmail's end-to-end tests share, sourced by each test/t-NN-name/run.sh and
# by scripts/crash-test and bench/*: a work directory and the traps that clean it up, the binary
# built once, free ports on loopback, starting and stopping crewmail, Postfix's smtp-sink and
# dnsmasq by PID, reading what smtp-sink dumped, and pass/fail reporting.
#
# A script sources it and calls init first:
#
#	. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#	init t-01-delivery
#
# Everything listens on 127.0.0.1 only; every process a script starts is stopped by its PID when
# the script exits, newest first. KEEP=1 keeps the work directory (it is kept on failure too).
# CREWMAIL_BIN names a crewmail binary built already (scripts/interop builds one for all tests).

# The variables set here are read by the scripts that source this file.
# shellcheck shell=bash disable=SC2034

export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
TEST_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$TEST_LIB/.." && pwd)
PY="$TEST_LIB/py" # the Python helpers

WAIT_SECONDS=${WAIT_SECONDS:-30} # how long to wait for mail to arrive at smtp-sink
START_TIMEOUT=${START_TIMEOUT:-15} # seconds for crewmail to answer /healthz
STOP_GRACE=${STOP_GRACE:-10}       # seconds between SIGTERM and SIGKILL

# ---------------------------------------------------------------------------------------------
# Reporting.

say() { printf '%s: %s\n' "$TEST_NAME" "$*"; }
# fail WHY: the test fails: WHY and the last lines of the log of the crewmail under test
# ($CREWMAIL_LOG), then exit 1.
fail() {
	printf '%s: FAIL: %s\n' "$TEST_NAME" "$*" >&2
	local log=${CREWMAIL_LOG:-}
	if [[ -n $log && -s $log ]]; then
		printf '%s: last lines of the crewmail log (%s):\n' "$TEST_NAME" "$log" >&2
		tail -n 25 "$log" | sed 's/^/    /' >&2
	fi
	exit 1
}
# success: the test passed.
success() { say "all checks passed"; }

# need TOOL...: fails, saying which package has it, unless every TOOL can be run.
need() {
	local tool pkg
	for tool in "$@"; do
		command -v "$tool" >/dev/null && continue
		case $tool in
		smtp-sink | smtp-source) pkg=postfix ;;
		dnsmasq) pkg=dnsmasq-base ;;
		dig) pkg=dnsutils ;;
		dknewkey | dkimsign) pkg=python3-dkim ;;
		chromium) pkg="chromium fonts-dejavu-core" ;;
		mbsync) pkg=isync ;;
		cmp) pkg=diffutils ;;
		*) pkg=$tool ;;
		esac
		fail "$tool is not installed (apt-get install $pkg; see .ci/run)"
	done
}
# need_python_dkim: Debian's Python modules import only under /usr/bin/python3 (python3 on PATH
# may be another build).
need_python_dkim() {
	/usr/bin/python3 -c 'import dkim, dns.resolver' 2>/dev/null ||
		fail "/usr/bin/python3 cannot import dkim and dns.resolver (apt-get install python3-dkim)"
}

# ---------------------------------------------------------------------------------------------
# The work directory and the processes started.

# init NAME [PREFIX]: names the script in its messages, makes its work directory $WORK
# (crewmail-PREFIX.XXXXXX under $TMPDIR, PREFIX defaulting to NAME) and sets the traps that stop
# what it started and remove $WORK.
init() {
	TEST_NAME=$1
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/crewmail-${2:-$1}.XXXXXX")
	chmod 755 "$WORK" # smtp-sink drops to the postfix user and must reach the dump directory
	PIDS=()
	USED_PORTS=" "
	CREWMAIL_LOG=
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

# started PID: PID is stopped when the script exits.
started() { PIDS+=("$1"); }

# forget_pid PID: PID is gone (reaped by the caller); it leaves PIDS.
forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=(${keep[@]+"${keep[@]}"})
}

# stop_pid PID: stops one process this script started, by PID: SIGTERM (a graceful stop), a
# bounded grace period, then SIGKILL; the PID leaves PIDS.
stop_pid() {
	local pid=$1
	forget_pid "$pid"
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq $((STOP_GRACE * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# stop_all stops what this script started, by PID, newest first: crewmail before the smtp-sink
# and the DNS server it uses.
stop_all() {
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${PIDS[i]}"
	done
	PIDS=()
}

cleanup() {
	local rc=$?
	stop_all
	if [[ -n "${KEEP:-}" || $rc -ne 0 ]]; then
		say "work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# Ports.

# new_port: a TCP port free on 127.0.0.1 a moment ago and not handed out before in this script.
new_port() {
	local p
	while :; do
		p=$(python3 "$PY/free_port.py")
		[[ $USED_PORTS == *" $p "* ]] || break
	done
	USED_PORTS+="$p "
	echo "$p"
}
# new_dns_port: the same, free for both TCP and UDP (for a DNS server).
new_dns_port() {
	local p
	while :; do
		p=$(python3 "$PY/free_port.py" tcp+udp)
		[[ $USED_PORTS == *" $p "* ]] || break
	done
	USED_PORTS+="$p "
	echo "$p"
}
# wait_tcp PORT: waits (bounded) until something listens on 127.0.0.1:PORT.
wait_tcp() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------------------------------------
# crewmail.

# build_crewmail: $BIN is a crewmail built from this tree: $CREWMAIL_BIN when a runner built it
# already, else one built now into $WORK.
build_crewmail() {
	if [[ -n ${CREWMAIL_BIN:-} ]]; then
		[[ -x $CREWMAIL_BIN ]] || fail "CREWMAIL_BIN=$CREWMAIL_BIN is not an executable file"
		BIN=$CREWMAIL_BIN
		return
	fi
	say "building crewmail"
	BIN="$WORK/crewmail"
	(cd "$ROOT" && go build -o "$BIN" ./cmd/crewmail) || fail "go build failed"
}

# write_config FILE DATA_DIR SMTP_PORT HTTP_PORT IMAP_PORT SINK_PORT [MORE]: a configuration of
# crewmail on loopback for lists.example.test: SMTP and HTTP on their ports, IMAP on IMAP_PORT
# ("" for none), delivery through the smarthost 127.0.0.1:SINK_PORT without TLS. MORE is TOML
# written after it: first keys of [delivery], then tables of its own.
write_config() {
	local file=$1 data=$2 smtp=$3 http=$4 imap=$5 sink=$6 more=${7:-}
	cat >"$file" <<EOF
hostname = "lists.example.test"
data_dir = "$data"
[smtp]
listen = "127.0.0.1:$smtp"
[http]
listen = "127.0.0.1:$http"
[imap]
listen = "${imap:+127.0.0.1:$imap}"
[delivery]
mode = "smarthost"
smarthost = "127.0.0.1:$sink"
smarthost_tls = "none"
EOF
	[[ -z $more ]] || printf '%s\n' "$more" >>"$file"
}

# start_crewmail CFG LOG HTTP_PORT [WHAT]: crewmail serve -config CFG, waited for (bounded:
# START_TIMEOUT) until it answers /healthz. Its PID in $CREWMAIL_PID (and $STARTED_PID), its log
# in $CREWMAIL_LOG. WHAT names it in failures.
start_crewmail() {
	local cfg=$1 log=$2 port=$3 what=${4:-crewmail} ready='' pid deadline
	CREWMAIL_LOG=$log
	"$BIN" serve -config "$cfg" >"$log" 2>&1 &
	pid=$!
	STARTED_PID=$pid
	CREWMAIL_PID=$pid
	started "$pid"
	deadline=$((SECONDS + START_TIMEOUT))
	while ((SECONDS < deadline)); do
		kill -0 "$pid" 2>/dev/null || fail "$what serve exited during start-up"
		if curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
			ready=1
			break
		fi
		sleep 0.1
	done
	[[ -n $ready ]] || fail "$what did not answer http://127.0.0.1:$port/healthz within $START_TIMEOUT s"
}

# admin ARGS...: crewmail's command line on the configuration $CFG.
admin() { "$BIN" "$@" -config "$CFG"; }

# ---------------------------------------------------------------------------------------------
# Postfix's smtp-sink, and what it dumps.

# start_sink DIR PORT LOG: an smtp-sink on 127.0.0.1:PORT that dumps each transaction to a file
# in DIR; its PID in $STARTED_PID and $SINK_PID.
start_sink() {
	local dir=$1 port=$2 log=$3
	mkdir -p "$dir"
	chown postfix "$dir" 2>/dev/null || chmod 777 "$dir"
	smtp-sink -u postfix -d "$dir/%H%M%S." "127.0.0.1:$port" 1024 >"$log" 2>&1 &
	STARTED_PID=$!
	SINK_PID=$!
	started "$STARTED_PID"
	wait_tcp "$port" || fail "smtp-sink does not listen on 127.0.0.1:$port (see $log)"
}

# dumps_complete FILE...: true when every FILE is a whole dump: it ends with the empty line
# smtp-sink adds, and stopped growing.
dumps_complete() {
	local f sizes
	sizes=$(wc -c "$@")
	sleep 0.1
	for f in "$@"; do
		[[ $(tail -c 2 "$f" | od -An -c | tr -d ' ') == '\n\n' ]] || return 1
	done
	[[ $(wc -c "$@") == "$sizes" ]]
}

# header_of FILE: the header of a dump (up to the first empty line) with folded lines unfolded
# (RFC 5322 §2.2.3: a line break followed by white space is taken out).
header_of() { sed '/^$/q' "$1" | sed -e ':a' -e '$!N' -e 's/\n\([[:space:]]\)/\1/' -e 'ta' -e 'P' -e 'D'; }
# field NAME FILE: the unfolded value of the first NAME field in the header of FILE. (Readers in
# these pipelines read to the end: one that stops early, like grep -q or head, can make the writer
# die of SIGPIPE on a long header, and pipefail then fails the pipeline.)
field() { header_of "$2" | sed -n "s/^$1: *//Ip" | awk 'NR == 1'; }
# body_of FILE: the body of a dump, quoted-printable decoded (notices are sent that way).
body_of() {
	sed '1,/^$/d' "$1" | python3 -c 'import quopri, sys; sys.stdout.buffer.write(quopri.decodestring(sys.stdin.buffer.read()))'
}
# recipients FILE...: the envelope recipients of the dumps, sorted, on one line.
recipients() { sed -n 's/^X-Rcpt-Args: <\(.*\)>.*/\1/p' "$@" | sort | tr '\n' ' '; }
# replies FILE [N]: the last N (2) server replies in swaks' output FILE, on one line.
replies() { grep -E '^ *<' "$1" | tail -n "${2:-2}" | tr '\n' ' '; }

# mail_for RCPT TEXT: the dumps in $DUMP of a transaction to RCPT (or to anyone, RCPT "") whose
# unfolded header holds the fixed string TEXT, one name a line.
mail_for() {
	local f
	while IFS= read -r f; do
		header_of "$f" | grep -F -- "$2" >/dev/null && echo "$f"
	done < <(grep -rlF -- "X-Rcpt-Args: <$1" "$DUMP" | sort)
}
# wait_mail N RCPT TEXT: waits (bounded) until N complete dumps match mail_for RCPT TEXT; leaves
# their names in $found.
wait_mail() {
	local n=$1 deadline=$((SECONDS + WAIT_SECONDS))
	while :; do
		mapfile -t found < <(mail_for "$2" "$3")
		((${#found[@]} >= n)) && dumps_complete "${found[@]}" && return 0
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}
# settle: waits (bounded) until smtp-sink has had nothing new in $DUMP for a second: the way to
# see that something sent no mail. What crewmail queues is committed before it answers, and its
# workers deliver within milliseconds here.
settle() {
	local n last deadline=$((SECONDS + WAIT_SECONDS)) quiet=0
	last=$(find "$DUMP" -type f | wc -l)
	while ((quiet < 10)); do
		((SECONDS < deadline)) || fail "smtp-sink kept getting mail for ${WAIT_SECONDS} s"
		sleep 0.1
		n=$(find "$DUMP" -type f | wc -l)
		if [[ $n == "$last" ]]; then
			quiet=$((quiet + 1))
		else
			last=$n quiet=0
		fi
	done
}
# only_one WHAT: $found holds exactly one dump, to exactly one recipient.
only_one() {
	((${#found[@]} == 1)) || fail "$1: ${#found[@]} mails at smtp-sink, expected 1: ${found[*]}"
	[[ $(grep -c '^X-Rcpt-Args: ' "${found[0]}") == 1 ]] ||
		fail "$1 went to more than one recipient: $(grep '^X-Rcpt-Args' "${found[0]}" | tr '\n' ' ')"
}
# http_code OUT [curl arguments]: curl's status code; the response body in OUT.
http_code() {
	local code rc=0
	code=$(curl -sS --max-time 10 -o "$1" -w '%{http_code}' "${@:2}" 2>"$1.err") || rc=$?
	if ((rc == 0)); then
		echo "$code"
	else
		echo "curl exit $rc ($(cat "$1.err"))"
	fi
}

# ---------------------------------------------------------------------------------------------
# dnsmasq.

# start_dnsmasq CONF PORT LOG NAME: a dnsmasq with the configuration CONF on 127.0.0.1:PORT (UDP
# and TCP), waited for (bounded) until it answers a TXT query for NAME; its PID in $STARTED_PID.
start_dnsmasq() {
	local conf=$1 port=$2 log=$3 name=$4 pid ready=
	dnsmasq --no-daemon --conf-file="$conf" --port="$port" --pid-file= --log-facility=- >"$log" 2>&1 &
	pid=$!
	STARTED_PID=$pid
	started "$pid"
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || fail "dnsmasq exited during start-up: $(cat "$log")"
		if [[ -n $(dig_txt "$port" "$name") ]]; then
			ready=1
			break
		fi
		sleep 0.1
	done
	[[ -n $ready ]] || fail "dnsmasq does not answer on 127.0.0.1:$port: $(cat "$log")"
}
# dig_txt PORT NAME [+tcp]: the TXT record at NAME as one string (the record's strings joined),
# asked of 127.0.0.1:PORT over UDP (or TCP).
dig_txt() {
	dig @127.0.0.1 -p "$1" +short +time=1 +tries=1 ${3:+"$3"} TXT "$2" | sed 's/" "//g; s/^"//; s/"$//'
}

# ---------------------------------------------------------------------------------------------
# The crew list most tests post to: crew@lists.example.test, "-post members", three members
# who get each post and one who gets none.

LIST=crew@lists.example.test
LIST_LOCAL=${LIST%@*}
LIST_HOST=${LIST#*@}
MEMBERS=(alice@example.test bob@example.test carol@example.test) # mode "each": one copy each
QUIET_MEMBER=dave@example.test                                  # mode "nomail": no copy

# start_crew: an smtp-sink (dumps in $DUMP) and a crewmail delivering to it, with IMAP on,
# serving $LIST with its members; sets SINK_PORT, SMTP_PORT, HTTP_PORT, IMAP_PORT, CFG,
# SINK_PID and CREWMAIL_PID.
start_crew() {
	build_crewmail
	SINK_PORT=$(new_port)
	SMTP_PORT=$(new_port)
	HTTP_PORT=$(new_port)
	IMAP_PORT=$(new_port)
	DUMP="$WORK/dump"
	CFG="$WORK/crewmail.toml"
	write_config "$CFG" "$WORK/data" "$SMTP_PORT" "$HTTP_PORT" "$IMAP_PORT" "$SINK_PORT" "workers = 4"
	say "starting smtp-sink on 127.0.0.1:$SINK_PORT (dumps in $DUMP)"
	start_sink "$DUMP" "$SINK_PORT" "$WORK/sink.log"
	say "starting crewmail (SMTP 127.0.0.1:$SMTP_PORT, HTTP 127.0.0.1:$HTTP_PORT, IMAP 127.0.0.1:$IMAP_PORT)"
	start_crewmail "$CFG" "$WORK/crewmail.log" "$HTTP_PORT" crewmail
	admin list create "$LIST" -name Crew -post members >"$WORK/admin.out" 2>&1 || fail "list create: $(cat "$WORK/admin.out")"
	admin member add "$LIST" "${MEMBERS[@]}" -mode each >>"$WORK/admin.out" 2>&1 || fail "member add: $(cat "$WORK/admin.out")"
	admin member add "$LIST" "$QUIET_MEMBER" -mode nomail >>"$WORK/admin.out" 2>&1 || fail "member add: $(cat "$WORK/admin.out")"
}

# is_member ADDRESS: member ls of $LIST shows ADDRESS; the whole listing in $WORK/members.out.
is_member() {
	admin member ls "$LIST" >"$WORK/members.out" 2>&1 || fail "member ls: $(cat "$WORK/members.out")"
	awk -v a="$1" '$1 == a { found = 1 } END { exit !found }' "$WORK/members.out"
}

# make_crew_post FILE MSGID: alice's post to $LIST, with CRLF line endings and no newline after
# the last line, so that what swaks sends is exactly this file plus the CRLF before the final
# dot. No "%" and no backslash: swaks would take them for its tokens. Lines starting with "."
# exercise dot-stuffing both ways (swaks → crewmail, crewmail → smtp-sink); the UTF-8 line is
# 8-bit text that must pass untouched.
make_crew_post() {
	{
		printf 'From: Alice Example <alice@example.test>\r\n'
		printf 'To: Crew <%s>\r\n' "$LIST"
		printf 'Subject: interop check\r\n'
		printf 'Date: %s\r\n' "$(LC_ALL=C date -R)"
		printf 'Message-ID: <%s>\r\n' "$2"
		printf 'MIME-Version: 1.0\r\n'
		printf 'Content-Type: text/plain; charset=utf-8\r\n'
		printf 'Content-Transfer-Encoding: 8bit\r\n'
		printf '\r\n'
		printf 'Hello crew,\r\n'
		printf '.this line starts with a dot\r\n'
		printf '..and this one with two\r\n'
		printf '.\r\n'
		printf 'Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x80\x94 \xc3\xa5\xc3\xa9\xc3\xae\xc3\xb8\xc3\xbc \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n'
		printf '  indented, with trailing spaces   \r\n'
		printf '\r\n'
		printf 'From the last paragraph (a line starting with From)\r\n'
		printf 'last line, no newline after it'
	} >"$1"
}

# password_in FILE: the app password in a password mail's body: the word after "Password:", on
# its line or the next (notices put what is to be copied on a line of its own).
password_in() {
	grep -A1 -E '^[[:space:]]*Password:' "$1" | grep -oE '\b[a-z2-7]{4}(-[a-z2-7]{4}){3}\b' || true
}

# app_password ADDRESS: asks for an app password for ADDRESS (member password) and sets
# $IMAP_PASSWORD to the one in the mail that brings it (a "Password:" line, xxxx-xxxx-xxxx-xxxx).
app_password() {
	admin member password "$LIST" "$1" >"$WORK/password.out" 2>&1 || fail "member password: $(cat "$WORK/password.out")"
	wait_mail 1 "$1" "Subject: Your password for reading" ||
		fail "no \"Your password for reading ...\" mail to $1 at smtp-sink within ${WAIT_SECONDS} s"
	only_one "the password mail"
	PASSWORD_MAIL=${found[0]}
	body_of "$PASSWORD_MAIL" >"$WORK/password.body"
	IMAP_PASSWORD=$(password_in "$WORK/password.body")
	[[ $IMAP_PASSWORD =~ ^[a-z2-7]{4}(-[a-z2-7]{4}){3}$ ]] ||
		fail "no \"Password:  xxxx-xxxx-xxxx-xxxx\" line (exactly one) in the password mail: $(head -c 600 "$WORK/password.body")"
}
