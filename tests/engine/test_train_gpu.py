"""Training on a CUDA GPU: every loader kind, bf16 autocast, channels_last. Skipped without a GPU."""

import pytest

from imagenet_trainer.engine.checkpoint import safe_load
from imagenet_trainer.engine.run import train
from tests.engine.test_train import _cfg

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("loader", ["cpu", "gpu", "hybrid", "auto"])
def test_trains_on_gpu_with_each_loader(tiny_tree, tmp_path, loader, capsys):
    cfg = _cfg(tiny_tree, tmp_path / "run", device="cuda", epochs=2, loader=loader, workers=2, precision="bf16")
    assert train(cfg) == 0
    assert ("loader auto: the workers decode" in capsys.readouterr().err) == (loader == "auto")  # the probe ran
    m = safe_load(tmp_path / "run" / "model_02.pt")
    assert m["metrics"]["val"]["count"] == 6 and m["metrics"]["train"]["loss"] > 0


def test_fp16_with_grad_scaler(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "run", device="cuda", epochs=1, precision="fp16")) == 0
    assert "scaler" in safe_load(tmp_path / "run" / "checkpoint_last.pt")


def test_resume_on_gpu(tiny_tree, tmp_path):
    assert train(_cfg(tiny_tree, tmp_path / "run", device="cuda", epochs=1)) == 0
    assert train(_cfg(tiny_tree, tmp_path / "run", device="cuda", epochs=2, resume="auto")) == 0
    assert safe_load(tmp_path / "run" / "checkpoint_last.pt")["epoch"] == 2


def test_a_gpu_checkpoint_resumes_on_the_cpu(tiny_tree, tmp_path):
    """The GPU run's optimizer uses the fused kernel; the resumed run on the CPU takes its own device's."""
    assert train(_cfg(tiny_tree, tmp_path / "run", device="cuda", epochs=1)) == 0
    assert safe_load(tmp_path / "run" / "checkpoint_last.pt")["optimizer"]["param_groups"][0]["fused"]
    assert train(_cfg(tiny_tree, tmp_path / "run", device="cpu", epochs=2, resume="auto")) == 0
    assert safe_load(tmp_path / "run" / "checkpoint_last.pt")["optimizer"]["param_groups"][0]["fused"] is None


def test_compiled_with_cuda_graphs(tiny_tree, tmp_path):
    """``--compile-mode reduce-overhead``: the step's kernels replayed as CUDA graphs, with validation between
    epochs (the model in eval mode: other graphs) and the EMA beside it."""
    cfg = _cfg(tiny_tree, tmp_path / "run", device="cuda", epochs=2, backend="compile", compile_mode="reduce-overhead")
    assert train(cfg) == 0
    m = safe_load(tmp_path / "run" / "model_02.pt")
    assert m["metrics"]["val"]["count"] == 6 and m["metrics"]["train"]["loss"] > 0
