"""Print one line per bench JSON file: what, arch, loader, img/s, share of the ceiling, ratio."""

import json
import sys

for path in sys.argv[1:]:
    try:
        r = json.load(open(path))
    except (OSError, ValueError) as e:
        print(f"{path}: unreadable ({e})")
        continue
    parts = [f"{r['bench']:<6}", f"{r.get('arch') or '-':<9}", f"loader={r.get('loader', '-'):<6}",
             f"{r['images_per_s']:>9,.0f} img/s"]
    if "ceiling" in r:
        parts.append(f"ceiling {r['ceiling']['images_per_s']:,.0f} ({100 * r['of_ceiling']:.1f}%)")
    if "ratio" in r:
        parts.append(f"naive {r['baseline']['images_per_s']:,.0f} (x{r['ratio']:.2f})")
    if r.get("first_batch_s") is not None:
        parts.append(f"first batch {r['first_batch_s']:.1f}s")
    if "cpu_share" in r:
        parts.append(f"cpu share {r['cpu_share']:.2f}")
    if "memory" in r:
        parts.append("rss " + " ".join(f"{m['main_mb']:.0f}/{max(m['workers_mb'] or [0]):.0f}" for m in r["memory"]))
    print("  ".join(parts), f"[{r['card']}]")
