"""``imagenet-trainer bench loader|model|train``: images/s, optionally against the naive torchvision pipeline."""

from __future__ import annotations

import argparse
import time

from imagenet_trainer.cli.common import add_subparser, non_negative_int, positive_int, print_json


def add_parser(sub) -> None:
    p = add_subparser(sub, "bench", "measure images/s of the loader, the model, or training end to end",
                      "loader: our training loader alone, delivering normalized batches to the device.\n"
                      "model:  SGD steps on random batches already on the device (the ceiling).\n"
                      "train:  training end to end from the JPEG folder, with the ceiling measured in the same run.\n"
                      "--compare also runs the naive torchvision pipeline (ImageFolder + PIL + ToTensor +\n"
                      "Normalize, fp32) in the same process and prints the ratio.")
    p.add_argument("what", choices=("loader", "model", "train"))
    p.add_argument("--data", help="dataset root (loader and train)")
    p.add_argument("--arch", default="resnet50", help="model (model and train)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="batch size")
    p.add_argument("--crop-size", type=positive_int, default=224, help="network input side")
    p.add_argument("--image-size", type=positive_int, default=256, help="val resize side")
    p.add_argument("--workers", type=int, default=-1, help="loader processes (-1 = cores-1, at most 16)")
    p.add_argument("--loader", choices=("auto", "cpu", "gpu", "hybrid"), default="auto",
                   help="who decodes; auto: bench train probes as training does (cpu if the workers keep up with the "
                        "model, else hybrid), bench loader takes hybrid on a GPU")
    p.add_argument("--cpu-share", type=float, default=None, help="hybrid: fixed CPU share (default adaptive)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto", help="autocast precision")
    p.add_argument("--backend", choices=("cudnn", "compile"), default="cudnn", help="compile = torch.compile")
    p.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=None,
                   help="as train's option: time cuDNN's algorithms per convolution shape (default: for crops <= 64 px)")
    p.add_argument("--steps", type=positive_int, default=50, help="timed batches")
    p.add_argument("--warmup", type=non_negative_int, default=10, help="untimed batches first")
    p.add_argument("--epochs", type=non_negative_int, default=0,
                   help="loader: time whole epochs instead, recording resident memory after each")
    p.add_argument("--compare", action="store_true", help="also run the naive torchvision pipeline")
    p.add_argument("--naive-data", metavar="DIR", default=None,
                   help="--compare with shards as --data: the folder of the same images that the naive pipeline reads")
    p.add_argument("--rounds", type=positive_int, default=1,
                   help="loader --compare: alternate ours and the naive pipeline N times and report the medians "
                        "(steadier figures on a shared machine)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    launch = time.perf_counter()
    from imagenet_trainer import bench
    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.engine.run import resolve_device, resolve_precision
    from imagenet_trainer.errors import UsageError

    if args.what != "model" and not args.data:
        raise UsageError(f"bench {args.what} needs --data DIR")
    if args.rounds > 1 and (args.what != "loader" or not args.compare or args.epochs):
        raise UsageError("--rounds: alternates the two loaders of `bench loader --compare` (without --epochs)")
    device = resolve_device(args.device)
    dtype = resolve_precision(args.precision, device)
    cfg = TrainConfig(data=args.data or "", arch=args.arch, batch_size=args.batch_size, crop_size=args.crop_size,
                      image_size=args.image_size, workers=args.workers, loader=args.loader, cpu_share=args.cpu_share,
                      backend=args.backend, cudnn_benchmark=args.cudnn_benchmark, epoch_size=None,
                      cache="off")  # bench measures the JPEG pipeline
    if args.naive_data and not args.compare:
        raise UsageError("--naive-data: the folder for --compare's naive pipeline; add --compare")
    cfg.check()
    opts = bench.BenchOptions(args.steps, args.warmup, args.compare, args.epochs, args.rounds, args.naive_data)
    if args.what == "model":
        result = {"images_per_s": bench.bench_model(cfg, device, dtype, opts)}
    elif args.what == "loader":
        result = bench.bench_loader(cfg, device, opts)
    else:
        result = bench.bench_train(cfg, device, dtype, opts, launch)
    result = {"bench": args.what, "arch": args.arch if args.what != "loader" else None,
              "batch_size": args.batch_size, "crop_size": args.crop_size,
              "precision": "fp32" if dtype is None else str(dtype).split(".")[-1], "backend": args.backend,
              "cudnn_benchmark": cfg.tune_cudnn(),
              **result, **bench.environment(device)}
    if args.json:
        print_json(result)
    else:
        line = f"{args.what}: {result['images_per_s']:,.0f} img/s"
        if "ceiling" in result:
            line += f" ({100 * result['of_ceiling']:.1f}% of the model-only ceiling {result['ceiling']['images_per_s']:,.0f})"
        if "ratio" in result:
            line += f"; naive torchvision pipeline {result['baseline']['images_per_s']:,.0f} img/s, ratio {result['ratio']:.2f}x"
        print(line + f"  [{result['card']}]")
    return 0
