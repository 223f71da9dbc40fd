#!/usr/bin/env bash
# bench.sh - end-to-end throughput of `postdesk run` against a real Dovecot on loopback, next to the same
# mailbox's bare IMAP UID FETCH rate (the floor). See docs/benchmark.md.
#
#   scripts/bench.sh [--runs K] [--keep] [MAILDIR]
#
# Without MAILDIR it generates the shared workload: genmail.py new --count ${N:-500} --seed ${SEED:-1}, found at
# $POSTDESK_WORKLOAD (the directory holding genmail.py, or the script itself), else ../shared/workload beside the repo.
# With MAILDIR (cur/ and new/) only the new-mail phase and the floor run: there is no manifest for follow-ups.
# BENCH_IMAP_EXTRA adds lines to the daemon's [imap] section, e.g. BENCH_IMAP_EXTRA='batch_bytes = 8388608'.
# Each run starts its own mail stack (scripts/mailstack.sh, needs root) and a fresh state directory.
#
# Per run:
#   floor     cargo example fetch_floor, 3 times: UID FETCH of every mail with the daemon's batching, nothing moved
#   new       `postdesk run` started; timed from its start until postdesk/processed holds every mail (connect,
#             list, download, parse/thread/route/store with synchronous=FULL, UID MOVE: nothing subtracted)
#   followup  daemon stopped; genmail.py followup (seed 2) for the tickets it opened, loaded into the INBOX;
#             daemon restarted and timed the same way; then every reply is checked to sit on its ticket
# Peak RSS is the daemon's VmHWM, read just before SIGTERM.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
STACK_SH=$REPO/scripts/mailstack.sh
PROG=bench.sh
RUNS=1
KEEP=0
MAILDIR=
N=${N:-500}
SEED=${SEED:-1}
FU_SEED=${FU_SEED:-2}
FLOOR_RUNS=${FLOOR_RUNS:-3}
TIMEOUT_SECS=${BENCH_TIMEOUT_SECS:-900}
POLL_SECS=0.05
shopt -s nullglob

die() {
  echo "$PROG: error: $*" >&2
  exit 1
}
note() { echo "$PROG: $*" >&2; }

usage() {
  sed -n '/^#   scripts\/bench.sh/s/^#   //p' "$0" >&2
  exit 2
}

while (($#)); do
  case $1 in
  --runs)
    RUNS=${2:?--runs needs a number}
    shift 2
    ;;
  --runs=*)
    RUNS=${1#--runs=}
    shift
    ;;
  --keep)
    KEEP=1
    shift
    ;;
  -h | --help) usage ;;
  -*) die "unknown option $1" ;;
  *)
    [[ -z $MAILDIR ]] || usage
    MAILDIR=$1
    shift
    ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs takes a positive number, not '$RUNS'"
[[ $(id -u) -eq 0 ]] || die "must run as root (the mail stack's Dovecot needs it)"
command -v python3 >/dev/null || die "python3 not found (genmail.py and the result checks need it)"

# ------------------------------------------------------------------ setup

WORK=$(mktemp -d /tmp/pd-bench.XXXXXX)
chmod 0755 "$WORK"
STACK=
DAEMON_PID=

cleanup() {
  local rc=$?
  if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  if [[ -n $STACK ]]; then bash "$STACK_SH" stop "$STACK" >/dev/null 2>&1 || true; fi
  if ((KEEP)); then note "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note "building (release)"
(cd "$REPO" && cargo build --release --examples --bins -q)
PD=$REPO/target/release/postdesk
FLOOR=$REPO/target/release/examples/fetch_floor
[[ -x $PD && -x $FLOOR ]] || die "release build did not produce $PD and $FLOOR"
bash "$STACK_SH" install >/dev/null

if [[ -n $MAILDIR ]]; then
  [[ -d $MAILDIR/cur || -d $MAILDIR/new ]] || die "$MAILDIR is not a Maildir (no cur/ or new/)"
  MAILDIR=$(cd "$MAILDIR" && pwd)
  NEW_MANIFEST=
else
  WL=${POSTDESK_WORKLOAD:-$REPO/../shared/workload}
  if [[ -d $WL ]]; then GENMAIL=$WL/genmail.py; else GENMAIL=$WL; fi
  [[ -f $GENMAIL ]] || die "genmail.py not found at $GENMAIL (set POSTDESK_WORKLOAD)"
  MAILDIR=$WORK/new.maildir
  NEW_MANIFEST=$MAILDIR.manifest.jsonl
  note "generating the workload: genmail.py new --count $N --seed $SEED"
  python3 "$GENMAIL" new --count "$N" --seed "$SEED" --format maildir --out "$MAILDIR" --quiet
fi

maildir_stats() { # MAILDIR -> "COUNT BYTES"
  find "$1/cur" "$1/new" -maxdepth 1 -type f -printf '%s\n' 2>/dev/null | awk '{n++; b+=$1} END {print n+0, b+0}'
}
read -r N_MAILS N_BYTES <<<"$(maildir_stats "$MAILDIR")"
((N_MAILS > 0)) || die "$MAILDIR holds no mail"
note "workload: $N_MAILS mails, $N_BYTES bytes"

# ------------------------------------------------------------------ helpers

now() { printf '%s\n' "$EPOCHREALTIME"; }

# Mails in a stack mailbox, counted from its Maildir with a glob: no process per poll, so polling every 50 ms
# costs nothing next to the daemon. (The final count is confirmed with doveadm.)
PROCESSED_DIR=
processed_files() {
  local f=("$PROCESSED_DIR"/cur/* "$PROCESSED_DIR"/new/*)
  echo "${#f[@]}"
}

doveadm_count() { # MAILBOX
  bash "$STACK_SH" count "$STACK" support@example.test "$1"
}

write_config() { # STATE_DIR -> config path
  local state=$1
  mkdir -p "$state/rules"
  printf '%s' "$PD_PASSWORD" >"$state/imap-password"
  chmod 0600 "$state/imap-password"
  cat >"$state/postdesk.toml" <<EOF
address = "support@example.test"
[storage]
state_dir = "$state"
[rules]
dir = "$state/rules"
[templates]
dir = "$REPO/templates"
[imap]
host = "127.0.0.1"
port = $PD_IMAP_PORT
tls = "plain"
username = "support@example.test"
password_file = "$state/imap-password"
reconnect_max_seconds = 2
${BENCH_IMAP_EXTRA:-}
EOF
  echo "$state/postdesk.toml"
}

# start_daemon CONFIG LOG: sets DAEMON_PID and T_START
start_daemon() {
  T_START=$(now)
  # The environment packaging/postdesk.service gives the daemon: one malloc arena instead of glibc's 8 per core,
  # and buffers from 256 KiB up in mappings of their own.
  MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-1} GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=262144} \
    POSTDESK_LOG=${POSTDESK_LOG:-info} "$PD" --config "$1" run 2>>"$2" >/dev/null &
  DAEMON_PID=$!
}

# wait_processed TARGET LOG: polls until postdesk/processed holds TARGET mails; sets T_DONE
wait_processed() {
  local target=$1 log=$2 deadline
  deadline=$(($(date +%s) + TIMEOUT_SECS))
  while :; do
    if (($(processed_files) >= target)); then
      T_DONE=$(now)
      return 0
    fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      tail -n 30 "$log" >&2
      die "the daemon exited early (log above: $log)"
    fi
    if (($(date +%s) > deadline)); then
      tail -n 30 "$log" >&2
      die "timed out after ${TIMEOUT_SECS}s: postdesk/processed holds $(processed_files) of $target"
    fi
    sleep "$POLL_SECS"
  done
}

# stop_daemon: reads VmHWM (kB) into PEAK_KB, then SIGTERM and wait
stop_daemon() {
  PEAK_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON_PID/status")
  kill -TERM "$DAEMON_PID"
  local rc=0
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=
  ((rc == 0)) || die "the daemon exited with $rc on SIGTERM"
}

elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }

stats() { # values... -> "best median" (best = highest)
  python3 -c 'import statistics, sys; v = [float(x) for x in sys.argv[1:]]; print(f"{max(v):.1f} {statistics.median(v):.1f}")' "$@"
}

# ------------------------------------------------------------------ one run

RESULTS=$WORK/results.jsonl
: >"$RESULTS"

run_once() {
  local run=$1 dir=$WORK/run$1
  mkdir -p "$dir"
  chmod 0755 "$dir"
  STACK=$dir/stack
  note "run $run: starting the mail stack"
  bash "$STACK_SH" start "$STACK" >/dev/null
  # shellcheck disable=SC1091
  source "$STACK/env"
  PROCESSED_DIR=$PD_MAIL_ROOT/support/.postdesk.processed
  local loaded
  loaded=$(bash "$STACK_SH" load "$STACK" support@example.test "$MAILDIR")
  ((loaded == N_MAILS)) || die "loaded $loaded of $N_MAILS mails"

  local state=$dir/state config
  config=$(write_config "$state")

  # The floor: the daemon's own fetch code and batching, nothing moved.
  local i floors=() out
  for ((i = 1; i <= FLOOR_RUNS; i++)); do
    out=$("$FLOOR" --config "$config" --json)
    floors+=("$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["mails_per_s"])' "$out")")
    note "run $run: floor $i: $(python3 -c 'import json, sys; print("{mails} mails in {seconds:.3f} s = {mails_per_s:.0f} mails/s, {mb_per_s:.0f} MB/s".format(**json.loads(sys.argv[1])))' "$out")"
  done
  local inbox
  inbox=$(doveadm_count INBOX)
  ((inbox == N_MAILS)) || die "the floor changed the INBOX: $inbox mails, expected $N_MAILS"

  # New mail: daemon start -> everything in postdesk/processed.
  local log=$state/daemon.log
  start_daemon "$config" "$log"
  wait_processed "$N_MAILS" "$log"
  local new_secs new_peak
  new_secs=$(elapsed "$T_START" "$T_DONE")
  stop_daemon
  new_peak=$PEAK_KB
  local processed
  processed=$(doveadm_count postdesk/processed)
  inbox=$(doveadm_count INBOX)
  ((processed == N_MAILS && inbox == 0)) || die "after the new-mail phase: processed $processed, INBOX $inbox"
  note "run $run: new mail: $N_MAILS in $new_secs s, peak RSS $((new_peak / 1024)) MB"

  local fu_count=0 fu_bytes=0 fu_secs=null fu_peak=null check='{}'
  if [[ -n $NEW_MANIFEST ]]; then
    local idfile=$dir/ids.txt fu=$dir/fu.maildir
    python3 - "$state/postdesk.db" "$NEW_MANIFEST" "$idfile" <<'PY'
import json, sqlite3, sys
db, manifest, out = sys.argv[1:]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
# Each ticket's first article: the mail that opened it.
rows = con.execute(
    "SELECT t.number, a.message_id FROM tickets t "
    "JOIN articles a ON a.id = (SELECT min(id) FROM articles WHERE ticket_id = t.id)").fetchall()
by_mid = {mid: number for number, mid in rows if mid}
missing = 0
with open(manifest) as f, open(out, "w") as o:
    for line in f:
        mid = json.loads(line)["message_id"]
        number = by_mid.get(mid.strip("<>"))
        if number is None:
            missing += 1
            continue
        o.write(f"{number} {mid}\n")
if missing:
    sys.exit(f"{missing} new mails opened no ticket")
PY
    note "run $run: generating follow-ups (seed $FU_SEED) for $(wc -l <"$idfile") tickets"
    python3 "$GENMAIL" followup --seed "$FU_SEED" --ids "@$idfile" --token '[Ticket#{id}]' \
      --orig-manifest "$NEW_MANIFEST" --format maildir --out "$fu" --quiet
    read -r fu_count fu_bytes <<<"$(maildir_stats "$fu")"
    loaded=$(bash "$STACK_SH" load "$STACK" support@example.test "$fu")
    ((loaded == fu_count)) || die "loaded $loaded of $fu_count follow-ups"

    start_daemon "$config" "$log"
    wait_processed $((N_MAILS + fu_count)) "$log"
    fu_secs=$(elapsed "$T_START" "$T_DONE")
    stop_daemon
    fu_peak=$PEAK_KB
    inbox=$(doveadm_count INBOX)
    ((inbox == 0)) || die "after the follow-up phase: INBOX still holds $inbox"
    note "run $run: follow-ups: $fu_count in $fu_secs s, peak RSS $((fu_peak / 1024)) MB"

    check=$(python3 - "$state/postdesk.db" "$fu.manifest.jsonl" <<'PY'
import json, sqlite3, sys
db, manifest = sys.argv[1:]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
first_article = dict(con.execute("SELECT ticket_id, min(id) FROM articles GROUP BY ticket_id").fetchall())
out = {}
for line in open(manifest):
    m = json.loads(line)
    mid = m["message_id"].strip("<>")
    row = con.execute(
        "SELECT a.id, t.id, t.number, a.classification FROM articles a JOIN tickets t ON t.id = a.ticket_id "
        "WHERE a.message_id = ? ORDER BY a.id LIMIT 1", (mid,)).fetchone()
    if row is None:
        led = con.execute("SELECT outcome FROM ingest_ledger WHERE message_id = ? OR sha256 IN "
                          "(SELECT sha256 FROM ingest_ledger WHERE message_id = ?) LIMIT 1", (mid, mid)).fetchone()
        where = led[0] if led else "missing"
        cls = None
    else:
        article, ticket, number, cls = row
        if number == str(m["ticket"]):
            where = "on its ticket"
        elif first_article.get(ticket) == article:
            where = "opened a new ticket"
        else:
            where = "on another ticket"
    k = out.setdefault(m["kind"], {"n": 0, "where": {}, "classified": {}})
    k["n"] += 1
    k["where"][where] = k["where"].get(where, 0) + 1
    if cls:
        k["classified"][cls] = k["classified"].get(cls, 0) + 1
print(json.dumps(out))
PY
)
    note "run $run: filing: $check"
  fi

  printf '{"run": %s, "mails": %s, "bytes": %s, "new_seconds": %s, "new_peak_kb": %s, "floors": [%s], ' \
    "$run" "$N_MAILS" "$N_BYTES" "$new_secs" "$new_peak" "$(IFS=,; echo "${floors[*]}")" >>"$RESULTS"
  printf '"followups": %s, "followup_bytes": %s, "followup_seconds": %s, "followup_peak_kb": %s, "filing": %s}\n' \
    "$fu_count" "$fu_bytes" "$fu_secs" "$fu_peak" "$check" >>"$RESULTS"
  bash "$STACK_SH" stop "$STACK" >/dev/null
  STACK=
}

for ((r = 1; r <= RUNS; r++)); do
  run_once "$r"
done

# ------------------------------------------------------------------ report

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median
mails, size = runs[0]["mails"], runs[0]["bytes"]
new_rates = [r["mails"] / r["new_seconds"] for r in runs]
mb_rates = [r["bytes"] / 1e6 / r["new_seconds"] for r in runs]
floors = [f for r in runs for f in r["floors"]]
peak = max(max(r["new_peak_kb"], r["followup_peak_kb"] or 0) for r in runs) / 1024
print()
print(f"workload: {mails} new mails, {size / 1e6:.1f} MB; {len(runs)} run(s); times include the daemon's start and "
      "IMAP connect")
for r in runs:
    line = (f"  run {r['run']}: new {r['mails'] / r['new_seconds']:.0f} mails/s ({r['new_seconds']:.2f} s), "
            f"floor {max(r['floors']):.0f} mails/s best of {len(r['floors'])}")
    if r["followup_seconds"]:
        line += f", follow-ups {r['followups'] / r['followup_seconds']:.0f}/s ({r['followup_seconds']:.2f} s)"
    print(line)
print()
print("| measure | postdesk (median of runs) | best run |")
print("|---|---:|---:|")
print(f"| new mails/s | {med(new_rates):.0f} | {max(new_rates):.0f} |")
print(f"| new MB/s | {med(mb_rates):.1f} | {max(mb_rates):.1f} |")
fu = [r for r in runs if r["followup_seconds"]]
if fu:
    fu_rates = [r["followups"] / r["followup_seconds"] for r in fu]
    print(f"| follow-ups/s | {med(fu_rates):.0f} | {max(fu_rates):.0f} |")
    last = fu[-1]["filing"]
    rep = last.get("reply", {"n": 0, "where": {}})
    print(f"| replies threaded | {rep['where'].get('on its ticket', 0)}/{rep['n']} | |")
print(f"| peak RSS (VmHWM) | {peak:.1f} MB | |")
print(f"| floor: bare UID FETCH mails/s | {med(floors):.0f} | {max(floors):.0f} |")
print(f"| floor / postdesk | {med(floors) / med(new_rates):.2f}x | {max(floors) / max(new_rates):.2f}x |")
# The same figures per run, each run's daemon against its own floor (same stack, same minute): min / median / max.
ratios = [r["new_seconds"] * statistics.median(r["floors"]) / r["mails"] for r in runs]
peaks = [max(r["new_peak_kb"], r["followup_peak_kb"] or 0) / 1024 for r in runs]
mmm = lambda v, f: " / ".join(f.format(x) for x in (min(v), statistics.median(v), max(v)))
print(f"| daemon time / floor time, per run: min / median / max | {mmm(ratios, '{:.2f}x')} | |")
print(f"| peak RSS per run: min / median / max | {mmm(peaks, '{:.1f} MB')} | |")
if fu:
    print()
    for kind in ("reply", "autoreply", "bounce"):
        k = last.get(kind)
        if k:
            where = ", ".join(f"{v} {w}" for w, v in sorted(k["where"].items()))
            cls = ", ".join(f"{v} {c}" for c, v in sorted(k["classified"].items()))
            print(f"  {kind}: {k['n']}: {where} (classified: {cls})")
PY

# The figures that need no mail server, from the same build: MTA pipe, ticket list at 10k and 1M tickets, ingest
# into a big database, batch-ingest memory (scripts/bench-local.sh; BENCH_LOCAL=0 skips them).
if [[ ${BENCH_LOCAL:-1} == 1 ]]; then
  PD=$PD bash "$REPO/scripts/bench-local.sh" --runs "$RUNS"
fi
