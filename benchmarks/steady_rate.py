"""Steady-state images/s of a training log: from the cumulative rates of its plain progress lines.

Each line ``train E [i/N] ... R img/s`` gives the images since the end of the first batch ((i - 1) x batch)
over the time since then (logs of the code before commit a8dfe56, 2026-11-27, count from the epoch's start: ``--first 0``);
the rate between the line at ``--from`` of the epoch and the last line leaves out start-up and warm-up.
Usage: python benchmarks/steady_rate.py LOG --batch 256 [--from 0.3] [--first 0]
"""

import argparse
import re

p = argparse.ArgumentParser()
p.add_argument("log")
p.add_argument("--batch", type=int, required=True, help="global batch")
p.add_argument("--from", dest="start", type=float, default=0.3, help="share of the epoch to skip")
p.add_argument("--first", type=int, default=1, choices=(0, 1),
               help="batches the lines' rate leaves out: 1 (logs since 2026-11-27), 0 (older logs)")
a = p.parse_args()
rows = []
for line in open(a.log):
    m = re.match(r"train 1 \[\s*(\d+)/(\d+)\].*?([\d,]+) img/s", line)
    if m:
        i, n, rate = int(m.group(1)), int(m.group(2)), float(m.group(3).replace(",", ""))
        rows.append((i, n, (i - a.first) * a.batch / rate))  # (batch index, batches, seconds since then)
first = next((r for r in rows if r[0] >= a.start * r[1]), None)
last = rows[-1] if rows else None
if first is None or last[0] == first[0]:  # a short run (e.g. --epoch-size 10): one progress line after the skip
    raise SystemExit(f"{a.log}: too few progress lines for a steady rate")
print(f"{(last[0] - first[0]) * a.batch / (last[2] - first[2]):.0f} img/s steady (batches {first[0]}-{last[0]} of {last[1]})")
