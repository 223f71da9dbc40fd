#!/usr/bin/env bash
# mailstack.sh - a real Dovecot (IMAP + LMTP) and a real Postfix (SMTP relay)
# on loopback, in one directory, without systemd. For postdesk's integration
# tests, demo and benchmark.
#
#   mailstack.sh install                    install Debian packages (idempotent)
#   mailstack.sh start DIR                  generate config in DIR, start both, write DIR/env
#   mailstack.sh stop DIR                   stop both (idempotent)
#   mailstack.sh stop-dovecot DIR | start-dovecot DIR
#   mailstack.sh stop-postfix DIR | start-postfix DIR
#   mailstack.sh status DIR                 which servers run, and their processes
#   mailstack.sh adduser DIR LOCALPART      add LOCALPART@example.test (no restart)
#   mailstack.sh deliver DIR ADDRESS FILE...   store .eml files in ADDRESS's INBOX
#   mailstack.sh load DIR ADDRESS MAILDIR   bulk-import a Maildir's INBOX (cur/ + new/)
#   mailstack.sh count DIR ADDRESS [MAILBOX]   number of messages (default INBOX)
#   mailstack.sh fetch DIR ADDRESS [MAILBOX]   paths of the message files, one a line
#
# ADDRESS may be a bare local part (customer = customer@example.test).
# Everything (config, TLS, logs, queue, maildirs) lives under DIR; nothing
# listens anywhere but 127.0.0.1. Needs root. Debian 12: Dovecot 2.3, Postfix 3.7.
#
# DIR/env (sourceable; also printed by start):
#   PD_STACK_DIR PD_DOMAIN=example.test PD_IMAP_HOST=127.0.0.1
#   PD_IMAP_PORT (plain IMAP, STARTTLS offered)  PD_IMAPS_PORT (implicit TLS)
#   PD_SMTP_HOST=127.0.0.1 PD_SMTP_PORT (Postfix smtpd, plain, no auth:
#     127.0.0.0/8 may relay)  PD_LMTP_PORT (Dovecot LMTP)
#   PD_CA_FILE (private CA that signed the server cert: DNS localhost,
#     mail.example.test, IP 127.0.0.1)  PD_BAD_CA_FILE (another CA)
#   PD_TLS_SERVER_NAME=localhost  PD_PASSWORD (all users)  PD_USERS
#   PD_MAIL_ROOT (DIR/mail/example.test/<user>/ = Maildir++ INBOX,
#     folder X in .X/)  PD_DOVECOT_CONF PD_DOVECOT_LOG PD_POSTFIX_CONFIG_DIR
#   PD_POSTFIX_LOG  PD_PIPE_ADDRESS=helpdesk@example.test  PD_PIPE_ARGV
# Users at start: support billing sales customer customer2 stranger agent1
# agent2 agent3 bot1 bot2. Unknown recipients are rejected by LMTP (Postfix
# bounces); mail for other domains is accepted and kept deferred in the queue
# ('postqueue -c $PD_POSTFIX_CONFIG_DIR -p'). start on an existing DIR keeps
# mail, users, password and certificates, and picks new ports.
# PD_PASSWORD=... in the environment of the first start sets the password.
# Mail to helpdesk@example.test (and helpdesk+anything@, recipient_delimiter)
# goes through Postfix's pipe(8) transport "postdesk", as $VMAIL_USER, to the
# command PD_PIPE_ARGV from start's environment (space-separated, no shell;
# default DIR/postdesk-pipe), as packaging/postfix/ shows for a real server.

set -euo pipefail
export LC_ALL=C

PD_DOMAIN=example.test
readonly DEFAULT_USERS=(support billing sales customer customer2 stranger agent1 agent2 agent3 bot1 bot2)
# Unprivileged system user that owns DIR/mail and runs the mail processes.
readonly VMAIL_USER=pdvmail
readonly PACKAGES=(dovecot-core dovecot-imapd dovecot-lmtpd postfix openssl)
readonly WAIT_SECS=${PD_STACK_WAIT_SECS:-20}

PROG=$(basename "$0")
PORT_CLASH=0

die() {
  echo "$PROG: error: $*" >&2
  exit 1
}
note() { echo "$PROG: $*" >&2; }

usage() {
  sed -n '/^#   mailstack.sh/s/^#   //p' "$0" >&2
  exit 2
}

need_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (Dovecot and Postfix masters need it)"
}

# ---------------------------------------------------------------- install

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# Stop the package's own (system-wide) daemons if anything started them.
stop_system_daemons() {
  local pid
  if [[ -r /run/dovecot/master.pid ]]; then
    pid=$(cat /run/dovecot/master.pid 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      note "stopping the system-wide dovecot (pid $pid)"
      dovecot stop 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  fi
  if [[ -r /var/spool/postfix/pid/master.pid ]]; then
    pid=$(tr -dc '0-9' </var/spool/postfix/pid/master.pid 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      note "stopping the system-wide postfix (pid $pid)"
      postfix stop 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  fi
  # Right after our own install, also disable their init scripts' autostart
  # (a machine without systemd would otherwise start them at boot).
  if [[ ${1:-} == just-installed ]] && command -v update-rc.d >/dev/null 2>&1; then
    local svc
    for svc in dovecot postfix; do
      if [[ -e /etc/init.d/$svc ]] && compgen -G "/etc/rc[2345].d/S*$svc" >/dev/null; then
        update-rc.d "$svc" disable >/dev/null 2>&1 || true
      fi
    done
  fi
  local port
  for port in 25 143 993 24; do
    if port_in_use "$port"; then
      note "warning: something still listens on 127.0.0.1:$port (not the test stack)"
    fi
  done
}

ensure_vmail_user() {
  if ! getent passwd "$VMAIL_USER" >/dev/null; then
    # (a concurrent start may create it at the same moment: recheck)
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "postdesk test mail" "$VMAIL_USER" 2>/dev/null ||
      getent passwd "$VMAIL_USER" >/dev/null || die "cannot create user $VMAIL_USER"
  fi
}

cmd_install() {
  need_root
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
  done
  # python3 is optional for mailstack.sh (port probing) but the selftest uses it.
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  if ((${#missing[@]})); then
    note "installing: ${missing[*]}"
    local created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\n# mailstack.sh: no daemon starts during package installs\nexit 101\n' \
        >/usr/sbin/policy-rc.d
      chmod 0755 /usr/sbin/policy-rc.d
      created_policy=1
    fi
    # shellcheck disable=SC2064  # expand now: remove only what we created
    trap "[[ $created_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d" EXIT
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "postfix postfix/mailname string mail.example.test" | debconf-set-selections
    local apt=(apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
      -o DPkg::Lock::Timeout=300)
    if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null; then
      note "apt-get install failed; updating package lists and retrying"
      "${apt[@]}" update </dev/null
      "${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null
    fi
    if ((created_policy)); then rm -f /usr/sbin/policy-rc.d; fi
    trap - EXIT
    stop_system_daemons just-installed
  else
    stop_system_daemons
  fi

  ensure_vmail_user
  for p in dovecot doveadm postfix postconf openssl; do
    command -v "$p" >/dev/null 2>&1 || die "$p not found after install"
  done
  getent passwd dovenull >/dev/null || die "user dovenull missing (dovecot-core should create it)"
  getent passwd postfix >/dev/null || die "user postfix missing (postfix should create it)"
  note "ready: $(dovecot --version | cut -d' ' -f1) / postfix $(postconf -dh mail_version)"
}

# ---------------------------------------------------------------- helpers

check_installed() {
  local c
  for c in dovecot doveadm postfix postconf openssl; do
    command -v "$c" >/dev/null 2>&1 || die "$c is not installed: run '$PROG install' first"
  done
}

abs_dir() {
  [[ -n ${1:-} ]] || usage
  local d=$1
  [[ $d == /* ]] || d=$PWD/$d
  # Normalise without requiring existence.
  d=$(realpath -m -- "$d")
  printf '%s\n' "$d"
}

stack_dir() {
  local d
  d=$(abs_dir "${1:-}")
  [[ -f $d/env ]] || die "$d/env not found: not a stack directory (run '$PROG start $d')"
  printf '%s\n' "$d"
}

load_env() {
  # shellcheck disable=SC1091
  source "$1/env"
}

port_in_use() {
  # True if something accepts connections on 127.0.0.1:$1.
  timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Print N distinct free loopback TCP ports from 20000-32767 (below Linux's
# ephemeral range, so outgoing connections don't grab them meanwhile).
pick_ports() {
  local n=$1
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$n" <<'PY'
import random, socket, sys
n = int(sys.argv[1]); got = []
for _ in range(2000):
    if len(got) == n:
        break
    p = random.randint(20000, 32767)
    if p in got:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
        got.append(p)
    except OSError:
        pass
    finally:
        s.close()
if len(got) != n:
    sys.exit("no free ports found")
print(" ".join(map(str, got)))
PY
  else
    local got=() p i
    for ((i = 0; i < 2000 && ${#got[@]} < n; i++)); do
      p=$((20000 + RANDOM % 12768))
      [[ " ${got[*]} " == *" $p "* ]] && continue
      port_in_use "$p" || got+=("$p")
    done
    ((${#got[@]} == n)) || die "no free ports found"
    echo "${got[*]}"
  fi
}

# wait_port PORT NAME LOG: wait until 127.0.0.1:PORT accepts connections.
wait_port() {
  local port=$1 name=$2 log=$3 deadline=$((SECONDS + WAIT_SECS))
  while ((SECONDS < deadline)); do
    port_in_use "$port" && return 0
    sleep 0.1
  done
  note "$name did not accept connections on 127.0.0.1:$port within ${WAIT_SECS}s"
  if [[ -f $log ]]; then
    note "last lines of $log:"
    tail -n 30 "$log" >&2
  fi
  return 1
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# wait_pid_gone PID SECS
wait_pid_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# Server processes of the stack in DIR: Dovecot or Postfix binaries whose
# cwd or root is inside DIR (Postfix daemons chdir to the queue, Dovecot's
# to base_dir or a user's home; login processes are chrooted into base_dir).
# stack_pids DIR [dovecot|postfix]
stack_pids() {
  local dir=$1 which=${2:-all} f pid exe
  # (find fails on processes that vanish meanwhile: ignore that)
  { find /proc/[0-9]*/cwd /proc/[0-9]*/root -maxdepth 0 -lname "$dir/*" 2>/dev/null || true; } |

    while read -r f; do
      pid=${f#/proc/}
      pid=${pid%%/*}
      exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
      case $exe in
      /usr/lib/dovecot/* | */sbin/dovecot | */bin/doveadm) [[ $which != postfix ]] || continue ;;
      /usr/lib/postfix/*) [[ $which != dovecot ]] || continue ;;
      *) continue ;;
      esac
      echo "$pid"
    done | sort -un
}

# ---------------------------------------------------------------- TLS

gen_tls() {
  local dir=$1 t=$1/tls
  [[ -s $t/server.pem && -s $t/server.key && -s $t/ca.pem && -s $t/bad-ca.pem ]] && return 0
  mkdir -p "$t"
  chmod 0755 "$t"
  (
    cd "$t"
    umask 077
    local ca
    for ca in ca bad-ca; do
      local cn="postdesk Test Root CA"
      [[ $ca == bad-ca ]] && cn="postdesk Untrusted Other CA"
      openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -keyout "$ca.key" -out "$ca.pem" \
        -subj "/O=postdesk test stack/OU=$ca/CN=$cn" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
    done
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
      -keyout server.key -out server.csr \
      -subj "/O=postdesk test stack/CN=localhost" 2>/dev/null
    cat >server.ext <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, DNS:mail.example.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
    openssl x509 -req -sha256 -days 825 -in server.csr -CA ca.pem -CAkey ca.key \
      -set_serial "0x$(openssl rand -hex 16)" -extfile server.ext -out server.pem 2>/dev/null
    rm -f server.csr
    chmod 0644 ca.pem bad-ca.pem server.pem
    chmod 0600 ca.key bad-ca.key server.key
  )
}

# ---------------------------------------------------------------- config

write_dovecot_conf() {
  local dir=$1
  local dh=""
  [[ -s /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
  mkdir -p "$dir/dovecot"
  cat >"$dir/dovecot/dovecot.conf" <<EOF
# Generated by mailstack.sh for the postdesk test stack (Dovecot 2.3 syntax).
instance_name = $INSTANCE
base_dir = $dir/dovecot-run
state_dir = $dir/dovecot-state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
debug_log_path = $dir/dovecot.log
hostname = mail.$PD_DOMAIN
verbose_proctitle = yes
shutdown_clients = yes

protocols = imap lmtp
# support+T<ticket>-<sig>@ (agent reply addresses) is delivered to support@.
recipient_delimiter = +
listen = 127.0.0.1

ssl = yes
ssl_cert = <$dir/tls/server.pem
ssl_key = <$dir/tls/server.key
$dh
ssl_min_protocol = TLSv1.2

auth_mechanisms = plain login
disable_plaintext_auth = no
auth_failure_delay = 0
auth_cache_size = 0
login_trusted_networks = 127.0.0.0/8

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu $dir/dovecot/users
}
userdb {
  driver = passwd-file
  args = username_format=%Lu $dir/dovecot/users
  default_fields = uid=$VMAIL_USER gid=$VMAIL_USER home=$dir/home/%Ld/%Ln
}

mail_location = maildir:$dir/mail/%Ld/%Ln
mail_uid = $VMAIL_USER
mail_gid = $VMAIL_USER
first_valid_uid = 1
mail_fsync = never
mail_max_userip_connections = 1000
namespace inbox {
  inbox = yes
  separator = /
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PD_IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $PD_IMAPS_PORT
    ssl = yes
  }
}
# No auth penalty (2..15 s delay on every login from an IP after a failed
# one): tests do wrong-password logins on purpose. The auth process cannot
# connect to this socket and so disables the penalty.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service lmtp {

  inet_listener lmtp {
    address = 127.0.0.1
    port = $PD_LMTP_PORT
  }
}
protocol lmtp {
  postmaster_address = postmaster@$PD_DOMAIN
}
EOF
}

write_postfix_conf() {
  local dir=$1 pf=$1/postfix
  mkdir -p "$pf"
  chmod 0755 "$pf"
  cat >"$pf/main.cf" <<EOF
# Generated by mailstack.sh for the postdesk test stack (Postfix 3.x).
compatibility_level = 3.6
queue_directory = $dir/postfix-spool
data_directory = $dir/postfix-data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-pdstack
maillog_file = $dir/postfix.log
maillog_file_prefixes = /var, /dev/stdout, $dir/
smtputf8_enable = no
biff = no
append_dot_mydomain = no

myhostname = mail.$PD_DOMAIN
mydomain = $PD_DOMAIN
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled in the test stack

virtual_mailbox_domains = $PD_DOMAIN
virtual_mailbox_maps =
virtual_transport = lmtp:inet:127.0.0.1:$PD_LMTP_PORT
recipient_delimiter = +
# Other domains: accept, then keep the mail queued (deferred) without any
# delivery attempt, DNS lookup or traffic ('postqueue -p' shows it).
default_transport = smtp
relay_transport = smtp
defer_transports = smtp

smtpd_banner = \$myhostname ESMTP postdesk test relay
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_tls_security_level = none
smtp_tls_security_level = none
lmtp_tls_security_level = none
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0

message_size_limit = 104857600
mailbox_size_limit = 0
virtual_mailbox_limit = 0

# Retry quickly after an LMTP outage. minimal_backoff_time must stay above
# queue_run_delay + 1s: with 1s the queue scan can grab a message that is
# still being deferred ("skipped, still being delivered") and then parks it
# for 60 s.
queue_run_delay = 1s
minimal_backoff_time = 3s
maximal_backoff_time = 6s

maximal_queue_lifetime = 1d
bounce_queue_lifetime = 1d
delay_warning_time = 0
lmtp_connect_timeout = 5s

# The MTA pipe to postdesk (packaging/postfix/): helpdesk@ and, through the
# delimiter, helpdesk+T...@ go to the pipe(8) transport of master.cf.
transport_maps = texthash:$pf/transport
EOF
  printf 'helpdesk@%s postdesk:\n' "$PD_DOMAIN" >"$pf/transport"
  cat >"$pf/master.cf" <<EOF
# Generated by mailstack.sh: no chroot, smtpd only on 127.0.0.1:$PD_SMTP_PORT.
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$PD_SMTP_PORT inet n - n - - smtpd
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
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
postdesk  unix  -       n       n       -       4       pipe
  flags=DRq user=$VMAIL_USER argv=$PD_PIPE_ARGV
EOF
  chmod 0644 "$pf/main.cf" "$pf/master.cf" "$pf/transport"
  # Postfix waits (in 0.3 s steps) until main.cf is over a second old, so it
  # never reads a half-written file: backdate the files we just wrote.
  touch -d "@$(($(date +%s) - 10))" "$pf/main.cf" "$pf/master.cf" "$pf/transport"

}

# users file line for LOCALPART (passwd-file format; uid/gid/home from defaults)
user_line() { printf '%s@%s:{PLAIN}%s::::::\n' "$1" "$PD_DOMAIN" "$PD_PASSWORD"; }

write_env() {
  local dir=$1
  cat >"$dir/env.tmp" <<EOF
# postdesk test mail stack - source this file
export PD_STACK_DIR=$dir
export PD_DOMAIN=$PD_DOMAIN
export PD_IMAP_HOST=127.0.0.1
export PD_IMAP_PORT=$PD_IMAP_PORT
export PD_IMAPS_PORT=$PD_IMAPS_PORT
export PD_SMTP_HOST=127.0.0.1
export PD_SMTP_PORT=$PD_SMTP_PORT
export PD_LMTP_PORT=$PD_LMTP_PORT
export PD_CA_FILE=$dir/tls/ca.pem
export PD_BAD_CA_FILE=$dir/tls/bad-ca.pem
export PD_TLS_SERVER_NAME=localhost
export PD_PASSWORD=$PD_PASSWORD
export PD_MAIL_ROOT=$dir/mail/$PD_DOMAIN
export PD_USERS="${DEFAULT_USERS[*]}"
export PD_DOVECOT_CONF=$dir/dovecot/dovecot.conf
export PD_DOVECOT_LOG=$dir/dovecot.log
export PD_POSTFIX_CONFIG_DIR=$dir/postfix
export PD_POSTFIX_LOG=$dir/postfix.log
export PD_PIPE_ARGV="$PD_PIPE_ARGV"
export PD_PIPE_ADDRESS=helpdesk@$PD_DOMAIN
EOF
  mv -f "$dir/env.tmp" "$dir/env"
  chmod 0644 "$dir/env"
}

# ---------------------------------------------------------------- daemons

dovecot_pid() {
  local f=$1/dovecot-run/master.pid pid
  [[ -r $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  pid_alive "$pid" || return 1
  echo "$pid"
}

postfix_pid() {
  local f=$1/postfix-spool/pid/master.pid pid
  [[ -r $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  pid_alive "$pid" || return 1
  echo "$pid"
}

do_start_dovecot() {
  local dir=$1
  load_env "$dir"
  if dovecot_pid "$dir" >/dev/null; then
    note "dovecot already running"
    return 0
  fi
  mkdir -p "$dir/dovecot-run" "$dir/dovecot-state" "$dir/mail" "$dir/home"
  chown "$VMAIL_USER:$VMAIL_USER" "$dir/mail" "$dir/home"
  chmod 0750 "$dir/mail" "$dir/home"
  local p
  for p in "$PD_IMAP_PORT" "$PD_IMAPS_PORT" "$PD_LMTP_PORT"; do
    if port_in_use "$p"; then
      note "port 127.0.0.1:$p is already taken by another process"
      PORT_CLASH=1
      return 1
    fi
  done
  if ! dovecot -c "$dir/dovecot/dovecot.conf" >>"$dir/dovecot.log" 2>&1; then
    note "dovecot failed to start; last lines of $dir/dovecot.log:"
    tail -n 30 "$dir/dovecot.log" >&2
    return 1
  fi
  for p in "$PD_IMAP_PORT" "$PD_IMAPS_PORT" "$PD_LMTP_PORT"; do
    wait_port "$p" dovecot "$dir/dovecot.log" || return 1
  done
}

do_stop_dovecot() {
  local dir=$1 pid children
  if pid=$(dovecot_pid "$dir"); then
    # The master's children (imap sessions among them) do not always die with it; an outage must cut every
    # client connection, so remember them and make sure.
    children=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" 15; then
      note "dovecot master $pid ignored SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
      wait_pid_gone "$pid" 5 || true
    fi
  fi
  if [[ -n "${children:-}" ]]; then
    # shellcheck disable=SC2086  # a list of pids
    kill -KILL $children 2>/dev/null || true
  fi
  # Leftover Dovecot processes (mail processes are killed by the master with
  # shutdown_clients=yes; this is only a safety net).
  kill_leftovers "$dir" dovecot
  rm -f "$dir/dovecot-run/master.pid"
}

do_start_postfix() {
  local dir=$1
  load_env "$dir"
  if postfix_pid "$dir" >/dev/null; then
    note "postfix already running"
    return 0
  fi
  mkdir -p "$dir/postfix-spool" "$dir/postfix-data"
  chown root:root "$dir/postfix-spool"
  chmod 0755 "$dir/postfix-spool"
  chown postfix:postfix "$dir/postfix-data"
  chmod 0700 "$dir/postfix-data"
  touch "$dir/postfix.log"
  if port_in_use "$PD_SMTP_PORT"; then
    note "port 127.0.0.1:$PD_SMTP_PORT is already taken by another process"
    PORT_CLASH=1
    return 1
  fi
  # 'postfix start' runs post-install create-missing (queue directories) and
  # the permission checks (~0.3 s), then 'master -w' which returns once it is
  # ready. Once the queue exists, a restart skips the checks (quick-start).
  [[ -d $dir/postfix-spool/active ]] && touch "$dir/postfix-spool/quick-start"
  if ! postfix -c "$dir/postfix" start >>"$dir/postfix-ctl.log" 2>&1; then
    note "postfix failed to start; $dir/postfix-ctl.log:"
    tail -n 30 "$dir/postfix-ctl.log" >&2
    [[ -f $dir/postfix.log ]] && tail -n 30 "$dir/postfix.log" >&2
    return 1
  fi
  wait_port "$PD_SMTP_PORT" postfix "$dir/postfix.log"
}

do_stop_postfix() {
  local dir=$1 pid
  if pid=$(postfix_pid "$dir"); then
    # What 'postfix stop' does (the master signals its process group), minus
    # its 1 s polling granularity.
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" 15; then
      note "postfix master $pid did not stop; killing"
      kill -KILL "$pid" 2>/dev/null || true
      wait_pid_gone "$pid" 5 || true
    fi
  fi
  kill_leftovers "$dir" postfix
}

# kill_leftovers DIR dovecot|postfix: kill remaining processes of one server.
kill_leftovers() {
  local dir=$1 which=$2 pid pids=()
  for pid in $(stack_pids "$dir" "$which"); do
    pids+=("$pid")
  done
  ((${#pids[@]})) || return 0
  note "killing leftover $which processes: ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for pid in "${pids[@]}"; do
    wait_pid_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
  done
}

# ---------------------------------------------------------------- commands

cmd_start() {
  need_root
  check_installed
  local dir
  dir=$(abs_dir "${1:-}")
  # The path goes unquoted into dovecot.conf and main.cf.
  [[ $dir =~ ^[A-Za-z0-9/._+-]+$ ]] || die "stack directory '$dir' has characters other than A-Za-z0-9/._+-"
  mkdir -p "$dir"
  ensure_vmail_user

  # Unprivileged daemons (dovecot auth, $VMAIL_USER, postfix) must traverse DIR.
  chmod 0755 "$dir"
  local x=$dir
  while [[ $x != / ]]; do
    x=$(dirname "$x")
    runuser -u "$VMAIL_USER" -- test -x "$x" 2>/dev/null ||
      die "$x is not searchable by unprivileged users; put the stack directory elsewhere (e.g. mktemp -d)"
  done
  if dovecot_pid "$dir" >/dev/null || postfix_pid "$dir" >/dev/null; then
    die "a stack is already running in $dir (run '$PROG stop $dir' first)"
  fi
  getent passwd dovenull >/dev/null || die "user dovenull missing: run '$PROG install'"
  getent passwd postfix >/dev/null || die "user postfix missing: run '$PROG install'"

  local t0=$EPOCHREALTIME
  # Keep the password of an existing stack directory so saved mail stays usable.
  if [[ -f $dir/env ]]; then
    PD_PASSWORD=$(sed -n 's/^export PD_PASSWORD=//p' "$dir/env")
  fi
  PD_PASSWORD=${PD_PASSWORD:-pd-$(openssl rand -hex 8)}
  PD_PIPE_ARGV=${PD_PIPE_ARGV:-$dir/postdesk-pipe}
  [[ $PD_PIPE_ARGV =~ ^[A-Za-z0-9/._+\ -]+$ ]] || die "PD_PIPE_ARGV may only use A-Za-z0-9/._+- and spaces"
  [[ $PD_PASSWORD =~ ^[A-Za-z0-9._+-]+$ ]] || die "PD_PASSWORD may only use A-Za-z0-9._+-"
  INSTANCE=pdstack-$(printf '%s' "$dir" | md5sum | cut -c1-8)
  gen_tls "$dir"

  mkdir -p "$dir/dovecot"
  if [[ ! -f $dir/dovecot/users ]]; then
    local u
    for u in "${DEFAULT_USERS[@]}"; do user_line "$u"; done >"$dir/dovecot/users"
  fi
  chmod 0644 "$dir/dovecot/users"

  local attempt started=0 f
  local -A logsize
  for attempt in 1 2 3; do
    read -r PD_IMAP_PORT PD_IMAPS_PORT PD_LMTP_PORT PD_SMTP_PORT <<<"$(pick_ports 4)"
    write_dovecot_conf "$dir"
    write_postfix_conf "$dir"
    write_env "$dir"
    for f in dovecot.log postfix.log; do
      logsize[$f]=$(stat -c %s "$dir/$f" 2>/dev/null || echo 0)
    done
    PORT_CLASH=0
    if do_start_dovecot "$dir" && do_start_postfix "$dir"; then
      started=1
      break
    fi
    do_stop_postfix "$dir" || true
    do_stop_dovecot "$dir" || true
    # Another process may have taken a port between probing and binding.
    for f in dovecot.log postfix.log; do
      if tail -c "+$((logsize[$f] + 1))" "$dir/$f" 2>/dev/null | grep -q "Address already in use"; then
        PORT_CLASH=1
      fi
    done
    if ((PORT_CLASH && attempt < 3)); then
      note "port clash, retrying with other ports"
      continue
    fi
    break
  done
  ((started)) || die "could not start the mail stack in $dir (see $dir/dovecot.log, $dir/postfix.log)"
  local t1=$EPOCHREALTIME
  note "started in $(((${t1/./} - ${t0/./}) / 1000)) ms"

  cat "$dir/env"
}

cmd_stop() {
  need_root
  local dir
  dir=$(abs_dir "${1:-}")
  [[ -d $dir ]] || return 0
  # Both masters take 1-2 s to shut down: stop them in parallel.
  do_stop_postfix "$dir" &
  local bg=$!
  do_stop_dovecot "$dir"
  wait "$bg" || true
  local left
  left=$(stack_pids "$dir" | tr '\n' ' ')
  [[ -z ${left// /} ]] || die "processes still running after stop: $left"
}

cmd_status() {
  local dir pid rc=0
  dir=$(stack_dir "${1:-}")
  if pid=$(dovecot_pid "$dir"); then echo "dovecot: running (pid $pid)"; else
    echo "dovecot: stopped"
    rc=1
  fi
  if pid=$(postfix_pid "$dir"); then echo "postfix: running (pid $pid)"; else
    echo "postfix: stopped"
    rc=1
  fi
  local p
  for p in $(stack_pids "$dir"); do
    printf '  %s %s\n' "$p" "$({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null || true)"
  done
  return "$rc"
}

# Normalise an address argument: LOCALPART -> LOCALPART@example.test
addr() {
  local a=${1,,}
  [[ -n $a ]] || usage
  [[ $a == *@* ]] || a=$a@$PD_DOMAIN
  printf '%s\n' "$a"
}

doveadm_c() {
  local dir=$1
  shift
  doveadm -c "$dir/dovecot/dovecot.conf" "$@"
}

require_dovecot() {
  dovecot_pid "$1" >/dev/null || die "dovecot of $1 is not running (run '$PROG start-dovecot $1')"
}

cmd_adduser() {
  need_root
  local dir local_part
  dir=$(stack_dir "${1:-}")
  local_part=${2:-}
  local_part=${local_part%%@*}
  local_part=${local_part,,}
  [[ $local_part =~ ^[a-z0-9][a-z0-9._+-]*$ ]] || die "bad local part '${2:-}'"
  load_env "$dir"
  if grep -q "^$local_part@$PD_DOMAIN:" "$dir/dovecot/users"; then
    note "$local_part@$PD_DOMAIN exists"
  else
    # passwd-file is re-read by Dovecot when it changes: no restart needed.
    local s=$EPOCHSECONDS
    user_line "$local_part" >>"$dir/dovecot/users"
    # But Dovecot checks the file at most once per second: a lookup earlier
    # in this second would keep the old list until the next one.
    while ((EPOCHSECONDS == s)); do sleep 0.05; done

  fi
  echo "$local_part@$PD_DOMAIN"
}

cmd_deliver() {
  need_root
  local dir a f
  dir=$(stack_dir "${1:-}")
  (($# >= 3)) || usage
  a=$(addr "$2")
  shift 2
  require_dovecot "$dir"
  for f in "$@"; do
    [[ -r $f ]] || die "cannot read $f"
    doveadm_c "$dir" save -u "$a" -m INBOX <"$f" || die "doveadm save of $f for $a failed"
  done
}

mailbox_count() {
  local dir=$1 a=$2 mbox=$3 out
  local rc=0
  out=$(doveadm_c "$dir" -f flow mailbox status -u "$a" messages "$mbox" 2>&1) || rc=$?
  case $rc in
  0) ;;
  68) # EX_NOTFOUND: the mailbox does not exist (yet)
    echo 0
    return 0
    ;;
  67) die "no such user: $a" ;;
  *) die "doveadm mailbox status for $a/$mbox failed: $out" ;;
  esac
  # flow format: mailbox=INBOX messages=N (one line per mailbox)
  sed -n 's/.*messages=\([0-9]*\).*/\1/p' <<<"$out" | head -n1
}

cmd_count() {
  need_root
  local dir a mbox
  dir=$(stack_dir "${1:-}")
  a=$(addr "${2:-}")
  mbox=${3:-INBOX}
  if dovecot_pid "$dir" >/dev/null; then
    mailbox_count "$dir" "$a" "$mbox"
  else
    # Dovecot is down: count the files of the maildir directly.
    local md
    md=$(maildir_of "$dir" "$a" "$mbox")
    find "$md/cur" "$md/new" -maxdepth 1 -type f 2>/dev/null | wc -l
  fi
}

cmd_load() {
  need_root
  local dir a src
  dir=$(stack_dir "${1:-}")
  a=$(addr "${2:-}")
  src=${3:-}
  [[ -d $src/cur || -d $src/new ]] || die "$src is not a Maildir (no cur/ or new/)"
  require_dovecot "$dir"
  local before after work
  before=$(mailbox_count "$dir" "$a" INBOX)
  # Import from a private copy: Dovecot renames new/ -> cur/ and writes its
  # uidlist into the source, and it reads the files as $VMAIL_USER.
  work=$(mktemp -d "$dir/import.XXXXXX")
  mkdir -p "$work/src/cur" "$work/src/new" "$work/src/tmp" "$work/ctl"
  local sub
  for sub in cur new; do
    if [[ -d $src/$sub ]]; then
      find "$src/$sub" -maxdepth 1 -type f -exec cp -t "$work/src/$sub" {} +
    fi
  done
  chown -R "$VMAIL_USER:$VMAIL_USER" "$work"
  if ! doveadm_c "$dir" import -u "$a" \
    "maildir:$work/src:INDEX=MEMORY:CONTROL=$work/ctl" "" all; then

    rm -rf "$work"
    die "doveadm import into $a failed"
  fi
  rm -rf "$work"
  after=$(mailbox_count "$dir" "$a" INBOX)
  echo $((after - before))
}

# maildir_of DIR ADDRESS MAILBOX: the Maildir (cur/new/tmp parent) of a mailbox.
maildir_of() {
  local dir=$1 a=$2 mbox=$3 domain local_part root
  local_part=${a%@*}
  domain=${a#*@}
  root=$dir/mail/$domain/$local_part
  if [[ ${mbox^^} == INBOX ]]; then
    echo "$root"
  else
    # Maildir++ layout: folder a/b lives in .a.b
    echo "$root/.${mbox//\//.}"
  fi
}

cmd_fetch() {
  need_root
  local dir a mbox md
  dir=$(stack_dir "${1:-}")
  a=$(addr "${2:-}")
  mbox=${3:-INBOX}
  md=$(maildir_of "$dir" "$a" "$mbox")
  [[ -d $md ]] || return 0
  # In UID order (from dovecot-uidlist), then files Dovecot has not indexed
  # yet, oldest first (Dovecot's file names start with the delivery time).
  # A file may move from new/ to cur/ (and its :2,flags suffix change) when
  # an IMAP client opens the mailbox.
  { find "$md/new" "$md/cur" -maxdepth 1 -type f 2>/dev/null || true; } |
    awk -F/ '{ print $NF "\t" $0 }' | sort -t. -k1,1n -k2,2 | cut -f2- |
    awk -v uidlist="$md/dovecot-uidlist" '
      { base = $0; sub(/.*\//, "", base); sub(/:2,.*/, "", base)
        path[base] = $0; order[++n] = base }
      END {
        while ((getline line < uidlist) > 0) {
          if (++ln == 1) continue
          i = index(line, ":"); if (i == 0) continue
          b = substr(line, i + 1)
          if ((b in path) && !(b in done)) { print path[b]; done[b] = 1 }
        }
        for (k = 1; k <= n; k++) if (!(order[k] in done)) print path[order[k]]
      }'
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  case $cmd in
  install) cmd_install ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  start-dovecot)
    need_root
    check_installed
    local d
    d=$(stack_dir "${1:-}")
    do_start_dovecot "$d" || die "dovecot did not start"
    ;;
  stop-dovecot)
    need_root
    local d
    d=$(stack_dir "${1:-}")
    do_stop_dovecot "$d"
    ;;
  start-postfix)
    need_root
    check_installed
    local d
    d=$(stack_dir "${1:-}")
    do_start_postfix "$d" || die "postfix did not start"
    ;;
  stop-postfix)
    need_root
    local d
    d=$(stack_dir "${1:-}")
    do_stop_postfix "$d"
    ;;
  adduser) cmd_adduser "$@" ;;
  deliver) cmd_deliver "$@" ;;
  load) cmd_load "$@" ;;
  count) cmd_count "$@" ;;
  fetch) cmd_fetch "$@" ;;
  -h | --help | help) usage ;;
  *)
    note "unknown command '$cmd'"
    usage
    ;;
  esac
}

main "$@"; exit
