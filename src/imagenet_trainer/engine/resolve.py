"""The one resolve step: every ``auto`` of a ``TrainConfig`` turned into a concrete value, before training.

``adapt_to_data`` makes the choices the train set decides (sizes, batch, stem, crop kind); ``resolved_config``
the rest, once the run has its device, data and schedule. ``config.yaml`` holds the result, so
``imagenet-trainer train --config runs/X/config.yaml`` runs the same configuration again.
"""

from __future__ import annotations

import torch

from imagenet_trainer.config import DEFAULT_BATCH, DEFAULT_CROP, SMALL_IMAGE_SIDE, TrainConfig
from imagenet_trainer.data.build import load_indexes, median_image_side, resolve_sizes, resolve_workers
from imagenet_trainer.data.loader import IMAGENET_MEAN, IMAGENET_STD
from imagenet_trainer.engine.optim import default_weight_decay
from imagenet_trainer.engine.runlog import log
from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import has_drop_path, min_input_size, resolve_name, supports_small_stem
from imagenet_trainer.models.registry import fitting_side
from imagenet_trainer.models.zoo import sized_at_build
from imagenet_trainer.models.weights import starting_recipe

SMALL_CROP_CHECK = 96  # crops below this side are checked against the net's smallest input (min_input_size)


def adapt_to_data(cfg: TrainConfig, world_size: int = 1, verbose: bool = True, resuming: bool = False) -> TrainConfig:
    """Every choice left to the data, made from the train set: ``--crop-size``/``--image-size``
    (``config.auto_sizes``), ``--batch-size`` (``config.auto_batch_size``; a batch made smaller for a small set
    keeps the LR of 256, unless ``--lr`` is given, and takes ``--small-set-weight-decay`` where the recipe has
    one), ``--small-stem auto`` and ``--train-crop auto`` (for small, CIFAR-like images: the ResNet small stem,
    native-size crops, padded random crops and no progressive resizing; random-resized crops for the others). A
    value the user gave is kept.
    """
    cfg.check()
    cfg, recipe = follow_starting_weights(cfg, verbose) if not resuming else (cfg, None)
    if cfg.drop_path is not None and "drop_path" not in cfg.typed and not has_drop_path(cfg.arch):
        cfg = cfg.replace(drop_path=None)  # a recipe's drop-path, for the models that have it
    if cfg.prog_resize and sized_at_build(resolve_name(cfg.arch)):  # a ViT takes the one input side it was built for
        if "prog_resize" in cfg.typed:
            raise UsageError(f"--prog-resize: {cfg.arch} takes only the input side it is built for; leave it out")
        cfg = cfg.replace(prog_resize=None)
        if verbose:
            log(f"no progressive resizing: {cfg.arch} takes only the input side it is built for")
    if cfg.small_stem == "on" and not supports_small_stem(cfg.arch):
        raise UsageError(f"--small-stem on: {cfg.arch} has none (only the ResNets do)")
    auto = {k for k in ("small_stem", "train_crop") if getattr(cfg, k) == "auto"}
    auto |= {k for k in ("crop_size", "image_size", "batch_size") if getattr(cfg, k) is None}
    if not auto:
        return cfg
    train_index = load_indexes(cfg)[0]
    side = median_image_side(train_index)
    # small images, unless starting weights were trained on larger inputs (a pretrained net sees CIFAR at 224 px)
    small = 0 < side <= SMALL_IMAGE_SIDE and (recipe is None or recipe["crop_size"] <= SMALL_IMAGE_SIDE)
    changes, notes = {}, []
    if cfg.small_stem == "auto":
        changes["small_stem"] = "on" if small and supports_small_stem(cfg.arch) else "off"
        if recipe is not None:  # the starting weights' own stem
            changes["small_stem"] = "on" if recipe["small_stem"] else "off"
        if small:
            notes.append("ResNet small stem (3x3 stride 1, no max-pool)" if changes["small_stem"] == "on"
                         else f"no small stem for {cfg.arch} (ResNets only)")
    if small and cfg.small_stem == "auto" and cfg.prog_resize and "prog_resize" not in cfg.typed:
        changes["prog_resize"] = None  # a few dozen pixels have nothing to spare for a low-resolution phase
        notes.append("no progressive resizing")
    sized = resolve_sizes(cfg, train_index, world_size, side)
    crop, size = sized.crop_size, sized.image_size
    least = smallest_input(cfg.arch, changes.get("small_stem", cfg.small_stem), crop)
    if cfg.crop_size is None and crop < least:  # a net that cannot take the data's size: upsample to its least
        crop = -(-least // 8) * 8
        size = cfg.image_size or (crop if small else round(crop * 8 / 7))
        notes.append(f"{cfg.arch} takes at least {least} px: crops of {crop}")
    if cfg.crop_size is None and fitting_side(cfg.arch, crop) != crop:  # a ViT: a side its patches divide
        crop = fitting_side(cfg.arch, crop)
        size = max(cfg.image_size or 0, crop if small else round(crop * 8 / 7))
        notes.append(f"{cfg.arch} takes sides its patches divide: crops of {crop}")
    changes |= {"crop_size": crop, "image_size": size, "batch_size": sized.batch_size}
    if cfg.crop_size is None and (small or crop != DEFAULT_CROP):
        notes.append(f"crops of {crop} px" + ("" if small else f" (val: shorter side to {size}, centre crop)"))
    if cfg.train_crop == "auto":
        changes["train_crop"] = "pad" if small else "rrc"
        if small:
            notes.append(f"random crops reaching {crop // 8} px past the edges (--train-crop rrc: random-resized)")
    # the data made the batch smaller (a batch rounded up to fit the processes, 258 for 3, is no small set)
    if cfg.batch_size is None and sized.batch_size < DEFAULT_BATCH:
        note = f"batch {sized.batch_size} ({len(train_index) // sized.batch_size} steps an epoch"
        if cfg.lr is None and cfg.lr_schedule != "seed":
            # More steps at the LR of a batch of 256, not a linearly smaller one: a small set's short run needs
            # the larger steps (ResNet-18, Caltech-101, 5 epochs at batch 64, one H100, 2026-12-06: LR 0.0625 /
            # 0.125 / 0.25 / 0.5 gave 43.4 / 46.8 / 52.7 / 56.4% top-1)
            changes["lr"] = cfg.lr_per_256 * DEFAULT_BATCH / 256
            note += f" at batch {DEFAULT_BATCH}'s LR, {changes['lr']:g}"
        if (cfg.small_set_weight_decay is not None and "weight_decay" not in cfg.typed and cfg.opt == "sgd"
                and cfg.lr_schedule != "seed"):
            # A small set wants the stronger pull (Caltech-101, 5 and 20 epochs, one H100, 2026-12-07, seed 0:
            # 5e-4 against 5e-5 gave ResNet-18 57.2 / 77.3% against 57.2 / 74.2%, ResNet-50 52.9 / 73.9% against
            # 52.7 / 72.9%); a large one (ImageNet) trains at the recipe's own
            changes["weight_decay"] = cfg.small_set_weight_decay
            note += f", weight decay {cfg.small_set_weight_decay:g}"
        notes.append(note + ")")
    if verbose and notes:
        what = "small images" if small else "images"
        log(f"{what} (median side {side} px, {len(train_index):,} train): {', '.join(notes)}"
            + ("; --small-stem off keeps the stem" if small and changes.get("small_stem") == "on" else ""))
    return cfg.replace(**changes)


def follow_starting_weights(cfg: TrainConfig, verbose: bool = True) -> tuple[TrainConfig, dict | None]:
    """``cfg`` with the input recipe of ``--pretrained``'s or ``--weights``' weights (``models.weights.
    starting_recipe``): their mean and std, crop and resize sizes, where the user gave none; and the recipe."""
    if not (cfg.pretrained or cfg.weights):
        return cfg, None
    recipe = starting_recipe(cfg.arch, cfg.pretrained, cfg.weights)
    if recipe is None:
        return cfg, None
    changes, notes = {}, []
    if not {"normalize", "mean", "std"} & set(cfg.typed):
        changes |= {"normalize": "fixed", "mean": list(recipe["mean"]), "std": list(recipe["std"])}
        notes.append("mean " + "/".join(f"{v:.3g}" for v in recipe["mean"]) + ", std "
                     + "/".join(f"{v:.3g}" for v in recipe["std"]))
    if cfg.crop_size is None and cfg.image_size is None:
        changes |= {"crop_size": recipe["crop_size"], "image_size": recipe["image_size"]}
        notes.append(f"crops of {recipe['crop_size']} px (val: shorter side to {recipe['image_size']}, centre crop)")
    if recipe.get("interpolation") not in (None, "bilinear"):
        notes.append(f"resized bilinear here, where they were trained {recipe['interpolation']}")
    if verbose and notes:
        log(f"input recipe of {recipe['source']}: {', '.join(notes)}")
    return cfg.replace(**changes), recipe


def smallest_input(arch: str, small_stem: str, crop: int) -> int:
    """The smallest input side ``arch`` takes, where ``crop`` might be below it (``models.min_input_size``)."""
    return min_input_size(arch, small_stem == "on") if crop < SMALL_CROP_CHECK else 8


def check_input_size(cfg: TrainConfig) -> None:
    """A one-line error for crops the net cannot take (AlexNet on 32-px crops), before anything is built."""
    least = smallest_input(cfg.arch, cfg.small_stem, cfg.crop_size)
    if cfg.crop_size < least:
        raise UsageError(f"--crop-size {cfg.crop_size}: {cfg.arch} takes inputs of at least {least} px; give "
                         f"--crop-size {least} or more (with --image-size at least as large), or a net made for "
                         "small images (--arch resnet9)")
    side = fitting_side(cfg.arch, cfg.crop_size)
    if side != cfg.crop_size:
        raise UsageError(f"--crop-size {cfg.crop_size}: {cfg.arch} takes sides that its patches divide; give "
                         f"--crop-size {side} (with --image-size at least as large)")
    cfg.check()  # and the sizes against each other, now that both are known


def resolved_config(cfg: TrainConfig, device: torch.device, dtype: torch.dtype | None, data, base_lr: float,
                    weight_decay: float | None, num_classes: int, world_size: int) -> TrainConfig:
    """``cfg`` with nothing left to choose: the loader and cache the run took, its workers, device, precision,
    LR, weight decay, classes and normalization (the data's, ``data``: a ``DataBundle``)."""
    cached = data.loader.endswith("cache")
    precision = "fp32" if dtype is None else {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    same_mean = list(data.mean) == list(IMAGENET_MEAN) and list(data.std) == list(IMAGENET_STD)
    return cfg.replace(
        loader=("cpu" if cfg.loader == "auto" else cfg.loader) if cached else data.loader,
        cache=data.loader.split()[0] if cached else "off",  # "gpu cache" -> gpu, "ram cache" -> ram
        workers=resolve_workers(cfg), device=device.type if world_size > 1 else str(device), precision=precision,
        lr=base_lr, weight_decay=default_weight_decay(cfg.opt) if weight_decay is None and cfg.lr_schedule != "seed"
        else weight_decay,
        num_classes=num_classes,
        normalize="imagenet" if same_mean else "fixed", mean=[float(v) for v in data.mean],
        std=[float(v) for v in data.std],
        ddp_graph="split" if cfg.ddp_graph == "auto" else cfg.ddp_graph)
