"""A plain training loop on CIFAR-10 JPEG, independent of imagenet-trainer's engine, as a yardstick.

torchvision ResNet-18 with a 3x3 stride-1 stem and no max-pool, SGD + Nesterov, label smoothing,
linear warmup then cosine per step, bf16 autocast, channels_last; augmentation on the GPU.
Usage: python benchmarks/cifar_reference.py DATA_ROOT [--epochs 10] [--batch 512] [--lr 0.5] [--aug rrc|pad|flip]
"""

import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.io import decode_jpeg, read_file


def load(split_dir):
    classes = sorted(os.listdir(split_dir))
    xs, ys = [], []
    for c, name in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(split_dir, name))):
            xs.append(decode_jpeg(read_file(os.path.join(split_dir, name, f))))
            ys.append(c)
    return torch.stack(xs), torch.tensor(ys)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--wd", type=float, default=5e-5)
    p.add_argument("--aug", default="pad")
    p.add_argument("--fp32", action="store_true")
    a = p.parse_args()
    t0 = time.time()
    dev = torch.device("cuda")
    xtr, ytr = load(os.path.join(a.data, "train"))
    xte, yte = load(os.path.join(a.data, "test"))
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1) * 255
    xtr, ytr, xte, yte = xtr.to(dev), ytr.to(dev), xte.to(dev), yte.to(dev)
    print(f"decoded in {time.time() - t0:.1f} s", flush=True)
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    m = m.to(dev, memory_format=torch.channels_last)
    decay = [q for q in m.parameters() if q.ndim > 1]
    no_decay = [q for q in m.parameters() if q.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0}],
                          lr=a.lr, momentum=0.9, nesterov=True)
    steps = a.epochs * (len(xtr) // a.batch)
    warm = int(0.05 * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (steps - warm))))
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    ctx = torch.autocast("cuda", torch.bfloat16, enabled=not a.fp32)
    for ep in range(a.epochs):
        m.train()
        perm = torch.randperm(len(xtr), device=dev)
        tot = cor = 0
        for i in range(len(xtr) // a.batch):
            idx = perm[i * a.batch:(i + 1) * a.batch]
            x = xtr[idx].float()
            if a.aug == "pad":
                x = F.pad(x, (4, 4, 4, 4), mode="reflect")
                dx, dy = torch.randint(0, 9, (2,)).tolist()
                x = x[:, :, dy:dy + 32, dx:dx + 32]
            flip = torch.rand(len(x), device=dev) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            y = ytr[idx]
            with ctx:
                out = m(x)
                loss = crit(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            cor += (out.argmax(1) == y).sum()
            tot += len(y)
        m.eval()
        with torch.no_grad(), ctx:
            pred = torch.cat([m(((xte[j:j + 1000].float() - mean) / std).contiguous(memory_format=torch.channels_last)).argmax(1)
                              for j in range(0, len(xte), 1000)])
        print(f"epoch {ep + 1} train err {100 - 100 * cor.item() / tot:.2f} test err {100 - 100 * (pred == yte).float().mean().item():.2f} "
              f"t={time.time() - t0:.1f}", flush=True)


if __name__ == "__main__":
    main()
