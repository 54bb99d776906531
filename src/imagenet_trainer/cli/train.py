"""``imagenet-trainer train --data DIR``: train a model; the original's option spellings work too."""

from __future__ import annotations

import argparse
import dataclasses

from imagenet_trainer.cli.common import add_subparser, non_negative_int, positive_int
from imagenet_trainer.config import TrainConfig, load_run_config
from imagenet_trainer.errors import UsageError


def add_parser(sub) -> None:
    p = add_subparser(sub, "train", "train a model on a folder of images",
                      "Train on DATA/train/<class>/* and validate on DATA/val/<class>/* (or validation/, test/).\n"
                      "Writes runs/<arch>-<date-time>/ (or --output): config.yaml, train.log, test.log,\n"
                      "metrics.jsonl, TensorBoard events, classes.txt, model_XX.pt per epoch, model_best.pt\n"
                      "and checkpoint_last.pt. Ctrl-C stops cleanly and prints the resume command.\n"
                      "The original example's spellings are accepted: -data -netType -nDonkeys -batchSize -LR\n"
                      "-nEpochs -epochSize -manualSeed -nGPU.")
    p.add_argument("--recipe", default="fast",
                   help="start from a recipe: fast, standard, seed-alexnet, finetune, tv-resnet50-v2, deit-small, "
                        "timm-a3 (configs/NAME.yaml), a YAML path, or "
                        "none (TrainConfig's plain defaults); options given here override its values. The defaults "
                        "shown below are the fast recipe's")
    p.add_argument("--config", metavar="FILE",
                   help="repeat a run's configuration: its config.yaml, in place of a recipe. Every value there is "
                        "resolved (the LR, sizes, classes and workers included), so an option given here changes that "
                        "value alone: with another --batch-size, give --lr too. The run gets a new folder")
    shown = TrainConfig.from_recipe("fast")  # the defaults a plain `train` runs, as --help shows them
    groups = {}
    for f in dataclasses.fields(TrainConfig):
        if "help" not in f.metadata:  # set by the run, not by an option (mean, std, recipe, command)
            continue
        meta = f.metadata
        g = groups.get(meta["group"]) or groups.setdefault(meta["group"], p.add_argument_group(meta["group"]))
        _add_option(g, f, getattr(shown, f.name))
        if f.name == "device":  # the launcher's options, which are not the run's settings
            g.add_argument("--ngpu", "-nGPU", type=positive_int, default=1,
                           help="GPUs on this machine: starts one DDP process per GPU (or use torchrun); "
                                "with --device cpu, that many CPU processes (gloo)")
            g.add_argument("--master-port", type=int, default=None,
                           help="--ngpu: port for the processes to meet on (default: a free one)")
    p.set_defaults(run=run, parser=p, check_args=_require_data)


def _add_option(group, f: dataclasses.Field, default) -> None:
    """The ``train`` option of ``TrainConfig`` field ``f`` (``config.option``), showing ``default``."""
    meta, kind = f.metadata, f.type.removeprefix("Optional[").removesuffix("]")
    flags = ["--" + f.name.replace("_", "-"), *meta["flags"]]
    kw = {"dest": f.name, "default": default, "help": meta["help"]}
    if meta["choices"]:
        kw["choices"] = meta["choices"]
    if meta["metavar"]:
        kw["metavar"] = meta["metavar"]
    if kind == "bool" and meta["negative"]:
        group.add_argument(*flags, action="store_true", **kw)
        group.add_argument(meta["negative"], action="store_false", dest=f.name, help=argparse.SUPPRESS)
        return
    if kind == "bool":
        kw["action"] = argparse.BooleanOptionalAction
    elif kind == "list":
        kw |= {"type": float, "nargs": meta["nargs"]}
    elif kind == "int":
        kw["type"] = {1: positive_int, 0: non_negative_int}.get(meta["low"], int)
    elif kind == "float":
        kw["type"] = float
    group.add_argument(*flags, **kw)


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
        cfg = TrainConfig(**(load_run_config(args.config) | values | {"command": command, "typed": sorted(values)}))
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
    given = set()
    for tok in argv:
        flag = tok.split("=", 1)[0]
        if flag in by_flag:
            given.add(by_flag[flag])
        elif not tok.startswith("--") and tok[:2] in by_flag:  # a short option with its value attached: -b64
            given.add(by_flag[tok[:2]])
    return given


def run(args) -> int:
    cfg = config_from_args(args)
    if args.ngpu > 1:
        from imagenet_trainer.engine.launch import launch

        return launch(cfg, args.ngpu, args.master_port, fork=getattr(args, "fresh_process", False))
    from imagenet_trainer.engine.run import train

    return train(cfg)
