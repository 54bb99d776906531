"""``imagenet-trainer predict --model M IMAGE_OR_FOLDER...``: the top classes of each image."""

from __future__ import annotations

import csv
import sys

from imagenet_trainer.cli.common import add_subparser, positive_int, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "predict", "top-k classes of images",
                      "Print the top-k classes with probabilities for each image (folders are searched\n"
                      "recursively). Unreadable files are reported and skipped.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders")
    p.add_argument("--model", required=True, help="model file: .pt (model_XX.pt or converted), .safetensors, .ts or .onnx")
    p.add_argument("--topk", type=positive_int, default=5, help="classes to show per image")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per batch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON on stdout")
    out.add_argument("--csv", action="store_true", help="print CSV on stdout (path, rank, class, index, probability)")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.engine.run import resolve_device
    from imagenet_trainer.inference import Predictor, collect_images, predict_files

    device = resolve_device(args.device)
    files = collect_images(args.inputs)
    results = predict_files(Predictor(args.model, device), files, device, args.topk, args.batch_size)
    code = _exit_code(results)
    if args.json:
        print_json(results)
        return code
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["path", "rank", "class", "index", "probability", "error"])
        for r in results:
            if "error" in r:
                writer.writerow([r["path"], "", "", "", "", r["error"]])
            for rank, t in enumerate(r.get("top", []), 1):
                writer.writerow([r["path"], rank, t["class"], t["index"], t["probability"], ""])
        return code
    for r in results:
        print(r["path"])
        if "error" in r:
            print(f"  unreadable: {r['error']}")
            continue
        for t in r["top"]:
            print(f"  {t['probability']:.4f}  {t['class']}")
    return code


def _exit_code(results: list[dict]) -> int:
    """2 when no file could be read (each is listed with its error, and a last line says so on stderr)."""
    if results and all("error" in r for r in results):
        print(f"imagenet-trainer predict: error: none of the {len(results)} files could be read as an image",
              file=sys.stderr)
        return 2
    return 0
