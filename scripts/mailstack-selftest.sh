#!/usr/bin/env bash
# mailstack-selftest.sh - checks scripts/mailstack.sh against the real servers:
# SMTP -> Postfix -> LMTP -> Dovecot delivery, deliver/load/count/fetch/adduser,
# IMAP and IMAPS (good and bad CA), Dovecot and Postfix outages, clean stop.
# Needs root and python3. Exits non-zero with a message on the first failure.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
MS=$HERE/mailstack.sh
PASSED=0

fail() {
  echo "SELFTEST FAILED: $*" >&2
  if [[ -n ${DIR:-} && -d ${DIR:-} ]]; then
    echo "--- tail of $DIR/dovecot.log" >&2
    tail -n 15 "$DIR/dovecot.log" >&2 2>/dev/null || true
    echo "--- tail of $DIR/postfix.log" >&2
    tail -n 15 "$DIR/postfix.log" >&2 2>/dev/null || true
  fi
  echo "selftest: $PASSED passed, 1 failed"
  exit 1
}
ok() {
  PASSED=$((PASSED + 1))
  echo "ok $PASSED - $*"
}

[[ $(id -u) -eq 0 ]] || fail "must run as root"

"$MS" install || fail "mailstack.sh install failed"
command -v python3 >/dev/null || fail "python3 is needed by the selftest"
ok "install (idempotent)"

DIR=$(mktemp -d /tmp/pd-mailstack-selftest.XXXXXX)
cleanup() {
  "$MS" stop "$DIR" >/dev/null 2>&1 || true
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$DIR"
}
trap cleanup EXIT

t0=$EPOCHREALTIME
"$MS" start "$DIR" >"$DIR.start.out" 2>&1 || {
  cat "$DIR.start.out" >&2
  rm -f "$DIR.start.out"
  fail "start failed"
}
t1=$EPOCHREALTIME
rm -f "$DIR.start.out"
START_MS=$(((${t1/./} - ${t0/./}) / 1000))
# shellcheck disable=SC1091
source "$DIR/env"
for v in PD_STACK_DIR PD_IMAP_HOST PD_IMAP_PORT PD_IMAPS_PORT PD_SMTP_PORT PD_LMTP_PORT \
  PD_CA_FILE PD_BAD_CA_FILE PD_PASSWORD PD_DOMAIN PD_MAIL_ROOT; do
  [[ -n ${!v:-} ]] || fail "env lacks $v"
done
[[ $PD_STACK_DIR == "$DIR" && $PD_DOMAIN == example.test && $PD_IMAP_HOST == 127.0.0.1 ]] ||
  fail "env has unexpected values"
ok "start took ${START_MS} ms; env complete (IMAP $PD_IMAP_PORT, IMAPS $PD_IMAPS_PORT, SMTP $PD_SMTP_PORT, LMTP $PD_LMTP_PORT)"

# Nothing of the stack may listen beyond loopback.
if command -v ss >/dev/null; then
  for p in "$PD_IMAP_PORT" "$PD_IMAPS_PORT" "$PD_SMTP_PORT" "$PD_LMTP_PORT"; do
    addrs=$(ss -Hltn "sport = :$p" | awk '{print $4}')
    [[ $addrs == "127.0.0.1:$p" ]] || fail "port $p listens on '$addrs', not only 127.0.0.1"
  done
  ok "all four listeners are bound to 127.0.0.1 only"
fi

py() { python3 - "$@"; }

# smtp_send TO SUBJECT: send one message through Postfix; exit 1 if refused.
smtp_send() {
  py "$1" "$2" <<'PY'
import os, smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "Some Customer <someone@customer.invalid>"
m["To"] = sys.argv[1]
m["Subject"] = sys.argv[2]
m["Message-ID"] = "<%s.%d@selftest.invalid>" % (sys.argv[2].replace(" ", "-"), os.getpid())
m.set_content("Hello from the mailstack selftest.\n")
try:
    with smtplib.SMTP("127.0.0.1", int(os.environ["PD_SMTP_PORT"]), timeout=10) as s:
        refused = s.send_message(m)
        if refused:
            sys.exit("refused: %r" % refused)
except (OSError, smtplib.SMTPException) as e:
    print("send failed: %s" % e, file=sys.stderr)
    sys.exit(1)
PY
}

# wait_count ADDRESS N [SECS]: until ADDRESS's INBOX has N messages.
wait_count() {
  local deadline=$((SECONDS + ${3:-20})) n
  while ((SECONDS < deadline)); do
    n=$("$MS" count "$DIR" "$1")
    [[ $n -ge $2 ]] && return 0
    sleep 0.2
  done
  fail "$1 has ${n:-?} messages after ${3:-20}s, expected $2"
}

# --- SMTP -> Postfix -> LMTP -> Dovecot
[[ $("$MS" count "$DIR" customer@example.test) == 0 ]] || fail "customer INBOX not empty at start"
t0=$SECONDS
smtp_send customer@example.test "first mail" || fail "SMTP send to Postfix failed"
wait_count customer@example.test 1 20
ok "SMTP mail reached customer's INBOX via Postfix+LMTP in $((SECONDS - t0))s"
f=$("$MS" fetch "$DIR" customer@example.test)
[[ $(wc -l <<<"$f") == 1 && -f $f ]] || fail "fetch did not print one file: '$f'"
grep -q '^Subject: first mail' "$f" || fail "fetched file is not the mail sent"
ok "fetch prints the raw message file ($f)"

# --- deliver
eml=$DIR/t1.eml
printf 'From: a@customer.invalid\r\nTo: support@example.test\r\nSubject: delivered %s\r\nMessage-ID: <d%s@x.invalid>\r\n\r\nbody %s\r\n' 1 1 1 >"$eml"
sed 's/ 1/ 2/; s/<d1/<d2/' "$eml" >"$DIR/t2.eml"
"$MS" deliver "$DIR" support@example.test "$eml" "$DIR/t2.eml" || fail "deliver failed"
[[ $("$MS" count "$DIR" support@example.test) == 2 ]] || fail "support should have 2 messages"
[[ $("$MS" fetch "$DIR" support | wc -l) == 2 ]] || fail "fetch support should list 2 files"
[[ $("$MS" count "$DIR" support Nonexistent) == 0 ]] || fail "count of a missing mailbox should be 0"
ok "deliver stores 2 files in support's INBOX; count/fetch agree"

# imap_check MODE [USER] [PASSWORD]: MODE plain|tls|badca|badpass
imap_check() {
  py "$@" <<'PY'
import imaplib, os, ssl, sys
mode = sys.argv[1]
user = sys.argv[2] if len(sys.argv) > 2 else "customer@example.test"
pw = sys.argv[3] if len(sys.argv) > 3 else os.environ["PD_PASSWORD"]
host = os.environ["PD_IMAP_HOST"]
try:
    if mode in ("plain", "badpass"):
        c = imaplib.IMAP4(host, int(os.environ["PD_IMAP_PORT"]), timeout=10)
    else:
        cafile = os.environ["PD_CA_FILE" if mode != "badca" else "PD_BAD_CA_FILE"]
        ctx = ssl.create_default_context(cafile=cafile)
        # Verify both by name and by IP address (the cert has both SANs).
        name = "localhost" if mode != "tls-ip" else host
        c = imaplib.IMAP4_SSL(name, int(os.environ["PD_IMAPS_PORT"]), ssl_context=ctx, timeout=10)
except ssl.SSLCertVerificationError as e:
    if mode == "badca":
        print("bad CA rejected as expected: %s" % e.verify_message)
        sys.exit(0)
    sys.exit("certificate verification failed: %s" % e)
except OSError as e:
    sys.exit("connect failed: %s" % e)
if mode == "badca":
    sys.exit("IMAPS with the wrong CA was NOT rejected")
caps = set(c.capabilities)
try:
    c.login(user, pw)
except imaplib.IMAP4.error as e:
    if mode == "badpass":
        print("wrong password rejected as expected")
        sys.exit(0)
    sys.exit("login failed: %s" % e)
if mode == "badpass":
    sys.exit("login with a wrong password succeeded")
typ, data = c.capability()
caps |= set(data[0].decode().split())
missing = {"IDLE", "MOVE", "UIDPLUS"} - caps
if missing:
    sys.exit("CAPABILITY lacks %s: %s" % (missing, sorted(caps)))
typ, data = c.select("INBOX")
n = int(data[0])
print("%s: logged in as %s, INBOX has %d, caps ok" % (mode, user, n))
c.logout()
PY
}

imap_check plain || fail "plaintext IMAP check failed"
ok "plaintext IMAP login; CAPABILITY has IDLE MOVE UIDPLUS"
imap_check tls || fail "IMAPS with PD_CA_FILE (name localhost) failed"
imap_check tls-ip || fail "IMAPS with PD_CA_FILE (IP 127.0.0.1) failed"
ok "IMAPS verifies with PD_CA_FILE for localhost and 127.0.0.1"
imap_check badca || fail "IMAPS with PD_BAD_CA_FILE did not fail verification"
ok "IMAPS with PD_BAD_CA_FILE fails certificate verification"
imap_check badpass customer@example.test wrong-password || fail "bad password check failed"
imap_check badpass customer@example.test wrong-password || fail "bad password check failed"
t0=$EPOCHREALTIME
imap_check plain || fail "login after failed logins failed"
ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
((ms < 1500)) || fail "login after failed logins took ${ms} ms (auth penalty active?)"
ok "wrong password is rejected; the next good login is not delayed (${ms} ms)"

if "$MS" start "$DIR" >/dev/null 2>&1; then fail "start on a running stack should fail"; fi
if "$MS" count "$DIR" nosuchuser >/dev/null 2>&1; then fail "count for an unknown user should fail"; fi
"$MS" status "$DIR" >/dev/null || fail "status should succeed on a running stack"
ok "start refuses a running DIR; count rejects unknown users; status ok"

# --- adduser on the running stack

[[ $("$MS" adduser "$DIR" newagent) == newagent@example.test ]] || fail "adduser output"
imap_check plain newagent@example.test || fail "new user cannot log in without restart"
smtp_send newagent@example.test "welcome" || fail "SMTP to the new user failed"
wait_count newagent@example.test 1 20
ok "adduser: new user logs in and receives mail without a restart"

# --- Dovecot outage: same port afterwards; Postfix queues and redelivers
"$MS" stop-dovecot "$DIR" || fail "stop-dovecot failed"
if imap_check plain 2>/dev/null; then fail "IMAP still answers after stop-dovecot"; fi
smtp_send customer@example.test "during dovecot outage" || fail "Postfix refused mail while Dovecot was down"
sleep 1
[[ $("$MS" count "$DIR" customer@example.test) == 1 ]] || fail "mail delivered while Dovecot was down?"
grep -q 'to=<customer@example.test>.*status=deferred' "$DIR/postfix.log" ||
  fail "Postfix did not log a deferral while Dovecot was down"

"$MS" start-dovecot "$DIR" || fail "start-dovecot failed"
# shellcheck disable=SC1091
source "$DIR/env"
imap_check plain || fail "IMAP does not work again after start-dovecot"
imap_check tls || fail "IMAPS does not work again after start-dovecot"
t0=$SECONDS
wait_count customer@example.test 2 20
ok "stop-dovecot/start-dovecot: same ports work again; queued mail redelivered in $((SECONDS - t0))s"

# --- Postfix outage
"$MS" stop-postfix "$DIR" || fail "stop-postfix failed"
if smtp_send customer@example.test "must fail" 2>/dev/null; then fail "SMTP send worked while Postfix was stopped"; fi
"$MS" start-postfix "$DIR" || fail "start-postfix failed"
smtp_send customer@example.test "after postfix restart" || fail "SMTP send fails after start-postfix"
wait_count customer@example.test 3 20
ok "stop-postfix makes sends fail; after start-postfix they work and arrive"

# --- load a generated Maildir (new/ and cur/ with flags)
src=$DIR/srcmaildir
mkdir -p "$src/cur" "$src/new" "$src/tmp"
for i in $(seq 1 30); do
  sub=new name=$((1700000000 + i)).M${i}P1.gen
  ((i % 3 == 0)) && sub=cur name=$name:2,S
  {
    printf 'From: bulk%d@customer.invalid\nTo: agent1@example.test\nSubject: bulk %d\n' "$i" "$i"
    printf 'Message-ID: <bulk%d@gen.invalid>\nDate: Tue, 14 Nov 2023 22:13:%02d +0000\n\n' "$i" $((i % 60))
    head -c 20000 /dev/urandom | base64
  } >"$src/$sub/$name"
done
before=$(find "$src" -type f | sort | md5sum)
n=$("$MS" load "$DIR" agent1@example.test "$src") || fail "load failed"
[[ $n == 30 ]] || fail "load printed '$n', expected 30"
[[ $("$MS" count "$DIR" agent1@example.test) == 30 ]] || fail "agent1 should have 30 messages"
[[ $(find "$src" -type f | sort | md5sum) == "$before" ]] || fail "load modified the source Maildir"
n=$("$MS" load "$DIR" agent1@example.test "$src") || fail "second load failed"
[[ $n == 30 && $("$MS" count "$DIR" agent1) == 60 ]] || fail "second load should add 30 more"
ok "load imports a 30-mail Maildir (twice: 60), source left untouched"

# --- stop: nothing may remain
"$MS" stop "$DIR" || fail "stop failed"
"$MS" stop "$DIR" || fail "second stop (idempotent) failed"
left=()
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  cwd=$(readlink "$p/cwd" 2>/dev/null || true)
  root=$(readlink "$p/root" 2>/dev/null || true)
  cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null || true)
  if [[ $cwd == "$DIR"* || $root == "$DIR"* || $cmd == *"$DIR"* ]]; then
    [[ $pid == "$$" || $cmd == *mailstack-selftest* ]] && continue
    left+=("$pid:$cmd")
  fi
done
((${#left[@]} == 0)) || fail "processes left after stop: ${left[*]}"
for p in "$PD_IMAP_PORT" "$PD_IMAPS_PORT" "$PD_SMTP_PORT" "$PD_LMTP_PORT"; do
  if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then fail "port $p still open after stop"; fi
done
ok "stop leaves no process and no open port"

echo "selftest: $PASSED passed, 0 failed"
