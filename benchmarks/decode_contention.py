"""Does nvJPEG's GPU decoding take time from training on the same GPU, or run beside it?

On one GPU, for a model (alexnet, resnet18): the rate of batched decode_jpeg calls alone (180 files per
call, the GPU's share of a 256 batch at CPU share 0.3), the model's training steps alone (random batches
on the device, bf16, channels_last), and both at once (decoding on a thread and stream of its own). Then
the CUDA kernels and copies that one decode call runs, from torch.profiler.
Variants: the files' bytes in pageable or pinned memory; the model on the default stream or a side stream.
Run it again with CUDA_DEVICE_MAX_CONNECTIONS=32 to see whether streams share hardware queues.

    python benchmarks/decode_contention.py TREE [SECONDS] [--no-profile]
"""

import glob
import os
import sys
import threading
import time

import torch
import torch.nn as nn
from torchvision.io import ImageReadMode, decode_jpeg

from imagenet_trainer.models import create_model

root, seconds = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
dev = torch.device("cuda")
files = sorted(glob.glob(root + "/train/*/*.jpg"))[::5][:1800]
data = [torch.frombuffer(bytearray(open(f, "rb").read()), dtype=torch.uint8) for f in files]
pageable = [data[i:i + 180] for i in range(0, len(data) - 179, 180)]
pinned = [[d.pin_memory() for d in b] for b in pageable]


def decode_loop(stop, counts, host, batches):
    stream = torch.cuda.Stream()
    k = 0
    with torch.cuda.stream(stream):
        while not stop.is_set():
            t0 = time.perf_counter()
            decode_jpeg(batches[k % len(batches)], mode=ImageReadMode.RGB, device=dev)
            host.append(time.perf_counter() - t0)
            counts[0] += 180
            k += 1
        stream.synchronize()


def train_loop(stop, counts, arch, side_stream):
    if side_stream:
        torch.cuda.set_stream(torch.cuda.Stream())
    model = create_model(arch, 100).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(256, 3, 224, 224, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (256,), device=dev)
    k = 0
    while not stop.is_set():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        k += 1
        if k % 10 == 0:
            torch.cuda.synchronize()
        counts[1] += 256
    torch.cuda.synchronize()


def measure(arch, decode, train, inputs=pageable, side_stream=False):
    stop, counts, host = threading.Event(), [0, 0], []
    threads = ([threading.Thread(target=decode_loop, args=(stop, counts, host, inputs))] if decode else []) + \
              ([threading.Thread(target=train_loop, args=(stop, counts, arch, side_stream))] if train else [])
    for t in threads:
        t.start()
    time.sleep(2.0)  # warm-up: cuDNN tuning, the decoder's buffers
    c0, t0 = list(counts), time.perf_counter()
    time.sleep(seconds)
    c1, dt = list(counts), time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    host_ms = 1000 * sorted(host)[len(host) // 2] if host else 0.0
    return (c1[0] - c0[0]) / dt, (c1[1] - c0[1]) / dt, host_ms


print("CUDA_DEVICE_MAX_CONNECTIONS", os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS", "unset"), flush=True)
for inputs, name in ((pageable, "pageable"), (pinned, "pinned")):
    dec, _, host_ms = measure("alexnet", True, False, inputs)
    print(f"decode alone, {name} bytes: {dec:,.0f} img/s (median call {host_ms:.1f} ms per 180)", flush=True)
for arch in ("alexnet", "resnet18"):
    _, model, _ = measure(arch, False, True)
    print(f"{arch} alone: {model:,.0f} img/s", flush=True)
    for inputs, name, side in ((pageable, "pageable", False), (pinned, "pinned", False), (pinned, "pinned", True)):
        dec2, model2, host2 = measure(arch, True, True, inputs, side)
        print(f"  with decoding of {name} bytes, model on the {'side' if side else 'default'} stream: decode "
              f"{dec2:,.0f} img/s, model {model2:,.0f} ({model2 / model:.0%}), call {host2:.1f} ms", flush=True)
if "--no-profile" in sys.argv:
    sys.exit(0)

from torch.profiler import ProfilerActivity, profile  # noqa: E402

for _ in range(3):
    decode_jpeg(pinned[0], mode=ImageReadMode.RGB, device=dev)
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    for k in range(5):
        decode_jpeg(pinned[k], mode=ImageReadMode.RGB, device=dev)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60))
