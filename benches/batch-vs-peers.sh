#!/usr/bin/env bash
# Batch mode against its two targets (issue 3), timed whole-process on the same machine in the
# same run:
#
#   1. Many small files: `seal DIR` and `unseal DIR` on SMALL_FILES files of SMALL_KIB KiB,
#      in files per second, against a shell loop that calls the Go `age` CLI once per file.
#      Target: at least 50x the loop's files per second.
#   2. Many large files: `unseal DIR` on LARGE_FILES files of LARGE_MIB MiB, against `unseal`
#      of one file of the same total size, in bytes per second. Target: within 10 %.
#
# Usage: benches/batch-vs-peers.sh
#        LARGE_MIB=64 benches/batch-vs-peers.sh     (the issue's 100 x 64 MiB vs 6.4 GiB)
#
# Environment:
#   SMALL_FILES   small files (default 10000)          SMALL_KIB  their size (default 4)
#   AGE_FILES     of those, how many the Go age loop does per run (default 2000; its files
#                 per second are a rate, so a subset measures it; 0 = all)
#   LARGE_FILES   large files (default 100)            LARGE_MIB  their size (default 16)
#   RUNS          timed runs per command (default 5 for seal/unseal, min(RUNS, 3) for the
#                 age loop); hyperfine also does 1 warmup run of each seal/unseal command
#   NO_HYPERFINE  set to 1 to time with a date +%s%N loop even when hyperfine is installed
#   PURE_RUST     set to 1 to measure the pure-Rust build (--no-default-features --features cli,
#                 built into target/pure-rust) instead of the default AWS-LC one
#   WORK_DIR      work in this directory instead of /dev/shm (e.g. on an ext4 disk): then, off a
#                 tmpfs, the small-file table gains Go age with each output made durable
#                 (`age ... && sync FILE`, as seal and unseal fsync each output) and the disk's
#                 own ceiling for durable small writes (a loop of `dd conv=fsync`)
#
# Everything lives under /dev/shm (a tmpfs) unless WORK_DIR says otherwise, so that by
# default the disk is not what is measured; the large-file phase holds the sealed inputs and one output at a time: 2 x LARGE_FILES x
# LARGE_MIB MiB (the default 1.6 GiB needs 3.2 GiB; LARGE_MIB=64 needs 12.8 GiB of memory),
# and so does preparing the single file (its plaintext, then its sealed copy).
# The two large cases are set up and timed one after the other, never both at once.
# Outputs are removed before each timed run (hyperfine --prepare), and every output is
# checked against its input before any timing.
set -euo pipefail

SMALL_FILES=${SMALL_FILES:-10000}
SMALL_KIB=${SMALL_KIB:-4}
AGE_FILES=${AGE_FILES:-2000}
LARGE_FILES=${LARGE_FILES:-100}
LARGE_MIB=${LARGE_MIB:-16}
RUNS=${RUNS:-5}
for var in SMALL_FILES SMALL_KIB LARGE_FILES LARGE_MIB RUNS; do
    if ! [[ ${!var} =~ ^[1-9][0-9]*$ ]]; then
        echo "batch-vs-peers: $var must be a positive integer, got '${!var}'" >&2
        exit 2
    fi
done
[[ $AGE_FILES =~ ^[0-9]+$ ]] || { echo "batch-vs-peers: AGE_FILES must be a number" >&2; exit 2; }
((AGE_FILES == 0 || AGE_FILES > SMALL_FILES)) && AGE_FILES=$SMALL_FILES
AGE_RUNS=$((RUNS < 3 ? RUNS : 3))

say() { printf '==> %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/timing.sh
source "$ROOT/benches/timing.sh"
cd "$ROOT"

# --- Build once ------------------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
if [[ ${PURE_RUST:-0} != 0 ]]; then
    TARGET_DIR=$TARGET_DIR/pure-rust
    say "cargo build --release --no-default-features --features cli"
    cargo build --release --quiet --no-default-features --features cli --target-dir "$TARGET_DIR"
else
    say "cargo build --release"
    cargo build --release --quiet
fi
SEAL=$TARGET_DIR/release/seal
UNSEAL=$TARGET_DIR/release/unseal
KEYGEN=$TARGET_DIR/release/seal-keygen
command -v age >/dev/null 2>&1 || {
    echo "batch-vs-peers: Go age not found (apt-get install age); it is the baseline" >&2
    exit 1
}
AGE=$(command -v age)

# --- A quiet machine -------------------------------------------------------------------------
busy=$(for name in rustc cargo cc1 ld hyperfine; do pgrep -x "$name"; done || true)
if [[ -n $busy ]]; then
    say "WARNING: other build or benchmark processes are running; figures may be low:"
    ps -o pid,comm,args -p "$(echo "$busy" | paste -sd,)" >&2 || true
fi
say "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- Work directory --------------------------------------------------------------------------
avail_mib() { df -Pm "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
NEED_MIB=$((2 * LARGE_FILES * LARGE_MIB + 3 * SMALL_FILES * (SMALL_KIB + 4) / 1024 + 256))
BASE=${WORK_DIR:-/dev/shm}
[[ -d $BASE && -w $BASE ]] || { echo "batch-vs-peers: $BASE is not a writable directory" >&2; exit 1; }
if (($(avail_mib "$BASE") < NEED_MIB)); then
    echo "batch-vs-peers: $BASE has $(avail_mib "$BASE") MiB free, $NEED_MIB MiB needed;" \
        "try a smaller LARGE_MIB" >&2
    exit 1
fi
FS=$(df -PT "$BASE" | awk 'NR == 2 { print $2 }')
ON_DISK=$([[ $FS == tmpfs ]] && echo no || echo yes)
WORK=$(mktemp -d "$BASE/seal-batch-bench.XXXXXX")
cleanup() { rm -rf -- "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$WORK"
RESULTS=$WORK/results.tsv
: >"$RESULTS"
"$KEYGEN" -o bench.key 2>/dev/null

q() { printf '%q' "$1"; }

# time_cmd NAME PREPARE CMD RUNS: times CMD (bash) RUNS times after one warmup (none when
# RUNS < 3, for the slow age loops), running PREPARE before each; appends
# "NAME<TAB>median<TAB>min<TAB>max" (seconds) to $RESULTS.
time_cmd() {
    local name=$1 prepare=$2 cmd=$3 runs=$4 warmup=1
    ((runs < 3)) && warmup=0
    if [[ ${NO_HYPERFINE:-0} != 1 ]] && command -v hyperfine >/dev/null 2>&1; then
        local json=$WORK/time.json
        hyperfine --style basic --shell=bash --warmup "$warmup" --runs "$runs" \
            --prepare "$prepare" --export-json "$json" -n "$name" "$cmd" >&2
        awk -v name="$name" '
            /"median":/ { sub(/.*"median": /, ""); sub(/,$/, ""); median = $0 }
            /"min":/    { sub(/.*"min": /, "");    sub(/,$/, ""); min = $0 }
            /"max":/    { sub(/.*"max": /, "");    sub(/,$/, ""); max = $0 }
            END { printf "%s\t%s\t%s\t%s\n", name, median, min, max }' "$json" >>"$RESULTS"
    else
        time_runs "$warmup" "$runs" "$prepare" "$cmd" | summarize "$name" | tee -a "$RESULTS" >&2
    fi
}
median() { awk -F'\t' -v name="$1" '$1 == name { print $2 }' "$RESULTS"; }

# --- 1. Many small files ---------------------------------------------------------------------
say "making $SMALL_FILES files of $SMALL_KIB KiB in 100 directories"
python3 - "$SMALL_FILES" "$SMALL_KIB" <<'EOF'
import os, sys
n, kib = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    d = "small/d%02d" % (i % 100)
    os.makedirs(d, exist_ok=True)
    with open("%s/f%06d" % (d, i), "wb") as f:
        f.write(os.urandom(kib * 1024))
EOF
# The age loop's inputs: the first AGE_FILES files, flat.
mapfile -t SMALL < <(find small -type f | sort)
mkdir agein
for f in "${SMALL[@]:0:AGE_FILES}"; do
    ln "$f" "agein/${f//\//_}"
done

say "checking: seal + unseal a tree, Go age opens a batch output, unseal opens age's"
"$SEAL" small --to bench.pub -o sealed -q
"$UNSEAL" sealed --key bench.key -o check -q
diff -r small check/sealed/small >/dev/null || { echo "batch-vs-peers: round trip differs" >&2; exit 1; }
one=${SMALL[0]}
"$AGE" -d -i bench.key "sealed/$one.age" | cmp -s - "$one" || { echo "batch-vs-peers: age cannot open a batch output" >&2; exit 1; }
mkdir agecheck
"$AGE" -e -R bench.pub -o agecheck/x.age "$one"
"$UNSEAL" agecheck --key bench.key -q && cmp -s agecheck/x "$one" || { echo "batch-vs-peers: unseal cannot open age's" >&2; exit 1; }
rm -rf check agecheck
# The age loop decrypts files sealed by age.
mkdir agesealed
for f in agein/*; do "$AGE" -e -R bench.pub -o "agesealed/${f#agein/}.age" "$f"; done

say "timing $SMALL_FILES small files (batch) and $AGE_FILES of them (Go age loop)"
time_cmd "seal DIR" "rm -rf out" "$(q "$SEAL") small --to bench.pub -o out -q" "$RUNS"
time_cmd "unseal DIR" "rm -rf out" "$(q "$UNSEAL") sealed --key bench.key -o out -q" "$RUNS"
time_cmd "age -e loop" "rm -rf out && mkdir out" \
    "for f in agein/*; do $(q "$AGE") -e -R bench.pub -o \"out/\${f#agein/}.age\" \"\$f\"; done" "$AGE_RUNS"
time_cmd "age -d loop" "rm -rf out && mkdir out" \
    "for f in agesealed/*; do n=\${f#agesealed/}; $(q "$AGE") -d -i bench.key -o \"out/\${n%.age}\" \"\$f\"; done" "$AGE_RUNS"
if [[ $ON_DISK == yes ]]; then
    time_cmd "age -e loop+sync" "rm -rf out && mkdir out" \
        "for f in agein/*; do o=\"out/\${f#agein/}.age\"; $(q "$AGE") -e -R bench.pub -o \"\$o\" \"\$f\" && sync \"\$o\"; done" "$AGE_RUNS"
    time_cmd "age -d loop+sync" "rm -rf out && mkdir out" \
        "for f in agesealed/*; do n=\${f#agesealed/}; o=\"out/\${n%.age}\"; $(q "$AGE") -d -i bench.key -o \"\$o\" \"\$f\" && sync \"\$o\"; done" "$AGE_RUNS"
    time_cmd "dd loop" "rm -rf out && mkdir out" \
        "for f in agein/*; do dd if=\"\$f\" of=\"out/\${f#agein/}\" bs=8M conv=fsync status=none; done" "$AGE_RUNS"
fi
rm -rf small sealed agein agesealed out

# --- 2. Many large files against one ---------------------------------------------------------
TOTAL_MIB=$((LARGE_FILES * LARGE_MIB))
say "sealing $LARGE_FILES files of $LARGE_MIB MiB of random data"
mkdir many
sums=$WORK/many.sha256
for ((i = 0; i < LARGE_FILES; i++)); do
    name=$(printf 'part%04d' "$i")
    head -c "${LARGE_MIB}M" /dev/urandom >plain.tmp
    echo "$(sha256sum <plain.tmp | cut -d' ' -f1)  out/many/$name" >>"$sums"
    "$SEAL" plain.tmp --to bench.pub -o "many/$name.age"
done
rm -f plain.tmp
"$UNSEAL" many --key bench.key -o out -q
sha256sum --quiet -c "$sums" || { echo "batch-vs-peers: large batch round trip differs" >&2; exit 1; }
say "timing: unseal of $LARGE_FILES x $LARGE_MIB MiB"
time_cmd "unseal DIR (large)" "rm -rf out" "$(q "$UNSEAL") many --key bench.key -o out -q" "$RUNS"
rm -rf many out

say "sealing one file of $TOTAL_MIB MiB of random data"
head -c "${TOTAL_MIB}M" /dev/urandom >plain.tmp
sum=$(sha256sum <plain.tmp | cut -d' ' -f1)
"$SEAL" plain.tmp --to bench.pub -o one.age
rm -f plain.tmp
"$UNSEAL" one.age --key bench.key -o one.out -q
[[ $(sha256sum <one.out | cut -d' ' -f1) == "$sum" ]] || { echo "batch-vs-peers: single round trip differs" >&2; exit 1; }
say "timing: unseal of one $TOTAL_MIB MiB file"
time_cmd "unseal FILE (one)" "rm -f one.out" "$(q "$UNSEAL") one.age --key bench.key -o one.out -q" "$RUNS"
rm -f one.age one.out

# --- Summary ---------------------------------------------------------------------------------
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
printf '\n%s cores (%s), %s (%s), median of %s runs (age loops: %s); %s; Go age %s\n' \
    "$(nproc)" "${CPU:-unknown CPU}" "$BASE" "$FS" "$RUNS" "$AGE_RUNS" "$("$UNSEAL" --version)" "$("$AGE" --version)"
printf '\nsmall files: %s x %s KiB for seal/unseal, %s of them for the Go age loop\n' \
    "$SMALL_FILES" "$SMALL_KIB" "$AGE_FILES"
printf '| %-12s | %9s | %11s | %11s | %7s | %s |\n' "direction" "batch s" "batch files/s" "age files/s" "x age" "target 50x"
printf '|%s|%s|%s|%s|%s|%s|\n' "--------------" "----------:" "--------------:" "------------:" "--------:" "------------"
for dir in seal unseal; do
    flag=-e
    [[ $dir == unseal ]] && flag=-d
    awk -v dir="$dir" -v b="$(median "$dir DIR")" -v a="$(median "age $flag loop")" \
        -v n="$SMALL_FILES" -v an="$AGE_FILES" 'BEGIN {
            bf = n / b; af = an / a; x = bf / af
            printf "| %-12s | %9.3f | %13.0f | %11.1f | %7.1f | %s |\n", dir, b, bf, af, x, (x >= 50 ? "met" : "NOT met")
        }'
done
if [[ $ON_DISK == yes ]]; then
    printf '\ndurable small files on %s: each output made durable (files/s; "x" = batch / it)\n' "$FS"
    printf '| %-12s | %13s | %16s | %6s | %16s | %6s |\n' "direction" "batch files/s" "age+sync files/s" "x" "dd fsync files/s" "x"
    printf '|%s|%s|%s|%s|%s|%s|\n' "--------------" "--------------:" "-----------------:" "-------:" "-----------------:" "-------:"
    for dir in seal unseal; do
        flag=-e
        [[ $dir == unseal ]] && flag=-d
        awk -v dir="$dir" -v b="$(median "$dir DIR")" -v a="$(median "age $flag loop+sync")" \
            -v d="$(median "dd loop")" -v n="$SMALL_FILES" -v an="$AGE_FILES" 'BEGIN {
                bf = n / b; af = an / a; df = an / d
                printf "| %-12s | %13.0f | %16.1f | %6.1f | %16.1f | %6.2f |\n", dir, bf, af, bf / af, df, bf / df
            }'
    done
fi
printf '\nlarge files: unseal of %s x %s MiB against one %s MiB file (GB/s = 10^9 bytes/s)\n' \
    "$LARGE_FILES" "$LARGE_MIB" "$TOTAL_MIB"
awk -v b="$(median "unseal DIR (large)")" -v o="$(median "unseal FILE (one)")" \
    -v bytes="$((TOTAL_MIB * 1024 * 1024))" 'BEGIN {
        printf "| %-22s | %8s | %6s |\n", "case", "median s", "GB/s"
        printf "|%s|%s|%s|\n", "------------------------", "---------:", "-------:"
        printf "| %-22s | %8.3f | %6.2f |\n", "unseal DIR (batch)", b, bytes / b / 1e9
        printf "| %-22s | %8.3f | %6.2f |\n", "unseal FILE (one file)", o, bytes / o / 1e9
        r = o / b
        printf "\nbatch throughput / single-file throughput = %.3f (target >= 0.90: %s)\n", r, (r >= 0.9 ? "met" : "NOT met")
    }'
