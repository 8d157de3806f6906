#!/usr/bin/env python3
"""Draws the throughput chart of the README from the tables benches/cli-vs-peers.sh prints.

    bash benches/cli-vs-peers.sh | python3 benches/chart.py > benches/throughput.svg

One horizontal bar per tool and mode (GB/s of plaintext, median), decryption and encryption.
Standard library only.
"""
import re
import sys

rows = {"decrypt": [], "encrypt": []}
phase = None
for line in sys.stdin:
    line = line.strip()
    if line in rows:
        phase = line
        continue
    m = re.match(r"\|\s*([^|]+?)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|", line)
    if phase and m:
        rows[phase].append((m.group(1), float(m.group(4))))

if not any(rows.values()):
    sys.exit("chart.py: no result tables on standard input")

bar_h, gap, label_w, scale_w = 18, 6, 190, 420
top = max(v for r in rows.values() for _, v in r)
height = 40 + sum(28 + len(r) * (bar_h + gap) for r in rows.values())
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + scale_w + 80}" '
       f'height="{height}" font-family="sans-serif" font-size="12">',
       '<text x="8" y="20" font-size="14" font-weight="bold">'
       'Throughput, 1 GiB file in tmpfs, GB/s (medians)</text>']
y = 40
for phase, items in rows.items():
    out.append(f'<text x="8" y="{y + 12}" font-weight="bold">{phase}</text>')
    y += 22
    for name, value in items:
        w = value / top * scale_w
        ours = name.startswith(("seal", "unseal", "cat | unseal"))
        color = "#2b6cb0" if ours else "#a0aec0"
        out.append(f'<text x="8" y="{y + 13}">{name.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")}</text>')
        out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 13}">{value:.2f}</text>')
        y += bar_h + gap
    y += 6
out.append("</svg>")
print("\n".join(out))
