"""imagenet-trainer: train image classifiers from folders of JPEGs, on CPU, one GPU or many.

The library API mirrors the command line (``imagenet-trainer train --data DATA --arch resnet18 --epochs 5``):

    import imagenet_trainer as it
    it.train(it.TrainConfig.from_recipe("fast", data="DATA", arch="resnet18", epochs=5))

Names are imported on first use, so ``import imagenet_trainer`` stays cheap for the command line.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "TrainConfig": "imagenet_trainer.config",
    "list_recipes": "imagenet_trainer.config",
    "train": "imagenet_trainer.engine.run",
    "create_model": "imagenet_trainer.models",
    "list_models": "imagenet_trainer.models",
    "load_model_file": "imagenet_trainer.inference",
    "Predictor": "imagenet_trainer.inference",
    "UsageError": "imagenet_trainer.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'imagenet_trainer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
