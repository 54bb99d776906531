"""``imagenet-trainer convert --src model_XX.pt --dst OUT.{pt,ts,onnx,safetensors}``."""

from __future__ import annotations

import argparse

from imagenet_trainer.cli.common import add_subparser, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "convert", "convert a model file for inference (.pt, .ts, .onnx, .safetensors)",
                      "Strip training wrappers, remove dropout, fold batch norm into conv/linear layers, put the\n"
                      "normalization in front (graph formats take float images in 0..1), optionally append a\n"
                      "softmax and cast the weights. Class names and normalization travel with the file. A\n"
                      "precision report (max |difference| to the source on random and, with --data, real\n"
                      "images) is printed every time; in fp32 it must be under 1e-4 or nothing is written.")
    p.add_argument("--src", required=True, help="model file (model_XX.pt, model_best.pt or checkpoint_last.pt)")
    p.add_argument("--dst", required=True, help="output file; the extension picks the format")
    p.add_argument("--softmax", action="store_true", help="append a softmax (outputs probabilities)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fp16", action="store_true", help="cast the weights to float16")
    g.add_argument("--bf16", action="store_true", help="cast the weights to bfloat16")
    p.add_argument("--data", default=None,
                   help="a folder of images for the precision report's real inputs (default: the val images of the "
                        "dataset the model was trained on, when that folder still exists)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="convert the EMA's weights (the default where the file has them, as train reports them) "
                        "or, with --no-ema, the weights")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from imagenet_trainer.data.decode import DecodeError, decode_crops
    from imagenet_trainer.data.geometry import Geometry
    from imagenet_trainer.errors import UsageError
    from imagenet_trainer.inference import collect_images, load_model_file
    from imagenet_trainer.tools.convert import convert

    if Path(args.dst).resolve() == Path(args.src).resolve():
        raise UsageError("--dst is the same file as --src; write the converted model elsewhere")
    lm = load_model_file(args.src, torch.device("cpu"), ema=args.ema)
    real = None
    folder = args.data or _recorded_val_folder(lm.data)
    if folder:
        arrays = []
        for f in collect_images([folder])[:16]:
            try:
                arrays.append(decode_crops(f.read_bytes(), Geometry("center", lm.crop_size, lm.image_size))[0][0])
            except (OSError, DecodeError):
                continue
        if arrays:
            real = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    dtype = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    report = convert(lm, args.dst, args.softmax, dtype, real)
    if args.json:
        print_json(report)
    else:
        diffs = "  ".join(f"{k.replace('max_abs_diff_', '')} inputs: max |diff| of probabilities {v:.2e}, "
                          f"of outputs {report['max_rel_diff_output_' + k[13:]]:.1e} relative"
                          for k, v in report.items() if k.startswith("max_abs_diff"))
        folded = {True: "batch norm folded", False: "batch norm NOT folded", None: "weights only",
                  "none": "no batch norm"}[report["bn_folded"]]
        print(f"wrote {report['dst']} ({report['format']}, {dtype}, {folded})  {diffs}")
    return 0


def _recorded_val_folder(data: str | None) -> str | None:
    from pathlib import Path

    from imagenet_trainer.data.index import find_split_dirs
    from imagenet_trainer.errors import UsageError

    if not data or not Path(data).is_dir():
        return None
    try:
        train, val = find_split_dirs(data)
    except UsageError:
        return None
    return str(val or train)
