"""A simulated run of the hybrid loader's split controller, and two alternatives that were tried and dropped.

Training speed is a function of the CPU share of ``lag`` batches ago (an alexnet-like curve, best at
0.25), with multiplicative noise: white per batch (sig_fast) and slow, correlated (sig_slow, time
constant tau seconds). Prints the mean speed over 12 seeds of 3,000 batches, where the share sat
(after the first third), and the worst run. Usage: python benchmarks/split_controller_sim.py

``--ranks``: DDP instead. Each rank has its own loader and controller; a step lasts as long as the
slowest rank's (the gradient all-reduce waits for it), and each rank's controller reads the clock when
its own consumer takes the batch, ``jitter`` seconds apart. Prints the step rate and how far the
ranks' shares drift apart.
"""

import math
import multiprocessing
import types

import numpy as np

from imagenet_trainer.data.hybrid import SplitController


def curve(s):  # alexnet-like, batches/s: peak 53 at 0.25, ~44 at 0.0, ~40 at 0.5
    return 53.0 - 36.0 * abs(s - 0.25)

def simulate(make, batches=3000, lag=33, seed=0, start=0.3, tau=2.0, sig_slow=0.10, sig_fast=0.3):
    """(batches per second, mean share after the first third, its spread) of one simulated run."""
    rng = np.random.default_rng(seed)
    ds = types.SimpleNamespace(cpu_share=multiprocessing.Value("d", start, lock=False))
    c = make(ds)
    hist = [start] * lag
    now, slow, shares, work = 0.0, 0.0, [], 0.0
    for _ in range(batches):
        r = curve(hist[-lag])
        dt = 1.0 / r * math.exp(slow + sig_fast * rng.standard_normal() - sig_fast**2 / 2)
        a = math.exp(-dt / tau)
        slow = a * slow + math.sqrt(1 - a * a) * sig_slow * rng.standard_normal()
        now += dt
        c.tick(now)
        hist.append(ds.cpu_share.value)
        shares.append(ds.cpu_share.value)
    return batches / now, np.mean(shares[len(shares)//3:]), np.std(shares[len(shares)//3:])

def report(name, make, **kw):
    res = [simulate(make, seed=s, **kw) for s in range(12)]
    print(f"{name:28s} {kw} rate {np.mean([r[0] for r in res]):.1f} (best {curve(0.25):.1f}) share mean {np.mean([r[1] for r in res]):.2f} sd {np.mean([r[2] for r in res]):.2f} worst-run rate {min(r[0] for r in res):.1f}")


def simulate_ranks(ranks=2, batches=3000, lag=33, seed=0, start=0.3, sig_fast=0.3, jitter=0.001, fixed=False):
    """(steps per second, mean |share difference| between ranks after the first third) of one DDP run."""
    rng = np.random.default_rng(seed)
    dss = [types.SimpleNamespace(cpu_share=multiprocessing.Value("d", start, lock=False)) for _ in range(ranks)]
    cs = [SplitController(ds, lag=lag, fixed=fixed) for ds in dss]
    hist = [[start] * lag for _ in range(ranks)]
    now, gaps = 0.0, []
    for _ in range(batches):
        now += max(1.0 / curve(h[-lag]) * math.exp(sig_fast * rng.standard_normal() - sig_fast**2 / 2) for h in hist)
        for c, ds, h in zip(cs, dss, hist):
            c.tick(now + jitter * rng.standard_normal())
            h.append(ds.cpu_share.value)
        gaps.append(max(ds.cpu_share.value for ds in dss) - min(ds.cpu_share.value for ds in dss))
    return batches / now, np.mean(gaps[len(gaps)//3:])


class MemoryController:
    """Hill climb over a grid of shares with averaged estimates per share."""
    def __init__(self, ds, step=0.05, lag=33, window=20, min_seconds=0.0, keep=4):
        self.share = ds.cpu_share
        self.step, self.lag, self.window, self.min_seconds, self.keep = step, lag, window, min_seconds, keep
        self.n = round(1 / step)
        self.est, self.visits = {}, {}
        self.direction = -1
        self.moves = 0
        self._count, self._t0 = 0, None
        self._probe = -1
    def tick(self, now):
        self._count += 1
        if self._count == self.lag:
            self._t0 = now
        elif self._count >= self.lag + self.window and now - self._t0 >= self.min_seconds:
            self._move((self._count - self.lag) / (now - self._t0))
    def _move(self, rate):
        i = round(self.share.value / self.step)
        v = self.visits.get(i, 0) + 1
        self.visits[i] = v
        self.est[i] = rate if v == 1 else self.est[i] + (rate - self.est[i]) / min(v, self.keep)
        nbrs = [j for j in (i + self.direction, i - self.direction) if 0 <= j <= self.n]
        new = [j for j in nbrs if j not in self.est]
        if new:
            j = new[0]
        else:
            best = max(nbrs + [i], key=lambda j: self.est[j])
            if best != i:
                j = best
            else:  # at the best known share: re-measure a neighbour, each side in turn
                self._probe = -self._probe
                j = i + self._probe if 0 <= i + self._probe <= self.n else i - self._probe
        self.direction = 1 if j > i else -1
        self.share.value = j * self.step
        self.moves += 1
        self._count = 0


class Accel(SplitController):
    """P&O whose step doubles after each move that kept its direction and sped training up, back to the base on a turn."""
    def __init__(self, ds, max_step=0.2, **kw):
        super().__init__(ds, **kw)
        self.base, self.max_step, self.cur = self.step, max_step, self.step
    def _move(self, rate):
        if self.last_rate is not None and rate < self.last_rate:
            self.direction = -self.direction
            self.cur = self.base
        elif self.last_rate is not None:
            self.cur = min(self.max_step, self.cur * 2)
        self.last_rate = rate
        s = self.share.value + self.direction * self.cur
        if not 0.0 <= s <= 1.0:
            s = min(1.0, max(0.0, s))
            if s == self.share.value:
                self.direction = -self.direction; self.cur = self.base
                s = self.share.value + self.direction * self.cur
        self.share.value = min(1.0, max(0.0, round(s / self.base) * self.base))
        self.moves += 1
        self._count = 0


if __name__ == "__main__":
    import sys

    if "--ranks" in sys.argv:
        for ranks in (1, 2, 4):
            res = [simulate_ranks(ranks, seed=s, start=0.25, fixed=True) for s in range(12)]
            print(f"ranks {ranks}, every share fixed at the best (0.25): rate {np.mean([r[0] for r in res]):.1f}")
        for jitter in (0.0, 0.0005, 0.002):
            for ranks in (1, 2, 4):
                res = [simulate_ranks(ranks, seed=s, jitter=jitter) for s in range(12)]
                print(f"ranks {ranks} jitter {jitter * 1000:.1f} ms: rate {np.mean([r[0] for r in res]):.1f} (best "
                      f"{curve(0.25):.1f}), share gap between ranks {np.mean([r[1] for r in res]):.2f}")
        sys.exit(0)
    for kw in [dict(), dict(sig_slow=0.2, tau=5.0)]:
        for start in (0.3, 0.9, 0.0):
            report("fixed at the best (0.25)", lambda ds: SplitController(ds, fixed=True), start=0.25, **kw)
            report("perturb and observe (ours)", lambda ds: SplitController(ds, lag=33, window=20), start=start, **kw)
            report("hill climb with memory", lambda ds: MemoryController(ds, min_seconds=1.0), start=start, **kw)
            report("step doubling", lambda ds: Accel(ds, lag=33, window=20), start=start, **kw)
