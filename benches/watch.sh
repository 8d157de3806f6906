#!/usr/bin/env bash
# The inbox watcher (`unseal --watch`) timed as an MFT server sees it, against batch mode and
# single-file `unseal` on the same files, in the same run:
#
#   1. latency: UPLOADS x 4 KiB uploads arriving at RATE a second, each renamed into the
#      inbox (the usual upload pattern); from each rename to its record in the audit log,
#      which is written once its plaintext is renamed into place and durable;
#   2. a burst: BURST x 4 KiB uploads renamed in at once, drained (first rename to last
#      record), against `unseal DIR -o OUT` of the same files;
#   3. one large upload (SIZE_MIB), renamed in, against `unseal FILE -o OUT` of it: with the
#      audit log (--json, whose SHA-256 of the plaintext is one more pass over it), and
#      without (from the rename to the output's name appearing); and the audit log's work
#      done by hand, `unseal FILE -o OUT && openssl dgst -sha256 OUT` (the fastest SHA-256
#      at hand: coreutils' `sha256sum` hashes at a seventh of its speed here), against the
#      watcher with it.
#
# Usage: benches/watch.sh
#
# Environment:
#   WORK_DIR  where the inbox and outputs live (default: a new directory under /dev/shm, or
#             $TMPDIR); give a directory on a disk to time a disk
#   UPLOADS   uploads for the latency (default 1000); RATE: a second (default 100)
#   BURST     uploads of the burst (default 10000)
#   SIZE_MIB  the large upload (default 1024)
#   RUNS      timed runs of the burst and the large file, each way (default 3)
#
# The watcher runs with --json, its audit log, which holds each plaintext's SHA-256.
#
# Prints one table; every figure is a median over RUNS (latency: over the uploads).
set -euo pipefail

UPLOADS=${UPLOADS:-1000}
RATE=${RATE:-100}
BURST=${BURST:-10000}
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}

say() { printf '==> %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say "cargo build --release"
cargo build --release --quiet
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release

if [[ -n ${WORK_DIR:-} ]]; then
    mkdir -p "$WORK_DIR"
    W=$(mktemp -d "$WORK_DIR/watch-bench.XXXXXX")
elif [[ -d /dev/shm && -w /dev/shm ]]; then
    W=$(mktemp -d /dev/shm/watch-bench.XXXXXX)
else
    W=$(mktemp -d "${TMPDIR:-/tmp}/watch-bench.XXXXXX")
fi
WATCHER=
trap '[[ -n $WATCHER ]] && kill "$WATCHER" 2>/dev/null; rm -rf "$W"' EXIT
cd "$W"
FS=$(df -T . | awk 'NR==2 {print $2}')
"$BIN/seal-keygen" -o server.key >/dev/null 2>&1

# Sealed copies of COUNT files of 4 KiB into DIR/f*.age.
make_uploads() {
    local count=$1 dir=$2
    mkdir -p plain-$dir
    python3 - "$count" "plain-$dir" <<'EOF'
import os, sys
count, dir = int(sys.argv[1]), sys.argv[2]
for i in range(count):
    with open(f"{dir}/f{i:05}", "wb") as f:
        f.write(os.urandom(4096))
EOF
    "$BIN/seal" -q "plain-$dir" --to server.pub -o "sealed-$dir"
    mv "sealed-$dir/plain-$dir" "$dir"
    rm -rf "plain-$dir" "sealed-$dir"
}

# Starts a watcher of inbox-$1 into out-$1 (state in state-$1), its audit log in audit-$1;
# $2 = plain: without --json.
start_watcher() {
    mkdir -p "inbox-$1"
    local json=--json
    [[ ${2:-} == plain ]] && json=--quiet
    "$BIN/unseal" --watch "inbox-$1" -o "out-$1" -k server.key --state-dir "state-$1" \
        "$json" >"audit-$1" 2>/dev/null &
    WATCHER=$!
    sleep 0.5
}

stop_watcher() {
    kill -TERM "$WATCHER"
    wait "$WATCHER" || true
    WATCHER=
}

# Renames FROM/* into TO (at RATE a second; 0: at once), writing each rename's time (ns) to
# TIMES; then waits for COUNT records in AUDIT.
arrive() {
    python3 - "$@" <<'EOF'
import json, os, sys, time
src, dst, rate, times, audit, count = sys.argv[1:7]
rate, count = float(rate), int(count)
names = sorted(os.listdir(src))
start = time.time()
with open(times, "w") as out:
    for i, name in enumerate(names):
        if rate > 0:
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        t = time.time_ns()
        os.rename(os.path.join(src, name), os.path.join(dst, name))
        out.write(f"{name} {t}\n")
# Reads only what the audit log gained since the last look, so that the wait costs the
# watcher little of the two cores it shares them with.
deadline = time.time() + 600
seen, tail = 0, b""
with open(audit, "rb") as f:
    while seen < count:
        new = f.read()
        if new:
            lines = (tail + new).split(b"\n")
            tail = lines.pop()
            seen += sum(1 for line in lines if b'"type":"file"' in line)
            continue
        if time.time() > deadline:
            sys.exit("the watcher did not record every upload in 600 s")
        time.sleep(0.01)
EOF
}

# Per-upload latency (ms) from TIMES and AUDIT: prints "median p99 max drain_s".
latencies() {
    python3 - "$@" <<'EOF'
import datetime, json, os, statistics, sys
times, audit = sys.argv[1:3]
renamed = {}
for line in open(times):
    name, t = line.split()
    renamed[name] = int(t)
done = {}
for line in open(audit):
    r = json.loads(line)
    if r.get("type") != "file":
        continue
    assert r["outcome"] == "unsealed", r
    t = datetime.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    done[os.path.basename(r["path"])] = int(round(t * 1e6)) * 1000
ms = sorted((done[n] - renamed[n]) / 1e6 for n in renamed)
p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
drain = (max(done.values()) - min(renamed.values())) / 1e9
print(f"{statistics.median(ms):.2f} {p99:.2f} {ms[-1]:.2f} {drain:.3f}")
EOF
}

median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

now() { date +%s.%N; }

# --- 1. Latency --------------------------------------------------------------------------
say "latency: $UPLOADS uploads at $RATE/s on $FS"
make_uploads "$UPLOADS" lat
start_watcher lat
arrive lat inbox-lat "$RATE" times-lat audit-lat "$UPLOADS"
stop_watcher
read -r LAT_MED LAT_P99 LAT_MAX _ < <(latencies times-lat audit-lat)

# --- 2. Burst ----------------------------------------------------------------------------
say "burst: $BURST uploads, $RUNS runs each way"
BATCH_T=() WATCH_T=()
for run in $(seq "$RUNS"); do
    make_uploads "$BURST" "b$run"
    cp -r "b$run" "c$run"
    sync
    t0=$(now)
    "$BIN/unseal" -q "c$run" -o "batch-out-$run" -k server.key
    t1=$(now)
    BATCH_T+=("$(echo "$t1 - $t0" | bc)")
    start_watcher "b$run"
    arrive "b$run" "inbox-b$run" 0 "times-b$run" "audit-b$run" "$BURST"
    stop_watcher
    read -r _ _ _ drain < <(latencies "times-b$run" "audit-b$run")
    WATCH_T+=("$drain")
    rm -rf "c$run" "batch-out-$run" "inbox-b$run" "out-b$run" "b$run"
done
BATCH_MED=$(echo "${BATCH_T[@]}" | median)
WATCH_MED=$(echo "${WATCH_T[@]}" | median)

# --- 3. One large upload -----------------------------------------------------------------
say "large: $SIZE_MIB MiB, $RUNS runs each way"
head -c "$((SIZE_MIB << 20))" /dev/urandom >big
"$BIN/seal" -q big --to server.pub -o big.age
rm big
SINGLE_T=() SUM_T=() BIG_T=() PLAIN_T=()
for run in $(seq "$RUNS"); do
    t0=$(now)
    "$BIN/unseal" -q big.age -o "single-$run" -k server.key
    t1=$(now)
    openssl dgst -sha256 "single-$run" >/dev/null
    t2=$(now)
    SINGLE_T+=("$(echo "$t1 - $t0" | bc)")
    SUM_T+=("$(echo "$t2 - $t0" | bc)")
    rm "single-$run"
    mkdir -p "big$run"
    mv big.age "big$run/big.age"
    start_watcher "big$run"
    arrive "big$run" "inbox-big$run" 0 "times-big$run" "audit-big$run" 1
    stop_watcher
    read -r ms _ _ _ < <(latencies "times-big$run" "audit-big$run")
    BIG_T+=("$(echo "$ms / 1000" | bc -l)")
    mv "inbox-big$run/big.age" big.age
    rm -rf "out-big$run"
    start_watcher "plain$run" plain
    PLAIN_T+=("$(python3 - "plain$run" <<'EOF'
import os, sys, time
run = sys.argv[1]
t = time.time()
os.rename("big.age", f"inbox-{run}/big.age")
while not os.path.exists(f"out-{run}/big"):
    time.sleep(0.002)
print(f"{time.time() - t:.4f}")
EOF
)")
    stop_watcher
    mv "inbox-plain$run/big.age" big.age
    rm -rf "out-plain$run" "big$run"
done
SINGLE_MED=$(echo "${SINGLE_T[@]}" | median)
SUM_MED=$(echo "${SUM_T[@]}" | median)
BIG_MED=$(echo "${BIG_T[@]}" | median)
PLAIN_MED=$(echo "${PLAIN_T[@]}" | median)

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo
echo "unseal --watch on $FS, $(nproc) cores ($CPU), $(date -u +%Y-%m-%d); audit log: --json, with each plaintext's SHA-256"
echo
echo "| what | figure |"
echo "|---|---:|"
printf '| latency, %d x 4 KiB at %d/s: median | %.2f ms |\n' "$UPLOADS" "$RATE" "$LAT_MED"
printf '| latency: 99th percentile | %.2f ms |\n' "$LAT_P99"
printf '| latency: max | %.2f ms |\n' "$LAT_MAX"
printf '| burst of %d x 4 KiB: watcher drains in | %.3f s (%.0f files/s) |\n' "$BURST" "$WATCH_MED" "$(echo "$BURST / $WATCH_MED" | bc -l)"
printf '| the same files, batch mode | %.3f s (%.0f files/s) |\n' "$BATCH_MED" "$(echo "$BURST / $BATCH_MED" | bc -l)"
printf '| burst: watcher rate / batch rate | %.2f |\n' "$(echo "$BATCH_MED / $WATCH_MED" | bc -l)"
printf '| %d MiB upload, single-file unseal | %.3f s |\n' "$SIZE_MIB" "$SINGLE_MED"
printf '| the same, watcher without --json: rename to output | %.3f s (%.2f of unseal speed) |\n' "$PLAIN_MED" "$(echo "$SINGLE_MED / $PLAIN_MED" | bc -l)"
printf '| the same, watcher with --json (SHA-256): rename to record | %.3f s (%.2f of unseal speed) |\n' "$BIG_MED" "$(echo "$SINGLE_MED / $BIG_MED" | bc -l)"
printf '| single-file unseal, then `openssl dgst -sha256` of its output | %.3f s (watcher with --json: %.2f of its speed) |\n' "$SUM_MED" "$(echo "$SUM_MED / $BIG_MED" | bc -l)"
