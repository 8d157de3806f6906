#!/usr/bin/env bash
# Whole-process cost of checking a sender signature: `unseal --allowed-signers
# --require-signature` of a signed file against `unseal` of the same file unsigned, on the
# same page-cached input. The signature is checked over a hash of the whole sealed file,
# computed alongside the parallel decryption (issue 5 asks for at most 25 % on 2 cores).
#
# Usage: benches/signed-vs-unsigned.sh [BIN_DIR ...]
#   BIN_DIR   directories with prebuilt seal, unseal and seal-keygen, the pure-Rust build in
#             one whose path says pure-rust, other builds named by their directory's name in
#             the rows (default: cargo build --release, and with PURE_RUST=1 also the pure-Rust
#             build, --no-default-features --features cli)
#
# Environment:
#   SIZE_MIB  input size in MiB (default 1024)
#   RUNS      timed runs per command (default 5, after 1 warmup run)
#   PURE_RUST set to 1 to time the pure-Rust build too (ignored with BIN_DIR)
#   THREADS   thread counts to time unseal at, e.g. "1 2 4 8 16" (default: one per core)
#
# Rows: unsigned; signed by `seal --sign-with` (SSHSIG over SHA-256); the same file signed by
# `ssh-keygen -Y sign` (its default, SHA-512); `sha256sum` and `sha512sum` of the sealed file,
# the one-core floor of the hash that cannot be spread over cores. Also `seal` with and
# without `--sign-with`.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-5}
say() { printf '==> %s\n' "$*" >&2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/timing.sh
source "$ROOT/benches/timing.sh"

SHA512=yes
command -v ssh-keygen >/dev/null || { say "ssh-keygen not found: NO SHA-512 ROWS (apt-get install openssh-client)"; SHA512=no; }

BINS=()
if [[ $# -gt 0 ]]; then
    for dir in "$@"; do BINS+=("$(cd "$dir" && pwd)"); done
else
    say "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
    BINS=("${CARGO_TARGET_DIR:-$ROOT/target}/release")
    if [[ ${PURE_RUST:-0} == 1 ]]; then
        say "cargo build --release --no-default-features --features cli"
        (cd "$ROOT" && cargo build --release --quiet --no-default-features --features cli --target-dir "$ROOT/target/pure-rust")
        BINS+=("$ROOT/target/pure-rust/release")
    fi
fi
BIN=${BINS[0]}

BASE=/dev/shm
if ! [[ -d $BASE && -w $BASE ]] || (( $(df -Pk "$BASE" | awk 'NR == 2 { print $4 }') < SIZE_MIB * 1024 * 5 )); then
    BASE=${TMPDIR:-/tmp}
fi
WORK=$(mktemp -d "$BASE/seal-signed-bench.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
cd "$WORK"

say "work directory $WORK; ${SIZE_MIB} MiB input"
"$BIN/seal-keygen" -o server.key 2>/dev/null
"$BIN/seal-keygen" --client alice >allowed 2>/dev/null
head -c $((SIZE_MIB << 20)) /dev/urandom >input.bin
"$BIN/seal" input.bin --to server.pub -o unsigned.age
"$BIN/seal" input.bin --to server.pub --sign-with alice.key -o signed.age
if [[ $SHA512 == yes ]]; then
    cp signed.age signed512.age
    ssh-keygen -q -Y sign -f alice.key -n seal signed512.age
    grep -q . signed512.age.sig
fi

# Correctness first, untimed: every variant opens to the input, and names alice.
POLICY=(--allowed-signers allowed --require-signature)
for f in unsigned signed signed512; do
    [[ -e $f.age ]] || continue
    flags=()
    [[ $f != unsigned ]] && flags=("${POLICY[@]}")
    "$BIN/unseal" "$f.age" -k server.key -o out.bin -f -q "${flags[@]}"
    cmp -s input.bin out.bin || { echo "signed-vs-unsigned: $f: output differs" >&2; exit 1; }
done
"$BIN/unseal" signed.age -k server.key -o out.bin -f "${POLICY[@]}" 2>&1 | grep -q "signed by alice"
rm -f out.bin

# timeit NAME CMD: one warm-up and $RUNS timed runs, each after removing the outputs; prints
# the median, min and max wall time (hyperfine is not needed, so this runs anywhere).
timeit() {
    time_runs 1 "$RUNS" "rm -f out.bin out.age out.age.sig" "$2 2>/dev/null" | summarize "$1" |
        awk -F'\t' '{ printf "| %s | %.3f | %.3f | %.3f |\n", $1, $2, $3, $4 }'
}

CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
printf '\n%s MiB, %s cores (%s), work dir %s, wall seconds over %s runs\n\n' \
    "$SIZE_MIB" "$(nproc)" "$CPU" "$BASE" "$RUNS"
echo "| command | median | min | max |"
echo "| --- | ---: | ---: | ---: |"
for dir in "${BINS[@]}"; do
    tag=""
    [[ $dir == *pure-rust* ]] && tag=" pure-rust"
    # Several builds to compare (say, before and after a change): each row names its own.
    [[ ${#BINS[@]} -gt 1 && -z $tag ]] && tag=" [$(basename "$dir")]"
    for t in ${THREADS:-0}; do
        th=""
        [[ $t != 0 ]] && th=" -t$t"
        timeit "unseal unsigned$tag$th" "$dir/unseal unsigned.age -k server.key -o out.bin -q --threads $t"
        timeit "unseal signed, sha256$tag$th" "$dir/unseal signed.age -k server.key -o out.bin -q --threads $t ${POLICY[*]}"
        if [[ $SHA512 == yes ]]; then
            timeit "unseal signed, sha512$tag$th" "$dir/unseal signed512.age -k server.key -o out.bin -q --threads $t ${POLICY[*]}"
        fi
    done
    timeit "seal$tag" "$dir/seal input.bin --to server.pub -o out.age"
    timeit "seal --sign-with$tag" "$dir/seal input.bin --to server.pub -o out.age --sign-with alice.key"
done
timeit "sha256sum" "sha256sum signed.age"
timeit "sha512sum" "sha512sum signed.age"
