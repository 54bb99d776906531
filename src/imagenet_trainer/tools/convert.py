"""``convert``: a trained model file to a clean file for inference (.pt, .ts, .onnx, .safetensors).

What the conversion does: strips DataParallel/DDP/compile prefixes, removes dropout, folds batch
norm into the preceding conv or linear layer (torch.fx), puts the normalization in front, and
optionally appends a softmax and casts the weights. The graph formats (.ts, .onnx) take float
images in 0..1, shape (N, 3, H, W), and carry the class names and normalization as metadata; the
weight formats (.pt, .safetensors) hold the clean state dict of the registry model plus the same
metadata, so `evaluate` and `predict` read them back. Every conversion prints a precision report.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from imagenet_trainer.engine.checkpoint import MODEL_FORMAT, atomic_save
from imagenet_trainer.files import atomic_write, check_writable
from imagenet_trainer.errors import CheckError, UsageError
from imagenet_trainer.inference import LoadedModel

FORMATS = (".pt", ".ts", ".onnx", ".safetensors")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Normalize(nn.Module):
    """(x - mean) / std on float images in 0..1, shape (N, 3, H, W)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class InferenceModel(nn.Module):
    """Normalization, the (folded) network, and optionally a softmax: images in 0..1 to logits or probabilities."""

    def __init__(self, net: nn.Module, mean, std, softmax: bool = False):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(self.normalize(x.to(self.normalize.mean.dtype)))
        return y.softmax(-1) if self.softmax else y


def remove_dropout(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, (nn.Dropout, nn.Dropout2d, nn.AlphaDropout)):
            setattr(model, name, nn.Identity())
        else:
            remove_dropout(child)
    return model


def _fold_through_max_pool(model: nn.Module) -> None:
    """In place: conv -> max-pool -> BN (as in ResNet-9) becomes conv' -> max-pool where every channel's BN
    scale is positive: a per-channel increasing affine map commutes with max, so this is exact."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        layers = list(seq)
        for i in range(len(layers) - 2):
            conv, pool, bn = layers[i:i + 3]
            if not (isinstance(conv, nn.Conv2d) and isinstance(pool, nn.MaxPool2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            scale = bn.weight.detach() if bn.affine else torch.ones(bn.num_features)
            if bn.running_var is None or not bool((scale > 0).all()):
                continue
            seq[i] = fuse_conv_bn_eval(conv, bn)
            seq[i + 2] = nn.Identity()


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that follows a conv or linear layer into it, directly or through a max-pool
    (eval mode); raises if tracing fails."""
    from torch.fx.experimental.optimization import fuse

    model = copy.deepcopy(model).eval()
    _fold_through_max_pool(model)
    return fuse(model, inplace=True)


def count_batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def inference_model(lm: LoadedModel, softmax: bool = False) -> InferenceModel:
    """The model as exported: dropout removed, batch norm folded where it has any and torch.fx can trace it
    (a model whose forward branches on its input's shape, a timm ViT's, is exported unfolded)."""
    net = remove_dropout(copy.deepcopy(lm.model).float().eval().to(memory_format=torch.contiguous_format))
    if count_batch_norms(net):
        try:
            net = fold_batch_norm(net)
        except Exception:  # noqa: BLE001 - torch.fx's trace errors come in several types
            pass
    return InferenceModel(net, lm.mean, lm.std, softmax).eval()


def metadata(lm: LoadedModel, softmax: bool, dtype: str) -> dict:
    return {"format": MODEL_FORMAT, "arch": lm.arch, "small_stem": lm.small_stem, "classes": lm.classes,
            "mean": lm.mean, "std": lm.std,
            "image_size": lm.image_size, "crop_size": lm.crop_size, "input": "float images in 0..1, (N, 3, H, W)",
            "output": "probabilities" if softmax else "logits", "dtype": dtype,
            "tta": lm.tta, "tta_shift": lm.tta_shift}  # how training validated it: evaluate repeats that


def _reference(lm: LoadedModel, x: torch.Tensor, softmax: bool) -> torch.Tensor:
    with torch.no_grad():
        y = lm.model.float()(Normalize(lm.mean, lm.std)(x)).float()
    return y.softmax(-1) if softmax else y


def convert(lm: LoadedModel, dst: str | os.PathLike, softmax: bool = False, dtype: str = "fp32",
            real_images: torch.Tensor | None = None) -> dict:
    """Write ``dst`` (format from its extension) and return the precision report."""
    dst = Path(dst)
    if dst.suffix not in FORMATS:
        raise UsageError(f"--dst {dst}: unknown extension; use one of {', '.join(FORMATS)}")
    if dst.suffix == ".onnx" and dtype == "bf16":
        raise UsageError("--bf16 with .onnx: ONNX Runtime has no bf16 CPU kernels; use --fp16 or another format")
    check_writable(dst.parent, "--dst", dst)  # missing folders are made, as train's --output makes them
    lm.model.cpu().float().eval()
    meta = metadata(lm, softmax, dtype)
    size = lm.crop_size
    torch.manual_seed(0)
    inputs = {"random": torch.rand(4, 3, size, size)}
    if real_images is not None and len(real_images):
        inputs["real"] = real_images
    if dst.suffix in (".pt", ".safetensors"):
        state = {k: v.to(DTYPES[dtype]) if v.is_floating_point() else v for k, v in lm.model.state_dict().items()}
        if dst.suffix == ".pt":
            atomic_save(meta | {"state_dict": state, "num_classes": len(lm.classes), "epoch": None}, dst)
        else:
            from safetensors.torch import save as st_save

            blob = st_save({k: v.contiguous() for k, v in state.items()},
                           metadata={k: json.dumps(v) for k, v in meta.items()})
            atomic_write(dst, lambda f: f.write(blob))
        from imagenet_trainer.inference import load_model_file

        back = load_model_file(dst, torch.device("cpu"))
        model = InferenceModel(back.model.to(DTYPES[dtype]), lm.mean, lm.std, softmax)
        run = lambda x: model(x.to(DTYPES[dtype])).float()  # noqa: E731
        folded = None
    else:
        model = inference_model(lm, softmax)
        folded = (count_batch_norms(model) == 0) if count_batch_norms(lm.model) else "none"
        model = model.to(DTYPES[dtype]) if dtype != "fp32" else model
        example = torch.rand(1, 3, size, size, dtype=DTYPES[dtype])
        if dst.suffix == ".ts":
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TorchScript's deprecation notice: it still runs everywhere
                traced = torch.jit.trace(model, example)
                extra = {"meta.json": json.dumps(meta)}
                atomic_write(dst, lambda f: torch.jit.save(traced, f, _extra_files=extra))
                loaded = torch.jit.load(str(dst))
            run = lambda x: loaded(x.to(DTYPES[dtype])).float()  # noqa: E731
        else:
            run = _export_onnx(model, example, dst, meta, dtype)
    report = {"dst": str(dst), "format": dst.suffix[1:], "dtype": dtype, "softmax": softmax, "bn_folded": folded}
    with torch.no_grad():
        for name, x in inputs.items():
            out, ref = run(x), _reference(lm, x, softmax)
            probs = (out, ref) if softmax else (out.softmax(-1), ref.softmax(-1))
            # The check is on probabilities: logits can reach the hundreds, where one fp32 step exceeds 1e-4.
            report[f"max_abs_diff_{name}"] = float((probs[0] - probs[1]).abs().max())
            report[f"max_rel_diff_output_{name}"] = float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
    if dtype == "fp32":
        worst = max(v for k, v in report.items() if k.startswith("max_abs_diff"))
        if worst >= 1e-4:
            dst.unlink(missing_ok=True)
            raise CheckError(f"{dst}: the converted model's probabilities differ from the source's by {worst:.2e} "
                             "(limit 1e-4); nothing was written")
    return report


class BinnedAvgPool(nn.Module):
    """``nn.AdaptiveAvgPool2d`` for one input size, as two matrix products that ONNX exports at any size.

    torch's ONNX export takes adaptive average pooling only where the bins divide the input evenly, so AlexNet's
    and VGG's pool to 6x6 and 7x7 failed at every crop but 224. The bins are the adaptive pool's own
    (bin i spans floor(i*H/out) to ceil((i+1)*H/out)), so the result is the same to rounding.
    """

    def __init__(self, size_in: tuple[int, int], size_out: tuple[int, int]):
        super().__init__()
        self.register_buffer("rows", self._bins(size_in[0], size_out[0]))  # (out_h, H)
        self.register_buffer("cols", self._bins(size_in[1], size_out[1]).t().contiguous())  # (W, out_w)

    @staticmethod
    def _bins(n: int, out: int) -> torch.Tensor:
        m = torch.zeros(out, n)
        for i in range(out):
            start, end = (i * n) // out, -(-((i + 1) * n) // out)
            m[i, start:end] = 1.0 / (end - start)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, out_h, out_w)
        return torch.matmul(self.rows, torch.matmul(x, self.cols))


def with_fixed_pools(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """``model`` with each ``nn.AdaptiveAvgPool2d`` replaced by its fixed form at ``example``'s size
    (``BinnedAvgPool``), for the ONNX export."""
    sizes = {}

    def record(module, inputs, output) -> None:  # (a hook that returned a value would replace the output)
        sizes[module] = (tuple(inputs[0].shape[-2:]), tuple(output.shape[-2:]))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    with torch.no_grad():
        model(example)
    for h in hooks:
        h.remove()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if child in sizes:
                setattr(parent, name, BinnedAvgPool(*sizes[child]).to(example.dtype))
    return model


def _export_onnx(model: nn.Module, example: torch.Tensor, dst: Path, meta: dict, dtype: str):
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise UsageError("--dst .onnx needs the export extras: pip install 'imagenet-trainer[export]'") from None
    import io

    buf = io.BytesIO()
    model = with_fixed_pools(model, example)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, buf, dynamo=False, input_names=["image"],
                          output_names=["probabilities" if meta["output"] == "probabilities" else "logits"],
                          dynamic_axes={"image": {0: "batch"}}, opset_version=17)
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, json.dumps(v)
    onnx.checker.check_model(proto)
    atomic_write(dst, lambda f: f.write(proto.SerializeToString()))
    runner = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    np_dtype = {"fp32": "float32", "fp16": "float16", "bf16": "float32"}[dtype]
    return lambda x: torch.from_numpy(runner.run(None, {"image": x.numpy().astype(np_dtype)})[0]).float()
