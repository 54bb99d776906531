"""``imagenet-trainer train --data DIR``: train a model; the original's option spellings work too."""

from __future__ import annotations

import argparse

from imagenet_trainer.cli.common import add_subparser, non_negative_int, positive_int
from imagenet_trainer.config import COMPILE_MODES, DDP_GRAPHS, TrainConfig, load_run_config
from imagenet_trainer.errors import UsageError


def add_parser(sub) -> None:
    d = TrainConfig()
    p = add_subparser(sub, "train", "train a model on a folder of images",
                      "Train on DATA/train/<class>/* and validate on DATA/val/<class>/* (or validation/, test/).\n"
                      "Writes runs/<arch>-<date-time>/ (or --output): config.yaml, train.log, test.log,\n"
                      "metrics.jsonl, TensorBoard events, classes.txt, model_XX.pt per epoch, model_best.pt\n"
                      "and checkpoint_last.pt. Ctrl-C stops cleanly and prints the resume command.\n"
                      "The original example's spellings are accepted: -data -netType -nDonkeys -batchSize -LR\n"
                      "-nEpochs -epochSize -manualSeed -nGPU.")
    p.add_argument("--recipe", default="fast",
                   help="start from a recipe: fast, standard, seed-alexnet (configs/NAME.yaml), a YAML path, or "
                        "none (the plain defaults shown below); options given here override its values")
    p.add_argument("--config", metavar="FILE",
                   help="repeat a run's configuration: its config.yaml (every value resolved), in place of a "
                        "recipe; options given here override it, and the run gets a new folder")
    g = p.add_argument_group("data")
    g.add_argument("--data", "-data", default=d.data, help="dataset root holding train/ and val/ (required, unless "
                   "--config gives it)")
    g.add_argument("--val-dir", default=d.val_dir, help="validation folder (default: DATA/val, validation or test)")
    g.add_argument("--workers", "-nDonkeys", "-j", type=int, default=d.workers,
                   help="loader worker processes; 0 decodes in the main process (full tracebacks); -1 = cores-1, at most 16")
    g.add_argument("--batch-size", "-batchSize", "-b", type=positive_int, default=d.batch_size,
                   help="global batch size (all GPUs together); default 256, or less for a small train set, so that "
                        "an epoch has at least 100 steps (not below 32)")
    g.add_argument("--epoch-size", "-epochSize", type=positive_int, default=d.epoch_size,
                   help="batches per epoch (default: one full pass)")
    g.add_argument("--image-size", type=positive_int, default=d.image_size,
                   help="shorter side before the val centre crop (and the seed train crop); default: crop-size x 8/7 "
                        "(256 for 224)")
    g.add_argument("--crop-size", type=positive_int, default=d.crop_size,
                   help="network input side in pixels; default: 224, or the images' median shorter side (to a "
                        "multiple of 16) where that is smaller, so photos are not upsampled")
    g.add_argument("--train-crop", choices=("auto", "rrc", "seed", "pad"), default=d.train_crop,
                   help="rrc: random-resized-crop + flip; seed: the original's random crop after resize + flip; "
                        "pad: random crop reaching crop-size/8 px past the edges (black) + flip, the small-image "
                        "standard; auto (default): pad for small images (<= 64 px), else rrc")
    g.add_argument("--rrc-min-scale", type=float, default=d.rrc_min_scale,
                   help="smallest area share of a random-resized crop")
    g.add_argument("--cutout", type=float, default=d.cutout, metavar="FRACTION",
                   help="erase one random square per training image (side FRACTION x the crop, filled with the "
                        "mean colour, may be clipped at the border); 0 = off")
    g.add_argument("--prog-resize", type=float, nargs=2, default=d.prog_resize, metavar=("START", "END"),
                   help="progressive resizing: crops grow from START x crop-size to full size by END of the run")
    g.add_argument("--sampling", choices=("shuffle", "balanced"), default=d.sampling,
                   help="shuffle: each image once per epoch; balanced: uniform class, then image (the original)")
    g.add_argument("--normalize", choices=("imagenet", "auto"), default=d.normalize,
                   help="imagenet: ImageNet mean/std; auto: estimate from a sample of train images (cached)")
    g.add_argument("--loader", choices=("auto", "cpu", "gpu", "hybrid", "naive"), default=d.loader,
                   help="who decodes: cpu = worker processes; gpu = nvJPEG on the GPU (workers only read); "
                        "hybrid = both, with a split that adapts; auto = on a GPU, a short probe picks cpu if the "
                        "workers keep up with the model, else hybrid (the choice is cached); cpu otherwise; "
                        "naive = PIL + torchvision transforms, the reference for accuracy checks")
    g.add_argument("--cache", choices=("auto", "off", "ram", "gpu"), default=d.cache,
                   help="decode the train and val sets once and keep them in GPU memory or RAM (train images as "
                        "whole, as --image-size squares); auto: when they fit (CIFAR, Imagenette, Caltech-101)")
    g.add_argument("--cpu-share", type=float, default=d.cpu_share,
                   help="hybrid loader: fixed fraction of images the workers decode (default: adapts while running)")
    g.add_argument("--max-bad-images", type=non_negative_int, default=d.max_bad_images,
                   help="unreadable image files skipped (and logged, each once) before the run fails")
    g.add_argument("--cache-dir", default=d.cache_dir, help="cache folder for indexes, dataset statistics and the loader probe's choice "
                        "(default: $IMAGENET_TRAINER_CACHE or ~/.cache/imagenet-trainer)")
    g = p.add_argument_group("model")
    g.add_argument("--arch", "-netType", "-a", default=d.arch, help="model name; see `imagenet-trainer models`")
    g.add_argument("--small-stem", choices=("auto", "on", "off"), default=d.small_stem,
                   help="ResNet stem for small images (3x3 stride 1, no max-pool); auto: on when the median "
                        "image side is at most 64 px, with native-size crops")
    g.add_argument("--num-classes", type=positive_int, default=d.num_classes, help="default: class folders in train/")
    g = p.add_argument_group("optimization")
    g.add_argument("--epochs", "-nEpochs", type=positive_int, default=d.epochs, help="number of epochs")
    g.add_argument("--lr-schedule", choices=("seed", "step", "cosine"), default=d.lr_schedule,
                   help="seed: the original's epoch table; step: x step-gamma every step-size epochs; cosine: warmup then cosine")
    g.add_argument("--lr", "-LR", type=float, default=d.lr,
                   help="base learning rate (default: 0.01 for seed, 0.1 x batch/256 for step and cosine)")
    g.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs, help="cosine: linear warmup epochs")
    g.add_argument("--warmup-fraction", type=float, default=d.warmup_fraction,
                   help="cosine: warmup as a share of --epochs (overrides --warmup-epochs)")
    g.add_argument("--warmup-min-steps", type=non_negative_int, default=d.warmup_min_steps,
                   help="cosine: the warmup lasts at least this many optimizer steps (at most a quarter of the run)")
    g.add_argument("--lr-per-256", type=float, default=d.lr_per_256,
                   help="step/cosine: base LR per 256 images of global batch, when --lr is not given")
    g.add_argument("--step-size", type=positive_int, default=d.step_size, help="step: epochs between decays")
    g.add_argument("--step-gamma", type=float, default=d.step_gamma, help="step: decay factor")
    g.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=d.nesterov, help="Nesterov momentum")
    g.add_argument("--weight-decay", "--wd", type=float, default=d.weight_decay,
                   help="weight decay (default: the seed table's, else 1e-4)")
    g.add_argument("--no-bn-decay", action=argparse.BooleanOptionalAction, default=d.no_bn_decay,
                   help="no weight decay on batch-norm and bias parameters")
    g.add_argument("--label-smoothing", type=float, default=d.label_smoothing, help="label smoothing factor")
    g.add_argument("--guard", action=argparse.BooleanOptionalAction, default=d.guard,
                   help="stop, with what to try, when the training loss goes non-finite or rises to more than twice "
                        "its start plus one after the warmup (a diverged run)")
    g.add_argument("--ema", action=argparse.BooleanOptionalAction, default=d.ema,
                   help="keep an exponential moving average of the weights; evaluated and saved too")
    g.add_argument("--ema-half-life", type=float, default=d.ema_half_life,
                   help="EMA half-life as a share of all training steps")
    g.add_argument("--tta", action=argparse.BooleanOptionalAction, default=d.tta,
                   help="validate with horizontal-flip test-time augmentation")
    g.add_argument("--tta-shift", type=non_negative_int, default=d.tta_shift, metavar="PX",
                   help="also validate on the image moved PX pixels diagonally each way (edges repeated), weighted "
                        "1/4 each against 1/2 for the unmoved image; for nets trained on padded crops; 0 = off")
    g.add_argument("--val-every", type=non_negative_int, default=d.val_every,
                   help="validate every N epochs, and after the last; 0 = after the last epoch only")
    g.add_argument("--accum", type=positive_int, default=d.accum,
                   help="split each optimizer step's batch into K micro-batches (same result, less memory)")
    g.add_argument("--seed", "-manualSeed", type=int, default=d.seed, help="random seed (init, shuffling, augmentation)")
    g = p.add_argument_group("device and precision")
    g.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    g.add_argument("--ngpu", "-nGPU", type=positive_int, default=1,
                   help="GPUs on this machine: starts one DDP process per GPU (or use torchrun); "
                        "with --device cpu, that many CPU processes (gloo)")
    g.add_argument("--sync-bn", action="store_true", help="synchronized batch norm across GPUs")
    g.add_argument("--ddp-grads", choices=("fp32", "bf16"), default=d.ddp_grads,
                   help="precision in which the processes sum their gradients; bf16 halves the bytes sent, for GPUs "
                        "joined by PCIe or a network (on NVLink it gains nothing)")
    g.add_argument("--ddp-graph", choices=DDP_GRAPHS, default=d.ddp_graph,
                   help="with --backend compile and several processes: split compiles the model as one graph per "
                        "gradient bucket, so each bucket's sum overlaps the rest of the backward; whole compiles one "
                        "graph and sums all gradients after it (for GPUs joined by NVLink: on 2x H200, 98%% of one "
                        "GPU's steps against 94-97%% split); auto times one all-reduce at start and takes whole at "
                        "100 GB/s or more (NVLink), else split (PCIe, a network)")
    g.add_argument("--master-port", type=int, default=None, help="--ngpu: port for the processes to meet on (default: a free one)")
    g.add_argument("--dist-timeout", type=float, default=d.dist_timeout,
                   help="minutes a collective waits for a missing rank before the job fails")
    g.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default=d.precision,
                   help="auto: bf16 autocast on GPU, fp32 on CPU")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=d.channels_last,
                   help="channels_last memory format")
    g.add_argument("--backend", choices=("cudnn", "native", "compile"), default=d.backend,
                   help="cudnn: cuDNN; native: cuDNN off; compile: torch.compile")
    g.add_argument("--compile-mode", choices=COMPILE_MODES, default=d.compile_mode,
                   help="torch.compile's mode with --backend compile: reduce-overhead replays the step's kernels "
                        "as CUDA graphs (for small, launch-bound steps: ResNet-9 on CIFAR trained 1.4-1.8x faster "
                        "on one H100, but its compile cost about as much over 22 epochs; measured on one GPU only); "
                        "the max-autotune modes time kernel choices (minutes of compilation)")
    g.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=d.cudnn_benchmark,
                   help="time cuDNN's algorithms for each convolution shape at its first use, instead of taking "
                        "cuDNN's own pick; default: only for crops of at most 64 px (3-6%% faster there; at 224 px "
                        "no faster, and 1-15 s more at each new input size)")
    g = p.add_argument_group("run folder and checkpoints")
    g.add_argument("--output", "-o", default=d.output, help="run folder (default: runs/<arch>-<date-time>)")
    g.add_argument("--print-freq", type=positive_int, default=d.print_freq,
                   help="batches between progress lines when stderr is not a terminal")
    g.add_argument("--keep-checkpoints", type=positive_int, default=d.keep_checkpoints,
                   help="keep only the newest K model_XX.pt (default: all)")
    g.add_argument("--save-interval", type=float, default=d.save_interval, metavar="SECONDS",
                   help="write an epoch's model_XX.pt and checkpoint_last.pt when this long has passed since the "
                        "last ones (default 60; 0 = every epoch); the last epoch's always")
    g.add_argument("--resume", default=d.resume, help="checkpoint_last.pt to continue exactly, or 'auto'")
    g.add_argument("--retrain", default=d.retrain, help="model_XX.pt to start from, with a fresh optimizer")
    p.set_defaults(run=run, parser=p, check_args=_require_data)


def _require_data(args) -> None:
    if not args.config and not args.data:
        args.parser.error("the following arguments are required: --data")


def config_from_args(args) -> TrainConfig:
    """The options given on the command line over the recipe's values over the defaults: exactly
    ``TrainConfig.from_recipe(recipe, **given options)``."""
    names = set(TrainConfig.__dataclass_fields__) - {"command", "recipe"}
    given = _given_dests(args.parser, args.argv[1:]) & names
    values = {k: v for k, v in vars(args).items() if k in given}
    if values.get("prog_resize") is not None:
        values["prog_resize"] = list(values["prog_resize"])
    command = ["imagenet-trainer", "train", *args.argv[1:]]
    if args.config:
        if "recipe" in _given_dests(args.parser, args.argv[1:]) - names:
            raise UsageError("--config and --recipe: a run's config.yaml already holds its recipe's values; give one")
        cfg = TrainConfig(**(load_run_config(args.config) | values | {"command": command}))
    else:
        cfg = TrainConfig.from_recipe(args.recipe, **values, command=command)
    if not cfg.data:
        raise UsageError("--data DIR is required: the dataset root holding train/ and val/")
    return cfg


def _given_dests(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options that appear in ``argv`` (so that they beat the recipe)."""
    by_flag = {flag: a.dest for a in parser._actions for flag in a.option_strings}
    for a in parser._actions:  # --no-X of boolean options
        for flag in a.option_strings:
            if flag.startswith("--") and isinstance(a, argparse.BooleanOptionalAction):
                by_flag["--no-" + flag[2:]] = a.dest
    return {by_flag[tok.split("=", 1)[0]] for tok in argv if tok.split("=", 1)[0] in by_flag}


def run(args) -> int:
    cfg = config_from_args(args)
    if args.ngpu > 1:
        from imagenet_trainer.engine.launch import launch

        return launch(cfg, args.ngpu, args.master_port, fork=getattr(args, "fresh_process", False))
    from imagenet_trainer.engine.run import train

    return train(cfg)
