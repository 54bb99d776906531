"""Starting weights (models/weights.py): every file format into the right model with a new head, the body equal to
the file's, and one-line errors for files that do not fit."""

from __future__ import annotations

import pickle

import pytest
import torch

from imagenet_trainer.errors import UsageError
from imagenet_trainer.models import create_model
from imagenet_trainer.models.weights import (WeightsFile, freeze_body, head_names, load_into, published, read_weights,
                                             starting_recipe)


def _source(classes: int = 5) -> dict:
    torch.manual_seed(1)
    return create_model("resnet18", classes).state_dict()


def _save(path, fmt: str, state: dict) -> None:
    if fmt == "pth":  # torchvision's published files: a bare state dict
        torch.save(state, path)
    elif fmt == "timm":  # timm's train.py checkpoints, here with DDP's prefix
        torch.save({"epoch": 3, "arch": "resnet18", "state_dict": {f"module.{k}": v for k, v in state.items()},
                    "optimizer": {"state": {}}, "version": 2}, path)
    elif fmt == "compiled":  # a torch.compile'd model's state dict
        torch.save({f"_orig_mod.{k}": v for k, v in state.items()}, path)
    elif fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "ours":  # this tool's model file
        torch.save({"format": "imagenet-trainer/model", "arch": "resnet18", "state_dict": state,
                    "classes": [f"k{i}" for i in range(5)], "mean": [0.5] * 3, "std": [0.25] * 3,
                    "image_size": 40, "crop_size": 32, "num_classes": 5}, path)


@pytest.mark.parametrize("fmt,suffix", [("pth", ".pth"), ("timm", ".pth.tar"), ("compiled", ".pt"),
                                        ("safetensors", ".safetensors"), ("ours", ".pt")])
def test_each_format_loads_the_body_and_gives_a_new_head(tmp_path, fmt, suffix):
    state = _source()
    path = tmp_path / f"w{suffix}"
    _save(path, fmt, state)
    model = create_model("resnet18", 3)
    fresh_head = model.fc.weight.detach().clone()
    report = load_into(model, read_weights(path), 3, ["a", "b", "c"])
    assert report.startswith(f"loaded {len(state) - 2} of {len(state)} tensors") and "new head: 3 classes" in report
    loaded = model.state_dict()
    for k, v in state.items():
        if not k.startswith("fc."):
            assert torch.equal(loaded[k], v), k
    assert torch.equal(model.fc.weight, fresh_head)  # the head is the model's own, for 3 classes


def test_the_same_classes_keep_the_head(tmp_path):
    state = _source()
    _save(tmp_path / "m.pt", "ours", state)
    model = create_model("resnet18", 5)
    report = load_into(model, read_weights(tmp_path / "m.pt"), 5, [f"k{i}" for i in range(5)])
    assert "head kept" in report and torch.equal(model.fc.weight, state["fc.weight"])
    # as many classes under other names: a new head
    model = create_model("resnet18", 5)
    assert "new head: 5 classes" in load_into(model, read_weights(tmp_path / "m.pt"), 5, list("vwxyz"))


def test_a_body_of_another_shape_is_an_error(tmp_path):
    state = _source()
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(UsageError, match=r"layer1.0.conv1.weight: \(64, 64, 1, 1\) in the file, \(64, 64, 3, 3\)"):
        load_into(create_model("resnet18", 3), read_weights(tmp_path / "w.pth"), 3)


def test_a_file_for_another_net_is_an_error_with_examples(tmp_path):
    torch.save(create_model("smallcnn", 3).state_dict(), tmp_path / "w.pth")
    with pytest.raises(UsageError, match=r"only 0 of the model's \d+ body tensors are in the file \(missing e.g. "
                                         r"conv1.weight.*the file has e.g."):
        load_into(create_model("resnet18", 3), read_weights(tmp_path / "w.pth"), 3)


def test_files_that_are_no_weights_are_one_line_errors(tmp_path):
    (tmp_path / "text.pth").write_text("hello")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with open(tmp_path / "code.pth", "wb") as f:
        pickle.dump({"x": torch.nn.ReLU()}, f)
    torch.save({"epoch": 1, "note": "no tensors"}, tmp_path / "none.pth")
    for name, words in (("text.pth", "not a weights file"), ("empty.safetensors", "not a readable safetensors"),
                        ("code.pth", "refused to load"), ("none.pth", "no tensors found"),
                        ("missing.pth", "no such file")):
        with pytest.raises(UsageError, match=words) as e:
            read_weights(tmp_path / name)
        assert "\n" not in str(e.value) and str(tmp_path / name) in str(e.value)


def test_head_names_of_each_kind_of_classifier():
    assert head_names(create_model("resnet18", 7), 7) == ["fc"]
    assert head_names(create_model("squeezenet1_1", 7), 7) == ["classifier.1"]
    assert head_names(create_model("vit_b_16", 7, image_size=32), 7) == ["heads.head"]
    assert head_names(create_model("resnet18", 64), 64) == ["fc"]  # not conv1, which has 64 outputs too


def test_freeze_body_leaves_only_the_head_training():
    model = create_model("resnet18", 3)
    freeze_body(model, ["fc"])
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}


def test_pretrained_of_our_own_network_is_an_error():
    with pytest.raises(UsageError, match="resnet9 is this tool's own network and has no published weights"):
        published("resnet9")


def test_pretrained_without_network_names_the_weights_the_cache_and_weights_file(monkeypatch):
    import torch.hub

    def offline(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(UsageError) as e:
        published("resnet18")
    msg = str(e.value)
    assert "ResNet18_Weights.IMAGENET1K_V1" in msg and torch.hub.get_dir() in msg and "--weights FILE" in msg
    assert "\n" not in msg


def test_the_input_recipe_follows_the_weights(tmp_path):
    _save(tmp_path / "m.pt", "ours", _source())
    mine = starting_recipe("resnet18", False, str(tmp_path / "m.pt"))
    assert (mine["mean"], mine["crop_size"], mine["image_size"]) == ([0.5] * 3, 32, 40)
    tv = starting_recipe("resnet50", True, None)  # torchvision's weight transforms: no download needed
    assert tv["crop_size"] == 224 and tv["image_size"] == 232 and tv["std"] == [0.229, 0.224, 0.225]
    assert starting_recipe("resnet9", False, None) is None


def test_a_timm_checkpoint_loads_into_a_timm_model_at_another_input_size(tmp_path):
    pytest.importorskip("timm")
    torch.manual_seed(0)
    src = create_model("timm/test_vit", 10)  # built for 160 px: 10x10 patches of 16
    torch.save({"state_dict_ema": src.state_dict(), "epoch": 9}, tmp_path / "vit.pth.tar")
    model = create_model("timm/test_vit", 4, image_size=64)  # 4x4 patches: the position embedding is resampled
    report = load_into(model, read_weights(tmp_path / "vit.pth.tar"), 4)
    assert "new head: 4 classes" in report
    assert torch.equal(model.state_dict()["blocks.0.attn.qkv.weight"], src.state_dict()["blocks.0.attn.qkv.weight"])
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 4)


def test_weights_file_metadata_is_kept_for_our_files(tmp_path):
    _save(tmp_path / "m.pt", "ours", _source())
    wf = read_weights(tmp_path / "m.pt")
    assert isinstance(wf, WeightsFile) and wf.meta["classes"][0] == "k0" and wf.meta["crop_size"] == 32
