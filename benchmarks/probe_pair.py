"""What `--loader auto`'s probe measures in each rank, and what it measures with its workers' timing left out.

Session 25 (2x H200): with the ranks' passes agreed, a pair's probe measured the model at 4,217-4,930 img/s per rank,
70-82% of the 6,000 a rank trains at, while one GPU's probe measured 92% of its rate. Two suspects: what runs beside
the timed passes (the workers' timing: 14 processes per rank on the cores, and a thread of the rank's own process
that receives their batches, 32 images each, about 150 a second, holding the GIL while it unpickles them; training's
batches are 256), and the short window itself (a few dozen passes right after the compile).

Session 26 (2x H200): alone 6,284-6,595 img/s, beside 83-85% of that in one round and 100% in the next, with 32- and
128-image batches alike: not the GIL. The cause was the probe's workers, at full priority on every core where
training's are niced and kept off the ranks' cores (fixed in eaee97d); on 2x H100 after it, beside = alone (5,617 /
5,619).

This wraps the model timing that ``engine.run`` hands the probe: before the probe's own timing (with the workers'
timing beside, as shipped), it times the same passes alone for ``--alone`` seconds, and each rank prints one line
to stderr: ``[probe] {"rank": r, "alone": img/s, "beside": img/s, "batch": probe batch}``. ``--batch B`` makes the
probe's worker batches B images (shipped: ``data.probe.PROBE_BATCH``). The choice the run makes still uses the
``beside`` figure, as shipped. Give a fresh ``--cache-dir`` so that the probe runs.

Usage: python benchmarks/probe_pair.py [--alone 2] [--batch 128] -- train ... --loader auto --cache-dir DIR
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys

import imagenet_trainer.cli as cli
import imagenet_trainer.data.probe as probe
import imagenet_trainer.engine.run as run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alone", type=float, default=2.0, help="seconds of passes timed with nothing beside (0: none)")
    p.add_argument("--batch", type=int, default=probe.PROBE_BATCH, help="images per batch of the probe's workers")
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then the CLI's arguments (train ...)")
    a = p.parse_args()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args

    probe.CpuDecodeTiming = functools.partial(probe.CpuDecodeTiming, batch=a.batch)
    real_rate = run.synthetic_step_rate

    @functools.wraps(real_rate)
    def synthetic_step_rate(*rest, beside=None, **kwargs):
        alone = None
        if beside is not None and a.alone > 0:  # the probe's call: every rank makes it, so the passes stay paired
            alone = real_rate(*rest, **kwargs | {"min_seconds": a.alone, "warmup": 2})
        rate = real_rate(*rest, beside=beside, **kwargs)
        if beside is not None:
            line = {"rank": int(os.environ.get("RANK", "0")), "alone": round(alone or 0), "beside": round(rate),
                    "batch": a.batch}
            print(f"[probe] {json.dumps(line)}", file=sys.stderr, flush=True)
        return rate

    run.synthetic_step_rate = synthetic_step_rate
    return cli.main(args, fresh_process=True)


if __name__ == "__main__":
    sys.exit(main())
