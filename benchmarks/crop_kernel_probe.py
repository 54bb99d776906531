"""The hybrid loader's crop step for one batch: roi_align over a padded batch (the reference path) against
the Triton kernel (``data/gpu_crop.py``), on the same nvJPEG output and the same random-resized-crop boxes.

Prints, per path, the host time of the call (what the producer thread spends, under the interpreter
lock) and the GPU time (CUDA events), medians over the repeats, and the largest difference of the outputs.
Usage: python benchmarks/crop_kernel_probe.py TREE [BATCH] [SIZE]
"""

import sys
import time

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from imagenet_trainer.data import gpu_crop
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.hybrid import EncodedFolderDataset, collate_mixed
from imagenet_trainer.data.index import build_index

tree, batch, size = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 256, int(sys.argv[3]) if len(sys.argv) > 3 else 224
index = build_index(tree + "/train")
ds = EncodedFolderDataset(index, Geometry("rrc", size, size))
mixed = collate_mixed([ds[(i * 37 % len(index), 1000 + i)] for i in range(batch)])
dev = torch.device("cuda")
images = decode_jpeg(mixed.encoded, mode=ImageReadMode.RGB, device=dev)
scale, bias = torch.full((3,), 1 / 58.0, device=dev), torch.full((3,), -2.0, device=dev)
outs = {name: torch.empty(batch, size, size, 3, device=dev) for name in ("reference", "kernel")}
paths = {"reference": gpu_crop._reference, "kernel": gpu_crop._launch}


def once(name):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    t0 = time.perf_counter()
    paths[name](outs[name], images, mixed.boxes, mixed.encoded_pos, mixed.flips, scale, bias)
    host = time.perf_counter() - t0
    end.record()
    torch.cuda.synchronize()
    return host * 1e3, start.elapsed_time(end)


for name in paths:
    for _ in range(3):
        once(name)
for name in paths:
    runs = np.array([once(name) for _ in range(30)])
    host, gpu = np.median(runs, axis=0)
    print(f"{name:9s} host {host:6.2f} ms/batch  gpu {gpu:6.2f} ms/batch  ({batch / gpu * 1e3:,.0f} img/s of GPU time)")
diff = (outs["reference"] - outs["kernel"]).abs().max().item()
print(f"largest difference {diff:.2e} (normalized units; one level of 255 is {1 / 58.0:.4f})")
