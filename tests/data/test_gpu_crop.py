"""The crop kernel computes what roi_align does (run here under Triton's CPU interpreter, on CUDA with -m gpu)."""

import importlib

import pytest
import torch

from imagenet_trainer.data import gpu_crop

pytest.importorskip("triton")


@pytest.fixture
def interpreted(monkeypatch):
    """``gpu_crop`` with its kernel built for Triton's interpreter, which runs it on CPU tensors."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    importlib.reload(gpu_crop)
    yield gpu_crop
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    importlib.reload(gpu_crop)


def _case(device, size=24, seed=0):
    """Images of several sizes (one of them a strided HWC view, as a decoder might hand back), a box in each
    (some larger than the output, some smaller, one past the image's edge), scattered positions and flips."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(40, 57), (23, 31), (90, 64), (24, 24), (130, 75)]
    images = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8).to(device) for h, w in shapes]
    images[2] = images[2].permute(1, 2, 0).contiguous().permute(2, 0, 1)  # CHW view of HWC memory
    boxes = torch.tensor([[3.2, 5.7, 50.1, 38.0], [0.0, 0.0, 31.0, 23.0], [10.5, 20.25, 60.0, 89.9],
                          [4.0, 2.0, 14.0, 12.0], [1.0, 7.0, 80.0, 129.0]])
    positions = torch.tensor([4, 0, 6, 2, 5])
    flips = torch.tensor([True, False, False, True, True, False, True])
    scale = torch.tensor([0.5, 0.25, 2.0], device=device)
    bias = torch.tensor([-1.0, 0.5, 0.0], device=device)
    out = torch.full((7, size, size, 3), float("nan"), device=device)
    return out, images, boxes, positions, flips, scale, bias


def _check(mod, device):
    out, images, boxes, positions, flips, scale, bias = _case(device)
    ref = out.clone()
    mod._reference(ref, images, boxes, positions, flips, scale, bias)
    mod._launch(out, images, boxes, positions, flips, scale, bias)
    torch.testing.assert_close(out[positions], ref[positions], atol=1e-4, rtol=1e-5)
    untouched = torch.tensor([1, 3])
    assert out[untouched].isnan().all()  # other positions are left alone


def test_kernel_matches_roi_align(interpreted):
    _check(interpreted, torch.device("cpu"))


@pytest.mark.gpu
def test_kernel_matches_roi_align_on_cuda():
    assert gpu_crop.kernel_usable(torch.device("cuda"))
    _check(gpu_crop, torch.device("cuda"))


def test_crop_resize_into_picks_the_kernel_or_the_reference(interpreted, monkeypatch):
    calls = []
    monkeypatch.setattr(interpreted, "_launch", lambda *a: calls.append("kernel"))
    monkeypatch.setattr(interpreted, "_reference", lambda *a: calls.append("reference"))
    out, images, boxes, positions, flips, scale, bias = _case(torch.device("cpu"))
    interpreted.crop_resize_into(out, images, boxes, positions, flips, scale, bias)
    monkeypatch.delenv("TRITON_INTERPRET")
    interpreted.crop_resize_into(out, images, boxes, positions, flips, scale, bias)
    interpreted.crop_resize_into(out, [], boxes[:0], positions[:0], flips, scale, bias)  # nothing to do
    assert calls == ["kernel", "reference"]


def test_a_failing_kernel_falls_back_to_roi_align_once(interpreted, monkeypatch):
    """Triton needs a C compiler and a GPU it supports; without them the loader still runs, on the reference path."""
    tries = []

    def broken(*a):
        tries.append(1)
        raise RuntimeError("Failed to find C compiler. Please specify via CC environment variable.\nmore")

    monkeypatch.setattr(interpreted, "_launch", broken)
    out, images, boxes, positions, flips, scale, bias = _case(torch.device("cpu"))
    ref = out.clone()
    interpreted._reference(ref, images, boxes, positions, flips, scale, bias)
    with pytest.warns(UserWarning, match="Failed to find C compiler.*roi_align"):
        interpreted.crop_resize_into(out, images, boxes, positions, flips, scale, bias)
    torch.testing.assert_close(out[positions], ref[positions])
    interpreted.crop_resize_into(out, images, boxes, positions, flips, scale, bias)
    assert len(tries) == 1  # not tried again


def _packed(images: list[torch.Tensor]) -> "gpu_crop.PackedImages":
    """The images as HWC pixels back to back in one flat tensor, as the hybrid loader's regions travel."""
    flat = torch.cat([im.permute(1, 2, 0).reshape(-1) for im in images])
    return gpu_crop.PackedImages(flat, torch.tensor([im.shape[1:] for im in images]))


def test_packed_images_are_views_of_one_buffer():
    _, images, *_ = _case(torch.device("cpu"))
    packed = _packed(images)
    assert all(torch.equal(a, b) for a, b in zip(packed.views(), images))
    table = packed.table()
    assert table[:, 0].tolist() == [v.data_ptr() for v in packed.views()]
    assert table[:, 1:].tolist() == [[*v.shape[1:], *v.stride()] for v in packed.views()]


def _check_packed(mod, device):
    out, images, boxes, positions, flips, scale, bias = _case(device)
    ref = out.clone()
    mod._reference(ref, images, boxes, positions, flips, scale, bias)
    mod.crop_resize_into(out, _packed(images), boxes, positions, flips, scale, bias)
    torch.testing.assert_close(out[positions], ref[positions], atol=1e-4, rtol=1e-5)


def test_packed_images_take_the_kernel(interpreted):
    _check_packed(interpreted, torch.device("cpu"))


def test_packed_images_take_the_reference_path(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    _check_packed(gpu_crop, torch.device("cpu"))


@pytest.mark.gpu
def test_packed_images_take_the_kernel_on_cuda():
    _check_packed(gpu_crop, torch.device("cuda"))
