#!/usr/bin/env bash
# Seeds fuzz/corpus/<target> from the C2SP vectors in testdata/age-vectors: the age file of
# each vector (decompressed), its header for `header`, armored files for `armor`, the identity
# lines for `keys`. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
python3 - <<'PY'
import hashlib, os, zlib, glob
for t in ("header", "armor", "keys", "decrypt", "signers"):
    os.makedirs(f"corpus/{t}", exist_ok=True)
def put(target, data):
    name = hashlib.sha1(data).hexdigest()
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data)
for path in sorted(glob.glob("../testdata/age-vectors/*")):
    if path.endswith("LICENSE"):
        continue
    raw = open(path, "rb").read()
    head, body = raw.split(b"\n\n", 1)
    fields = [l.split(b": ", 1) for l in head.split(b"\n")]
    if [b"compressed", b"zlib"] in fields:
        body = zlib.decompress(body)
    if len(body) > 1 << 20:
        continue
    put("decrypt", body)
    if [b"armored", b"yes"] in fields:
        put("armor", body)
    else:
        put("header", body)
    keys = b"\n".join(v for k, v in fields if k == b"identity")
    if keys:
        put("keys", keys + b"\n")
PY
# A recipients file, for the recipient parser.
printf 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n# c\n' > corpus/keys/recipient
# Allowed-signers lines for the fixture keys, and a signature ssh-keygen made.
for pub in ../testdata/keys/*.pub; do
    printf 'alice,bob@example namespaces="seal",valid-before="20300101Z" %s' "$(cat "$pub")" \
        > "corpus/signers/$(basename "$pub").line"
done
cp ../testdata/signatures/ed25519.seal-sig corpus/signers/
for t in corpus/*; do echo "$t: $(ls "$t" | wc -l) inputs"; done
