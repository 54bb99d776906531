"""``imagenet-trainer evaluate --model M --data DIR``: top-1/top-5 error on the validation folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imagenet_trainer.cli.common import add_subparser, loader_workers, non_negative_int, positive_int, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "evaluate", "top-1/top-5 error of a model on a validation folder",
                      "Evaluate a model file (model_XX.pt, model_best.pt or checkpoint_last.pt) on DATA/val\n"
                      "(or validation/, test/, --val-dir, or DATA itself when it holds class folders).\n"
                      "Image and crop sizes and the normalization come from the model file.")
    p.add_argument("--model", required=True, help="model file")
    p.add_argument("--data", required=True, help="dataset root or a folder of class folders")
    p.add_argument("--val-dir", default=None, help="validation folder")
    p.add_argument("--crops", type=int, choices=(1, 10), default=1,
                   help="1: centre crop; 10: centre + 4 corners, each with its flip, softmax averaged")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="the EMA's weights (the default where the file has them, as train reports them) or, "
                        "with --no-ema, the weights")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="also average over the horizontal flip (1 crop); default: as training validated the model "
                        "(the fast recipe does), so that the figures agree")
    p.add_argument("--tta-shift", type=non_negative_int, default=None, metavar="PX",
                   help="also average over the image moved PX pixels diagonally each way (1 crop; see train "
                        "--tta-shift); default: as training validated the model")
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per batch")
    p.add_argument("--workers", type=loader_workers, default=-1, help="loader processes (-1 = cores-1, at most 16)")
    p.add_argument("--image-size", type=positive_int, default=None, help="override the model's resize size")
    p.add_argument("--crop-size", type=positive_int, default=None, help="override the model's crop size")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto", help="autocast precision")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="also write per_class.csv, confusion.csv, confusion.png and worst.csv (the worst-classified images) here")
    p.add_argument("--worst", type=positive_int, default=50, help="how many worst-classified images to list")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.engine.run import resolve_device, resolve_precision
    from imagenet_trainer.inference import evaluate_folder, load_model_file

    if args.report:  # before the evaluation, so that a path that cannot be a folder fails at once
        Path(args.report).mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    lm = load_model_file(args.model, device, ema=args.ema)
    out = evaluate_folder(lm, args.data, device, args.val_dir, args.crops, args.batch_size, args.workers,
                          args.image_size, args.crop_size, resolve_precision(args.precision, device),
                          collect=args.report is not None, tta=args.tta, tta_shift=args.tta_shift)
    if out["bad_images"]:  # on stderr, as train says it: the figure leaves them out
        print(f"warning: {len(out['bad_images'])} unreadable image(s) left out, the first {out['bad_images'][0]}",
              file=sys.stderr)
    result = {"model": args.model, "weights": "ema" if lm.ema else "raw", "folder": out["folder"],
              "images": out["count"], "crops": args.crops, "tta": out["tta"], "tta_shift": out["tta_shift"],
              "top1_error": 100 - out["top1"],
              "top5_error": 100 - out["top5"], "loss": out["loss"], "bad_images": out["bad_images"]}
    if args.report:
        from imagenet_trainer.tools.report import write_report

        rep = write_report(args.report, lm.classes, out["labels"].numpy(), out["pred"].numpy(), out["p_true"].numpy(),
                           out["paths"], args.worst)
        result |= {"report": args.report, "per_class": rep["per_class"], "worst": rep["worst"]}
    if args.json:
        print_json(result)
    else:
        which = (", flip TTA" if out["tta"] else "") + (f", shifts of {out['tta_shift']} px" if out["tta_shift"] else "")
        which += ", the EMA's weights" if lm.ema else ""
        print(f"top-1 error {result['top1_error']:.2f}%  top-5 error {result['top5_error']:.2f}%  "
              f"loss {result['loss']:.4f}  ({result['images']} images, {args.crops} crop{'s' if args.crops > 1 else ''}"
              f"{which})")
        if args.report:
            print(f"report in {args.report}: per_class.csv, confusion.csv, confusion.png, worst.csv")
    return 0
