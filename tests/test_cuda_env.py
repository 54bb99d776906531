import torch

from imagenet_trainer import cuda_env


def test_many_hardware_queues_unless_the_user_chose(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.delenv("CUDA_DEVICE_MAX_CONNECTIONS", raising=False)
    assert cuda_env.prefer_many_hardware_queues()
    assert cuda_env.os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] == cuda_env.HARDWARE_QUEUES
    monkeypatch.setenv("CUDA_DEVICE_MAX_CONNECTIONS", "8")
    assert not cuda_env.prefer_many_hardware_queues()
    assert cuda_env.os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] == "8"


def test_no_setting_once_cuda_has_started(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.delenv("CUDA_DEVICE_MAX_CONNECTIONS", raising=False)
    assert not cuda_env.prefer_many_hardware_queues()
    assert "CUDA_DEVICE_MAX_CONNECTIONS" not in cuda_env.os.environ
