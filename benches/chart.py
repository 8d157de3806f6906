#!/usr/bin/env python3
"""Draws the charts of benches/README.md from the tables the benchmark scripts print.

    python3 benches/chart.py < benches/results.md > benches/throughput.svg
    python3 benches/chart.py --scaling < benches/scaling.md > benches/scaling.svg

The first: one horizontal bar per tool and mode (GB/s of plaintext, median), decryption and
encryption, from benches/cli-vs-peers.sh's tables. The second (--scaling): throughput against
threads, one line per build and operation, from benches/scaling.sh's table, with the Go age
rows as flat reference lines. Standard library only.
"""
import re
import sys


def esc(text):
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def scaling_chart(lines):
    """Throughput (GB/s) against threads, log2 x axis."""
    series, refs, title = {}, {}, ""
    for line in lines:
        if not title and "cores" in line and "|" not in line:
            title = line.strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not re.fullmatch(r"\d+", cells[2]):
            continue
        build, op, threads, gbps = cells[0], cells[1], int(cells[2]), float(cells[4])
        if build == "Go age":
            refs[op] = gbps
        else:
            series.setdefault(f"{op}, {build}", []).append((threads, gbps))
    if not series:
        sys.exit("chart.py: no scaling table on standard input")
    import math
    xs = sorted({t for pts in series.values() for t, _ in pts})
    top = max([v for pts in series.values() for _, v in pts] + list(refs.values())) * 1.1
    left, right, plot_top, plot_h, plot_w = 60, 250, 50, 300, 420
    width, height = left + plot_w + right, plot_top + plot_h + 50
    xpos = lambda t: left + (math.log2(t) / max(1, math.log2(xs[-1]))) * plot_w
    ypos = lambda v: plot_top + plot_h - v / top * plot_h
    colors = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           '<text x="8" y="18" font-size="14" font-weight="bold">'
           'Throughput vs threads, whole process, GB/s (medians)</text>',
           f'<text x="8" y="34" fill="#4a5568">{esc(title)}</text>',
           f'<line x1="{left}" y1="{plot_top + plot_h}" x2="{left + plot_w}" '
           f'y2="{plot_top + plot_h}" stroke="black"/>',
           f'<line x1="{left}" y1="{plot_top}" x2="{left}" y2="{plot_top + plot_h}" stroke="black"/>']
    for t in xs:
        out.append(f'<text x="{xpos(t):.1f}" y="{plot_top + plot_h + 16}" '
                   f'text-anchor="middle">{t}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{plot_top + plot_h + 34}" '
               'text-anchor="middle">threads</text>')
    step = 0.5 if top < 4 else 1 if top < 10 else 2
    v = 0.0
    while v <= top:
        out.append(f'<text x="{left - 6}" y="{ypos(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        out.append(f'<line x1="{left}" y1="{ypos(v):.1f}" x2="{left + plot_w}" y2="{ypos(v):.1f}" '
                   'stroke="#e2e8f0"/>')
        v += step
    legend_y = plot_top
    for i, (name, pts) in enumerate(sorted(series.items())):
        color = colors[i % len(colors)]
        path = " ".join(f"{xpos(t):.1f},{ypos(g):.1f}" for t, g in sorted(pts))
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for t, g in pts:
            out.append(f'<circle cx="{xpos(t):.1f}" cy="{ypos(g):.1f}" r="3" fill="{color}"/>')
        out.append(f'<rect x="{left + plot_w + 14}" y="{legend_y - 9}" width="12" height="3" '
                   f'fill="{color}"/><text x="{left + plot_w + 32}" y="{legend_y}">{esc(name)}</text>')
        legend_y += 18
    for op, g in sorted(refs.items()):
        out.append(f'<line x1="{left}" y1="{ypos(g):.1f}" x2="{left + plot_w}" y2="{ypos(g):.1f}" '
                   'stroke="#a0aec0" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{left + plot_w + 14}" y="{legend_y}" fill="#718096">'
                   f'- - Go age: {esc(op)} ({g:.2f})</text>')
        legend_y += 18
    out.append("</svg>")
    return "\n".join(out)


if "--scaling" in sys.argv[1:]:
    print(scaling_chart(sys.stdin))
    sys.exit(0)

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
        ours = name.startswith(("seal", "unseal", "pipe: unseal"))
        color = "#2b6cb0" if ours else "#a0aec0"
        out.append(f'<text x="8" y="{y + 13}">{name.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")}</text>')
        out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 13}">{value:.2f}</text>')
        y += bar_h + gap
    y += 6
out.append("</svg>")
print("\n".join(out))
