#!/usr/bin/env bash
# bench-local.sh - the figures that need no mail server (scripts/bench.sh runs it after the IMAP phases):
#
#   scripts/bench-local.sh [--runs K] [--keep]
#
#   pipe      `postdesk ingest < mail`, one process per mail as an MTA calls it, over PIPE_MAILS small (~0.8 KB)
#             mails into a fresh database, with the shipped rules and templates: mails/s at concurrency 1, 2 and 4,
#             and how many calls failed (any non-zero exit, e.g. "database is locked"). Twice: with `postdesk run`
#             running (how the package runs it: `ingest` hands each mail to the daemon over its socket), and alone
#             (no daemon: each process builds the parser and opens the database itself)
#   list      `postdesk ticket list --limit 50` at 10k and 1M tickets (process start included), LIST_RUNS times each
#   scale     batch `postdesk ingest MAILDIR` of INGEST_MAILS small mails into an empty database and into a copy of
#             the 1M-ticket one: mails/s and their ratio
#   memory    batch `postdesk ingest` of the shared workload as one mbox (genmail.py new --count 500 --seed 1,
#             108 MB): peak RSS (ru_maxrss) and mails/s
#
# The 10k and 1M databases are built once (examples/bench_db.rs) and kept in $BENCH_CACHE (target/bench-cache), as
# is the workload mbox. Every figure is given as min/median/max over K runs (default 3). The machine is shared, so
# compare the ratios measured in the same run, not absolute times across runs.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PROG=bench-local.sh
RUNS=3
KEEP=0
PIPE_MAILS=${PIPE_MAILS:-300}
INGEST_MAILS=${INGEST_MAILS:-2000}
LIST_RUNS=${LIST_RUNS:-7}
BIG=${BIG_TICKETS:-1000000}
SMALL=${SMALL_TICKETS:-10000}
CACHE=${BENCH_CACHE:-$REPO/target/bench-cache}

die() {
  echo "$PROG: error: $*" >&2
  exit 1
}
note() { echo "$PROG: $*" >&2; }

while (($#)); do
  case $1 in
  --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
  --runs=*) RUNS=${1#--runs=}; shift ;;
  --keep) KEEP=1; shift ;;
  -h | --help) sed -n '/^#   scripts\/bench-local.sh/s/^#   //p' "$0" >&2; exit 2 ;;
  *) die "unknown argument $1" ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs takes a positive number, not '$RUNS'"
command -v python3 >/dev/null || die "python3 not found"

WORK=$(mktemp -d /tmp/pd-bench-local.XXXXXX)
cleanup() {
  local rc=$?
  # A daemon of a pipe run that failed half-way.
  kill $(jobs -p) 2>/dev/null || true
  if ((KEEP)); then note "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${PD:-} ]]; then
  note "building (release)"
  (cd "$REPO" && cargo build --release --bins --example bench_db -q)
  PD=$REPO/target/release/postdesk
fi
BENCH_DB=${BENCH_DB_BIN:-$REPO/target/release/examples/bench_db}
[[ -x $PD && -x $BENCH_DB ]] || die "no release build at $PD and $BENCH_DB"
mkdir -p "$CACHE"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
record() { printf '{"what": "%s", "value": %s}\n' "$1" "$2" >>"$RESULTS"; }

# write_config STATE_DIR -> config path (no [imap], no [smtp]: the pipe path only; shipped rules and templates).
# For the runs with a daemon, pipe_run adds an [smtp] relay on a port nobody listens on: the daemon's sender then
# retries acknowledgements with its backoff, as it would while a real relay is down.
write_config() {
  local state=$1
  mkdir -p "$state"
  [[ -d $state/rules ]] || cp -r "$REPO/rules" "$state/rules"
  cat >"$state/postdesk.toml" <<EOF
address = "support@example.test"
[storage]
state_dir = "$state"
[rules]
dir = "$state/rules"
[templates]
dir = "$REPO/templates"
[[queues]]
name = "billing"
templates = "billing"
[[queues]]
name = "sales"
[[queues]]
name = "vip"
EOF
  echo "$state/postdesk.toml"
}

# Small mails, one file each: plain text, ~0.8 KB, distinct senders, subjects and Message-IDs.
small_mails() { # DIR COUNT SEED
  python3 - "$@" <<'PY'
import os, random, sys
out, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
os.makedirs(out + "/cur", exist_ok=True); os.makedirs(out + "/new", exist_ok=True); os.makedirs(out + "/tmp", exist_ok=True)
topics = ["printer", "invoice", "login", "VPN", "laptop", "quote for licences", "mailbox quota", "password reset"]
for n in range(count):
    topic = rng.choice(topics)
    body = (f"Hello support,\n\nsince this morning the {topic} does not work as it should. I tried restarting it "
            f"twice and the problem is still there. Could you please have a look?\n\nError code: E{rng.randint(100, 999)}\n"
            f"Office: building {rng.randint(1, 9)}, room {rng.randint(100, 499)}\n\nThank you and regards,\n"
            f"Customer {n}\n")
    mail = (f"From: Customer {n} <customer{n}.{seed}@example.org>\nTo: support@example.test\n"
            f"Subject: {topic} problem #{n}\nDate: Mon, 23 Nov 2026 10:{n % 60:02d}:00 +0100\n"
            f"Message-ID: <{seed}.{n}.{rng.getrandbits(40):x}@example.org>\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}")
    with open(f"{out}/new/{n:06d}.mail", "w") as f:
        f.write(mail)
PY
}

# Seconds since START ($EPOCHREALTIME): the end is taken by the shell, so the python doing the subtraction is not timed.
elapsed_since() {
  local end=$EPOCHREALTIME
  python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.4f}')" "$1" "$end"
}

# ------------------------------------------------------------------ pipe

# pipe_run RUN CONCURRENCY MODE: fresh state, PIPE_MAILS mails split over CONCURRENCY loops of `ingest < mail`;
# MODE daemon (a `postdesk run` takes the mail over its socket) or alone
pipe_run() {
  local run=$1 c=$2 mode=$3 state=$WORK/pipe-$1-$2-$3 cfg t0 secs fails=0 i daemon="" workers=()
  cfg=$(write_config "$state")
  local mails=("$WORK"/small/new/*)
  if [[ $mode == daemon ]]; then
    printf '[smtp]\nhost = "127.0.0.1"\nport = 9\ntls = "plain"\n' >>"$cfg"
    "$PD" --config "$cfg" run 2>"$state/daemon.log" &
    daemon=$!
    for ((i = 0; i < 300; i++)); do [[ -S $state/ingest.sock ]] && break; sleep 0.05; done
    [[ -S $state/ingest.sock ]] || { cat "$state/daemon.log" >&2; die "the daemon made no socket"; }
  fi
  for ((i = 0; i < c; i++)); do : >"$state/fails.$i"; done
  t0=$EPOCHREALTIME
  for ((i = 0; i < c; i++)); do
    (
      local k f n=0
      for ((k = i; k < ${#mails[@]}; k += c)); do
        f=${mails[$k]}
        "$PD" --config "$cfg" ingest <"$f" >/dev/null 2>>"$state/errors.$i" || n=$((n + 1))
      done
      echo "$n" >"$state/fails.$i"
    ) &
    workers+=($!)
  done
  wait "${workers[@]}"
  secs=$(elapsed_since "$t0")
  for ((i = 0; i < c; i++)); do fails=$((fails + $(cat "$state/fails.$i"))); done
  if [[ -n $daemon ]]; then
    local handed
    kill -TERM "$daemon"
    wait "$daemon" || die "the daemon did not stop cleanly"
    handed=$(grep -c "mail handed over" "$state/daemon.log" || true)
    ((handed == PIPE_MAILS - fails)) || die "only $handed of $PIPE_MAILS mails went through the daemon"
  fi
  local rate
  rate=$(python3 -c "print(f'{$PIPE_MAILS / $secs:.1f}')")
  note "pipe run $run, concurrency $c, $mode: $PIPE_MAILS mails in $secs s = $rate mails/s, $fails failed"
  if ((fails)); then cat "$state"/errors.* | sort | uniq -c | head -5 >&2; fi
  record "pipe_${mode}_c${c}_rate" "$rate"
  record "pipe_${mode}_c${c}_failures" "$fails"
  rm -rf "$state"
}

note "generating $PIPE_MAILS small mails"
small_mails "$WORK/small" "$PIPE_MAILS" 7
for ((r = 1; r <= RUNS; r++)); do
  for c in 1 2 4; do
    pipe_run "$r" "$c" daemon
    pipe_run "$r" "$c" alone
  done
done

# ------------------------------------------------------------------ big databases

big_state() { # TICKETS -> state dir holding postdesk.db with that many tickets (built once, kept in the cache)
  local n=$1 dir=$CACHE/tickets-$1
  if [[ ! -f $dir/built ]]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    note "building a database of $n tickets (once; kept in $dir)"
    "$BENCH_DB" --db "$dir/postdesk.db" --tickets "$n" >&2
    touch "$dir/built"
  fi
  echo "$dir"
}

time_list() { # STATE_DIR -> seconds for one `ticket list --limit 50`
  local cfg t0
  cfg=$(write_config "$1")
  t0=$EPOCHREALTIME
  "$PD" --config "$cfg" ticket list --limit 50 >/dev/null
  elapsed_since "$t0"
}

SMALL_DIR=$(big_state "$SMALL")
BIG_DIR=$(big_state "$BIG")
time_list "$SMALL_DIR" >/dev/null
time_list "$BIG_DIR" >/dev/null
for ((r = 1; r <= LIST_RUNS; r++)); do
  record list_small "$(time_list "$SMALL_DIR")"
  record list_big "$(time_list "$BIG_DIR")"
done

note "generating $INGEST_MAILS small mails for the batch ingest"
small_mails "$WORK/batch" "$INGEST_MAILS" 11
# The first `ingest` into a database it has not seen (a new file, or a copy: a new inode) runs the integrity check
# over the whole file once (~1 s for the 647 MB one) and stamps it; an untimed `ingest` of an empty Maildir does that
# first, on both sides, so the figure is the steady state an MTA sees.
mkdir -p "$WORK/nomail/cur" "$WORK/nomail/new" "$WORK/nomail/tmp"
ingest_rate() { # STATE_DIR -> mails/s of `ingest MAILDIR`
  local cfg t0 secs
  cfg=$(write_config "$1")
  "$PD" --config "$cfg" ingest "$WORK/nomail" >/dev/null
  t0=$EPOCHREALTIME
  "$PD" --config "$cfg" ingest "$WORK/batch" >/dev/null
  secs=$(elapsed_since "$t0")
  python3 -c "print(f'{$INGEST_MAILS / $secs:.1f}')"
}
for ((r = 1; r <= RUNS; r++)); do
  rm -rf "$WORK/empty" "$WORK/bigcopy"
  record ingest_empty "$(ingest_rate "$WORK/empty")"
  cp -r "$BIG_DIR" "$WORK/bigcopy"
  sync
  record ingest_big "$(ingest_rate "$WORK/bigcopy")"
  rm -rf "$WORK/empty" "$WORK/bigcopy"
done

# ------------------------------------------------------------------ batch memory

MBOX=$CACHE/workload-500-1.mbox
if [[ ! -f $MBOX ]]; then
  WL=${POSTDESK_WORKLOAD:-$REPO/../shared/workload}
  if [[ -d $WL ]]; then GENMAIL=$WL/genmail.py; else GENMAIL=$WL; fi
  [[ -f $GENMAIL ]] || die "genmail.py not found at $GENMAIL (set POSTDESK_WORKLOAD)"
  python3 "$GENMAIL" new --count 500 --seed 1 --format mbox --out "$MBOX.tmp" --quiet
  mv "$MBOX.tmp" "$MBOX"
fi
for ((r = 1; r <= RUNS; r++)); do
  rm -rf "$WORK/mbox"
  cfg=$(write_config "$WORK/mbox")
  out=$(python3 - "$PD" "$cfg" "$MBOX" <<'PY'
import resource, subprocess, sys, time
pd, cfg, mbox = sys.argv[1:]
t = time.time()
p = subprocess.run([pd, "--config", cfg, "ingest", mbox], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
secs = time.time() - t
mails = p.stdout.count(b"\n")
if p.returncode != 0:
    sys.exit(f"ingest of the mbox exited {p.returncode}")
print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f} {mails / secs:.1f}")
PY
)
  read -r peak rate <<<"$out"
  note "batch ingest of the mbox: peak $peak MB, $rate mails/s"
  record mbox_peak_mb "$peak"
  record mbox_rate "$rate"
done
rm -rf "$WORK/mbox"

# ------------------------------------------------------------------ report

python3 - "$RESULTS" "$SMALL" "$BIG" "$PIPE_MAILS" "$INGEST_MAILS" <<'PY'
import json, statistics, sys
path, small, big, pipe_mails, ingest_mails = sys.argv[1:]
v = {}
for line in open(path):
    r = json.loads(line)
    v.setdefault(r["what"], []).append(float(r["value"]))
def mmm(k, fmt="{:.1f}"):
    x = v[k]
    return " / ".join(fmt.format(f) for f in (min(x), statistics.median(x), max(x)))
med = lambda k: statistics.median(v[k])
print()
print(f"local figures: min / median / max over {len(v['pipe_alone_c1_rate'])} runs ({len(v['list_small'])} for ticket list)")
print("| measure | min / median / max |")
print("|---|---:|")
for mode, how in (("daemon", "daemon running"), ("alone", "no daemon")):
    for c in (1, 2, 4):
        print(f"| pipe, {how}, concurrency {c}: mails/s ({pipe_mails} small mails) | {mmm(f'pipe_{mode}_c{c}_rate')} |")
        print(f"| pipe, {how}, concurrency {c}: failed calls | {mmm(f'pipe_{mode}_c{c}_failures', '{:.0f}')} |")
ms = lambda k: " / ".join(f"{f * 1000:.0f}" for f in (min(v[k]), statistics.median(v[k]), max(v[k])))
print(f"| `ticket list --limit 50`, {int(small):,} tickets: ms | {ms('list_small')} |")
print(f"| `ticket list --limit 50`, {int(big):,} tickets: ms | {ms('list_big')} |")
print(f"| list at {int(big):,} / at {int(small):,} (medians) | {med('list_big') / med('list_small'):.2f}x |")
print(f"| batch ingest ({ingest_mails} small mails) into an empty database: mails/s | {mmm('ingest_empty')} |")
print(f"| batch ingest into the {int(big):,}-ticket database: mails/s | {mmm('ingest_big')} |")
print(f"| ingest rate, {int(big):,} / empty (medians) | {med('ingest_big') / med('ingest_empty'):.2f}x |")
print(f"| batch ingest of the 108 MB workload mbox: peak RSS MB | {mmm('mbox_peak_mb')} |")
print(f"| batch ingest of the workload mbox: mails/s | {mmm('mbox_rate')} |")
PY
