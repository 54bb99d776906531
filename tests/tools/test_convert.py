"""Model conversion: BN folding for every model, same predictions in every format, portable outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

from imagenet_trainer.cli import main
from imagenet_trainer.models import create_model, list_models
from imagenet_trainer.tools.convert import count_batch_norms, fold_batch_norm, remove_dropout
from tests.conftest import jpeg_bytes, random_image


def _randomize_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


@pytest.mark.parametrize("name", list_models())
def test_bn_folding_is_exact_for_every_model(name):
    torch.manual_seed(0)
    model = create_model(name, 10).eval()
    _randomize_bn(model)
    had_bn = count_batch_norms(model)
    folded = fold_batch_norm(remove_dropout(model))
    assert count_batch_norms(folded) == 0, f"{had_bn} batch norms, some not folded"
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        ref, out = model(x), folded(x)
    assert (out - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max().item())


def test_bn_after_a_max_pool_folds_only_when_its_scales_are_positive():
    torch.manual_seed(0)
    model = create_model("resnet9", 10).eval()
    _randomize_bn(model)
    first = model.features[1][2]  # conv -> max-pool -> BN
    assert isinstance(first, nn.BatchNorm2d)
    first.weight.data[0] = -0.5  # max(-x) != -max(x): this one must stay
    folded = fold_batch_norm(model)
    assert count_batch_norms(folded) == 1
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        ref, out = model(x), folded(x)
    assert (out - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max().item())


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    import os

    from tests.conftest import jpeg_bytes, random_image

    root = tmp_path_factory.mktemp("conv")
    data = root / "data"
    for split, n in (("train", 6), ("val", 3)):
        for c, name in enumerate(("ant", "bee", "cow")):
            d = data / split / name
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}.jpg").write_bytes(jpeg_bytes(random_image(40, 48, seed=50 * c + i + (7 if split == "val" else 0))))
    os.environ.setdefault("IMAGENET_TRAINER_CACHE", str(root / "cache"))
    assert main(["train", "--data", str(data), "--output", str(root / "run"), "--arch", "resnet18", "--epochs", "1",
                 "--batch-size", "6", "--image-size", "36", "--crop-size", "32", "--workers", "0", "--device", "cpu",
                 "--small-stem", "off"]) == 0
    return root / "run" / "model_01.pt", data


def _top1(model_path, folder, capsys) -> list[str]:
    capsys.readouterr()
    assert main(["predict", "--model", str(model_path), str(folder), "--json", "--device", "cpu"]) == 0
    return [r["top"][0]["class"] for r in json.loads(capsys.readouterr().out)]


@pytest.mark.parametrize("ext", ["pt", "ts", "onnx", "safetensors"])
def test_converted_model_predicts_like_the_source(trained_model, tmp_path, capsys, ext):
    src, data = trained_model
    dst = tmp_path / f"m.{ext}"
    assert main(["convert", "--src", str(src), "--dst", str(dst), "--data", str(data / "val"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff_random"] < 1e-4 and report["max_abs_diff_real"] < 1e-4
    if ext in ("ts", "onnx"):
        assert report["bn_folded"] is True
    assert _top1(dst, data / "val", capsys) == _top1(src, data / "val", capsys)
    if ext in ("pt", "safetensors"):  # evaluate validates the converted file as the run validated the source
        from imagenet_trainer.inference import load_model_file

        cpu = torch.device("cpu")
        assert load_model_file(dst, cpu).tta is load_model_file(src, cpu).tta is True


def test_half_precision_and_softmax(trained_model, tmp_path, capsys):
    src, data = trained_model
    assert main(["convert", "--src", str(src), "--dst", str(tmp_path / "m.ts"), "--fp16", "--softmax", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dtype"] == "fp16" and report["max_abs_diff_random"] < 1e-2
    assert "max_abs_diff_real" in report  # real images found through the dataset the model was trained on


_OUTSIDE = textwrap.dedent("""
    import json, sys
    sys.modules["imagenet_trainer"] = None  # this package must not be needed
    import numpy as np
    kind, path = sys.argv[1], sys.argv[2]
    x = np.random.rand(2, 3, 32, 32).astype("float32")
    if kind == "ts":
        import torch
        extra = {"meta.json": ""}
        m = torch.jit.load(path, _extra_files=extra)
        meta = json.loads(extra["meta.json"])
        y = m(torch.from_numpy(x)).detach().numpy()
    else:
        import onnx, onnxruntime as ort
        meta = {p.key: json.loads(p.value) for p in onnx.load(path).metadata_props}
        y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    print(json.dumps({"shape": list(y.shape), "classes": meta["classes"], "mean": meta["mean"]}))
""")


@pytest.mark.parametrize("ext", ["ts", "onnx"])
def test_graph_formats_run_without_this_package(trained_model, tmp_path, ext):
    src, _ = trained_model
    dst = tmp_path / f"m.{ext}"
    assert main(["convert", "--src", str(src), "--dst", str(dst)]) == 0
    out = subprocess.run([sys.executable, "-c", _OUTSIDE, ext, str(dst)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["shape"] == [2, 3] and res["classes"] == ["ant", "bee", "cow"] and len(res["mean"]) == 3


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_corrupt_or_foreign_source(tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    assert main(["convert", "--src", str(bad), "--dst", str(tmp_path / "o.onnx")]) == 2
    err = capsys.readouterr().err
    assert "bad.pt" in err and "Traceback" not in err and not (tmp_path / "o.onnx").exists()
    torch.save({"weights": torch.zeros(2)}, bad)
    assert main(["convert", "--src", str(bad), "--dst", str(tmp_path / "o.ts")]) == 2
    assert "not an imagenet-trainer" in capsys.readouterr().err


@pytest.mark.parametrize("ext,what", [(".pt", "not a model or checkpoint file (torch.save did not write it)"),
                                      (".ts", "not a readable TorchScript file (PytorchStreamReader failed reading "
                                              "zip archive: not a ZIP archive)"),
                                      (".onnx", "not a readable ONNX model"),
                                      (".safetensors", "not a readable safetensors file")])
def test_predict_with_an_unreadable_model_file_is_one_line(tmp_path, capsys, ext, what):
    bad = tmp_path / f"notes{ext}"
    bad.write_text("hello\n")  # a text file given as the model: torch.load raised a KeyError here
    image = tmp_path / "x.jpg"
    image.write_bytes(jpeg_bytes(random_image(20, 20)))
    assert main(["predict", "--model", str(bad), str(image)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"imagenet-trainer predict: error: {bad}: {what}") and len(err.splitlines()) == 1, err


def test_unknown_extension(trained_model, tmp_path, capsys):
    assert main(["convert", "--src", str(trained_model[0]), "--dst", str(tmp_path / "m.h5")]) == 2
    assert "extension" in capsys.readouterr().err


def test_wrapped_state_dicts_are_stripped(trained_model, tmp_path, capsys):
    """Keys saved through DDP ('module.') and torch.compile ('_orig_mod.') load and convert like plain ones."""
    from imagenet_trainer.engine.checkpoint import atomic_save, safe_load

    src, data = trained_model
    rec = safe_load(src)
    rec["state_dict"] = {f"module._orig_mod.{k}": v for k, v in rec["state_dict"].items()}
    wrapped = tmp_path / "wrapped.pt"
    atomic_save(rec, wrapped)
    assert main(["convert", "--src", str(wrapped), "--dst", str(tmp_path / "clean.pt"), "--json"]) == 0
    capsys.readouterr()
    clean = safe_load(tmp_path / "clean.pt")["state_dict"]
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in clean)
    assert _top1(tmp_path / "clean.pt", data / "val", capsys) == _top1(src, data / "val", capsys)


def _export_sizes(name: str) -> tuple[int, int]:
    """Two crop sizes for ``name``: its smallest input (rounded up to 8) and one that divides no pooling evenly."""
    from imagenet_trainer.models import min_input_size

    least = -(-min_input_size(name) // 8) * 8
    return least, least + 40


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("ext", [".onnx", ".ts", ".safetensors", ".pt"])
def test_every_model_converts_at_two_crop_sizes(name, ext, tmp_path):
    """Every export path, every registry model, at two crops but 224 (AlexNet's and VGG's adaptive pools broke the
    ONNX export everywhere but 224): written, read back, and the same probabilities (convert's own check)."""
    from imagenet_trainer.inference import LoadedModel
    from imagenet_trainer.tools.convert import convert

    torch.manual_seed(0)
    for size in _export_sizes(name):
        model = create_model(name, 3).eval()
        _randomize_bn(model)
        lm = LoadedModel(model, ["a", "b", "c"], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], size + 8, size, name, 1)
        out = tmp_path / f"m{size}{ext}"
        report = convert(lm, out)
        assert report["max_abs_diff_random"] < 1e-4, (size, report)
        out.unlink()  # VGG's exports are 0.5 GB each
