"""Typed training configuration. The CLI fills it; the resolved copy is saved as ``config.yaml``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


SMALL_IMAGE_SIDE = 64  # images (median shorter side) and crops of at most this side get the small-image settings
DEFAULT_CROP = 224  # auto crop for images at least this large (ImageNet's median side is about 400 px)
DEFAULT_BATCH = 256  # auto batch for large train sets
MIN_AUTO_BATCH = 32  # auto never goes below this
MIN_STEPS_PER_EPOCH = 100  # auto halves the batch until an epoch has this many steps (or MIN_AUTO_BATCH)


def auto_batch_size(n_train: int, multiple: int = 1) -> int:
    """The global batch for ``--batch-size`` auto: 256, halved while an epoch of ``n_train`` images would have
    fewer than ``MIN_STEPS_PER_EPOCH`` steps, never below 32; rounded up to a multiple of ``multiple``
    (processes x micro-batches).

    A small set (Caltech-101's 7,000 photos) makes 27 steps an epoch at 256: a 5-epoch run is then 135
    optimizer steps, too few to train a net from scratch however the LR is set. At 64 it is 545.
    """
    batch = DEFAULT_BATCH
    while batch > MIN_AUTO_BATCH and n_train // batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return -(-batch // multiple) * multiple


def auto_sizes(median_side: int, crop_size: Optional[int] = None, image_size: Optional[int] = None) -> tuple[int, int]:
    """(crop_size, image_size) for ``median_side``, the data's median shorter side (0: unknown), keeping the
    sizes that are given.

    Small images (at most ``SMALL_IMAGE_SIDE``, CIFAR) keep their native size. Photos smaller than 224 px are
    cropped at their median side, to a multiple of 16: a 224 crop of a 128-px photo is 3x the pixels (and the
    compute) for no new detail. The val resize keeps ImageNet's ratio, crop x 8/7 (224 -> 256).
    """
    small = 0 < median_side <= SMALL_IMAGE_SIDE
    if crop_size is None:
        if small:
            crop_size = median_side
        elif median_side == 0 or median_side >= DEFAULT_CROP:
            crop_size = DEFAULT_CROP
        else:
            crop_size = max(SMALL_IMAGE_SIDE, median_side // 16 * 16)
        if image_size is not None:
            crop_size = min(crop_size, image_size)
    if image_size is None:
        image_size = crop_size if small and crop_size <= median_side else round(crop_size * 8 / 7)
    return crop_size, image_size


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DDP_GRAPHS = ("auto", "split", "whole")  # --ddp-graph (engine.distributed.choose_ddp_graph, set_ddp_graph)


def option(default, help: str, *, group: str, flags: tuple = (), choices: tuple | None = None,
           low: float | None = None, metavar=None, nargs=None, negative: str | None = None):
    """A ``TrainConfig`` field that is also a ``train`` option: its default, help, choices, smallest value and the
    original example's spellings (``flags``), defined once. ``cli.train`` builds its options from these, and
    ``TrainConfig.check`` validates the choices and bounds. ``negative``: the flag that sets a boolean to False,
    where ``--no-NAME`` would read badly."""
    meta = {"help": help, "group": group, "flags": flags, "choices": choices, "low": low, "metavar": metavar,
            "nargs": nargs, "negative": negative}
    return field(default=default, metadata=meta)


LOADERS = ("auto", "cpu", "gpu", "hybrid", "naive")
CACHE_MODES = ("auto", "off", "ram", "gpu")
TRAIN_CROPS = ("auto", "rrc", "seed", "pad")
SCHEDULES = ("seed", "step", "cosine")
OPTIMIZERS = ("sgd", "adamw", "lamb", "lars")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
BACKENDS = ("cudnn", "native", "compile")


@dataclass
class TrainConfig:
    """Everything a training run is: each field with its meaning, default and the ``train`` option that sets it.

    The plain defaults are the ``--recipe none`` values; ``TrainConfig.from_recipe`` applies a recipe first, as the
    command line does. A run saves its resolved copy, with every ``auto`` made concrete, as ``config.yaml``.
    """

    # --- data ---
    data: str = option("", "dataset root holding train/ and val/ (required, unless --config gives it): a folder of "
                       "images, or tar shards (a folder or URL holding train/ and val/ shards with their index.json, "
                       "a pattern train-{000000..000099}.tar, s3://, https://, pipe:CMD)", group="data",
                       flags=("-data",))
    val_dir: Optional[str] = option(None, "validation folder or shards (default: DATA/val, validation or test)",
                                    group="data")
    workers: int = option(-1, "loader worker processes; 0 decodes in the main process (full tracebacks); -1 = "
                          "cores-1, at most 16", group="data", flags=("-nDonkeys", "-j"), low=-1)
    batch_size: Optional[int] = option(None, "global batch size (all GPUs together); default 256, or less for a "
                                       "small train set, so that an epoch has at least 100 steps (not below 32), "
                                       "at the LR of 256", group="data", flags=("-batchSize", "-b"), low=1)
    epoch_size: Optional[int] = option(None, "batches per epoch (default: one full pass)", group="data",
                                       flags=("-epochSize",), low=1)
    shuffle_buffer: int = option(1000, "shards: samples each loader worker holds to shuffle what it reads",
                                 group="data", low=1)
    image_size: Optional[int] = option(None, "shorter side before the val centre crop (and the seed train crop); "
                                       "default: crop-size x 8/7 (256 for 224)", group="data", low=8)
    crop_size: Optional[int] = option(None, "network input side in pixels; default: 224, or the images' median "
                                      "shorter side (to a multiple of 16) where that is smaller, so photos are not "
                                      "upsampled", group="data", low=8)
    train_crop: str = option("auto", "rrc: random-resized-crop + flip; seed: the original's random crop after "
                             "resize + flip; pad: random crop reaching crop-size/8 px past the edges (black) + flip, "
                             "the small-image standard; auto: pad for small images (<= 64 px), else rrc",
                             group="data", choices=TRAIN_CROPS)
    rrc_min_scale: float = option(0.08, "smallest area share of a random-resized crop", group="data")
    cutout: float = option(0.0, "erase one random square per training image (side FRACTION x the crop, filled with "
                           "the mean colour, may be clipped at the border); 0 = off", group="data",
                           metavar="FRACTION")
    auto_augment: Optional[str] = option(None, "an augmentation policy per image: rand-m9-mstd0.5-inc1 (timm's "
                                         "RandAugment strings), trivial (TrivialAugmentWide) or autoaugment-imagenet "
                                         "(AutoAugment's ImageNet policy); applied to each batch on the device",
                                         group="augmentation", metavar="POLICY")
    mixup: float = option(0.0, "MixUp: mix each batch with itself reversed, by a weight drawn from Beta(ALPHA, "
                          "ALPHA), with soft targets; 0 = off (timm's --mixup)", group="augmentation", low=0,
                          metavar="ALPHA")
    cutmix: float = option(0.0, "CutMix: paste a box of the reversed batch, of area from Beta(ALPHA, ALPHA), with "
                           "soft targets; 0 = off (timm's --cutmix)", group="augmentation", low=0, metavar="ALPHA")
    mix_prob: float = option(1.0, "share of batches that MixUp or CutMix mixes", group="augmentation", metavar="P")
    mix_switch_prob: float = option(0.5, "with both --mixup and --cutmix: share of mixed batches that CutMix takes",
                                    group="augmentation", metavar="P")
    reprob: float = option(0.0, "random erasing: probability that an image loses 1 to --recount rectangles "
                           "(timm's --reprob); 0 = off", group="augmentation", metavar="P")
    remode: str = option("pixel", "random erasing's fill: pixel = per-pixel normal noise, const = the mean colour",
                         group="augmentation", choices=("pixel", "const"))
    recount: int = option(1, "random erasing: at most this many rectangles per image", group="augmentation", low=1)
    repeated_aug: int = option(1, "repeated augmentation: each image N times per epoch, with other crops, dealt "
                               "to the processes in turn; the epoch keeps its length (DeiT: 3)",
                               group="augmentation", low=1, metavar="N")
    prog_resize: Optional[list] = option(None, "progressive resizing: crops grow from START x crop-size to full "
                                         "size by END of the run", group="data", nargs=2, metavar=("START", "END"))
    sampling: str = option("shuffle", "shuffle: each image once per epoch; balanced: uniform class, then image "
                           "(the original)", group="data", choices=("shuffle", "balanced"))
    normalize: str = option("imagenet", "imagenet: ImageNet mean/std; auto: estimate from a sample of train images "
                            "(cached); fixed: the config's mean and std", group="data",
                            choices=("imagenet", "auto", "fixed"))
    mean: Optional[list] = None  # normalize fixed: the per-channel mean (0..1), RGB
    std: Optional[list] = None  # normalize fixed: the per-channel standard deviation
    loader: str = option("auto", "who decodes: cpu = worker processes; gpu = nvJPEG on the GPU (workers only read); "
                         "hybrid = both, with a split that adapts; auto = on a GPU, a short probe picks cpu if the "
                         "workers keep up with the model, else hybrid (the choice is cached); cpu otherwise; "
                         "naive = PIL + torchvision transforms, the reference for accuracy checks", group="data",
                         choices=LOADERS)
    cache: str = option("auto", "decode the train and val sets once and keep them in GPU memory or RAM (train images "
                        "whole, as squares at the photos' longer side); auto: when they fit (CIFAR, Imagenette, "
                        "Caltech-101)",
                        group="data", choices=CACHE_MODES)
    cpu_share: Optional[float] = option(None, "hybrid loader: fixed fraction of images the workers decode (default: "
                                        "adapts while running)", group="data")
    max_bad_images: int = option(100, "unreadable image files skipped (and logged, each once) before the run fails",
                                 group="data", low=0)
    cache_dir: Optional[str] = option(None, "cache folder for indexes, dataset statistics and the loader probe's "
                                      "choice (default: $IMAGENET_TRAINER_CACHE or ~/.cache/imagenet-trainer)",
                                      group="data")
    # --- model ---
    arch: str = option("resnet18", "model name; see `imagenet-trainer models`", group="model",
                       flags=("-netType", "-a"))
    small_stem: str = option("auto", "ResNet stem for small images (3x3 stride 1, no max-pool); auto: on when the "
                             "median image side is at most 64 px, with native-size crops", group="model",
                             choices=("auto", "on", "off"))
    num_classes: Optional[int] = option(None, "default: class folders in train/", group="model", low=1)
    pretrained: bool = option(False, "start from the model's published weights, through torchvision's or timm's own "
                              "download and cache, with a new head for the data's classes; the input recipe (mean, "
                              "std, sizes) follows them", group="model")
    weights: Optional[str] = option(None, "start from the weights in FILE: a torchvision .pth, a timm checkpoint, "
                                    ".safetensors, or a model or checkpoint file of this tool; a new head for the "
                                    "data's classes", group="model", metavar="FILE")
    drop_path: Optional[float] = option(None, "stochastic depth rate, for models that have it (timm's; torchvision's "
                                        "ConvNeXt, EfficientNet, Swin, MaxViT); default: the model's own", group="model",
                                        low=0, metavar="RATE")
    # --- optimization ---
    epochs: int = option(90, "number of epochs", group="optimization", flags=("-nEpochs",), low=1)
    lr_schedule: str = option("cosine", "seed: the original's epoch table; step: x step-gamma every step-size "
                              "epochs; cosine: warmup then cosine", group="optimization", choices=SCHEDULES)
    lr: Optional[float] = option(None, "base learning rate (default: 0.01 for seed, lr-per-256 x batch/256 for step "
                                 "and cosine)", group="optimization", flags=("-LR",), low=0)
    warmup_epochs: float = option(0.0, "cosine: linear warmup epochs", group="optimization", low=0)
    warmup_fraction: Optional[float] = option(None, "cosine: warmup as a share of --epochs (overrides "
                                              "--warmup-epochs)", group="optimization")
    warmup_min_steps: int = option(0, "cosine: the warmup lasts at least this many optimizer steps (at most a "
                                   "quarter of the run)", group="optimization", low=0)
    lr_per_256: float = option(0.1, "step/cosine: base LR per 256 images of global batch, when --lr is not given",
                               group="optimization", low=0)
    step_size: int = option(30, "step: epochs between decays", group="optimization", low=1)
    step_gamma: float = option(0.1, "step: decay factor", group="optimization")
    opt: str = option("sgd", "optimizer: sgd (with momentum), adamw, lamb or lars (timm's, where timm is installed)",
                      group="optimization", choices=OPTIMIZERS)
    momentum: float = option(0.9, "SGD and LARS momentum", group="optimization")
    nesterov: bool = option(False, "Nesterov momentum", group="optimization")
    weight_decay: Optional[float] = option(None, "weight decay (default: the seed table's, else 1e-4)",
                                           group="optimization", flags=("--wd",), low=0)
    small_set_weight_decay: Optional[float] = option(None, "SGD's weight decay for a small train set, one the data "
                                                     "made the batch smaller for, when --weight-decay is not given "
                                                     "(fast: 5e-4)", group="optimization", low=0)
    no_bn_decay: bool = option(False, "no weight decay on norms, biases, position embeddings and class tokens "
                               "(--bn-decay: decay them too)", group="optimization", negative="--bn-decay")
    layer_decay: Optional[float] = option(None, "layer-wise LR decay: each layer's LR is FACTOR times the next one's, "
                                          "the head's the full LR (timm's layer groups; for other models, their "
                                          "top-level blocks)", group="optimization", metavar="FACTOR")
    clip_grad: Optional[float] = option(None, "clip the gradients' global norm to this", group="optimization",
                                        metavar="NORM")
    freeze_epochs: float = option(0.0, "train only the classifier head for the first N epochs, then the whole "
                                  "model", group="optimization", low=0, metavar="N")
    freeze_backbone: bool = option(False, "train only the classifier head, for the whole run", group="optimization")
    label_smoothing: float = option(0.0, "label smoothing factor", group="optimization")
    guard: bool = option(True, "stop, with what to try, when the training loss goes non-finite or rises to more than "
                         "twice its start plus one after the warmup (a diverged run)", group="optimization")
    ema: bool = option(False, "keep an exponential moving average of the weights; evaluated and saved too",
                       group="optimization")
    ema_half_life: float = option(0.05, "EMA half-life as a share of all training steps", group="optimization")
    tta: bool = option(False, "validate with horizontal-flip test-time augmentation", group="optimization")
    tta_shift: int = option(0, "also validate on the image moved PX pixels diagonally each way (edges repeated), "
                            "weighted 1/4 each against 1/2 for the unmoved image; for nets trained on padded crops; "
                            "0 = off", group="optimization", low=0, metavar="PX")
    val_every: int = option(1, "validate every N epochs, and after the last; 0 = after the last epoch only",
                            group="optimization", low=0)
    accum: int = option(1, "split each optimizer step's batch into K micro-batches (same result, less memory)",
                        group="optimization", low=1)
    seed: int = option(0, "random seed (init, shuffling, augmentation)", group="optimization", flags=("-manualSeed",))
    recipe: Optional[str] = None  # the recipe (configs/NAME.yaml) these values started from
    # --- device and precision ---
    device: str = option("auto", "auto, cpu, cuda or cuda:N", group="device and precision")
    sync_bn: bool = option(False, "synchronized batch norm across GPUs", group="device and precision")
    ddp_grads: str = option("fp32", "precision in which the processes sum their gradients; bf16 halves the bytes "
                            "sent, for GPUs joined by PCIe or a network (on NVLink it gains nothing)",
                            group="device and precision", choices=("fp32", "bf16"))
    ddp_graph: str = option("auto", "with --backend compile and several processes: split compiles the model as one "
                            "graph per gradient bucket, so each bucket's sum overlaps the rest of the backward; whole "
                            "compiles one graph and sums all gradients after it (for GPUs joined by NVLink: on 2x "
                            "H200, 98%% of one GPU's steps against 94-97%% split); auto times one all-reduce at start "
                            "and takes whole at 100 GB/s or more (NVLink), else split (PCIe, a network)",
                            group="device and precision", choices=DDP_GRAPHS)
    dist_timeout: float = option(10.0, "minutes a collective waits for a missing rank before the job fails",
                                 group="device and precision")
    precision: str = option("auto", "auto: bf16 autocast on GPU, fp32 on CPU", group="device and precision",
                            choices=PRECISIONS)
    channels_last: bool = option(True, "channels_last memory format", group="device and precision")
    backend: str = option("cudnn", "cudnn: cuDNN; native: cuDNN off; compile: torch.compile",
                          group="device and precision", choices=BACKENDS)
    compile_mode: str = option("default", "torch.compile's mode with --backend compile: reduce-overhead replays the "
                               "step's kernels as CUDA graphs (for small, launch-bound steps: ResNet-9 on CIFAR "
                               "trained 1.4-1.8x faster on one H100, but its compile cost about as much over 22 "
                               "epochs; measured on one GPU only); the max-autotune modes time kernel choices "
                               "(minutes of compilation)", group="device and precision", choices=COMPILE_MODES)
    cudnn_benchmark: Optional[bool] = option(None, "time cuDNN's algorithms for each convolution shape at its first "
                                             "use, instead of taking cuDNN's own pick; default: only for crops of at "
                                             "most 64 px (3-6%% faster there; at 224 px no faster, and 1-15 s more "
                                             "at each new input size)", group="device and precision")
    # --- run folder, logging, checkpoints ---
    output: Optional[str] = option(None, "run folder (default: runs/<arch>-<date-time>)",
                                   group="run folder and checkpoints", flags=("-o",))
    print_freq: int = option(10, "batches between progress lines when stderr is not a terminal",
                             group="run folder and checkpoints", low=1)
    keep_checkpoints: Optional[int] = option(None, "keep only the newest K model_XX.pt (default: all)",
                                             group="run folder and checkpoints", low=1)
    save_interval: float = option(60.0, "write an epoch's model_XX.pt and checkpoint_last.pt when this long has "
                                  "passed since the last ones (0 = every epoch); the last epoch's always",
                                  group="run folder and checkpoints", metavar="SECONDS", low=0)
    save_mid_epoch: float = option(600.0, "in a long epoch, also write checkpoint_last.pt every this many seconds, "
                                   "so that --resume continues part-way through it (0 = at epoch ends only)",
                                   group="run folder and checkpoints", metavar="SECONDS", low=0)
    resume: Optional[str] = option(None, "checkpoint_last.pt to continue exactly, or 'auto'",
                                   group="run folder and checkpoints")
    retrain: Optional[str] = option(None, "model_XX.pt to start from, with a fresh optimizer",
                                    group="run folder and checkpoints")
    command: list = field(default_factory=list)  # the command line, to print the resume command
    typed: list = field(default_factory=list)  # the settings the user gave (options, from_recipe's overrides):
    # no automatic choice replaces them

    def tune_cudnn(self) -> bool:
        """Whether cuDNN times its algorithms for each new convolution shape (``cudnn.benchmark``).

        Auto: only for small crops. One H100 (2026-11-26, ``benchmarks/cudnn_tuning.py``, bf16, channels_last):
        timing bought ResNet-9 and its 1.5x-wide version +3% and +6% steps/s on 32-px CIFAR batches, for
        0.7 s; it bought ResNet-18/50 and AlexNet at 224 px, and compiled ResNet-50, nothing (-1% to +2.5%),
        and cost 1-8 s at the first step, 15 s for ResNet-50 at 160 px: every size of progressive resizing
        pays it again.
        """
        if self.cudnn_benchmark is not None:
            return self.cudnn_benchmark
        return (self.crop_size or DEFAULT_CROP) <= SMALL_IMAGE_SIDE

    def check(self) -> None:
        """A ``UsageError`` naming the first option whose value is out of its range or choices: every option's
        check, in one place, for the command line and library callers alike."""
        from imagenet_trainer.errors import UsageError

        def need(ok: bool, option: str, value, rule: str) -> None:
            if not ok:
                raise UsageError(f"--{option} {value:g}: {rule}" if isinstance(value, float)
                                 else f"--{option} {value}: {rule}")

        for f in dataclasses.fields(self):  # each option's choices and smallest value (``option``)
            value, choices, low = getattr(self, f.name), f.metadata.get("choices"), f.metadata.get("low")
            flag = "--" + f.name.replace("_", "-")
            if choices and value not in choices:
                raise UsageError(f"{flag} {value}: unknown; choose one of {', '.join(choices)}")
            if low is not None and value is not None and value < low:
                what = {0: "0 or more", 1: "at least 1"}.get(low, f"at least {low:g}")
                if f.name == "workers":
                    what = "0 (decode in the main process) or more, or -1 (auto)"
                need(False, f.name.replace("_", "-"), value, f"must be {what}")
        need(self.crop_size is None or self.image_size is None or self.crop_size <= self.image_size,
             "crop-size", self.crop_size, f"must be at most --image-size ({self.image_size})")
        need(0.0 < self.rrc_min_scale <= 1.0, "rrc-min-scale", self.rrc_min_scale,
             "must be an area share above 0 and at most 1")
        need(0.0 <= self.cutout < 1.0, "cutout", self.cutout, "must be a share of the crop side from 0 (off) to below 1")
        need(self.cpu_share is None or 0.0 <= self.cpu_share <= 1.0, "cpu-share", self.cpu_share,
             "must be a share from 0 to 1")
        need(self.warmup_fraction is None or 0.0 <= self.warmup_fraction <= 1.0, "warmup-fraction",
             self.warmup_fraction, "must be a share of the run from 0 to 1")
        need(0.0 < self.step_gamma <= 1.0, "step-gamma", self.step_gamma, "must be above 0 and at most 1")
        need(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "must be from 0 to below 1")
        need(not self.nesterov or self.momentum > 0, "momentum", self.momentum,
             "Nesterov momentum needs a momentum above 0 (or --no-nesterov)")
        need(0.0 <= self.label_smoothing < 1.0, "label-smoothing", self.label_smoothing, "must be from 0 to below 1")
        need(self.ema_half_life > 0, "ema-half-life", self.ema_half_life, "must be a share of the run above 0")
        need(self.crop_size is None or self.tta_shift < self.crop_size, "tta-shift", self.tta_shift,
             f"must be smaller than the crop ({self.crop_size} px)")
        if self.prog_resize is not None:
            shares = list(self.prog_resize)
            numbers = all(isinstance(v, (int, float)) for v in shares)
            need(numbers and len(shares) == 2 and all(0.0 < v <= 1.0 for v in shares), "prog-resize",
                 " ".join(f"{v:g}" if numbers else repr(v) for v in shares),
                 "needs two shares above 0 and at most 1: the first epochs' crop side as a share of --crop-size, "
                 "and the share of the run by which it reaches full size")
        need(self.compile_mode == "default" or self.backend == "compile", "compile-mode", self.compile_mode,
             "is a mode of torch.compile: add --backend compile")
        need(self.ddp_graph != "whole" or self.backend == "compile", "ddp-graph", self.ddp_graph,
             "chooses how torch.compile cuts a DDP model: add --backend compile")
        need(self.dist_timeout > 0, "dist-timeout", self.dist_timeout, "must be more than 0 minutes")
        if self.auto_augment:
            from imagenet_trainer.data.autoaugment import check_policy

            check_policy(self.auto_augment)
        for name in ("mix_prob", "mix_switch_prob", "reprob"):
            need(0.0 <= getattr(self, name) <= 1.0, name.replace("_", "-"), getattr(self, name),
                 "must be a probability from 0 to 1")
        need(self.repeated_aug == 1 or self.sampling == "shuffle", "repeated-aug", self.repeated_aug,
             "repeats the images of a shuffled pass: leave out --sampling balanced")
        need(self.layer_decay is None or 0.0 < self.layer_decay <= 1.0, "layer-decay", self.layer_decay,
             "must be a factor above 0 and at most 1")
        need(self.clip_grad is None or self.clip_grad > 0, "clip-grad", self.clip_grad, "must be a norm above 0")
        need(not (self.pretrained and self.weights), "weights", self.weights,
             "and --pretrained both give starting weights: choose one")
        need(not (self.retrain and (self.pretrained or self.weights)), "retrain", self.retrain,
             "continues a run of this tool with its classes; for other starting weights use --weights alone")

    @classmethod
    def from_recipe(cls, name: Optional[str] = "fast", **overrides) -> "TrainConfig":
        """The plain defaults, then recipe ``name``'s values (a built-in name, a YAML path, or None/"none" for
        none), then ``overrides``: what ``imagenet-trainer train --recipe NAME --OPTION VALUE ...`` runs."""
        values = load_recipe(name) if name and name != "none" else {}
        typed = sorted(set(overrides) - {"command", "typed"})
        return cls(**(values | overrides | {"typed": typed}), recipe=None if not name or name == "none" else name)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def without_options(argv: list[str], names: set[str]) -> list[str]:
    """``argv`` without the options in ``names`` and their values (``--opt V`` and ``--opt=V``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif not any(a.startswith(n + "=") for n in names):
            out.append(a)
    return out


def recipe_dir() -> Path:
    """Where the built-in recipes live (``configs/`` in the repository, shipped inside the package)."""
    return Path(__file__).parent / "configs"


def list_recipes() -> list[str]:
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def load_recipe(name_or_path: str) -> dict:
    """The values of a recipe: a built-in name (``fast``) or a path to a YAML file of TrainConfig fields."""
    import yaml

    from imagenet_trainer.errors import UsageError

    path = Path(name_or_path)
    if not path.suffix:
        path = recipe_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UsageError(f"--recipe {name_or_path}: no such recipe; built in: {', '.join(list_recipes())}, "
                         "or give a path to a YAML file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise UsageError(f"{path}: a recipe is a mapping of settings (name: value), not a {type(values).__name__}")
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UsageError(f"{path}: unknown setting(s) {', '.join(unknown)}; the settings are TrainConfig's fields")
    return {name: _typed(path, name, fields[name], value) for name, value in values.items()}


RUN_FACTS = ("run_dir", "world_size")  # what config.yaml records of a run besides its settings
NOT_REPEATED = ("command", "resume", "output", "typed")  # settings that belong to one run, not to its configuration


def load_run_config(path: str) -> dict:
    """The settings of a run's saved ``config.yaml`` (``train --config``): every TrainConfig field it holds,
    less the run's own folder, command line and resume point, so that a new run repeats the configuration."""
    import yaml

    from imagenet_trainer.errors import UsageError

    p = Path(path)
    try:
        values = yaml.safe_load(p.read_text()) or {}
    except OSError as e:
        raise UsageError(f"--config {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise UsageError(f"{p}: a config is a mapping of settings (name: value), not a {type(values).__name__}")
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(fields) - set(RUN_FACTS))
    if unknown:
        raise UsageError(f"{p}: unknown setting(s) {', '.join(unknown)}; the settings are TrainConfig's fields")
    return {k: _typed(p, k, fields[k], v) for k, v in values.items() if k in fields and k not in NOT_REPEATED}


_KINDS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,)}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)  # YAML's true is an int to Python


def _typed(path: Path, name: str, annotation: str, value):
    """A recipe's ``value`` for the TrainConfig field ``name``, or a ``UsageError`` naming the file and setting.

    YAML reads ``5e-5`` (no dot) as text: a float setting takes such text as its number."""
    from imagenet_trainer.errors import UsageError

    optional = annotation.startswith("Optional[")
    kind = annotation[len("Optional["):-1] if optional else annotation
    if value is None and optional:
        return None
    if kind == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if kind in ("int", "float"):
        ok = isinstance(value, _KINDS[kind]) and _number(value)
    elif name == "prog_resize":
        ok = isinstance(value, list) and all(_number(v) for v in value)
    else:
        ok = isinstance(value, _KINDS[kind])
    if ok:
        return value
    want = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false",
            "list": "a list of two numbers" if name == "prog_resize" else "a list"}[kind]
    raise UsageError(f"{path}: {name}: {value!r} is not {want}" + (" (or null)" if optional else ""))
