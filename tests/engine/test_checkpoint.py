import os
import pickle

import pytest
import torch

from imagenet_trainer import files
from imagenet_trainer.engine import checkpoint as ck
from imagenet_trainer.errors import UsageError


def _record(v: float) -> dict:
    return {"format": ck.CHECKPOINT_FORMAT, "state_dict": {"w": torch.full((3,), v)}, "epoch": 1}


def test_atomic_save_and_load(tmp_path):
    p = tmp_path / "c.pt"
    ck.atomic_save(_record(1.0), p)
    assert ck.safe_load(p)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]
    assert [f.name for f in tmp_path.iterdir()] == ["c.pt"]


def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    p = tmp_path / "c.pt"
    ck.atomic_save(_record(1.0), p)

    def broken_save(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(UsageError, match=r"c\.pt: could not be written \(No space left on device\); an earlier file "
                                         "of that name is intact; free some disk space or write elsewhere$"):
        ck.atomic_save(_record(2.0), p)
    monkeypatch.undo()
    assert ck.safe_load(p)["state_dict"]["w"][0].item() == 1.0
    assert [f.name for f in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_full_disk_in_torch_zip_writer_is_one_line(tmp_path, monkeypatch):
    def zip_writer_fails(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 25893824 vs 25893720")

    monkeypatch.setattr(torch, "save", zip_writer_fails)
    with pytest.raises(UsageError, match=r"could not be written \(the write failed; [\d,]+ MB free there\)"):
        ck.atomic_save(_record(2.0), tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_or_no_permission_gets_its_own_advice(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match=rf"m\.pt: could not be written \(no folder {tmp_path / 'nowhere'}\); create it "
                                         "or write elsewhere$"):
        ck.atomic_save(_record(1.0), tmp_path / "nowhere" / "m.pt")

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files, "open", refused, raising=False)
    with pytest.raises(UsageError, match=r"m\.pt: could not be written \(Permission denied\); write elsewhere$"):
        ck.atomic_save(_record(1.0), tmp_path / "m.pt")


def test_other_errors_pass_through(tmp_path):
    with pytest.raises(ZeroDivisionError):
        ck.atomic_write(tmp_path / "x", lambda f: 1 / 0)
    assert list(tmp_path.iterdir()) == []


def test_link_is_a_second_name_that_outlives_the_first(tmp_path):
    a, b = tmp_path / "model_03.pt", tmp_path / "model_best.pt"
    ck.atomic_save(_record(1.0), b)
    ck.atomic_save(_record(3.0), a)
    ck.atomic_link(a, b, _record(3.0))  # replaces the old best
    assert os.path.samefile(a, b)
    ck.atomic_save(_record(4.0), a)  # a later save replaces the first name only
    a.unlink()
    assert ck.safe_load(b)["state_dict"]["w"][0].item() == 3.0
    assert sorted(f.name for f in tmp_path.iterdir()) == ["model_best.pt"]


def test_link_falls_back_to_a_save(tmp_path, monkeypatch):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    ck.atomic_save(_record(1.0), a)

    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    ck.atomic_link(a, b, _record(1.0))
    assert not os.path.samefile(a, b) and ck.safe_load(b)["state_dict"]["w"][0].item() == 1.0
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.pt", "b.pt"]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_checkpoint_that_runs_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.pt"
    torch.save({"format": ck.MODEL_FORMAT, "payload": _Exploit()}, p)
    with pytest.raises(UsageError, match="refused to load"):
        ck.safe_load(p)
    assert not (tmp_path / "pwned").exists()


def test_raw_pickle_is_refused(tmp_path):
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(UsageError):
        ck.safe_load(p)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content,match", [
    (b"", r"bad.pt: empty file, not a model or checkpoint$"),
    (b"garbage" * 10, r"bad.pt: not a model or checkpoint file \(torch.save did not write it\)$"),
    (b"hello\n", r"bad.pt: not a model or checkpoint file \(torch.save did not write it\)$"),  # was a KeyError
    (b"PK\x03\x04garbage", r"bad.pt: not a readable checkpoint \(.*zip archive[^.]*\); the file may be truncated"),
    (b"\x80\x02garbage", r"bad.pt: not a readable checkpoint \(.*\); the file may be truncated or corrupt$"),
])
def test_corrupt_file(tmp_path, content, match):
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(UsageError, match=match):
        ck.safe_load(p)


def test_truncated_checkpoint(tmp_path):
    p = tmp_path / "c.pt"
    ck.atomic_save(_record(1.0), p)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        ck.safe_load(p)


def test_foreign_file(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, p)
    with pytest.raises(UsageError, match="not an imagenet-trainer"):
        ck.safe_load(p)
    with pytest.raises(UsageError, match="no such file"):
        ck.safe_load(tmp_path / "missing.pt")


def test_background_writer_runs_in_order_and_raises_errors():
    from imagenet_trainer.engine.checkpoint import BackgroundWriter, cpu_copy

    done = []
    w = BackgroundWriter()
    for i in range(3):
        w.submit(lambda i=i: done.append(i))
    w.close()
    assert done == [0, 1, 2]
    w = BackgroundWriter()
    w.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        w.close()
    t = torch.ones(3)
    c = cpu_copy({"a": [t], "b": 1})
    t.add_(1)
    assert torch.equal(c["a"][0], torch.ones(3)) and c["b"] == 1  # a copy, not a view of live weights
