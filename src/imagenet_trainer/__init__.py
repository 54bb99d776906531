"""imagenet-trainer: train image classifiers from folders of JPEGs, on CPU, one GPU or many.

The library API mirrors the command line:

    from imagenet_trainer.config import TrainConfig
    from imagenet_trainer.engine.run import train
    train(TrainConfig(data="DATA", arch="resnet18", epochs=5))
"""

__version__ = "0.1.0"
