#!/usr/bin/env bash
# The demo: a real local mail stack (Dovecot IMAP + Postfix SMTP on loopback), `postdesk run` watching the
# support mailbox with the embedded SQLite database, a few customer mails sent through Postfix, and the tickets
# that came out. Everything lives in ./.demo (or $DEMO_DIR); run it again to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo=${DEMO_DIR:-$root/.demo}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

command -v cargo >/dev/null || { echo "demo.sh: cargo not found; install Rust (https://rustup.rs) first" >&2; exit 1; }
say "Installing Dovecot and Postfix if missing, building postdesk (release)"
bash scripts/mailstack.sh install
cargo build --release --quiet
pd="$root/target/release/postdesk"

if [[ -f "$demo/stack/env" ]]; then bash scripts/mailstack.sh stop "$demo/stack" >/dev/null 2>&1 || true; fi
rm -rf "$demo"
mkdir -p "$demo"
say "Starting the local mail stack in $demo/stack"
bash scripts/mailstack.sh start "$demo/stack" >/dev/null
# shellcheck disable=SC1091
source "$demo/stack/env"

daemon_pid=
cleanup() {
  if [[ -n "$daemon_pid" ]]; then kill -TERM "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  bash "$root/scripts/mailstack.sh" stop "$demo/stack" >/dev/null 2>&1 || true
}
trap cleanup EXIT

printf '%s' "$PD_PASSWORD" > "$demo/imap-password"
chmod 600 "$demo/imap-password"
cat > "$demo/postdesk.toml" <<TOML
site_name = "Example Support (demo)"
address = "support@example.test"

[storage]
state_dir = "state"

[rules]
dir = "$root/rules"

[templates]
dir = "$root/templates"

[imap]
host = "127.0.0.1"
port = $PD_IMAP_PORT
tls = "plain"          # loopback only
username = "support@example.test"
password_file = "imap-password"

[smtp]
host = "127.0.0.1"
port = $PD_SMTP_PORT
tls = "plain"          # loopback only

[[queues]]
name = "billing"
address = "billing@example.test"
templates = "billing"

[[queues]]
name = "sales"

[[queues]]
name = "vip"

# Agent One works support and billing: she is notified and can answer by mail.
[[role]]
name = "first-level"
queues = ["support", "billing"]

[[agent]]
address = "agent1@example.test"
name = "Agent One"
roles = ["first-level"]
TOML
"$pd" --config "$demo/postdesk.toml" check

say "Starting postdesk run (log: $demo/postdesk.log)"
POSTDESK_LOG=info "$pd" --config "$demo/postdesk.toml" run 2>"$demo/postdesk.log" &
daemon_pid=$!

send() { # envelope sender, file — through Postfix to support@, as an MTA alias would deliver it
  /usr/sbin/sendmail -C "$PD_POSTFIX_CONFIG_DIR" -f "$1" support@example.test < "$2"
}
tickets() { "$pd" --config "$demo/postdesk.toml" ticket list --json | grep -c '"number"' || true; }
wait_tickets() {
  for _ in $(seq 1 300); do [[ "$(tickets)" -ge "$1" ]] && return 0; sleep 0.1; done
  echo "demo.sh: expected $1 tickets; postdesk log:" >&2; tail -20 "$demo/postdesk.log" >&2; return 1
}
wait_for_mail() { # address, pattern, tries 0.1 s apart: prints the path of the first of its mails that matches
  for _ in $(seq 1 "$3"); do
    for f in $(bash scripts/mailstack.sh fetch "$demo/stack" "$1"); do
      grep -q "$2" "$f" && { echo "$f"; return 0; }
    done
    sleep 0.1
  done
  return 1
}

say "Customers write to support@ and billing@example.com (sent through Postfix, delivered by LMTP into Dovecot)"
send customer@example.test scripts/demo-mail/01-printer.eml
send customer2@example.test scripts/demo-mail/02-invoice.eml
wait_tickets 2
first=$("$pd" --config "$demo/postdesk.toml" ticket list --queue support --json | grep -o '"number": "[0-9]*"' | tail -1 | grep -o '[0-9]\{16,\}')

say "Alice answers with the ticket token in the subject; an out-of-office arrives too"
cat > "$demo/reply.eml" <<MAIL
From: Alice Example <customer@example.test>
To: support@example.test
Subject: Re: [Ticket#$first] Printer on the 3rd floor is on fire
Message-ID: <demo-reply@customer.example>
In-Reply-To: <demo-printer@customer.example>
Content-Type: text/plain; charset=utf-8

It is still smoking. I unplugged it.

On Mon, 23 Nov 2026 at 09:15, Alice Example <alice@customer.example> wrote:
> the printer on the 3rd floor is smoking again. Could someone look at it?
MAIL
send customer@example.test "$demo/reply.eml"
send stranger@example.test scripts/demo-mail/03-out-of-office.eml
wait_tickets 3
for _ in $(seq 1 100); do
  "$pd" --config "$demo/postdesk.toml" ticket show "$first" | grep -q "It is still smoking" && break
  sleep 0.1
done

for _ in $(seq 1 100); do
  [[ "$(bash scripts/mailstack.sh count "$demo/stack" customer@example.test)" -ge 2 ]] && break
  sleep 0.1
done
say "Alice's own mailbox received postdesk's acknowledgement (through Postfix):"
ack=$(bash scripts/mailstack.sh fetch "$demo/stack" customer@example.test | head -1)
grep -E '^(From|To|Subject|Message-ID|In-Reply-To|Auto-Submitted):' "$ack" || true
echo "  ... ($(bash scripts/mailstack.sh count "$demo/stack" customer@example.test) mails in her INBOX; the out-of-office got no reply)"

say "Agent One was notified; the notification's Reply-To is signed for her and this ticket"
note=$(wait_for_mail agent1@example.test "^Subject:.*$first" 100) ||
  { echo "demo.sh: no notification for agent1" >&2; exit 1; }
grep -E '^(From|To|Subject|Reply-To|Message-ID|Auto-Submitted):' "$note"
reply_to=$(grep -m1 -i '^Reply-To:' "$note" | sed 's/^[^:]*: *//; s/.*<//; s/>.*//')
note_id=$(grep -m1 -i '^Message-ID:' "$note" | sed 's/^[^:]*: *//')

say "Agent One answers from her mail client: a command on the first line, then the text for Alice"
cat > "$demo/agent-reply.eml" <<MAIL
From: Agent One <agent1@example.test>
To: $reply_to
Subject: Re: [Ticket#$first] Printer on the 3rd floor is on fire
Message-ID: <demo-agent-reply@example.test>
In-Reply-To: $note_id
Content-Type: text/plain; charset=utf-8

#priority high
Hello Alice, a technician is on the way. Please keep the printer unplugged.

On Mon, 23 Nov 2026, Example Support wrote:
> Customer wrote: the printer on the 3rd floor is smoking again.
MAIL
cat "$demo/agent-reply.eml"
/usr/sbin/sendmail -C "$PD_POSTFIX_CONFIG_DIR" -f agent1@example.test "$reply_to" < "$demo/agent-reply.eml"
answer=$(wait_for_mail customer@example.test "technician" 150) ||
  { echo "demo.sh: the agent's answer did not reach the customer; log:" >&2; tail -20 "$demo/postdesk.log" >&2; exit 1; }
say "Alice received the answer from the support address (Agent One's quote and command stripped, her address hidden):"
grep -E '^(From|To|Subject|In-Reply-To):' "$answer"
sed -n '/^$/,$p' "$answer" | sed 's/^/  /'

say "postdesk ticket list"
"$pd" --config "$demo/postdesk.toml" ticket list
say "postdesk ticket show $first"
"$pd" --config "$demo/postdesk.toml" ticket show "$first"
say "postdesk outbox list"
"$pd" --config "$demo/postdesk.toml" outbox list
say "postdesk status"
"$pd" --config "$demo/postdesk.toml" status
say "The support INBOX is empty; processed mail was moved"
echo "INBOX: $(bash scripts/mailstack.sh count "$demo/stack" support@example.test) mails," \
  "postdesk/processed: $(bash scripts/mailstack.sh count "$demo/stack" support@example.test postdesk/processed) mails"

say "Done. The database stays in $demo/state; look again with:"
echo "  $pd --config $demo/postdesk.toml ticket list"
