"""GPU and hybrid decoding: workers read bytes and choose crops; the GPU decodes and crops whole batches.

Worker side (``EncodedFolderDataset``): for each sample, read the file and its JPEG header, choose
the crop box in source coordinates (the same box the CPU path would choose), and either hand back
the encoded bytes for the GPU or, for a share ``cpu_share`` of samples, decode on the CPU: a JPEG
the fast path takes to the pixels around its box at the DCT scale (``decode_region``), left for the
GPU to resize; every other file the GPU decoder should not take (non-JPEG, CMYK, grayscale,
EXIF-rotated, unreadable headers) to the finished crop, as ``decode.py`` does.

Device side (``GpuCropDecoder``): one batched ``torchvision.io.decode_jpeg(device='cuda')`` call,
then one kernel (``gpu_crop.py``) that resizes every crop box to the output size, flips and
normalizes it, and writes it into the batch; the same kernel once more for the workers' regions,
after one copy of all of them to the device. No per-image Python work past building the lists.

Why the workers leave the resize to the GPU: it was about a fifth of their time per image (2-core
CPU machine, 300-520 px JPEGs to 224 px: 1.66 ms to decode and resize, 1.30 ms to decode and copy out
the region), and the GPU resizes a batch of 256 in about a millisecond. The regions are about 1.6
times the bytes of the finished crops.
"""

from __future__ import annotations

import collections
import math
import multiprocessing
import typing
from dataclasses import dataclass

import numpy as np
import simplejpeg
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from imagenet_trainer.data.dataset import BadSample, ImageFolderDataset, error_reason, parse_item
from imagenet_trainer.data.decode import MAX_PIXELS, DecodeError, decode_crops, decode_region, needs_exif_rotation
from imagenet_trainer.data.geometry import Geometry
from imagenet_trainer.data.gpu_crop import PackedImages, crop_resize_into
from imagenet_trainer.data.index import FileIndex
from imagenet_trainer.data.slots import BatchSlots, SlotRef, incoming_state, outgoing_state, resolve


_SMALL = ("boxes", "encoded_pos", "decoded_pos", "region_shapes", "region_boxes", "region_pos", "labels", "flips",
          "indices")


@dataclass
class MixedBatch:
    """A batch whose samples are partly encoded (for the GPU), partly decoded regions (by the workers, for the
    GPU to resize) and partly finished crops (by the workers)."""

    packed: torch.Tensor  # 1-d uint8: the K JPEG files back to back (one tensor crosses from the worker, not K)
    lengths: list[int]  # K byte counts
    boxes: torch.Tensor  # (K, 4) float32 crop boxes (left, top, right, bottom) in source pixels
    encoded_pos: torch.Tensor  # (K,) int64 positions in the batch
    decoded: torch.Tensor  # (M, S, S, 3) uint8 crops decoded on the CPU
    decoded_pos: torch.Tensor  # (M,) int64
    regions: torch.Tensor  # 1-d uint8: R decoded HWC regions back to back
    region_shapes: torch.Tensor  # (R, 2) int64 (height, width)
    region_boxes: torch.Tensor  # (R, 4) float32 crop boxes in region pixels
    region_pos: torch.Tensor  # (R,) int64
    labels: torch.Tensor  # (B,) int64
    flips: torch.Tensor  # (B,) bool
    indices: torch.Tensor  # (B,) int64
    bad: list[BadSample]
    size: int = 0  # crop side of every sample (progressive resizing changes it per epoch)
    slot: SlotRef | None = None  # ``decoded``, ``packed`` and ``regions`` live back to back in a worker's shared slot

    @property
    def encoded(self) -> list[torch.Tensor]:
        """The K files as 1-d uint8 views into ``packed``."""
        return list(torch.split(self.packed, self.lengths)) if self.lengths else []

    def __getstate__(self):  # as ``Batch`` travels: the slot's address, small tensors as bytes in the message
        state = outgoing_state(self, _SMALL)
        if self.slot is not None:
            state["decoded"], state["packed"], state["regions"] = tuple(self.decoded.shape), None, None
        return state

    def __setstate__(self, state):
        incoming_state(self, state, _SMALL)
        if self.slot is not None:
            self.decoded, self.packed, self.regions = _carve(resolve(self.slot), self.decoded, sum(self.lengths))

    def pin_memory(self) -> "MixedBatch":
        """Pinned copies of the pixels, the files and the labels. nvJPEG copies each file to the GPU on its
        own; from pinned memory the copy is one DMA, with no staging through a driver buffer (one H100, 180
        files per call: 25,100 against 23,400 img/s decoded, 2026-11-26)."""
        return MixedBatch(self.packed.pin_memory(), self.lengths, self.boxes, self.encoded_pos,
                          self.decoded.pin_memory(), self.decoded_pos, self.regions.pin_memory(), self.region_shapes,
                          self.region_boxes, self.region_pos, self.labels.pin_memory(), self.flips.pin_memory(),
                          self.indices, self.bad, self.size)


def _carve(flat: torch.Tensor, decoded_shape: tuple[int, ...],
           packed_bytes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(decoded crops of ``decoded_shape``, ``packed_bytes`` of files, regions) from one flat uint8 buffer
    holding the three in turn."""
    n = math.prod(decoded_shape)
    return flat[:n].view(decoded_shape), flat[n: n + packed_bytes], flat[n + packed_bytes:]


class EncodedFolderDataset(ImageFolderDataset):
    """Items are ``("enc", bytes, box, ...)`` for the GPU, ``("reg", region, box, ...)`` decoded here for the
    GPU to resize, or ``("dec", crop, ...)`` finished here."""

    def __init__(self, index: FileIndex, geometry: Geometry, cpu_share: float = 0.0):
        super().__init__(index, geometry)
        if geometry.n_boxes != 1:
            raise ValueError("GPU decoding takes one crop per image")
        # Shared with the worker processes, so the loader can move the CPU/GPU split while it runs.
        self.cpu_share = multiprocessing.Value("d", cpu_share, lock=False)
        self.cpu_items: frozenset = frozenset()  # items decoded here whatever the share (the loader's first batch)

    def sample(self, item, data: bytes | None = None, label: int | None = None, name: str | None = None):
        i, sample_seed, size = parse_item(item)
        geometry = self.geometry_for(size)
        label = int(self.index.labels[i]) if label is None else label
        try:
            data = self.index.read(i) if data is None else data
            rng = np.random.default_rng(sample_seed) if self.geometry.random else None
            on_cpu = (item in self.cpu_items
                      or (sample_seed * 0x9E3779B97F4A7C15 % 2**64) / 2**64 < self.cpu_share.value)
            if on_cpu:
                region = decode_region(data, geometry, rng, self.scaled_decode)
                if region is not None:
                    pixels, box, flip = region
                    return ("reg", pixels, box, geometry.crop_size, label, flip, i)
                rng = np.random.default_rng(sample_seed) if self.geometry.random else None
            header = None if on_cpu else _gpu_header(data)
            if header is None:
                crops, flip = decode_crops(data, geometry, rng, self.scaled_decode)
                return ("dec", crops[0], geometry.crop_size, label, flip, i)
            width, height = header
            boxes, flip = geometry.boxes(width, height, rng)
            return ("enc", np.frombuffer(data, dtype=np.uint8), boxes[0], geometry.crop_size, label, flip, i)
        except (OSError, DecodeError) as e:
            return BadSample(name or self.index.path(i), error_reason(e))


def _gpu_header(data: bytes) -> tuple[int, int] | None:
    """(width, height) if nvJPEG should decode this file as RGB without surprises, else None."""
    if data[:2] != b"\xff\xd8":
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colorspace not in ("YCbCr", "RGB") or needs_exif_rotation(data) or width * height > MAX_PIXELS:
        return None  # the CPU path takes it (and refuses a decompression bomb, ``decode.check_pixels``)
    return width, height


def collate_mixed(samples: list, slots: BatchSlots | None = None) -> MixedBatch:
    """One ``MixedBatch``; with ``slots``, its crops, file bytes and regions go into the worker's next shared slot."""
    bad = [s for s in samples if isinstance(s, BadSample)]
    good = [s for s in samples if not isinstance(s, BadSample)]
    enc = [(p, s) for p, s in enumerate(good) if s[0] == "enc"]
    dec = [(p, s) for p, s in enumerate(good) if s[0] == "dec"]
    reg = [(p, s) for p, s in enumerate(good) if s[0] == "reg"]
    crops = [s[1] for _, s in dec]
    files = [s[1] for _, s in enc]
    regions = [s[1] for _, s in reg]
    decoded_shape = (len(crops),) + crops[0].shape if crops else (0, 0, 0, 3)
    lengths = [len(f) for f in files]
    region_bytes = [r.size for r in regions]
    total = math.prod(decoded_shape) + sum(lengths) + sum(region_bytes)
    taken = slots.take((total,)) if slots is not None else None
    flat, ref = taken if taken is not None else (torch.empty(total, dtype=torch.uint8), None)
    decoded, packed, packed_regions = _carve(flat, decoded_shape, sum(lengths))
    if crops:
        np.stack(crops, out=decoded.numpy())  # C order, whatever the crops' strides
    if files:
        np.concatenate(files, out=packed.numpy())
    if regions:
        np.concatenate([r.reshape(-1) for r in regions], out=packed_regions.numpy())
    sizes = {s[-4] for s in good}
    return MixedBatch(packed, lengths, torch.tensor([s[2] for _, s in enc], dtype=torch.float32).view(-1, 4),
                      torch.tensor([p for p, _ in enc], dtype=torch.int64), decoded,
                      torch.tensor([p for p, _ in dec], dtype=torch.int64), packed_regions,
                      torch.tensor([r.shape[:2] for r in regions], dtype=torch.int64).view(-1, 2),
                      torch.tensor([s[2] for _, s in reg], dtype=torch.float32).view(-1, 4),
                      torch.tensor([p for p, _ in reg], dtype=torch.int64),
                      torch.tensor([s[-3] for s in good], dtype=torch.int64),
                      torch.tensor([s[-2] for s in good], dtype=torch.bool),
                      torch.tensor([s[-1] for s in good], dtype=torch.int64), bad,
                      sizes.pop() if len(sizes) == 1 else 0, ref)


class GpuCropDecoder:
    """Decode JPEG bytes on the GPU and write each crop, resized, flipped and normalized, into a batch."""

    def __init__(self, device: torch.device, size: int):
        self.device = device
        self.size = size

    def decode(self, encoded: list[torch.Tensor]) -> list[torch.Tensor]:
        """One batched nvJPEG call: K x (3, H_k, W_k) uint8 on the device, ready on the current stream."""
        return decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device) if encoded else []

    def crop_into(self, out: torch.Tensor, images: list[torch.Tensor] | PackedImages, boxes: torch.Tensor,
                  positions: torch.Tensor, flips: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> None:
        """``gpu_crop.crop_resize_into`` (see there for the arguments)."""
        crop_resize_into(out, images, boxes, positions, flips, scale, bias)


class Window(typing.NamedTuple):
    """One timed window of the hybrid loader's split: its CPU share, its rate (batches/s), the shares of its
    time the producer thread waited for the workers and for room in the queue and training waited for a
    batch, and the producer's mean device-side seconds per batch."""

    share: float
    rate: float
    producer_waited: float
    producer_blocked: float
    training_waited: float
    device_s: float


class SplitController:
    """Moves the hybrid loader's CPU share to where training runs fastest (perturb and observe).

    The consumer reports each batch it takes. After every move of the share the controller waits
    ``lag`` batches (those already in flight were split the old way), then times ``window`` batches.
    If training ran slower than after the previous move, the direction turns; either way the share
    takes one ``step`` more. So it climbs towards the best split and then circles it, and it follows
    the optimum when the model, the resolution or the machine's load changes.

    It replaced a controller that watched how long training waited for data and, while it did not
    wait, moved work to the CPU. Waits do not show a GPU slowed by decoding, nor a training thread
    slowed by busy cores: on one H100 (2026-11-26, ``bench train --loader hybrid``, 13k tree) that
    one ended at CPU shares 0.81 (resnet18, 7,082 img/s) and 0.61 (alexnet, 8,574 img/s), where
    fixed shares of 0.1-0.4 gave 7,816-8,039 and 10,237-10,402 img/s.

    The producer thread's waits for the workers' batches are recorded too, but do not steer: a guard
    that moved the share towards the GPU after any window in which the producer waited more than 10% of
    the time read the stall at each epoch's start (the workers all begin a new batch at once) as
    starvation. On the 13k tree (epochs of 50 batches, a move every 53) the first six windows of a
    resnet18 run each held one, and it took the share from 0.3 to 0.0 (2026-11-26).

    A window is 80 batches. The rate of a window is noisy: alexnet at fixed shares on one H100 (2026-11-26,
    30 windows of 20 batches each) gave a coefficient of variation of 12-24% over 20 batches, 7-18% over 40
    and 4-9% over 80, falling about as the square root of the length. With 20 a move's verdict on a 10%
    difference was wrong about a third of the time, and the share wandered: alexnet ended at 0.15-0.35 for
    14,340-15,851 img/s, where a fixed 0.3 gave 17,808 (2026-11-26).

    ``history`` keeps the latest timed windows (``Window``): where a window's batches went slower than its
    two sides' work, its shares of waiting say which end held it up.
    """

    START = 0.3  # best or near it for resnet18 and alexnet on one H100 with 16 cores (a sweep, 2026-11-26)

    def __init__(self, dataset: EncodedFolderDataset, step: float = 0.05, lag: int = 33, window: int = 80,
                 fixed: bool = False):
        self.share = dataset.cpu_share
        self.step, self.lag, self.window = step, max(1, lag), window
        self.fixed = fixed  # only measure; keep the share as set
        self.direction = -1.0  # first move: towards the GPU
        self.last_rate = None  # batches/s measured after the previous move
        self.gpu = 0.0  # smoothed seconds of the producer thread's device side per batch
        self.moves = 0
        self.history: collections.deque[Window] = collections.deque(maxlen=1000)
        self._count = 0
        self._t0 = None
        self._waits = [0.0, 0.0, 0.0]  # this window's seconds: producer waited, producer blocked, training waited
        self._device = [0.0, 0]  # this window's device-side seconds and batches

    def gpu_time(self, seconds: float) -> None:
        """The producer thread's time for the device side of one batch."""
        self.gpu = 0.8 * self.gpu + 0.2 * seconds
        self._device[0] += seconds
        self._device[1] += 1

    def producer_waited(self, seconds: float) -> None:
        """The producer thread waited ``seconds`` for the workers' next batch."""
        self._waits[0] += seconds

    def producer_blocked(self, seconds: float) -> None:
        """The producer thread waited ``seconds`` for room in the queue: training took batches slower than
        they were made."""
        self._waits[1] += seconds

    def training_waited(self, seconds: float) -> None:
        """Training waited ``seconds`` for its next batch."""
        self._waits[2] += seconds

    def tick(self, now: float) -> None:
        """The consumer took a batch at time ``now`` (``time.perf_counter`` seconds)."""
        self._count += 1
        if self._count == self.lag:
            self._start(now)  # the batches split the new way start here
        elif self._count == self.lag + self.window:
            span = now - self._t0
            rate = self.window / span
            waited, blocked, training = (min(1.0, w / span) for w in self._waits)
            device = self._device[0] / self._device[1] if self._device[1] else 0.0
            self.history.append(Window(self.share.value, rate, waited, blocked, training, device))
            if self.fixed:  # time the next window straight away
                self._count = self.lag
                self._start(now)
            else:
                self._move(rate)

    def _start(self, now: float) -> None:
        self._t0, self._waits, self._device = now, [0.0, 0.0, 0.0], [0.0, 0]

    def _move(self, rate: float) -> None:
        if self.last_rate is not None and rate < self.last_rate:
            self.direction = -self.direction
        self.last_rate = rate
        s = self.share.value + self.direction * self.step
        if not 0.0 <= s <= 1.0:  # at an end: go back the other way
            self.direction = -self.direction
            s = self.share.value + self.direction * self.step
        self.share.value = min(1.0, max(0.0, s))
        self.moves += 1
        self._count = 0
