"""Does nvJPEG's GPU decoding take time from training on the same GPU, or run beside it?

On one GPU, for a model (alexnet, resnet18): the rate of batched decode_jpeg calls alone (180 files per
call, the GPU's share of a 256 batch at CPU share 0.3), the model's training steps alone (random batches
on the device, bf16, channels_last), and both at once (decoding on a thread and stream of its own). Then
the CUDA kernels and copies that one decode call runs, from torch.profiler.
Variants: the files' bytes in pageable or pinned memory; the model on the default stream or a side stream.
Run it again with CUDA_DEVICE_MAX_CONNECTIONS=32 to see whether streams share hardware queues.

``--decoders A,B``: only the decode rates alone and beside alexnet (pinned bytes), for each decoder:
``tv`` (torchvision's batched decode_jpeg, nvJPEG on CUDA cores), ``hw`` and ``cuda`` (nvImageCodec's
batched decode on the GPU's hardware JPEG engines, or on CUDA cores; ``pip install nvidia-nvimgcodec-cu13
nvidia-nvjpeg``). Each prints how far its pixels are from torchvision's.

    python benchmarks/decode_contention.py TREE [SECONDS] [--no-profile] [--decoders tv,hw,cuda]
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


def tv_decode(batch):
    return decode_jpeg(batch, mode=ImageReadMode.RGB, device=dev)


def nvimgcodec_decode(kind):
    """A batch decoder through nvImageCodec on backend ``kind``: CHW uint8 tensors, ready on the current stream."""
    from nvidia import nvimgcodec

    decoder = nvimgcodec.Decoder(device_id=dev.index or 0, max_num_cpu_threads=4,
                                 backends=[nvimgcodec.Backend(getattr(nvimgcodec.BackendKind, kind))])

    def decode(batch):
        stream = torch.cuda.current_stream()
        images = decoder.decode([nvimgcodec.CodeStream(b.numpy()) for b in batch], cuda_stream=stream.cuda_stream)
        if any(i is None for i in images):
            raise RuntimeError(f"nvImageCodec {kind} could not decode {sum(i is None for i in images)} files")
        out = [torch.as_tensor(i, device=dev).permute(2, 0, 1) for i in images]
        stream.synchronize()  # as decode_jpeg does before it returns
        return out

    return decode


def decode_loop(stop, counts, host, batches, decode=tv_decode):
    stream = torch.cuda.Stream()
    k = 0
    with torch.cuda.stream(stream):
        while not stop.is_set():
            t0 = time.perf_counter()
            decode(batches[k % len(batches)])
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


def measure(arch, decode, train, inputs=pageable, side_stream=False, decoder=tv_decode):
    stop, counts, host = threading.Event(), [0, 0], []
    threads = ([threading.Thread(target=decode_loop, args=(stop, counts, host, inputs, decoder))] if decode else []) + \
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
if "--decoders" in sys.argv:
    names = sys.argv[sys.argv.index("--decoders") + 1].split(",")
    _, model, _ = measure("alexnet", False, True)
    print(f"alexnet alone: {model:,.0f} img/s", flush=True)
    reference = [i.float() for i in tv_decode(pinned[0])]
    for name in names:
        decoder = {"tv": tv_decode, "hw": "HW_GPU_ONLY", "cuda": "GPU_ONLY"}[name]
        decoder = nvimgcodec_decode(decoder) if isinstance(decoder, str) else decoder
        diff = max((a.float() - b).abs().mean().item() for a, b in zip(decoder(pinned[0]), reference))
        dec, _, host_ms = measure("alexnet", True, False, pinned, decoder=decoder)
        dec2, model2, host2 = measure("alexnet", True, True, pinned, decoder=decoder)
        print(f"{name}: alone {dec:,.0f} img/s (call {host_ms:.1f} ms per 180) | beside alexnet: decode {dec2:,.0f}, "
              f"model {model2:,.0f} ({model2 / model:.0%}), call {host2:.1f} ms | mean |pixel - tv| {diff:.2f}",
              flush=True)
    sys.exit(0)
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
