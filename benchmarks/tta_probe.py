"""Does translation test-time augmentation add to flip TTA? Evaluates saved model files both ways.

python benchmarks/tta_probe.py DATA run1/model_best.pt [run2/model_best.pt ...]
Prints top-1 of: no TTA, flip (what train reports), flip + 1 px translations (the mean of the mirror-averaged
logits of the image and of the two diagonal 1 px shifts, weighted 1/2 : 1/4 : 1/4), with edge and zero padding.
"""

import sys

import torch
import torch.nn.functional as F

from imagenet_trainer.data.build import make_val_loader
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.index import build_index, find_split_dirs
from imagenet_trainer.inference import load_model_file


@torch.no_grad()
def main():
    data, files = sys.argv[1], sys.argv[2:]
    dev = torch.device("cuda")
    for path in files:
        for ema in (False, True):
            try:
                lm = load_model_file(path, dev, ema=ema)
            except Exception as e:  # no EMA weights
                print(path, "ema" if ema else "weights", "skipped:", e)
                continue
            _, vdir = find_split_dirs(data, None)
            index = build_index(vdir)
            loader = make_val_loader(index, Geometry("center", lm.crop_size, lm.image_size), 500, 8, dev, lm.mean,
                                     lm.std)
            hits = {k: 0 for k in ("plain", "flip", "flip+shift(edge)", "flip+shift(zero)")}
            n = 0
            m = lm.model

            def mirror(x):
                with torch.autocast("cuda", torch.bfloat16):
                    return (m(x).float() + m(x.flip(3)).float()) / 2

            for b in loader:
                x, y = b.images, b.labels
                s = x.shape[-1]
                with torch.autocast("cuda", torch.bfloat16):
                    plain = m(x).float()
                base = mirror(x)
                out = {"plain": plain, "flip": base}
                for mode, name in (("replicate", "flip+shift(edge)"), ("constant", "flip+shift(zero)")):
                    p = F.pad(x, (1, 1, 1, 1), mode=mode)
                    shifted = (mirror(p[:, :, :s, :s].contiguous(memory_format=torch.channels_last)) +
                               mirror(p[:, :, 2:, 2:].contiguous(memory_format=torch.channels_last))) / 2
                    out[name] = 0.5 * base + 0.5 * shifted
                for k, v in out.items():
                    hits[k] += int((v.argmax(1) == y).sum())
                n += len(y)
            print(path, "ema" if ema else "weights", " | ".join(f"{k} {100 * v / n:.2f}%" for k, v in hits.items()),
                  flush=True)


if __name__ == "__main__":
    main()
