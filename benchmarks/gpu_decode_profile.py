"""Where the GPU decode path spends its time, per batch of 256: host wall time of each stage, then synced."""

import glob
import sys
import time

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.ops import roi_align

files = sorted(glob.glob(sys.argv[1] + "/train/*/*.jpg"))[:256]
data = [torch.frombuffer(bytearray(open(f, "rb").read()), dtype=torch.uint8) for f in files]
dev = torch.device("cuda")
boxes = torch.tensor([[10.0, 10.0, 250.0, 250.0]] * len(data))


def stage_times():
    t = {}
    t0 = time.perf_counter()
    imgs = decode_jpeg(data, mode=ImageReadMode.RGB, device=dev)
    t["decode_host"] = time.perf_counter() - t0
    torch.cuda.synchronize()
    t["decode_synced"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    padded = torch.nested.nested_tensor(imgs).to_padded_tensor(0).float()
    torch.cuda.synchronize()
    t["pad"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    rois = torch.cat([torch.arange(len(imgs)).float().view(-1, 1), boxes], 1).to(dev)
    roi_align(padded, rois, (224, 224), 1.0, -1, True)
    torch.cuda.synchronize()
    t["roi_align"] = time.perf_counter() - t2
    return t


for _ in range(3):
    stage_times()
runs = [stage_times() for _ in range(10)]
for k in runs[0]:
    ms = np.median([r[k] for r in runs]) * 1e3
    print(f"{k:14s} {ms:7.2f} ms/batch  ({256 / ms * 1e3:,.0f} img/s)")
