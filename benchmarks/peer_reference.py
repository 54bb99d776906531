"""The peer for ``learning.py``: pytorch/examples' ImageNet recipe, written out plainly.

torchvision ``ImageFolder`` with PIL decoding; RandomResizedCrop(224) + flip for training, Resize(256) +
CenterCrop(224) for val; SGD with momentum 0.9, LR 0.1 divided by 10 every 30 epochs, weight decay 1e-4;
batch 256; fp32; random init. Prints one JSON line: the final val top-1 and the seconds it took.

    python benchmarks/peer_reference.py DATA --arch resnet18 --epochs 5
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    normalize = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    val_dir = next(Path(args.data, d) for d in ("val", "validation", "test") if Path(args.data, d).is_dir())
    train = torchvision.datasets.ImageFolder(Path(args.data, "train"), T.Compose(
        [T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), normalize]))
    val = torchvision.datasets.ImageFolder(val_dir, T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), normalize]))
    workers = min(16, os.cpu_count() or 1)
    train_loader = torch.utils.data.DataLoader(train, args.batch_size, shuffle=True, num_workers=workers, pin_memory=True)
    val_loader = torch.utils.data.DataLoader(val, args.batch_size, num_workers=workers, pin_memory=True)
    model = getattr(torchvision.models, args.arch)(num_classes=len(train.classes)).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    for _ in range(args.epochs):
        model.train()
        for images, labels in train_loader:
            loss = criterion(model(images.to(device, non_blocking=True)), labels.to(device, non_blocking=True))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in val_loader:
            correct += (model(images.to(device)).argmax(1).cpu() == labels).sum().item()
    print(json.dumps({"recipe": "pytorch/examples imagenet main.py defaults", "arch": args.arch, "epochs": args.epochs,
                      "top1": 100 * correct / len(val), "train_seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
