import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from imagenet_trainer.engine.ema import EMA, ema_decay


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def _train_steps(net, ema, steps=4):
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        net(torch.randn(5, 3, 8, 8)).square().mean().backward()
        opt.step()
        opt.zero_grad()
        ema.update_parameters(net)


def test_ema_matches_torch_averaged_model_with_buffers():
    net = _net()
    ours, theirs = EMA(net, 0.7), AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.7), use_buffers=True)
    torch.manual_seed(1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        net(torch.randn(5, 3, 8, 8)).square().mean().backward()
        opt.step()
        opt.zero_grad()
        ours.update_parameters(net)
        theirs.update_parameters(net)
    mine, want = ours.module.state_dict(), theirs.module.state_dict()
    assert mine.keys() == want.keys()
    for k in want:
        if k.endswith("num_batches_tracked"):  # torch averages the integer counter too; we copy it
            continue
        assert torch.allclose(mine[k].float(), want[k].float(), atol=1e-6), k
    # BN's step counter is copied, the running statistics are averaged, and the EMA lags the model
    assert int(mine["1.num_batches_tracked"]) == 5
    assert not torch.allclose(mine["1.running_mean"], net.state_dict()["1.running_mean"])
    assert ours.n_averaged == 5


def test_first_update_copies_and_the_decay_weights_the_new_value():
    net = _net()
    ema = EMA(net, 0.75)
    with torch.no_grad():
        net[4].bias.fill_(1.0)
    ema.update_parameters(net)
    assert torch.equal(ema.module[4].bias, net[4].bias)
    with torch.no_grad():
        net[4].bias.fill_(5.0)
    ema.update_parameters(net)
    assert torch.allclose(ema.module[4].bias, torch.full((2,), 0.75 * 1 + 0.25 * 5))
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_state_dict_loads_across_ema_and_averaged_model():
    net = _net()
    ema = EMA(net, 0.9)
    _train_steps(net, ema)
    theirs = AveragedModel(_net(), multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    theirs.load_state_dict(ema.state_dict())  # a checkpoint of ours in torch's class
    back = EMA(_net(), 0.9)
    back.load_state_dict(theirs.state_dict())  # and back: checkpoints made before EMA existed
    assert back.n_averaged == 4
    for k, v in ema.module.state_dict().items():
        assert torch.equal(back.module.state_dict()[k], v)


def test_decay_half_life_follows_the_run_length():
    assert abs(ema_decay(0.5, 10) ** 5 - 0.5) < 1e-9
    assert ema_decay(0.01, 10) == 0.5  # at least one step
