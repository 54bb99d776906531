"""Crop, resize, flip and normalize a batch of decoded images of different sizes in one GPU kernel.

nvJPEG hands back K images of K sizes, each in its own allocation. ``torchvision.ops.roi_align`` wants
them in one padded batch: a zero fill, K copy kernels launched one by one from Python, a float batch
that roi_align reads again, and then a scatter, a flip and a normalization, each another pass over the
batch. For 256 crops at 224 px on one H100 that path took 4.9 ms of the producer thread and 5.1 ms of
GPU time; the kernel takes 0.7 ms and 1.0 ms (``benchmarks/crop_kernel_probe.py``). The kernel here reads
each image where nvJPEG left it (through a table of addresses) and writes each normalized output pixel
once, straight into the batch's channels_last buffer.

Its arithmetic is roi_align's (``aligned=True``, ``sampling_ratio=-1``, as the reference path below
calls it): each output pixel averages ``ceil(box side / size)`` bilinear samples per axis, spread over
its footprint in the source, so a shrinking resize is antialiased. Without Triton (or off CUDA) the
reference path runs instead, and so it does for the rest of the run if the kernel ever fails to build
or launch (a warning says why); the tests hold the two paths to the same output.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
from torchvision.ops import roi_align

try:
    import triton
    import triton.language as tl
except ImportError:  # torch builds without Triton: the roi_align path
    triton = None

BLOCK = 512  # output pixels per program
_failed: str | None = None  # why the kernel failed, once it has: the roi_align path runs from then on


@dataclass
class PackedImages:
    """R uint8 HWC images back to back in one flat tensor (one copy to the device for all of them), with
    their (height, width) on the host. ``crop_resize_into`` takes them as it takes a list of tensors."""

    flat: torch.Tensor  # 1-d uint8
    shapes: torch.Tensor  # (R, 2) int64 (height, width)

    def __len__(self) -> int:
        return len(self.shapes)

    def offsets(self) -> torch.Tensor:
        sizes = self.shapes[:, 0] * self.shapes[:, 1] * 3
        return torch.cumsum(sizes, 0) - sizes

    def views(self) -> list[torch.Tensor]:
        """Each image as a (3, H, W) view."""
        return [self.flat[o: o + h * w * 3].view(h, w, 3).permute(2, 0, 1)
                for o, (h, w) in zip(self.offsets().tolist(), self.shapes.tolist())]

    def table(self) -> torch.Tensor:
        """(R, 6) int64 rows for the kernel: address, height, width and the strides of channel, row, column."""
        h, w = self.shapes[:, 0], self.shapes[:, 1]
        address = self.offsets() + self.flat.data_ptr()
        return torch.stack([address, h, w, torch.ones_like(h), w * 3, torch.full_like(h, 3)], 1)


def kernel_usable(device: torch.device) -> bool:
    """Whether ``crop_resize_into`` runs the kernel on ``device`` (CPU only under Triton's interpreter, for tests)."""
    if triton is None:
        return False
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def crop_resize_into(out: torch.Tensor, images: list[torch.Tensor] | PackedImages, boxes: torch.Tensor,
                     positions: torch.Tensor, flips: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> None:
    """Write ``images[k]``'s crop ``boxes[k]``, resized to the output size, flipped where ``flips[positions[k]]``
    and normalized (``pixel * scale + bias`` per channel), into ``out[positions[k]]``.

    out: (B, S, S, 3) float32 on the device (HWC memory; its NCHW view is channels_last).
    images: K uint8 (3, H_k, W_k) tensors on the device, any strides, or ``PackedImages`` on the device.
    boxes: (K, 4) float32 (left, top, right, bottom) in source pixels, on the host. positions: (K,) int64 and
    flips: (B,) bool, on the host. scale, bias: (3,) float32 on the device.
    """
    global _failed
    if not len(images):
        return
    if _failed is None and kernel_usable(out.device):
        try:
            _launch(out, images, boxes, positions, flips, scale, bias)
            return
        except Exception as e:  # e.g. no C compiler for Triton's launcher, or a GPU that Triton does not support
            _failed = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            warnings.warn(f"the GPU crop kernel failed ({_failed}); the hybrid loader crops with roi_align "
                          "instead, which is slower")
    if isinstance(images, PackedImages):
        images = images.views()
    _reference(out, images, boxes, positions, flips, scale, bias)


def _inside(images: list[torch.Tensor] | PackedImages, boxes: torch.Tensor) -> torch.Tensor:
    """The boxes with their right/bottom edges at most half a pixel inside each image, so that every
    bilinear sample stays inside its own image (and off the padding of the reference path)."""
    if isinstance(images, PackedImages):
        sizes = images.shapes.flip(1).float()
    else:
        sizes = torch.tensor([[im.shape[2], im.shape[1]] for im in images], dtype=torch.float32)
    b = boxes.clone()
    b[:, 2] = torch.minimum(b[:, 2], sizes[:, 0] - 0.5)
    b[:, 3] = torch.minimum(b[:, 3], sizes[:, 1] - 0.5)
    return b


def _reference(out, images, boxes, positions, flips, scale, bias) -> None:
    """The same result from a zero-padded float batch and one ``roi_align`` call."""
    size, device = out.shape[1], out.device
    h, w = max(im.shape[1] for im in images), max(im.shape[2] for im in images)
    padded = torch.zeros(len(images), 3, h, w, device=device)  # zeros outside each image
    for i, im in enumerate(images):
        padded[i, :, : im.shape[1], : im.shape[2]] = im
    rois = torch.cat([torch.arange(len(images), dtype=torch.float32).view(-1, 1), _inside(images, boxes)], 1)
    crops = roi_align(padded, rois.to(device), (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    flip = flips[positions].to(device).view(-1, 1, 1, 1)
    crops = torch.where(flip, crops.flip(3), crops)
    crops = torch.addcmul(bias.view(1, 3, 1, 1), crops, scale.view(1, 3, 1, 1))
    out[positions.to(device)] = crops.permute(0, 2, 3, 1)


def _launch(out, images, boxes, positions, flips, scale, bias) -> None:
    # One int64 row per image: address, height, width, its three strides, its batch position, its flip.
    if isinstance(images, PackedImages):
        meta = images.table()
    else:
        meta = torch.tensor([(im.data_ptr(), im.shape[1], im.shape[2], *im.stride()) for im in images],
                            dtype=torch.int64)
    table = torch.cat([meta, positions.view(-1, 1), flips[positions].view(-1, 1).long()], 1)
    device, size = out.device, out.shape[1]
    boxes = _inside(images, boxes)
    if device.type == "cuda":
        table, boxes = table.pin_memory(), boxes.pin_memory()
    table, boxes = table.to(device, non_blocking=True), boxes.to(device, non_blocking=True)
    grid = (len(images), triton.cdiv(size * size, BLOCK))
    _crop_resize_kernel[grid](table, boxes, scale, bias, out, size, BLOCK=BLOCK)


if triton is not None:

    @triton.jit
    def _bilinear(p1, p2, p3, p4, w1, w2, w3, w4, mask):
        """The weighted sum of the four neighbours' uint8 values of one channel."""
        return (w1 * tl.load(p1, mask=mask, other=0).to(tl.float32) + w2 * tl.load(p2, mask=mask, other=0).to(tl.float32)
                + w3 * tl.load(p3, mask=mask, other=0).to(tl.float32) + w4 * tl.load(p4, mask=mask, other=0).to(tl.float32))

    @triton.jit
    def _sample(c, n):
        """roi_align's bilinear sample at coordinate ``c`` of an axis of ``n`` pixels: the lower and upper
        neighbour, the upper one's weight, and whether the sample counts (within a pixel of the edge)."""
        inside = (c >= -1.0) & (c <= n)
        c = tl.maximum(c, 0.0)
        low = tl.minimum(c.to(tl.int32), n - 1)
        c = tl.where(low >= n - 1, low.to(tl.float32), c)
        return low, tl.minimum(low + 1, n - 1), c - low, inside

    @triton.jit
    def _crop_resize_kernel(table, boxes, scale, bias, out, size, BLOCK: tl.constexpr):
        k = tl.program_id(0)
        row = table + k * 8
        src = tl.load(row).to(tl.pointer_type(tl.uint8))
        height = tl.load(row + 1).to(tl.int32)
        width = tl.load(row + 2).to(tl.int32)
        stride_c = tl.load(row + 3)
        stride_y = tl.load(row + 4)
        stride_x = tl.load(row + 5)
        pos = tl.load(row + 6)
        flip = tl.load(row + 7)
        left = tl.load(boxes + k * 4)
        top = tl.load(boxes + k * 4 + 1)
        bin_w = (tl.load(boxes + k * 4 + 2) - left) / size
        bin_h = (tl.load(boxes + k * 4 + 3) - top) / size
        grid_w = tl.maximum(tl.ceil(bin_w), 1.0).to(tl.int32)  # samples per output pixel, as roi_align's
        grid_h = tl.maximum(tl.ceil(bin_h), 1.0).to(tl.int32)

        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < size * size
        oy = offs // size
        ox = offs % size
        ox = tl.where(flip != 0, size - 1 - ox, ox)  # a flipped output pixel reads the mirrored column
        acc0 = tl.full((BLOCK,), 0.0, tl.float32)
        acc1 = tl.full((BLOCK,), 0.0, tl.float32)
        acc2 = tl.full((BLOCK,), 0.0, tl.float32)
        for iy in range(0, grid_h):
            # roi_align (aligned): pixel centres sit at integer coordinates, hence the half-pixel shift.
            y_low, y_high, ly, inside_y = _sample(top - 0.5 + oy * bin_h + (iy + 0.5) * bin_h / grid_h, height)
            hy = 1.0 - ly
            for ix in range(0, grid_w):
                x_low, x_high, lx, inside_x = _sample(left - 0.5 + ox * bin_w + (ix + 0.5) * bin_w / grid_w, width)
                inside = inside_y & inside_x
                hx = 1.0 - lx
                w1 = tl.where(inside, hy * hx, 0.0)
                w2 = tl.where(inside, hy * lx, 0.0)
                w3 = tl.where(inside, ly * hx, 0.0)
                w4 = tl.where(inside, ly * lx, 0.0)
                p1 = src + y_low * stride_y + x_low * stride_x
                p2 = src + y_low * stride_y + x_high * stride_x
                p3 = src + y_high * stride_y + x_low * stride_x
                p4 = src + y_high * stride_y + x_high * stride_x
                acc0 += _bilinear(p1, p2, p3, p4, w1, w2, w3, w4, mask)
                acc1 += _bilinear(p1 + stride_c, p2 + stride_c, p3 + stride_c, p4 + stride_c, w1, w2, w3, w4, mask)
                c2 = 2 * stride_c
                acc2 += _bilinear(p1 + c2, p2 + c2, p3 + c2, p4 + c2, w1, w2, w3, w4, mask)
        count = (grid_h * grid_w).to(tl.float32)
        dst = out + (pos * size * size + offs) * 3
        tl.store(dst, acc0 / count * tl.load(scale) + tl.load(bias), mask=mask)
        tl.store(dst + 1, acc1 / count * tl.load(scale + 1) + tl.load(bias + 1), mask=mask)
        tl.store(dst + 2, acc2 / count * tl.load(scale + 2) + tl.load(bias + 2), mask=mask)
