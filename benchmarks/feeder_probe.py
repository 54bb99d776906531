"""Would GPU decoding in separate processes keep an eager model fed? A probe before building it.

Phases, all on one GPU, batch 256, 224 px, files already in RAM:
1. ceiling: the model's SGD step on a fixed random batch.
2. decode alone: N feeder processes decode JPEG batches on the GPU (nvJPEG), crop + resize them with
   one roi_align, and write uint8 batches into GPU slots owned by this process (CUDA IPC).
3. train on fed slots: the same N feeders, and this process trains on their slots.
4. the same work in a thread of this process (the current design's shape).

python benchmarks/feeder_probe.py /tmp/inet13k/train --arch resnet18 --feeders 1 2 3
"""

import argparse
import glob
import queue
import random
import sys
import threading
import time

import torch
import torch.multiprocessing as mp

B, S = 256, 224


def load(files):
    return [torch.frombuffer(bytearray(open(f, "rb").read()), dtype=torch.uint8) for f in files]


def decode_into(data, slot, rng, pad_mode):
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.ops import roi_align
    batch = rng.sample(data, B)
    imgs = decode_jpeg(batch, mode=ImageReadMode.RGB, device="cuda")
    hs = [im.shape[1] for im in imgs]
    ws = [im.shape[2] for im in imgs]
    h, w = max(hs), max(ws)
    padded = torch.zeros(B, 3, h, w, device="cuda")
    if pad_mode == "foreach":
        torch._foreach_copy_([padded[i, :, :hs[i], :ws[i]] for i in range(B)], imgs)
    else:
        for i, im in enumerate(imgs):
            padded[i, :, :hs[i], :ws[i]] = im
    boxes = []
    for i in range(B):
        side = rng.uniform(0.3, 1.0) * min(hs[i], ws[i])
        x0, y0 = rng.uniform(0, ws[i] - side), rng.uniform(0, hs[i] - side)
        boxes.append([i, x0, y0, x0 + side - 0.5, y0 + side - 0.5])
    rois = torch.tensor(boxes, dtype=torch.float32).to("cuda", non_blocking=True)
    out = roi_align(padded, rois, (S, S), 1.0, -1, True)
    slot.copy_(out.round_().clamp_(0, 255).permute(0, 2, 3, 1))  # uint8 NHWC


def serve(data, slots, free_q, ready_q, pad_mode, seed):
    """Fill the slots the consumer frees, on a side stream, until it sends None."""
    rng = random.Random(seed)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        while True:
            k = free_q.get()
            if k is None:
                return
            decode_into(data, slots[k], rng, pad_mode)
            stream.synchronize()
            ready_q.put(k)


def feeder(rank, files, slots, free_q, ready_q, pad_mode):
    torch.cuda.set_device(0)
    serve(load(files), slots, free_q, ready_q, pad_mode, rank)


def make_model(arch):
    import torchvision
    m = torchvision.models.__dict__[arch](num_classes=1000).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, foreach=True)
    return m, opt


def step(m, opt, x, y):
    with torch.autocast("cuda", torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


mean = torch.tensor([0.485, 0.456, 0.406]) * 255
std = torch.tensor([0.229, 0.224, 0.225]) * 255


def normalize(u8):
    x = u8.float()
    x.sub_(mean.cuda()).div_(std.cuda())
    return x.permute(0, 3, 1, 2)  # channels_last view


def ceiling(arch, steps=60, warm=20):
    m, opt = make_model(arch)
    x = torch.randn(B, 3, S, S, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (B,), device="cuda")
    for _ in range(warm):
        step(m, opt, x, y)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(m, opt, x, y)
    torch.cuda.synchronize()
    return steps * B / (time.perf_counter() - t0)


def consume(get, put, slots, arch, steps, warm, train):
    m, opt = make_model(arch) if train else (None, None)
    y = torch.randint(0, 1000, (B,), device="cuda")
    pending = []
    t0 = None
    for i in range(warm + steps):
        if i == warm:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        k = get()
        x = normalize(slots[k])
        ev = torch.cuda.Event()
        ev.record()
        pending.append((k, ev))
        if train:
            step(m, opt, x, y)
        while pending and pending[0][1].query():
            put(pending.pop(0)[0])
    torch.cuda.synchronize()
    rate = steps * B / (time.perf_counter() - t0)
    for k, ev in pending:
        ev.synchronize()
        put(k)
    return rate


def with_processes(files, n, arch, train, nslots, pad_mode, steps, warm):
    ctx = mp.get_context("spawn")
    slots = torch.empty(nslots, B, S, S, 3, dtype=torch.uint8, device="cuda")
    free_q, ready_q = ctx.Queue(), ctx.Queue()
    per = len(files) // n
    procs = [ctx.Process(target=feeder, args=(r, files[r * per:(r + 1) * per], slots, free_q, ready_q, pad_mode))
             for r in range(n)]
    for p in procs:
        p.start()
    for k in range(nslots):
        free_q.put(k)
    rate = consume(ready_q.get, free_q.put, slots, arch, steps, warm, train)
    for _ in procs:
        free_q.put(None)
    for p in procs:
        p.join(30)
    return rate


def with_thread(files, arch, train, nslots, pad_mode, steps, warm):
    slots = torch.empty(nslots, B, S, S, 3, dtype=torch.uint8, device="cuda")
    free_q, ready_q = queue.Queue(), queue.Queue()
    t = threading.Thread(target=serve, args=(load(files), slots, free_q, ready_q, pad_mode, 0), daemon=True)
    t.start()
    for k in range(nslots):
        free_q.put(k)
    rate = consume(ready_q.get, free_q.put, slots, arch, steps, warm, train)
    free_q.put(None)
    t.join(10)
    return rate


def decode_gpu_time(files, pad_mode, batches=8):
    """GPU kernel time of the decode side per batch (profiler), by kernel."""
    from torch.profiler import ProfilerActivity, profile
    data = load(files)
    slot = torch.empty(B, S, S, 3, dtype=torch.uint8, device="cuda")
    rng = random.Random(0)
    for _ in range(3):
        decode_into(data, slot, rng, pad_mode)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(batches):
            decode_into(data, slot, rng, pad_mode)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    events.sort(key=lambda e: -e.self_device_time_total)
    total = sum(e.self_device_time_total for e in events) / batches / 1e3
    print(f"decode side GPU time per batch ({pad_mode}): {total:.2f} ms", flush=True)
    for e in events[:8]:
        print(f"  {e.key[:70]:70s} {e.self_device_time_total / batches / 1e3:7.2f} ms  x{e.count // batches}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train_dir")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--feeders", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--files", type=int, default=3072)
    p.add_argument("--slots", type=int, default=6)
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--warm", type=int, default=20)
    p.add_argument("--pad", default="loop", choices=["loop", "foreach"])
    p.add_argument("--mode", default="all", choices=["all", "thread"])
    p.add_argument("--switch", type=float, nargs="+", default=[0.005])
    a = p.parse_args()
    files = sorted(glob.glob(a.train_dir + "/*/*.jpg"))
    random.Random(0).shuffle(files)
    files = files[:a.files]
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__} arch {a.arch} pad {a.pad}", flush=True)
    c = ceiling(a.arch)
    print(f"ceiling {a.arch}: {c:,.0f} img/s", flush=True)
    if a.mode == "all":
        for n in a.feeders:
            r = with_processes(files, n, a.arch, False, a.slots, a.pad, a.steps, a.warm)
            print(f"decode alone, {n} feeder process(es): {r:,.0f} img/s", flush=True)
        for n in a.feeders:
            r = with_processes(files, n, a.arch, True, a.slots, a.pad, a.steps, a.warm)
            print(f"train on slots, {n} feeder process(es): {r:,.0f} img/s = {r / c:.1%} of ceiling", flush=True)
    part = files[: len(files) // max(a.feeders)]
    decode_gpu_time(part, a.pad)
    for sw in a.switch:
        sys.setswitchinterval(sw)
        r = with_thread(part, a.arch, False, a.slots, a.pad, a.steps, a.warm)
        print(f"switch {sw * 1e3:g} ms: decode alone, thread in this process: {r:,.0f} img/s", flush=True)
        r = with_thread(part, a.arch, True, a.slots, a.pad, a.steps, a.warm)
        print(f"switch {sw * 1e3:g} ms: train on slots, thread in this process: {r:,.0f} img/s = {r / c:.1%} of ceiling",
              flush=True)
    sys.setswitchinterval(0.005)
    c2 = ceiling(a.arch)
    print(f"ceiling again: {c2:,.0f} img/s", flush=True)


if __name__ == "__main__":
    main()
