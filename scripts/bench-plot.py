#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench-plot.py: an SVG plot of an `mqbench --json FILE` result (standard
library only; the SVG is written by hand). Panels: messages/s per scenario
(durable modes), p99 push latency per scenario (durable modes), and
messages/s of the relaxed modes when the file has them. Log scales; one bar
per system, grouped by scenario.

usage: bench-plot.py RESULTS.json OUT.svg
"""
import json
import math
import sys
from xml.sax.saxutils import escape

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
W, PANEL_H, TOP, LEFT, RIGHT = 900, 300, 70, 70, 20


def fmt(v, unit):
    if unit == "ms":
        return "%.3g" % v
    if v >= 1e6:
        return "%.3gM" % (v / 1e6)
    if v >= 1e3:
        return "%.3gk" % (v / 1e3)
    return "%.3g" % v


def panel(out, y0, title, unit, scen, labels, val):
    """One log-scale grouped bar chart; val(scenario, label) -> value or None."""
    vals = [v for s in scen for l in labels for v in [val(s, l)] if v and v > 0]
    h = PANEL_H - 80
    out.append('<text x="%d" y="%d" font-size="15" font-weight="bold">%s</text>'
               % (LEFT, y0 + 18, escape(title)))
    if not vals:
        out.append('<text x="%d" y="%d" font-size="12">no data</text>' % (LEFT, y0 + 50))
        return
    lo = 10 ** math.floor(math.log10(min(vals)))
    hi = 10 ** math.ceil(math.log10(max(vals)))
    if hi <= lo:
        hi = lo * 10
    base = y0 + 30 + h

    def ypos(v):
        return base - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * h

    d = lo
    while d <= hi * 1.0001:
        y = ypos(d)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>'
                   % (LEFT, y, W - RIGHT, y))
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s%s</text>'
                   % (LEFT - 5, y + 4, fmt(d, unit), " ms" if unit == "ms" else ""))
        d *= 10
    gw = (W - LEFT - RIGHT) / max(1, len(scen))
    bw = gw * 0.8 / max(1, len(labels))
    for i, s in enumerate(scen):
        gx = LEFT + i * gw + gw * 0.1
        for j, l in enumerate(labels):
            v = val(s, l)
            if not v or v <= 0:
                continue
            x, y = gx + j * bw, ypos(max(v, lo))
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                       '<title>%s %s: %s</title></rect>'
                       % (x, y, bw * 0.92, base - y, COLORS[j % len(COLORS)], escape(l),
                          escape(s), fmt(v, unit)))
            out.append('<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%s</text>'
                       % (x + bw * 0.46, y - 3, fmt(v, unit)))
        out.append('<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle">%s</text>'
                   % (LEFT + i * gw + gw / 2, base + 16, escape(s)))
    out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000"/>'
               % (LEFT, base, W - RIGHT, base))
    for j, l in enumerate(labels):
        x = LEFT + j * int((W - LEFT - RIGHT) / max(1, len(labels)))
        out.append('<rect x="%d" y="%.1f" width="12" height="12" fill="%s"/>'
                   % (x, base + 26, COLORS[j % len(COLORS)]))
        out.append('<text x="%d" y="%.1f" font-size="12">%s</text>' % (x + 16, base + 36,
                                                                       escape(l)))


def main():
    doc = json.load(open(sys.argv[1]))
    res = [r for r in doc["results"] if r.get("ok")]
    panels = []
    for mode, what, title, unit in (
            ("durable", "rate", "messages/s (cycles/s for 3 and 5), durable modes", "msg/s"),
            ("durable", "p99", "p99 push latency, durable modes (lower is better)", "ms"),
            ("relaxed", "rate", "messages/s, relaxed modes", "msg/s")):
        rs = [r for r in res if r["mode"] == mode]
        if not rs:
            continue
        scen, labels = [], []
        for r in rs:
            if r["scenario"] not in scen:
                scen.append(r["scenario"])
            if r["label"] not in labels:
                labels.append(r["label"])
        table = {(r["scenario"], r["label"]): r for r in rs}

        def val(s, l, table=table, what=what):
            r = table.get((s, l))
            if r is None:
                return None
            return r["rate"] if what == "rate" else r["latency_ms"]["push"]["p99"]
        panels.append((title, unit, scen, labels, val))
    height = TOP + PANEL_H * len(panels) + 10
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif">' % (W, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="24" font-size="17" font-weight="bold">mqbench --compare, %d-byte '
           'payloads, %s</text>' % (LEFT, doc.get("size", 0), escape(doc.get("date", ""))),
           '<text x="%d" y="44" font-size="12">%d CPUs, load average %.2f at start, %.2f at end; '
           '%s</text>' % (LEFT, doc["host"].get("cpus", 0), doc["load_start"][0],
                          doc["load_end"][0], escape(doc.get("command", "")[:110]))]
    for i, (title, unit, scen, labels, val) in enumerate(panels):
        panel(out, TOP + i * PANEL_H, title, unit, scen, labels, val)
    out.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
