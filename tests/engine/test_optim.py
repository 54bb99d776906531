import pytest
import torch

from imagenet_trainer.config import TrainConfig
from imagenet_trainer.engine.optim import Schedule, make_optimizer, seed_regime
from imagenet_trainer.errors import UsageError


@pytest.mark.parametrize("epoch,lr,wd", [(1, 1e-2, 5e-4), (18, 1e-2, 5e-4), (19, 5e-3, 5e-4), (29, 5e-3, 5e-4),
                                         (30, 1e-3, 0), (43, 1e-3, 0), (44, 5e-4, 0), (52, 5e-4, 0),
                                         (53, 1e-4, 0), (90, 1e-4, 0)])
def test_seed_table_is_the_original(epoch, lr, wd):
    assert seed_regime(epoch) == (lr, wd)


def test_seed_schedule_per_step():
    s = Schedule(TrainConfig(lr_schedule="seed"), steps_per_epoch=10)
    assert s.at(0) == (1e-2, 5e-4)
    assert s.at(18 * 10) == (5e-3, 5e-4)  # first step of epoch 19
    assert s.at(29 * 10 + 5) == (1e-3, 0.0)


def test_step_schedule():
    s = Schedule(TrainConfig(lr_schedule="step", lr=0.4, step_size=2, step_gamma=0.5), steps_per_epoch=5)
    assert [s.at(e * 5)[0] for e in range(6)] == [0.4, 0.4, 0.2, 0.2, 0.1, 0.1]


def test_cosine_warms_up_and_ends_near_zero():
    s = Schedule(TrainConfig(lr_schedule="cosine", epochs=5, warmup_epochs=1, batch_size=512), steps_per_epoch=10)
    assert s.base_lr == pytest.approx(0.2)  # 0.1 per 256 images
    warm = [s.at(i)[0] for i in range(10)]
    assert warm == sorted(warm) and warm[-1] == pytest.approx(0.2)
    assert s.at(49)[0] < 0.2 * 0.002
    lrs = [s.at(i)[0] for i in range(10, 50)]
    assert lrs == sorted(lrs, reverse=True)


def test_warmup_has_a_floor_in_steps_of_at_most_a_quarter_of_the_run():
    def warmup_steps(epochs, spe, **kw):
        s = Schedule(TrainConfig(epochs=epochs, batch_size=256, **kw), steps_per_epoch=spe)
        return s.warmup * spe

    assert warmup_steps(5, 27, warmup_fraction=0.05) == pytest.approx(6.75)  # a share of a short run: 7 steps
    assert warmup_steps(5, 27, warmup_fraction=0.05, warmup_min_steps=100) == pytest.approx(33.75)  # a quarter
    assert warmup_steps(5, 109, warmup_fraction=0.05, warmup_min_steps=100) == pytest.approx(100)
    assert warmup_steps(90, 5000, warmup_fraction=0.05, warmup_min_steps=100) == pytest.approx(22500)  # the share
    s = Schedule(TrainConfig(epochs=5, batch_size=256, warmup_min_steps=100), steps_per_epoch=109)
    assert s.at(0)[0] == pytest.approx(0.1 / 100) and s.at(99)[0] == pytest.approx(0.1)


def test_unknown_schedule():
    with pytest.raises(UsageError, match="--lr-schedule"):
        Schedule(TrainConfig(lr_schedule="linear"), 10)


def test_no_bn_decay_groups():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = make_optimizer(model, TrainConfig(no_bn_decay=True))
    Schedule(TrainConfig(lr_schedule="step", weight_decay=0.01), 1).apply(opt, 0)
    decays = sorted((len(g["params"]), g["weight_decay"]) for g in opt.param_groups)
    assert decays == [(1, 0.01), (3, 0.0)]


def test_fused_kernel_on_a_gpu_only():
    model = torch.nn.Linear(3, 4)
    assert not make_optimizer(model, TrainConfig()).param_groups[0]["fused"]  # CPU: torch's default kernels
    if torch.cuda.is_available():
        assert make_optimizer(model.cuda(), TrainConfig()).param_groups[0]["fused"]
