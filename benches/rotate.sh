#!/usr/bin/env bash
# Server key rotation (`unseal --rewrap-to`), timed against what it replaces, in one run:
#
#   1. a large file (SIZE_MIB) whose new header is as long as the old: rotated in place;
#      then the same file signed, whose signature is checked first, against openssl dgst -sha256 of it;
#   2. the same file rotated to two recipients (a longer header): a new file, the payload
#      copied, against `cp` of the same file then `sync` of the copy;
#   3. a batch of COUNT x 4 KiB sealed files rotated, against `unseal DIR -o PLAIN && seal
#      PLAIN -o NEW` of the same files (both durable).
#
# Usage: WORK_DIR=/mnt/disk benches/rotate.sh   (default: a directory under $TMPDIR)
# Environment: SIZE_MIB (default 1024), COUNT (default 10000), RUNS (default 3).
# Prints one table of medians.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
COUNT=${COUNT:-10000}
RUNS=${RUNS:-3}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release --quiet
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release

BASE=${WORK_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$BASE"
W=$(mktemp -d "$BASE/rotate-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
FS=$(df -T . | awk 'NR==2 {print $2}')
for key in old new escrow; do "$BIN/seal-keygen" -o "$key.key" >/dev/null 2>&1; done

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

head -c "$((SIZE_MIB << 20))" /dev/urandom >big
"$BIN/seal" -q big --to old.pub
rm big
sync
INPLACE=() COPY=() CP=()
for _ in $(seq "$RUNS"); do
    t=$(now)
    "$BIN/unseal" -q --rewrap-to new.pub -k old.key big.age
    INPLACE+=("$(since "$t")")
    "$BIN/unseal" -q --rewrap-to old.pub -k new.key big.age
    sync
    t=$(now)
    "$BIN/unseal" -q --rewrap-to new.pub --rewrap-to escrow.pub -k old.key big.age
    COPY+=("$(since "$t")")
    "$BIN/unseal" -q --rewrap-to old.pub -k new.key big.age
    sync
    t=$(now)
    cp big.age copy.age && sync copy.age
    CP+=("$(since "$t")")
    rm copy.age
    sync
done
rm -f big.age.rotated

# The same file, signed: its signature is checked (the whole file hashed) before rotating.
"$BIN/seal-keygen" --client alice >/dev/null 2>&1
"$BIN/unseal" -q big.age -k old.key -o big
rm big.age
"$BIN/seal" -q big --to old.pub --sign-with alice.key
rm big
sync
SIGNED=() HASH=()
for _ in $(seq "$RUNS"); do
    t=$(now)
    "$BIN/unseal" -q --rewrap-to new.pub -k old.key big.age
    SIGNED+=("$(since "$t")")
    "$BIN/unseal" -q --rewrap-to old.pub -k new.key big.age
    sync
    t=$(now)
    openssl dgst -sha256 big.age >/dev/null
    HASH+=("$(since "$t")")
done
rm -f big.age big.age.sig big.age.rotated

python3 - "$COUNT" <<'PY'
import os, sys
os.makedirs("plain")
for i in range(int(sys.argv[1])):
    with open(f"plain/f{i:05}", "wb") as f:
        f.write(os.urandom(4096))
PY
"$BIN/seal" -q plain --to old.pub -o sealed
rm -rf plain
ROTATE=() RESEAL=()
for run in $(seq "$RUNS"); do
    cp -r sealed "a$run"
    cp -r sealed "b$run"
    sync
    t=$(now)
    "$BIN/unseal" -q --rewrap-to new.pub -k old.key "a$run"
    ROTATE+=("$(since "$t")")
    sync
    t=$(now)
    "$BIN/unseal" -q "b$run" -k old.key -o "p$run"
    "$BIN/seal" -q "p$run" --to new.pub -o "r$run"
    RESEAL+=("$(since "$t")")
    rm -rf "a$run" "b$run" "p$run" "r$run"
    sync
done

I=$(echo "${INPLACE[@]}" | median)
C=$(echo "${COPY[@]}" | median)
P=$(echo "${CP[@]}" | median)
R=$(echo "${ROTATE[@]}" | median)
S=$(echo "${RESEAL[@]}" | median)
G=$(echo "${SIGNED[@]}" | median)
H=$(echo "${HASH[@]}" | median)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo
echo "unseal --rewrap-to on $FS, $(nproc) cores ($CPU), $(date -u +%Y-%m-%d); medians of $RUNS"
echo
echo "| what | figure |"
echo "|---|---:|"
printf '| %d MiB, same-length header (in place) | %.1f ms |\n' "$SIZE_MIB" "$(echo "$I * 1000" | bc -l)"
printf '| %d MiB signed, in place (its signature checked first) | %.3f s (openssl dgst -sha256 of it: %.3f s) |\n' "$SIZE_MIB" "$G" "$H"
printf '| %d MiB, two recipients (a copy) | %.3f s |\n' "$SIZE_MIB" "$C"
printf '| the same bytes, cp then sync | %.3f s (rotation: %.2fx of it) |\n' "$P" "$(echo "$C / $P" | bc -l)"
printf '| %d x 4 KiB rotated | %.3f s |\n' "$COUNT" "$R"
printf '| the same files, unseal then seal | %.3f s (rotation %.2fx faster) |\n' "$S" "$(echo "$S / $R" | bc -l)"
