#!/usr/bin/env bash
# The main job on the bundled sample: make a server key, seal a file to it, unseal it on every
# core, check the round trip, seal and check a signed copy, then time a larger copy at one
# thread and at all cores.
#
#   bash testdata/demo/run.sh            # DEMO_MIB=1024 for a bigger timing file
set -euo pipefail
cd "$(dirname "$0")/../.."
sample=testdata/demo/quarterly-report.csv
mib=${DEMO_MIB:-512}

echo "building release binaries (first run takes a few minutes)..."
cargo build --release --quiet
bin=$PWD/target/release

# Work in RAM when there is room, so the timings measure the tool, not the disk.
base=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ "$(df -Pm /dev/shm | awk 'NR==2 {print $4}')" -gt $((mib * 3 + 64)) ]; then
  base=/dev/shm
fi
work=$(mktemp -d "$base/seal-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

now() { date +%s%N; }
rate() { # bytes, start ns, end ns -> "1.23 s, 0.87 GB/s"
  awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { t = (e - s) / 1e9; printf "%.2f s, %.2f GB/s", t, b / t / 1e9 }'
}

echo
echo "== 1. the operator makes a server key"
"$bin/seal-keygen" -o "$work/server.key" 2>&1 | sed 's/^/   /'

echo
echo "== 2. a user seals $sample to server.pub"
"$bin/seal" "$sample" --to "$work/server.pub" -o "$work/report.csv.age"
printf '   %s: %s bytes -> %s bytes sealed\n' "$(basename "$sample")" \
  "$(wc -c < "$sample")" "$(wc -c < "$work/report.csv.age")"
printf '   first line: %s\n' "$(head -n1 "$work/report.csv.age")"

echo
echo "== 3. the server unseals it"
"$bin/unseal" "$work/report.csv.age" --key "$work/server.key" -o "$work/report.csv"
cmp "$sample" "$work/report.csv"
echo "   round trip: identical"
if command -v age >/dev/null; then
  age -d -i "$work/server.key" "$work/report.csv.age" | cmp - "$sample"
  echo "   the Go age CLI opens it too"
fi

echo
echo "== 4. a client key: alice signs what she seals, the server checks who sent it"
(cd "$work" && "$bin/seal-keygen" --client alice > allowed_signers) 2>&1 | sed 's/^/   /'
"$bin/seal" "$sample" --to "$work/server.pub" --sign-with "$work/alice.key" -o "$work/signed.csv.age"
echo "   sealed signed.csv.age and signed.csv.age.sig"
"$bin/unseal" "$work/signed.csv.age" --key "$work/server.key" -o "$work/signed.csv" \
  --allowed-signers "$work/allowed_signers" --require-signature 2>&1 | sed "s|$work/||; s/^/   /"
cmp "$sample" "$work/signed.csv"

echo
echo "== 5. speed: a ${mib} MiB copy of the sample, $(nproc) cores"
big=$work/big.csv
: > "$big"
while [ "$(wc -c < "$big")" -lt $((mib * 1048576)) ]; do cat "$sample" >> "$big"; done
truncate -s $((mib * 1048576)) "$big"
bytes=$(wc -c < "$big")
t0=$(now); "$bin/seal" "$big" --to "$work/server.pub" -o "$big.age"; t1=$(now)
echo "   seal,   all cores : $(rate "$bytes" "$t0" "$t1")"
rm -f "$big"
t0=$(now); "$bin/unseal" "$big.age" --key "$work/server.key" -o "$big.1" --threads 1; t1=$(now)
echo "   unseal, 1 thread  : $(rate "$bytes" "$t0" "$t1")"
rm -f "$big.1"
t0=$(now); "$bin/unseal" "$big.age" --key "$work/server.key" -o "$big"; t1=$(now)
echo "   unseal, all cores : $(rate "$bytes" "$t0" "$t1")"
rm -f "$big"
if command -v age >/dev/null; then
  t0=$(now); age -d -i "$work/server.key" -o "$big" "$big.age"; t1=$(now)
  echo "   Go age -d         : $(rate "$bytes" "$t0" "$t1")"
fi
echo
echo "done: sealed, unsealed and verified; temporary files removed"
