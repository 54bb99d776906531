"""``imagenet-trainer models``: the networks ``--arch`` takes, with parameter counts and GFLOPs at 224 px: this tool's
own, torchvision's classification models, and timm's as ``timm/NAME`` (searched with ``--filter``)."""

from __future__ import annotations

import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

from imagenet_trainer.cli.common import add_subparser, positive_int, print_json
from imagenet_trainer.models import aliases_of, create_model, describe, zoo
from imagenet_trainer.models.registry import all_names, has_weights, is_registered


def add_parser(sub) -> None:
    p = add_subparser(sub, "models", "list the models with parameters and GFLOPs",
                      "List the models --arch takes: this tool's own and torchvision's, and with --filter timm's\n"
                      "(as timm/NAME, where timm is installed). GFLOPs count multiply-adds of one forward pass\n"
                      "at the given size, as torchvision's model tables do. 'weights': published weights that\n"
                      "--pretrained loads.")
    p.add_argument("--filter", metavar="PATTERN", help="only the names matching PATTERN (a word, or a shell pattern "
                   "such as 'convnext*'), in all three zoos")
    p.add_argument("--size", type=positive_int, default=224, help="input side in pixels for the GFLOPs")
    p.add_argument("--classes", type=positive_int, default=1000, help="number of classes")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(run=run)


def model_stats(name: str, size: int = 224, classes: int = 1000) -> dict:
    """Parameters and multiply-add GFLOPs, computed on the meta device (no memory, no compute); GFLOPs None for a
    model that does not run at ``size`` or on the meta device."""
    device = "meta"
    try:
        with torch.device(device):
            model = create_model(name, classes, image_size=size).eval()
    except NotImplementedError:  # a builder that computes its widths from tensors (torchvision's RegNets)
        device = "cpu"
        model = create_model(name, classes, image_size=size).eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(torch.empty(1, 3, size, size, device=device))
        gflops = counter.get_total_flops() / 2e9
    except Exception:  # noqa: BLE001 - a model that needs another size, or real tensors
        gflops = None
    return {"name": name, "aliases": aliases_of(name) if is_registered(name) else [],
            "params": sum(p.numel() for p in model.parameters()), "gflops": gflops, "description": describe(name),
            "weights": has_weights(name)}


def run(args) -> int:
    rows = [model_stats(n, args.size, args.classes) for n in all_names(args.filter)]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no model matches {args.filter!r}" + ("" if zoo.timm_names() else
              " (timm's are not searched: pip install 'imagenet-trainer[timm]')"), file=sys.stderr)
        return 1
    width = max(15, *(len(r["name"]) for r in rows))
    print(f"{'model':<{width}} {'params':>9} {'GFLOPs':>8} {'weights':>7}  description")
    for r in rows:
        alias = f" (also: {', '.join(r['aliases'])})" if r["aliases"] else ""
        gflops = f"{r['gflops']:>8.2f}" if r["gflops"] is not None else f"{'-':>8}"
        print(f"{r['name']:<{width}} {r['params'] / 1e6:>8.1f}M {gflops} {'yes' if r['weights'] else '-':>7}  "
              f"{r['description']}{alias}")
    if args.filter is None:
        count = len(zoo.timm_names())
        print(f"\nand {count} timm models as timm/NAME: --filter WORD searches them" if count else
              "\ntimm's models (timm/NAME) need timm: pip install 'imagenet-trainer[timm]'")
    return 0
