#!/usr/bin/env bash
# The .deb as a Debian admin meets it, on this machine (as root; CI is a fresh Debian 12 without systemd as PID 1):
# build and lint it, install it, fill in the config for the test stack (scripts/mailstack.sh), run `postdesk check`
# and the daemon as the unit does (runuser as the service user, the unit's own command lines, its credential and
# umask), see a mail become a ticket, then reinstall, remove and purge, and check nothing is left.
#   scripts/package-test.sh [--no-build]      (--no-build: use the newest target/debian/postdesk_*.deb)
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

die() { echo "package-test: FAILED: $*" >&2; exit 1; }
note() { echo "package-test: $*" >&2; }
[[ $(id -u) -eq 0 ]] || die "must run as root (dpkg -i)"
dpkg -s postdesk >/dev/null 2>&1 && die "postdesk is already installed here; this test installs and purges it"

UNIT=/usr/lib/systemd/system/postdesk.service
CONFIG=/etc/postdesk/postdesk.toml
stack="" daemon="" creds=""
# The daemon this test started: the postdesk process under the runuser it ran from.
daemon_pid() { pgrep -u postdesk -x postdesk 2>/dev/null || true; }
cleanup() {
  local pid
  for pid in $(daemon_pid); do kill "$pid" 2>/dev/null || true; done
  [[ -z $stack ]] || bash scripts/mailstack.sh stop "$stack" >/dev/null 2>&1 || true
  [[ -z $stack ]] || rm -rf "$stack"
  [[ -z $creds ]] || rm -rf "$creds"
  # Leave the machine as it was, also when a step failed.
  if dpkg -s postdesk >/dev/null 2>&1; then dpkg --purge postdesk >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

t0=$SECONDS
if [[ ${1:-} != --no-build ]]; then bash scripts/build-deb.sh; fi
deb=$(ls -t target/debian/postdesk_*.deb | head -n1)
t_build=$((SECONDS - t0))
t1=$SECONDS

# --- lint: the package and the unit
command -v lintian >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lintian
note "lintian $(basename "$deb"):"
lintian --display-info --fail-on error,warning "$deb" || die "lintian reports errors or warnings (above)"
systemd-analyze security --offline=yes --threshold=12 packaging/postdesk.service | tail -n1
systemd-analyze security --offline=yes --threshold=12 packaging/postdesk.service >/dev/null ||
  die "the unit's exposure is over 1.2"

# --- install
dpkg -i "$deb"
perms() { stat -c '%U:%G %a' "$1"; }
[[ $(perms $CONFIG) == "root:postdesk 640" ]] || die "$CONFIG is $(perms $CONFIG)"
[[ $(perms /etc/postdesk) == "root:postdesk 750" ]] || die "/etc/postdesk is $(perms /etc/postdesk)"
[[ $(perms /var/lib/postdesk) == "postdesk:postdesk 700" ]] || die "/var/lib/postdesk is $(perms /var/lib/postdesk)"
for page in postdesk.8 postdesk.toml.5; do
  [[ -f /usr/share/man/man${page##*.}/$page.gz ]] || die "man page $page missing"
  zcat "/usr/share/man/man${page##*.}/$page.gz" | grep -q '^\.SH' || die "man page $page empty"
done
# As an admin reads them: `man` finds both pages (man-db is not on every minimal machine).
command -v man >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends man-db >/dev/null
man -w postdesk >/dev/null || die "man postdesk finds no page"
man -w postdesk.toml >/dev/null || die "man postdesk.toml finds no page"
MANWIDTH=80 man postdesk.toml 2>/dev/null | grep -q 'max_message_bytes' || die "man postdesk.toml does not render"
bash -c 'source /usr/share/bash-completion/completions/postdesk && complete -p postdesk' >/dev/null ||
  die "bash completion does not load"
systemd-analyze verify "$UNIT" || die "systemd-analyze verify $UNIT"

# --- configure for the test stack, as an admin would: host, port, user, and the password beside the config
stack=$(mktemp -d /tmp/pd-pkg-stack.XXXXXX)
bash scripts/mailstack.sh start "$stack" >/dev/null
# shellcheck disable=SC1091
source "$stack/env"
sed -i -e 's/^address = .*/address = "support@example.test"/' \
  -e '/^\[imap\]/,/^\[/{s/^host = .*/host = "127.0.0.1"/;s/^# port = 993 .*/port = '"$PD_IMAP_PORT"'/;s/^tls = .*/tls = "plain"/;s/^username = .*/username = "support@example.test"/}' \
  -e '/^\[smtp\]/,/^\[/{s/^host = .*/host = "127.0.0.1"/;s/^port = .*/port = '"$PD_SMTP_PORT"'/;s/^tls = .*/tls = "plain"/}' \
  $CONFIG
printf '%s\n' "$PD_PASSWORD" | install -m 600 /dev/stdin /etc/postdesk/imap-password
[[ $(perms $CONFIG) == "root:postdesk 640" ]] || die "editing changed $CONFIG to $(perms $CONFIG)"

# The unit's command lines, run as systemd would: its user, its umask, its credential (LoadCredential= copies the
# file into a directory only the service can read and names it in $CREDENTIALS_DIRECTORY), its environment.
creds=$(mktemp -d /tmp/pd-pkg-creds.XXXXXX)
install -o postdesk -g postdesk -m 0400 /etc/postdesk/imap-password "$creds/imap-password"
chown postdesk:postdesk "$creds"
chmod 0500 "$creds"
unit_line() { sed -n "s/^$1=//p" "$UNIT"; }
as_unit() {
  # shellcheck disable=SC2046  # the unit's command line, split as systemd splits it (no quoting in ours)
  runuser -u postdesk -- env -i PATH=/usr/bin:/bin CREDENTIALS_DIRECTORY="$creds" $(unit_line Environment) \
    sh -c 'umask 0077 && exec "$@"' sh "$@"
}
# shellcheck disable=SC2046
as_unit $(unit_line ExecStartPre) || die "ExecStartPre ($(unit_line ExecStartPre)) fails as the postdesk user"
runuser -u postdesk -- /usr/bin/postdesk --config $CONFIG check >/dev/null || die "check as the admin runs it"

bash scripts/mailstack.sh deliver "$stack" support tests/fixtures/new-ticket.eml
# shellcheck disable=SC2046
as_unit $(unit_line ExecStart) 2>"$stack/postdesk.log" &
daemon=$!
tickets() { runuser -u postdesk -- /usr/bin/postdesk --config $CONFIG ticket list --json 2>/dev/null | grep -c '"number"' || true; }
for _ in $(seq 1 120); do
  [[ $(tickets) -ge 1 ]] && break
  kill -0 "$daemon" 2>/dev/null || { cat "$stack/postdesk.log" >&2; die "the daemon exited"; }
  sleep 0.5
done
[[ $(tickets) -eq 1 ]] || { cat "$stack/postdesk.log" >&2; die "no ticket from the mailbox"; }
for _ in $(seq 1 40); do
  [[ $(bash scripts/mailstack.sh count "$stack" support postdesk/processed) -eq 1 ]] && break
  sleep 0.5
done
[[ $(bash scripts/mailstack.sh count "$stack" support postdesk/processed) -eq 1 ]] || die "mail not moved"
# The MTA's way in, as Postfix's pipe runs it (the service user): handed to the running daemon over its socket.
printf 'From: Piped <piped@customer.example>\nTo: support@example.test\nSubject: Piped in\nMessage-ID: <pkg.pipe@customer.example>\n\nHello.\n' |
  runuser -u postdesk -- /usr/bin/postdesk --config $CONFIG ingest >/dev/null || die "ingest as the service user failed"
grep -q "mail handed over" "$stack/postdesk.log" || { cat "$stack/postdesk.log" >&2; die "ingest did not hand the mail to the daemon"; }
[[ $(tickets) -eq 2 ]] || die "the piped mail is no ticket"
kill -TERM "$(daemon_pid)"
wait "$daemon" || die "the daemon did not stop cleanly on SIGTERM (exit $?)"
daemon=""
note "a mail from the stack's mailbox and one piped in became tickets, as the unit runs postdesk"
[[ ! -e /var/lib/postdesk/ingest.sock ]] || die "the stopped daemon left its socket"
[[ -z $(find /var/lib/postdesk ! -user postdesk) ]] || die "files in /var/lib/postdesk not owned by postdesk"

# --- reinstall (an upgrade to the same version): the admin's config and the tickets stay
dpkg -i "$deb" >/dev/null
grep -q '^address = "support@example.test"' $CONFIG || die "reinstall replaced the admin's config"
[[ $(perms $CONFIG) == "root:postdesk 640" ]] || die "reinstall: $CONFIG is $(perms $CONFIG)"
[[ $(perms /etc/postdesk/imap-password) == "root:root 600" ]] || die "imap-password is $(perms /etc/postdesk/imap-password)"
# --- remove: the program goes, config and state stay; installing again finds them
dpkg -r postdesk >/dev/null
[[ ! -e /usr/bin/postdesk && -f $CONFIG && -f /var/lib/postdesk/postdesk.db ]] || die "remove: wrong files left"
dpkg -i "$deb" >/dev/null
[[ $(tickets) -eq 2 ]] || die "the tickets are gone after remove + install"
# --- purge: nothing left
uid=$(id -u postdesk)
dpkg --purge postdesk >/dev/null
left=()
for p in /usr/bin/postdesk /etc/postdesk /var/lib/postdesk "$UNIT" /usr/share/doc/postdesk \
  /usr/share/man/man8/postdesk.8.gz /usr/share/bash-completion/completions/postdesk; do
  [[ ! -e $p ]] || left+=("$p")
done
getent passwd postdesk >/dev/null && left+=("user postdesk")
getent group postdesk >/dev/null && left+=("group postdesk")
rm -rf "$creds"
creds=""
while IFS= read -r f; do left+=("$f"); done < <(find /etc /var /usr /run /tmp -xdev -uid "$uid" 2>/dev/null)
((${#left[@]} == 0)) || die "left after purge: ${left[*]}"
dpkg -s postdesk >/dev/null 2>&1 && die "dpkg still knows postdesk"

t_test=$((SECONDS - t1))
note "ok: .deb build ${t_build}s, package test ${t_test}s"
