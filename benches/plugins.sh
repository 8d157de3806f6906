#!/usr/bin/env bash
# What a plugin identity costs (`unseal --key` with AGE-PLUGIN-...), against a native X25519
# key, in one run: one file (a plugin process and its session), and a batch of COUNT x 4 KiB
# (one session for the whole batch). The plugin is examples/age-plugin-sealtest.rs (the
# age-plugin crate over a software X25519 key), so the figures are the protocol's cost, not
# a hardware key's (a YubiKey takes tens of milliseconds for its own operation).
#
# Usage: benches/plugins.sh   Environment: COUNT (default 1000), RUNS (default 5), WORK_DIR.
set -euo pipefail

COUNT=${COUNT:-1000}
RUNS=${RUNS:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release --quiet
cargo build --release --quiet --example age-plugin-sealtest
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release
export PATH="$BIN/examples:$PATH"

BASE=${WORK_DIR:-${TMPDIR:-/tmp}}
W=$(mktemp -d "$BASE/plugins-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
"$BIN/seal-keygen" -o native.key >/dev/null 2>&1
age-plugin-sealtest --generate >plugin.key
chmod 600 plugin.key
grep '^# recipient: ' plugin.key | cut -d' ' -f3 >plugin.pub

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

head -c 4096 /dev/urandom >one
"$BIN/seal" -q one --to plugin.pub -o one.plugin.age
"$BIN/seal" -q one --to native.pub -o one.native.age
python3 - "$COUNT" <<'PY'
import os, sys
os.makedirs("plain")
for i in range(int(sys.argv[1])):
    with open(f"plain/f{i:05}", "wb") as f:
        f.write(os.urandom(4096))
PY
"$BIN/seal" -q plain --to plugin.pub -o by-plugin
"$BIN/seal" -q plain --to native.pub -o by-native

ONE_P=() ONE_N=() MANY_P=() MANY_N=()
for run in $(seq "$RUNS"); do
    t=$(now); "$BIN/unseal" -q one.plugin.age -k plugin.key -o "op$run"; ONE_P+=("$(since "$t")")
    t=$(now); "$BIN/unseal" -q one.native.age -k native.key -o "on$run"; ONE_N+=("$(since "$t")")
    t=$(now); "$BIN/unseal" -q by-plugin -k plugin.key -o "bp$run"; MANY_P+=("$(since "$t")")
    t=$(now); "$BIN/unseal" -q by-native -k native.key -o "bn$run"; MANY_N+=("$(since "$t")")
    rm -rf "op$run" "on$run" "bp$run" "bn$run"
done
OP=$(echo "${ONE_P[@]}" | median); ON=$(echo "${ONE_N[@]}" | median)
MP=$(echo "${MANY_P[@]}" | median); MN=$(echo "${MANY_N[@]}" | median)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo
echo "unseal with a plugin identity, $(nproc) cores ($CPU), $(date -u +%Y-%m-%d); medians of $RUNS"
echo
echo "| what | plugin | native X25519 | per file, plugin's extra |"
echo "|---|---:|---:|---:|"
printf '| one 4 KiB file | %.1f ms | %.1f ms | %.1f ms |\n' "$(echo "$OP*1000" | bc -l)" "$(echo "$ON*1000" | bc -l)" "$(echo "($OP-$ON)*1000" | bc -l)"
printf '| %d x 4 KiB, batch | %.3f s | %.3f s | %.1f µs |\n' "$COUNT" "$MP" "$MN" "$(echo "($MP-$MN)*1000000/$COUNT" | bc -l)"
