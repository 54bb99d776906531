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


@dataclass
class TrainConfig:
    # --- data ---
    data: str = ""  # dataset root holding train/ and val/ (or validation/, test/)
    val_dir: Optional[str] = None  # explicit validation folder, overrides the search under data
    workers: int = -1  # loader worker processes; 0 = decode in the main process; -1 = auto
    batch_size: Optional[int] = None  # global batch (all GPUs together); None = auto: 256, halved for small
    # train sets down to 32, so that an epoch has at least MIN_STEPS_PER_EPOCH steps (``auto_batch_size``)
    epoch_size: Optional[int] = None  # batches per epoch; None = one full pass over train/
    image_size: Optional[int] = None  # val: shorter side before the centre crop; seed crop: shorter side;
    # None = auto: crop_size x 8/7 (256 for 224), or the image side for small images (``auto_sizes``)
    crop_size: Optional[int] = None  # side of the network input in pixels; None = auto: 224, or the data's
    # median shorter side (to a multiple of 16) where that is smaller, so that photos are not upsampled
    train_crop: str = "auto"  # rrc = random-resized-crop + flip; seed = the original's crop + flip; pad = small-image
    # random crop with crop_size // 8 black pixels around + flip; auto = pad for small images, else rrc
    rrc_min_scale: float = 0.08  # smallest area fraction of a random-resized crop
    cutout: float = 0.0  # erase one random square of this side (share of the crop side) per training image; 0 = off
    prog_resize: Optional[list] = None  # progressive resizing [start fraction of crop_size, end fraction of epochs]
    sampling: str = "shuffle"  # shuffle = permutation per epoch; balanced = class, then image
    normalize: str = "imagenet"  # imagenet = ImageNet mean/std; auto = estimated from train images; fixed = mean/std
    mean: Optional[list] = None  # normalize fixed: the per-channel mean (0..1), RGB
    std: Optional[list] = None  # normalize fixed: the per-channel standard deviation
    loader: str = "auto"  # auto | cpu (workers decode) | gpu (nvJPEG decodes) | hybrid (split adapts) | naive (PIL reference)
    cache: str = "auto"  # auto | off | ram | gpu: keep the decoded sets in memory (auto: when they fit)
    cpu_share: Optional[float] = None  # hybrid loader: fixed share of images decoded by the workers; None = adaptive
    max_bad_images: int = 100  # unreadable images skipped before the run fails
    cache_dir: Optional[str] = None  # index/statistics cache; None = ~/.cache/imagenet-trainer
    # --- model ---
    arch: str = "resnet18"
    num_classes: Optional[int] = None  # None = number of class folders in train/
    small_stem: str = "auto"  # auto | on | off: ResNet stem that keeps small (<= 64 px) images whole
    # --- optimization ---
    epochs: int = 90
    lr_schedule: str = "cosine"  # seed (the original's table) | step | cosine (with linear warmup)
    lr: Optional[float] = None  # base LR; None = the schedule's own (lr_per_256 x batch / 256 for step/cosine)
    lr_per_256: float = 0.1  # step/cosine base LR per 256 images of global batch (linear scaling rule)
    warmup_epochs: float = 0.0  # cosine: linear warmup from 0, in epochs
    warmup_fraction: Optional[float] = None  # cosine: warmup as a share of --epochs (overrides warmup_epochs)
    warmup_min_steps: int = 0  # cosine: the warmup lasts at least this many optimizer steps (at most a quarter
    # of the run): a share of a short run on a small set is a handful of steps, too few for a fresh net
    step_size: int = 30  # step: epochs between decays
    step_gamma: float = 0.1  # step: decay factor
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: Optional[float] = None  # None = the schedule's own (seed table, else 1e-4)
    no_bn_decay: bool = False  # exclude batch-norm and bias parameters from weight decay
    label_smoothing: float = 0.0
    guard: bool = True  # stop a run whose training loss goes non-finite, or rises far above its start (diverged)
    ema: bool = False  # keep an exponential moving average of the weights; evaluated and saved too
    ema_half_life: float = 0.05  # EMA half-life as a share of all training steps, so it follows --epochs
    tta: bool = False  # evaluate with horizontal-flip test-time augmentation
    tta_shift: int = 0  # also evaluate the image moved by this many pixels (diagonally, both ways); 0 = off
    val_every: int = 1  # validate every N epochs (the last epoch always); 0 = the last epoch only
    recipe: Optional[str] = None  # the recipe (configs/NAME.yaml) these values started from
    seed: int = 0
    accum: int = 1  # split each optimizer step's batch into this many sequential micro-batches
    # --- device and precision ---
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp16 | fp32
    channels_last: bool = True
    backend: str = "cudnn"  # cudnn | native (cuDNN off) | compile (torch.compile)
    compile_mode: str = "default"  # torch.compile's mode: default | reduce-overhead (CUDA graphs) | max-autotune...
    cudnn_benchmark: Optional[bool] = None  # cuDNN times its algorithms per convolution shape; None = auto
    # (``tune_cudnn``: on for crops of at most 64 px, off for larger ones)
    sync_bn: bool = False  # synchronized batch norm across GPUs (DDP)
    ddp_grads: str = "fp32"  # precision in which DDP sums the processes' gradients: fp32 | bf16
    ddp_graph: str = "auto"  # compiled DDP: split (a graph per bucket) | whole (one graph) | auto (by the link's speed)
    dist_timeout: float = 10.0  # minutes a collective may wait for a missing rank before the job fails
    # --- run folder, logging, checkpoints ---
    output: Optional[str] = None  # run folder; None = runs/<arch>-<date-time>
    print_freq: int = 10  # batches between plain progress lines when stderr is not a terminal
    keep_checkpoints: Optional[int] = None  # keep only the newest K model_XX.pt files; None = all
    save_interval: float = 60.0  # seconds: an epoch's model file and checkpoint are written when this long has
    # passed since the last ones (0 = every epoch); the last epoch's always are
    resume: Optional[str] = None  # checkpoint_last.pt of a run, or "auto"
    retrain: Optional[str] = None  # start from a model file's weights with a fresh optimizer
    command: list = field(default_factory=list)  # the command line, to print the resume command

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
        """A ``UsageError`` naming the first option whose value is out of its range (for library callers too:
        the CLI's argparse checks only the integer options)."""
        from imagenet_trainer.errors import UsageError

        def need(ok: bool, option: str, value, rule: str) -> None:
            if not ok:
                raise UsageError(f"--{option} {value:g}: {rule}" if isinstance(value, float)
                                 else f"--{option} {value}: {rule}")

        need(self.epochs >= 1, "epochs", self.epochs, "must be at least 1")
        need(self.workers >= -1, "workers", self.workers, "must be 0 (decode in the main process) or more, or -1 (auto)")
        need(0.0 < self.rrc_min_scale <= 1.0, "rrc-min-scale", self.rrc_min_scale,
             "must be an area share above 0 and at most 1")
        need(0.0 <= self.cutout < 1.0, "cutout", self.cutout, "must be a share of the crop side from 0 (off) to below 1")
        need(self.cpu_share is None or 0.0 <= self.cpu_share <= 1.0, "cpu-share", self.cpu_share,
             "must be a share from 0 to 1")
        need(self.lr is None or self.lr >= 0, "lr", self.lr, "must be 0 or more")
        need(self.lr_per_256 >= 0, "lr-per-256", self.lr_per_256, "must be 0 or more")
        need(self.warmup_epochs >= 0, "warmup-epochs", self.warmup_epochs, "must be 0 or more")
        need(self.warmup_fraction is None or 0.0 <= self.warmup_fraction <= 1.0, "warmup-fraction",
             self.warmup_fraction, "must be a share of the run from 0 to 1")
        need(self.warmup_min_steps >= 0, "warmup-min-steps", self.warmup_min_steps, "must be 0 or more")
        need(0.0 < self.step_gamma <= 1.0, "step-gamma", self.step_gamma, "must be above 0 and at most 1")
        need(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "must be from 0 to below 1")
        need(not self.nesterov or self.momentum > 0, "momentum", self.momentum,
             "Nesterov momentum needs a momentum above 0 (or --no-nesterov)")
        need(self.weight_decay is None or self.weight_decay >= 0, "weight-decay", self.weight_decay, "must be 0 or more")
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
        need(self.compile_mode in COMPILE_MODES, "compile-mode", self.compile_mode,
             f"unknown; choose one of {', '.join(COMPILE_MODES)}")
        need(self.compile_mode == "default" or self.backend == "compile", "compile-mode", self.compile_mode,
             "is a mode of torch.compile: add --backend compile")
        need(self.ddp_graph in DDP_GRAPHS, "ddp-graph", self.ddp_graph, f"unknown; choose one of {', '.join(DDP_GRAPHS)}")
        need(self.ddp_graph != "whole" or self.backend == "compile", "ddp-graph", self.ddp_graph,
             "chooses how torch.compile cuts a DDP model: add --backend compile")
        need(self.save_interval >= 0, "save-interval", self.save_interval, "must be 0 (every epoch) or more seconds")
        need(self.dist_timeout > 0, "dist-timeout", self.dist_timeout, "must be more than 0 minutes")

    @classmethod
    def from_recipe(cls, name: Optional[str] = "fast", **overrides) -> "TrainConfig":
        """The plain defaults, then recipe ``name``'s values (a built-in name, a YAML path, or None/"none" for
        none), then ``overrides``: what ``imagenet-trainer train --recipe NAME --OPTION VALUE ...`` runs."""
        values = load_recipe(name) if name and name != "none" else {}
        return cls(**(values | overrides), recipe=None if not name or name == "none" else name)

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
NOT_REPEATED = ("command", "resume", "output")  # settings that belong to one run, not to its configuration


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
