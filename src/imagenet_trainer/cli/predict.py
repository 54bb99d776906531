"""``imagenet-trainer predict --model M IMAGE_OR_FOLDER...``: the top classes of each image."""

from __future__ import annotations

from imagenet_trainer.cli.common import add_subparser, positive_int, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "predict", "top-k classes of images",
                      "Print the top-k classes with probabilities for each image (folders are searched\n"
                      "recursively). Unreadable files are reported and skipped.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders")
    p.add_argument("--model", required=True, help="model file")
    p.add_argument("--topk", type=positive_int, default=5, help="classes to show per image")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per batch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    from imagenet_trainer.engine.run import resolve_device
    from imagenet_trainer.inference import collect_images, load_model_file, predict_files

    device = resolve_device(args.device)
    files = collect_images(args.inputs)
    lm = load_model_file(args.model, device)
    results = predict_files(lm, files, device, args.topk, args.batch_size)
    if args.json:
        print_json(results)
        return 0
    for r in results:
        print(r["path"])
        if "error" in r:
            print(f"  unreadable: {r['error']}")
            continue
        for t in r["top"]:
            print(f"  {t['probability']:.4f}  {t['class']}")
    return 0
