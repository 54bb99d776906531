"""``imagenet-trainer models``: the registered networks with parameter counts and GFLOPs at 224 px."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from imagenet_trainer.cli.common import add_subparser, positive_int, print_json
from imagenet_trainer.models import aliases_of, create_model, describe, list_models


def add_parser(sub) -> None:
    p = add_subparser(sub, "models", "list the models with parameters and GFLOPs",
                      "List every model --arch accepts. GFLOPs count multiply-adds of one forward pass\n"
                      "at the given size, as torchvision's model tables do.")
    p.add_argument("--size", type=positive_int, default=224, help="input side in pixels for the GFLOPs")
    p.add_argument("--classes", type=positive_int, default=1000, help="number of classes")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(run=run)


def model_stats(name: str, size: int = 224, classes: int = 1000) -> dict:
    """Parameters and multiply-add GFLOPs, computed on the meta device (no memory, no compute)."""
    with torch.device("meta"):
        model = create_model(name, classes).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, size, size, device="meta"))
    return {"name": name, "aliases": aliases_of(name), "params": sum(p.numel() for p in model.parameters()),
            "gflops": counter.get_total_flops() / 2e9, "description": describe(name)}


def run(args) -> int:
    rows = [model_stats(n, args.size, args.classes) for n in list_models()]
    if args.json:
        print_json(rows)
        return 0
    print(f"{'model':<15} {'params':>9} {'GFLOPs':>8}  description")
    for r in rows:
        alias = f" (also: {', '.join(r['aliases'])})" if r["aliases"] else ""
        print(f"{r['name']:<15} {r['params'] / 1e6:>8.1f}M {r['gflops']:>8.2f}  {r['description']}{alias}")
    return 0
