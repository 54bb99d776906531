"""Process-wide CUDA settings, made before CUDA starts (it reads them once, when it creates its context).

``CUDA_DEVICE_MAX_CONNECTIONS``: the number of hardware work queues between the host and each GPU,
8 by default. CUDA maps each stream to one of them, so two streams can share a queue; work on one then
waits behind the other's. The hybrid loader decodes with nvJPEG on a stream of its own, as a series
of small copies and kernels per image, while training fills the GPU from another stream. On one H100
(2026-11-26, ``benchmarks/decode_contention.py``), nvJPEG decoded 22,000-25,000 img/s alone, but only
2,400-5,600 img/s beside resnet18 or alexnet training with 8 queues, and 12,400-19,700 img/s with 32
(training kept 94-96% of its speed either way).
"""

from __future__ import annotations

import os

HARDWARE_QUEUES = "32"


def prefer_many_hardware_queues() -> bool:
    """Ask for ``HARDWARE_QUEUES`` hardware queues per GPU, unless the user set the variable or CUDA has
    started already (then it would have no effect). Whether it was set now."""
    if "CUDA_DEVICE_MAX_CONNECTIONS" in os.environ:
        return False
    import torch

    if torch.cuda.is_initialized():
        return False
    os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] = HARDWARE_QUEUES
    return True
