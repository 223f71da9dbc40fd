#!/usr/bin/env bash
# hostile-bench.sh - time and peak memory of `postdesk ingest` (release build) for the large ordinary mails of issue
# 10: each must be handled in under 2 s and 300 MB. See docs/benchmark.md ("Hostile mail").
#
#   scripts/hostile-bench.sh [--runs K] [--keep] [CASE...]
#
# Cases (all default):
#   plain20   a 20 MB text/plain body of 70-character lines
#   quoted1m  a reply of 1,000,000 short quoted lines ("> line N")
#   base64    a 25,000,000-byte mail whose text/plain body is base64 on one single line
#   cc100k    a mail with 100,000 Cc addresses (about 2.6 MB of header), then an agent's answer on its ticket
#   cc100k-uncapped  the same with limits.max_ticket_parties = 1000000: all 100,000 addresses on the answer
#   html20    a 20 MB text/html body (HTML to text converts its first MiB)
#   subject20 a 20 MB Subject header of plain words
# For each case and run: wall time, CPU time (user + system) and peak RSS of the whole `postdesk ingest` process
# (/usr/bin/time -v; the database is written with synchronous=FULL, so wall time includes the fsyncs) on a fresh
# state directory, and the stage times inside it (cargo example hostile_stages: pre-scan, MIME parse, HTML, reply
# stripping, classification, rules, quoting, rendering, message building). Min/median/max over the runs.
# Needs python3 (to write the mails), sqlite3 (to read the agent's notification) and GNU time.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PROG=hostile-bench.sh
RUNS=3
KEEP=0
CASES=()
die() {
  echo "$PROG: error: $*" >&2
  exit 1
}
while (($#)); do
  case $1 in
  --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
  --keep) KEEP=1; shift ;;
  -h | --help) sed -n '/^#   scripts/s/^#   //p' "$0" >&2; exit 2 ;;
  -*) die "unknown option $1" ;;
  *) CASES+=("$1"); shift ;;
  esac
done
((${#CASES[@]})) || CASES=(plain20 quoted1m base64 cc100k cc100k-uncapped html20 subject20)
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs takes a positive number"
for tool in python3 sqlite3; do command -v $tool >/dev/null || die "$tool not found"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) not found: apt-get install time"

cd "$REPO"
cargo build --release --quiet --bin postdesk --example hostile_stages
BIN=$REPO/target/release/postdesk
STAGES=$REPO/target/release/examples/hostile_stages
WORK=$(mktemp -d /tmp/pd-hostile.XXXXXX)
((KEEP)) || trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK" <<'PY'
import base64, random, sys
work = sys.argv[1]
rnd = random.Random(10)
words = "the printer in room four still prints blank pages after the update please help us soon".split()
head = ("From: Carol Customer <carol@customer.test>\r\nTo: support@example.test\r\nSubject: {subject}\r\n"
        "Date: Mon, 1 Dec 2025 10:00:00 +0000\r\nMessage-ID: <{mid}@customer.test>\r\nMIME-Version: 1.0\r\n")
def prose_lines(total):
    out, size = [], 0
    while size < total:
        line = " ".join(rnd.choice(words) for _ in range(12))[:70]
        out.append(line); size += len(line) + 2
    return out
def write(name, data):
    with open(f"{work}/{name}.eml", "wb") as f: f.write(data)

body = "\r\n".join(prose_lines(20_000_000)) + "\r\n"
write("plain20", (head.format(subject="Big plain mail", mid="plain20") +
      "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode())

quoted = "".join(f"> line {i}\r\n" for i in range(1_000_000))
write("quoted1m", (head.format(subject="Re: long thread", mid="quoted1m") +
      "Content-Type: text/plain; charset=utf-8\r\n\r\nThanks, see below.\r\n\r\nOn Monday Bob wrote:\r\n" + quoted).encode())

prefix = (head.format(subject="One-line base64", mid="base64") +
          "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode()
raw_len = (25_000_000 - len(prefix) - 2) // 4 * 3
text = ("\n".join(prose_lines(raw_len)) + "\n").encode()[:raw_len]
write("base64", prefix + base64.b64encode(text) + b"\r\n")

html = "".join("<p>" + " ".join(prose_lines(300)) + " <b>bold</b> <a href=\"https://x.test/\">link</a></p>\r\n"
               for _ in range(20_000_000 // 360))
write("html20", (head.format(subject="Big HTML", mid="html20") +
      "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>" + html + "</body></html>\r\n").encode())

write("subject20", (head.format(subject="word " * 4_000_000, mid="subject20") +
      "Content-Type: text/plain; charset=utf-8\r\n\r\nThe subject says it all.\r\n").encode())

cc = ",\r\n ".join(f"user{i}@cc{i % 97}.test" for i in range(100_000))
write("cc100k", (head.format(subject="Many copies", mid="cc100k") + f"Cc: {cc}\r\n" +
      "Content-Type: text/plain; charset=utf-8\r\n\r\nPlease look at this, all of you.\r\n").encode())
PY

# One state directory and config per run; an agent of the support queue for the cc cases.
setup_run() { # DIR EXTRA_LIMITS
  mkdir -p "$1/rules"
  cat >"$1/postdesk.toml" <<EOF
address = "support@example.test"
site_name = "Bench Support"
[storage]
state_dir = "state"
[limits]
$2
[rules]
dir = "rules"
[templates]
dir = "$REPO/templates"
[smtp]
host = "127.0.0.1"
port = 25
tls = "plain"
[[role]]
name = "first-level"
queues = ["support"]
[[agent]]
address = "alice@example.test"
name = "Alice Agent"
roles = ["first-level"]
EOF
}

# Runs `postdesk ingest FILE` under GNU time; appends "seconds kb" to RESULT.
timed_ingest() { # DIR FILE RESULT
  /usr/bin/time -v -o "$1/time.txt" "$BIN" --config "$1/postdesk.toml" ingest "$2" >"$1/ingest.out" 2>"$1/ingest.err" ||
    die "ingest $2 failed: $(cat "$1/ingest.err")"
  local wall kb cpu
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$1/time.txt")
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$1/time.txt")
  cpu=$(awk -F': ' '/(User|System) time/ {s += $2} END {print s}' "$1/time.txt")
  echo "$wall $kb $cpu" >>"$3"
}

# The agent answers the notification about the 100k-Cc ticket: In-Reply-To its signed Message-ID, to its Reply-To.
agent_answer() { # DIR OUT
  local row mid reply_to number
  row=$(sqlite3 "$1/state/postdesk.db" \
    "SELECT t.number, o.message_id FROM outbox o JOIN tickets t ON t.id = o.ticket_id WHERE o.kind = 'notification' LIMIT 1")
  number=${row%%|*}
  mid=${row#*|}
  [[ -n $number && -n $mid ]] || die "no notification to the agent was queued"
  reply_to=$(sqlite3 "$1/state/postdesk.db" "SELECT raw FROM outbox WHERE message_id = '$mid'" |
    awk 'tolower($0) ~ /^reply-to:/ {sub(/^[^:]*: */, ""); gsub(/[<>\r]/, ""); print; exit}')
  printf 'From: Alice Agent <alice@example.test>\r\nTo: %s\r\nSubject: Re: [Ticket#%s] Many copies\r\nDate: Mon, 1 Dec 2025 11:00:00 +0000\r\nMessage-ID: <answer.%s@example.test>\r\nIn-Reply-To: <%s>\r\nReferences: <%s>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello all, the printer is fixed.\r\n' \
    "${reply_to:-support@example.test}" "$number" "$number" "$mid" "$mid" >"$2"
}

stats() { # FILE COLUMN -> "min / median / max"
  sort -g -k"$2" "$1" | awk -v c="$2" '{v[NR] = $c} END {printf "%s / %s / %s", v[1], v[int((NR + 1) / 2)], v[NR]}'
}

row() { # CASE STEP FILE
  printf '%-16s %-7s %-20s %-20s %-26s\n' "$1" "$2" "$(stats "$3" 1)" "$(stats "$3" 3)" "$(stats "$3" 2)"
}
printf '%-16s %-7s %-20s %-20s %-26s\n' CASE STEP "WALL s min/med/max" "CPU s min/med/max" "PEAK RSS KB min/med/max"
for case in "${CASES[@]}"; do
  mail=$WORK/${case%-uncapped}.eml
  [[ -f $mail ]] || die "unknown case $case"
  limits=""
  [[ $case == *-uncapped ]] && limits="max_ticket_parties = 1000000"
  : >"$WORK/$case.ingest" >"$WORK/$case.answer"
  for ((run = 1; run <= RUNS; run++)); do
    dir=$WORK/run-$case-$run
    rm -rf "$dir"
    setup_run "$dir" "$limits"
    timed_ingest "$dir" "$mail" "$WORK/$case.ingest"
    if [[ $case == cc100k* ]]; then
      agent_answer "$dir" "$dir/answer.eml"
      timed_ingest "$dir" "$dir/answer.eml" "$WORK/$case.answer"
      grep -q "agent alice@example.test (answer)" "$dir/ingest.out" || die "the answer was not taken as the agent's: $(cat "$dir/ingest.out")"
      cc=$(sqlite3 "$dir/state/postdesk.db" "SELECT json_array_length(recipients) FROM outbox WHERE kind = 'agent-reply'")
      echo "$case run $run: the answer went to $cc recipients" >&2
    fi
  done
  row "$case" ingest "$WORK/$case.ingest"
  [[ -s $WORK/$case.answer ]] && row "$case" answer "$WORK/$case.answer"
done

echo
echo "stages inside one process (hostile_stages, seconds):"
for case in "${CASES[@]}"; do
  [[ $case == *-uncapped ]] && continue
  "$STAGES" "$WORK/$case.eml"
done
((KEEP)) && echo "kept $WORK" >&2
exit 0
