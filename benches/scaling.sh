#!/usr/bin/env bash
# How `unseal` and `seal` scale with threads: one page-cached file (tmpfs), output to tmpfs and
# to /dev/null, at 1, 2, 4, ... threads up to the core count; Go `age` on the same file as the
# one-core baseline. Prints one Markdown table.
#
# Usage: benches/scaling.sh                      (builds target/release, then measures it)
#        benches/scaling.sh DIR [DIR...]         (measures prebuilt binaries: each DIR holds
#                                                 seal, unseal and seal-keygen)
#
# Environment:
#   SIZE_MIB  input size in MiB (default 1024)
#   RUNS      timed runs per cell; the median is reported (default 5)
#   THREADS   thread counts (default: 1 2 4 ... up to and including the core count)
#   WORK      where the files go (default /dev/shm, else $TMPDIR or /tmp)
#   OPS       which rows (default "unseal null seal"; null is unseal to /dev/null)
#   AGE       the Go age binary for the baseline row (default: `age` on PATH; none: skipped)
#
# Each output file is removed before its run, so no run pays for truncating the previous one.
# Every build's output is compared with the input before anything is timed.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-5}
for n in "$SIZE_MIB" "$RUNS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "scaling: SIZE_MIB and RUNS must be positive integers" >&2; exit 2; }
done
cores=$(nproc)
if [[ -z ${THREADS:-} ]]; then
    THREADS=""
    for ((t = 1; t < cores; t *= 2)); do THREADS+="$t "; done
    THREADS+="$cores"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/timing.sh
source "$ROOT/benches/timing.sh"
if [[ $# -eq 0 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    set -- "${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
for dir in "$@"; do
    for bin in seal unseal seal-keygen; do
        [[ -x $dir/$bin ]] || { echo "scaling: $dir/$bin: not found or not executable" >&2; exit 1; }
    done
done

if [[ -z ${WORK:-} ]]; then
    WORK=/dev/shm
    need_kib=$((SIZE_MIB * 1024 * 4))
    if [[ ! -d $WORK ]] || (($(df -Pk "$WORK" | awk 'NR==2 {print $4}') < need_kib)); then
        WORK=${TMPDIR:-/tmp}
    fi
fi
work=$(mktemp -d "$WORK/seal-scaling.XXXXXX")
trap 'rm -rf "$work"' EXIT
input=$work/input
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$input"
bytes=$((SIZE_MIB * 1024 * 1024))

# Sets MEDIAN to the median wall time in seconds of RUNS runs of "$@", with $out removed
# before each. A failing run stops the script.
median() {
    local out=$1
    shift
    local line
    line=$(time_runs 0 "$RUNS" "rm -f $(printf '%q' "$out")" "$(printf '%q ' "$@")" | summarize -)
    MEDIAN=$(awk -F'\t' '{ printf "%.3f", $2 }' <<<"$line")
}

# One table row; speed-up and efficiency are against the same build and operation at 1 thread.
declare -A base
row() { # build op threads seconds
    local key="$1 $2" gbps speedup eff
    gbps=$(awk -v b="$bytes" -v s="$4" 'BEGIN {printf "%.2f", b / s / 1e9}')
    [[ $3 == 1 || -z ${base[$key]:-} ]] && base[$key]=$4
    speedup=$(awk -v a="${base[$key]}" -v s="$4" 'BEGIN {printf "%.2f", a / s}')
    eff=$(awk -v x="$speedup" -v t="$3" 'BEGIN {printf "%.0f%%", 100 * x / t}')
    printf '| %-8s | %-17s | %7s | %8s | %6s | %7s | %5s |\n' "$1" "$2" "$3" "$4" "$gbps" "$speedup" "$eff"
}

echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $cores cores;" \
    "AVX-512: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no);" \
    "$SIZE_MIB MiB in $WORK; median of $RUNS runs"
echo
printf '| %-8s | %-17s | %7s | %8s | %6s | %7s | %5s |\n' build operation threads "median s" GB/s speed-up eff.
echo '|---|---|---:|---:|---:|---:|---:|'

AGE=${AGE:-$(command -v age || true)}
for dir in "$@"; do
    # target/release -> default, target/pure-rust/release -> pure-rust, other/NAME -> NAME
    name=$(basename "$dir")
    [[ $name == release ]] && name=$(basename "$(dirname "$dir")")
    [[ $name == target || $name == . ]] && name=default
    "$dir/seal-keygen" -o "$work/$name.key" 2>/dev/null
    sealed=$work/$name.age
    "$dir/seal" -q --to "$work/$name.pub" -o "$sealed" "$input"
    rm -f "$work/check"
    "$dir/unseal" -q --key "$work/$name.key" -o "$work/check" "$sealed"
    cmp -s "$input" "$work/check" || { echo "scaling: $dir: round trip differs" >&2; exit 1; }
    for t in $THREADS; do
        [[ " ${OPS:-unseal null seal} " == *" unseal "* ]] || break
        median "$work/out" "$dir/unseal" -q --threads "$t" --key "$work/$name.key" -o "$work/out" "$sealed"
        row "$name" "unseal" "$t" "$MEDIAN"
    done
    for t in $THREADS; do
        [[ " ${OPS:-unseal null seal} " == *" null "* ]] || break
        median "$work/none" sh -c "\"\$0\" -q --threads $t --key \"\$1\" -o - \"\$2\" >/dev/null" "$dir/unseal" "$work/$name.key" "$sealed"
        row "$name" "unseal >/dev/null" "$t" "$MEDIAN"
    done
    for t in $THREADS; do
        [[ " ${OPS:-unseal null seal} " == *" seal "* ]] || break
        median "$work/out" "$dir/seal" -q --threads "$t" --to "$work/$name.pub" -o "$work/out" "$input"
        row "$name" "seal" "$t" "$MEDIAN"
    done
    last_key=$work/$name.key last_pub=$work/$name.pub last_sealed=$sealed
done

if [[ -n $AGE ]]; then
    median "$work/out" "$AGE" -d -i "$last_key" -o "$work/out" "$last_sealed"
    row "Go age" "age -d" 1 "$MEDIAN"
    median "$work/none" sh -c "\"\$0\" -d -i \"\$1\" \"\$2\" >/dev/null" "$AGE" "$last_key" "$last_sealed"
    row "Go age" "age -d >/dev/null" 1 "$MEDIAN"
    median "$work/out" "$AGE" -e -R "$last_pub" -o "$work/out" "$input"
    row "Go age" "age -e" 1 "$MEDIAN"
else
    echo "(Go age not found: no baseline rows)"
fi
