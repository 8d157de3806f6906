#!/usr/bin/env bash
# Whole-process timing of this project's `seal` / `unseal` against Go `age` and `rage`, on the
# same page-cached file.
#
# Usage: benches/cli-vs-peers.sh            (1 GiB input)
#        SIZE_MIB=256 benches/cli-vs-peers.sh
#
# Environment:
#   SIZE_MIB      input size in MiB (default 1024)
#   RUNS          timed runs per command (default 5; hyperfine also does 1 warmup run)
#   RAGE_INSTALL  set to 0 to never run `cargo install rage --locked` when rage is missing
#   TMPDIR        where to work when /dev/shm lacks room (default /tmp)
#   WORK_DIR      work in this directory instead (e.g. on an ext4 disk): then, off a tmpfs,
#                 the tables gain the durable peers (`age ... && sync FILE`) and the disk's
#                 own durable write of the same bytes (`dd bs=8M conv=fsync`), and two
#                 columns against them; seal and unseal always fsync their output
#   NO_HYPERFINE  set to 1 to use the date +%s%N loop even when hyperfine is installed
#   PURE_RUST     set to 0 to skip the second build, the pure-Rust one (--no-default-features
#                 --features cli: RustCrypto instead of the default AWS-LC backend)
#
# Input and outputs live under a tmpfs (/dev/shm) when it has room, so every read and write
# hits memory only; otherwise under $TMPDIR, with the input read once beforehand to load it
# into the page cache. Each timed run starts with its output file removed (hyperfine
# --prepare), so no tool pays for truncating the previous run's output.
#
# Decryption: every tool opens the same file, sealed by Go age (all three read age v1).
# Encryption: each tool seals the same plaintext to the same X25519 recipient.
# The output of each tool is checked against the input (and each format against the other
# tools) before any timing.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-5}
RAGE_INSTALL=${RAGE_INSTALL:-1}

if ! [[ $SIZE_MIB =~ ^[1-9][0-9]*$ ]]; then
    echo "cli-vs-peers: SIZE_MIB must be a positive integer, got '$SIZE_MIB'" >&2
    exit 2
fi
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then
    echo "cli-vs-peers: RUNS must be a positive integer, got '$RUNS'" >&2
    exit 2
fi

say() { printf '==> %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/timing.sh
source "$ROOT/benches/timing.sh"
cd "$ROOT"

# --- Build once ------------------------------------------------------------------------------
say "cargo build --release"
cargo build --release --quiet
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
SEAL=$TARGET_DIR/release/seal
UNSEAL=$TARGET_DIR/release/unseal
KEYGEN=$TARGET_DIR/release/seal-keygen
for bin in "$SEAL" "$UNSEAL" "$KEYGEN"; do
    [[ -x $bin ]] || { echo "cli-vs-peers: missing $bin after the build" >&2; exit 1; }
done
# The same binaries without AWS-LC (pure Rust), in a target directory of their own.
SEAL_RS="" UNSEAL_RS=""
if [[ ${PURE_RUST:-1} != 0 ]]; then
    say "cargo build --release --no-default-features --features cli"
    cargo build --release --quiet --no-default-features --features cli --target-dir "$TARGET_DIR/pure-rust"
    SEAL_RS=$TARGET_DIR/pure-rust/release/seal
    UNSEAL_RS=$TARGET_DIR/pure-rust/release/unseal
fi

# --- Peers -----------------------------------------------------------------------------------
if ! command -v age >/dev/null 2>&1; then
    echo "cli-vs-peers: Go age not found (Debian/Ubuntu: apt-get install age); it is the baseline" >&2
    exit 1
fi
AGE=$(command -v age)

RAGE=""
if command -v rage >/dev/null 2>&1; then
    RAGE=$(command -v rage)
elif [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/rage ]]; then
    RAGE=${CARGO_HOME:-$HOME/.cargo}/bin/rage
elif [[ $RAGE_INSTALL == 0 ]]; then
    say "rage not found and RAGE_INSTALL=0: CONTINUING WITHOUT RAGE"
else
    say "rage not found: installing it with 'cargo install rage --locked' (several minutes)"
    if cargo install rage --locked; then
        RAGE=${CARGO_HOME:-$HOME/.cargo}/bin/rage
        [[ -x $RAGE ]] || RAGE=$(command -v rage || true)
    fi
    if [[ -z $RAGE ]]; then
        say "rage install FAILED: CONTINUING WITHOUT RAGE (its rows are left out of the tables)"
    fi
fi

# --- Work directory --------------------------------------------------------------------------
SIZE_BYTES=$((SIZE_MIB * 1024 * 1024))
# Input, two sealed copies, one output at a time, plus headroom: 5x the input size.
NEED_KIB=$((SIZE_MIB * 1024 * 5))
avail_kib() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
BASE=${TMPDIR:-/tmp}
ON_TMPFS=no
if [[ -n ${WORK_DIR:-} ]]; then
    BASE=$WORK_DIR
    [[ -d $BASE && -w $BASE ]] || { echo "cli-vs-peers: WORK_DIR $BASE is not a writable directory" >&2; exit 1; }
    (( $(avail_kib "$BASE" || echo 0) > NEED_KIB )) ||
        { echo "cli-vs-peers: WORK_DIR $BASE lacks $((NEED_KIB / 1024)) MiB free" >&2; exit 1; }
    [[ $(stat -f -c %T "$BASE") == tmpfs ]] && ON_TMPFS=yes
elif [[ -d /dev/shm && -w /dev/shm ]] && (( $(avail_kib /dev/shm || echo 0) > NEED_KIB )); then
    BASE=/dev/shm
    ON_TMPFS=yes
elif (( $(avail_kib "$BASE" || echo 0) <= NEED_KIB )); then
    echo "cli-vs-peers: neither /dev/shm nor $BASE has $((NEED_KIB / 1024)) MiB free" >&2
    exit 1
fi
WORK=$(mktemp -d "$BASE/seal-cli-bench.XXXXXX")
cleanup() { rm -rf -- "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

KEY=$WORK/bench.key
PUB=$WORK/bench.pub
INPUT=$WORK/input.bin
SEALED_SEAL=$WORK/input.seal.age
SEALED_AGE=$WORK/input.goage.age
OUT=$WORK/out.bin
RESULTS=$WORK/results.tsv
: >"$RESULTS"

say "work directory $WORK (tmpfs: $ON_TMPFS)"
"$KEYGEN" -o "$KEY" 2>/dev/null
[[ -s $PUB ]] || { echo "cli-vs-peers: seal-keygen did not write $PUB" >&2; exit 1; }

say "making a ${SIZE_MIB} MiB input from /dev/urandom"
head -c "$SIZE_BYTES" /dev/urandom >"$INPUT"

# --- Correctness, untimed --------------------------------------------------------------------
say "sealing once with seal and once with Go age; checking every tool opens both"
"$SEAL" "$INPUT" -R "$PUB" -o "$SEALED_SEAL" -f
"$AGE" -e -R "$PUB" -o "$SEALED_AGE" "$INPUT"
check() { # name, then the command that writes $OUT
    local name=$1
    shift
    rm -f -- "$OUT"
    "$@"
    cmp -s -- "$INPUT" "$OUT" || { echo "cli-vs-peers: $name: output differs from the input" >&2; exit 1; }
}
for sealed in "$SEALED_SEAL" "$SEALED_AGE"; do
    check "unseal $(basename "$sealed")" "$UNSEAL" "$sealed" -k "$KEY" -o "$OUT" -f
    check "unseal --threads 1 $(basename "$sealed")" "$UNSEAL" "$sealed" -k "$KEY" -o "$OUT" -f --threads 1
    check "age -d $(basename "$sealed")" "$AGE" -d -i "$KEY" -o "$OUT" "$sealed"
    if [[ -n $RAGE ]]; then
        check "rage -d $(basename "$sealed")" "$RAGE" -d -i "$KEY" -o "$OUT" "$sealed"
    fi
done
if [[ -n $RAGE ]]; then
    "$RAGE" -e -R "$PUB" -o "$WORK/input.rage.age" "$INPUT"
    check "unseal input.rage.age" "$UNSEAL" "$WORK/input.rage.age" -k "$KEY" -o "$OUT" -f
    rm -f -- "$WORK/input.rage.age"
fi
rm -f -- "$OUT" "$SEALED_SEAL"
# Keep the input in the page cache when it is not on a tmpfs.
cat -- "$INPUT" "$SEALED_AGE" >/dev/null

# --- Timing ----------------------------------------------------------------------------------
q() { printf '%q' "$1"; }
PREPARE="rm -f $(q "$OUT")"

# time_phase PHASE NAME CMD [NAME CMD ...]: times each command, appends
# "PHASE<TAB>NAME<TAB>median<TAB>min<TAB>max" (seconds) to $RESULTS.
time_phase() {
    local phase=$1
    shift
    if [[ ${NO_HYPERFINE:-0} != 1 ]] && command -v hyperfine >/dev/null 2>&1; then
        local args=() json=$WORK/$phase.json md=$WORK/$phase.md
        while (($#)); do
            args+=(-n "$1" "$2")
            shift 2
        done
        hyperfine --style basic --warmup 1 --runs "$RUNS" --prepare "$PREPARE" \
            --export-json "$json" --export-markdown "$md" "${args[@]}" >&2
        printf '\nhyperfine markdown (%s, %s MiB):\n\n' "$phase" "$SIZE_MIB"
        cat -- "$md"
        awk -v phase="$phase" '
            /"command":/ { sub(/.*"command": "/, ""); sub(/",?$/, ""); name = $0 }
            /"median":/  { sub(/.*"median": /, ""); sub(/,$/, ""); median = $0 }
            /"min":/     { sub(/.*"min": /, "");    sub(/,$/, ""); min = $0 }
            /"max":/     { sub(/.*"max": /, "");    sub(/,$/, ""); max = $0
                           printf "%s\t%s\t%s\t%s\t%s\n", phase, name, median, min, max }
        ' "$json" >>"$RESULTS"
    else
        say "hyperfine not found: timing with a date +%s%N loop (1 warmup + $RUNS runs)"
        while (($#)); do
            local name=$1 cmd=$2
            shift 2
            time_runs 1 "$RUNS" "$PREPARE" "$cmd" | summarize "$phase"$'\t'"$name" | tee -a "$RESULTS" |
                awk -F'\t' '{ printf "  %-22s median %.3f s  min %.3f s  max %.3f s\n", $2, $3, $4, $5 }' >&2
        done
    fi
}

DEC=(
    "unseal" "$(q "$UNSEAL") $(q "$SEALED_AGE") -k $(q "$KEY") -o $(q "$OUT") -f"
    "unseal --threads 1" "$(q "$UNSEAL") $(q "$SEALED_AGE") -k $(q "$KEY") -o $(q "$OUT") -f --threads 1"
    "unseal >/dev/null" "$(q "$UNSEAL") $(q "$SEALED_AGE") -k $(q "$KEY") -o - >/dev/null"
    "pipe: unseal > out" "cat $(q "$SEALED_AGE") | $(q "$UNSEAL") -k $(q "$KEY") > $(q "$OUT")"
    "age -d" "$(q "$AGE") -d -i $(q "$KEY") -o $(q "$OUT") $(q "$SEALED_AGE")"
    "age -d >/dev/null" "$(q "$AGE") -d -i $(q "$KEY") $(q "$SEALED_AGE") >/dev/null"
    "pipe: age -d > out" "cat $(q "$SEALED_AGE") | $(q "$AGE") -d -i $(q "$KEY") > $(q "$OUT")"
)
ENC=(
    "seal" "$(q "$SEAL") $(q "$INPUT") -R $(q "$PUB") -o $(q "$OUT") -f"
    "seal --threads 1" "$(q "$SEAL") $(q "$INPUT") -R $(q "$PUB") -o $(q "$OUT") -f --threads 1"
    "age -e" "$(q "$AGE") -e -R $(q "$PUB") -o $(q "$OUT") $(q "$INPUT")"
)
if [[ -n $UNSEAL_RS ]]; then
    DEC+=(
        "unseal pure-rust" "$(q "$UNSEAL_RS") $(q "$SEALED_AGE") -k $(q "$KEY") -o $(q "$OUT") -f"
        "unseal pure-rust -t1" "$(q "$UNSEAL_RS") $(q "$SEALED_AGE") -k $(q "$KEY") -o $(q "$OUT") -f --threads 1"
        "unseal pure-rust >null" "$(q "$UNSEAL_RS") $(q "$SEALED_AGE") -k $(q "$KEY") -o - >/dev/null"
        "pipe: unseal pure-rust" "cat $(q "$SEALED_AGE") | $(q "$UNSEAL_RS") -k $(q "$KEY") > $(q "$OUT")"
    )
    ENC+=(
        "seal pure-rust" "$(q "$SEAL_RS") $(q "$INPUT") -R $(q "$PUB") -o $(q "$OUT") -f"
        "seal pure-rust -t1" "$(q "$SEAL_RS") $(q "$INPUT") -R $(q "$PUB") -o $(q "$OUT") -f --threads 1"
    )
fi
if [[ $ON_TMPFS == no ]]; then
    # The same durability as seal and unseal (which fsync their output), and the disk's
    # ceiling: the same bytes written and made durable, nothing else.
    DEC+=(
        "age -d && sync" "$(q "$AGE") -d -i $(q "$KEY") -o $(q "$OUT") $(q "$SEALED_AGE") && sync $(q "$OUT")"
        "dd conv=fsync" "dd if=$(q "$INPUT") of=$(q "$OUT") bs=8M conv=fsync status=none"
    )
    ENC+=(
        "age -e && sync" "$(q "$AGE") -e -R $(q "$PUB") -o $(q "$OUT") $(q "$INPUT") && sync $(q "$OUT")"
        "dd conv=fsync" "dd if=$(q "$SEALED_AGE") of=$(q "$OUT") bs=8M conv=fsync status=none"
    )
fi
if [[ -n $RAGE ]]; then
    DEC+=("rage -d" "$(q "$RAGE") -d -i $(q "$KEY") -o $(q "$OUT") $(q "$SEALED_AGE")")
    ENC+=("rage -e" "$(q "$RAGE") -e -R $(q "$PUB") -o $(q "$OUT") $(q "$INPUT")")
fi

say "timing decryption"
time_phase decrypt "${DEC[@]}"
say "timing encryption"
time_phase encrypt "${ENC[@]}"

# --- Summary ---------------------------------------------------------------------------------
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
printf '\n%s MiB input, %s cores (%s), work dir on %s, median of %s runs\n' \
    "$SIZE_MIB" "$(nproc)" "${CPU:-unknown CPU}" "$([[ $ON_TMPFS == yes ]] && echo tmpfs || echo "$BASE ($(df -PT "$BASE" | awk 'NR == 2 { print $2 }'))")" "$RUNS"
RAGE_VERSION="not available"
[[ -n $RAGE ]] && RAGE_VERSION=$("$RAGE" --version | awk '{ print $2 }')
printf 'versions: %s; Go age %s; rage %s\n' "$("$UNSEAL" --version)" "$("$AGE" --version)" "$RAGE_VERSION"
printf 'GB/s = 10^9 plaintext bytes per second; "x age" = Go age median / tool median (>1 is faster)\n'
printf '"x same mode" = the same against Go age in the same mode: to /dev/null, or through a pipe\n'
if [[ $ON_TMPFS == no ]]; then
    printf '"x age+sync" = Go age with its output made durable (age ... && sync FILE) / tool median;\n'
    printf '"x dd" = the disk ceiling (dd bs=8M conv=fsync of the same bytes) / tool median (1 = at the ceiling)\n'
fi
for phase in decrypt encrypt; do
    awk -F'\t' -v phase="$phase" -v bytes="$SIZE_BYTES" -v disk="$([[ $ON_TMPFS == no ]] && echo 1 || echo 0)" '
        function mode(tool) { return tool ~ /null/ ? "null" : tool ~ /^pipe:/ ? "pipe" : "file" }
        $1 == phase { n++; name[n] = $2; median[n] = $3; min[n] = $4; max[n] = $5
                      if ($2 ~ /^(pipe: )?age -[de]( >\/dev\/null)?( > out)?$/) same[mode($2)] = $3
                      if ($2 == "age -d" || $2 == "age -e") base = $3
                      if ($2 ~ /^age -[de] && sync$/) synced = $3
                      if ($2 == "dd conv=fsync") ceiling = $3 }
        END {
            printf "\n%s\n", phase
            printf "| %-20s | %10s | %8s | %8s | %7s | %11s |", "tool", "median s", "min s", "GB/s", "x age", "x same mode"
            if (disk) printf " %10s | %6s |", "x age+sync", "x dd"
            printf "\n|%s|%s|%s|%s|%s|%s|", "----------------------", "-----------:", "---------:", "---------:", "--------:", "------------:"
            if (disk) printf "%s|%s|", "-----------:", "-------:"
            printf "\n"
            for (i = 1; i <= n; i++) {
                printf "| %-20s | %10.3f | %8.3f | %8.2f | %7.2f | %11.2f |", name[i], median[i], min[i],
                    bytes / median[i] / 1e9, base / median[i], same[mode(name[i])] / median[i]
                if (disk) printf " %10.2f | %6.2f |", synced / median[i], ceiling / median[i]
                printf "\n"
            }
        }' "$RESULTS"
done
if [[ -z $RAGE ]]; then
    printf '\nrage: not available (not installed, or the install failed): no rage rows\n'
fi
