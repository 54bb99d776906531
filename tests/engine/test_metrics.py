"""Top-k counts, the device-side accumulator and the progress line."""

from __future__ import annotations

import io

import pytest
import torch

from imagenet_trainer.engine import metrics
from imagenet_trainer.engine.metrics import Accumulator, HostCopies, ProgressLine, process_age, topk_correct


def test_topk_correct_counts_labels_within_the_top_k():
    logits = torch.tensor([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0],   # label 1: top-1
                           [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],   # label 1: second, so top-5 only
                           [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])  # label 5: last of 6, in neither
    assert topk_correct(logits, torch.tensor([1, 1, 5])).tolist() == [1.0, 2.0]


def test_topk_correct_with_fewer_classes_than_k():
    logits = torch.tensor([[0.2, 0.8], [0.7, 0.3]])
    assert topk_correct(logits, torch.tensor([0, 0])).tolist() == [1.0, 2.0]


def test_host_copies_on_the_cpu_are_the_values_sent():
    copies = HostCopies()
    assert copies.latest() is None  # nothing sent
    copies.send(torch.tensor([1.0, 2.0]))
    assert copies.latest() == [1.0, 2.0]
    copies.send(torch.tensor([3.0, 4.0]))
    assert copies.latest() == [3.0, 4.0]


@pytest.mark.gpu
def test_host_copies_never_wait_for_the_gpu_after_the_first():
    copies = HostCopies()
    t = torch.arange(4.0, device="cuda")
    copies.send(t)
    assert copies.latest() == [0.0, 1.0, 2.0, 3.0]  # nothing had arrived: it waits this once
    torch.cuda.set_sync_debug_mode("error")  # a synchronizing call now raises
    try:
        for k in range(1, 6):
            copies.send(t + k)
            assert copies.latest()[0] in range(0, k + 1)  # an earlier step's values, or this one's
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    assert copies.latest() == [5.0, 6.0, 7.0, 8.0]  # every copy has arrived: the newest is shown


@pytest.mark.parametrize("print_freq, live, due", [
    (10, False, [7, 17, 27]),  # 3 batches before each plain line
    (2, False, list(range(1, 31))),  # lines closer than that: every batch
    (10, True, [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]),  # a live line redraws often: every 3rd batch
])
def test_values_are_sampled_a_few_batches_before_each_line(print_freq, live, due):
    line = ProgressLine("train", 30, print_freq, stream=io.StringIO())
    line.live = live
    assert [i for i in range(1, 31) if line.sample_due(i)] == due
    assert not ProgressLine("train", 30, print_freq, stream=io.StringIO(), enabled=False).sample_due(7)


def test_accumulator_weights_the_loss_by_batch_size():
    acc = Accumulator(torch.device("cpu"))
    acc.add(torch.tensor(2.0), torch.tensor([3.0, 4.0]), 4)
    row = acc.add(torch.tensor(1.0), torch.tensor([0.0, 2.0]), 2)
    assert row.tolist() == [2.0, 2.0, 0.0, 2.0]
    assert acc.result() == {"loss": pytest.approx(10 / 6), "top1": pytest.approx(50.0),
                            "top5": pytest.approx(100.0), "count": 6}


def _lines(progress: ProgressLine, batches: int, wait: float = 0.0) -> list[str]:
    for i in range(1, batches + 1):
        progress.update(i, 8, wait, lambda: {"loss": "1.000"})
    return progress.stream.getvalue().splitlines()


def test_plain_lines_every_print_freq_and_at_the_end():
    lines = _lines(ProgressLine("train 1", 25, print_freq=10, stream=io.StringIO()), 25)
    assert [line.split("]")[0] for line in lines] == ["train 1 [10/25", "train 1 [20/25", "train 1 [25/25"]
    assert "loss 1.000" in lines[0] and "img/s" in lines[0] and "ETA" in lines[0]


def test_a_disabled_line_prints_nothing_and_never_asks_for_values():
    progress = ProgressLine("train 1", 5, print_freq=1, stream=io.StringIO(), enabled=False)
    for i in range(1, 6):
        progress.update(i, 8, 0.0, lambda: pytest.fail("values() synchronizes the GPU; a disabled line must not call it"))
    assert progress.stream.getvalue() == "" and progress.images == 40


def test_the_data_wait_share_shows_a_decimal_below_ten_percent(monkeypatch):
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(metrics.time, "perf_counter", lambda: next(clock))
    progress = ProgressLine("train 1", 2, print_freq=1, stream=io.StringIO())  # started at t=0
    progress.update(1, 8, 0.034, lambda: {})  # 0.034 s of waiting in 1 s
    progress.update(2, 8, 0.5, lambda: {})  # 0.5 s in the 1 s since the first batch
    first, second = progress.stream.getvalue().splitlines()
    assert "data 3.4%" in first and "8 img/s" in first
    assert "data 50%" in second


def test_rate_and_eta_leave_out_the_first_batch(monkeypatch):
    """A compiled model's first step takes a minute: the line's rate, data share and ETA start after it."""
    now = [0.0]
    monkeypatch.setattr(metrics.time, "perf_counter", lambda: now[0])
    progress = ProgressLine("train 1", 101, print_freq=10, stream=io.StringIO())
    for i in range(1, 12):
        now[0] = 60.0 + 0.5 * (i - 1)  # batch 1 done at 60 s (the compile), then one batch of 8 each 0.5 s
        progress.update(i, 8, 0.1 if i == 1 else 0.05, lambda: {})
    line = progress.stream.getvalue().splitlines()[0]  # at batch 10: 9 batches in 4.5 s since the first
    assert "16 img/s" in line and "data 10%" in line and "ETA 00:45" in line  # 91 batches left at 0.5 s
    assert progress.rate == pytest.approx(88 / 65.0)  # the epoch's own rate keeps its whole time


@pytest.mark.parametrize("seconds, text", [(59.9, "00:59"), (61, "01:01"), (3725, "1:02:05"), (float("inf"), "--:--")])
def test_eta_format(seconds, text):
    assert metrics.fmt_time(seconds) == text


def test_process_age_counts_from_the_launcher(monkeypatch):
    monkeypatch.setenv(metrics.LAUNCH_ENV, str(metrics.time.time() - 12.0))
    assert 12.0 <= process_age() < 13.0
