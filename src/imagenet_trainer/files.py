"""File helpers every layer may use: atomic writes that never leave a half-written file behind.

A write goes to a temporary file in the same folder, is flushed to disk, then renamed over the target, so
a kill or a failure during it leaves the old file intact; a disk that refuses the write (full, read-only,
no permission) is one line naming the file.
"""

from __future__ import annotations

import errno
import operator
import os
import shutil
from pathlib import Path

from imagenet_trainer.errors import UsageError


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _sync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _write_failure(path: Path, e: BaseException) -> UsageError | None:
    """A one-line error for a write the disk refused (full, read-only, no permission, no such folder), or None for
    other errors. torch.save reports a full disk from its zip writer as a RuntimeError."""
    if isinstance(e, OSError) and e.errno == errno.ENOENT:
        reason, advice = f"no folder {path.parent}", "create it or write elsewhere"
    elif isinstance(e, OSError):
        reason, advice = e.strerror or str(e), "free some disk space or write elsewhere"
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            advice = "write elsewhere"
    elif isinstance(e, RuntimeError) and ("PytorchStreamWriter" in str(e) or "inline_container" in str(e)):
        reason, advice = "the write failed", "free some disk space or write elsewhere"
        try:
            reason += f"; {shutil.disk_usage(path.parent).free / 2**20:,.0f} MB free there"
        except OSError:
            pass
    else:
        return None
    kept = "; an earlier file of that name is intact" if path.exists() else ""
    return UsageError(f"{path}: could not be written ({reason}){kept}; {advice}")


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it into place."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        error = _write_failure(path, e)
        if error is not None:
            raise error from None
        raise
    _sync_dir(path.parent)


def walk_folders(root: str | os.PathLike):
    """Each folder under ``root`` (itself included) once, with its entries that are not hidden: ``(path,
    [os.DirEntry])``, depth first in name order. Links are followed, and a folder reached again (a link loop,
    or two links to one folder) is skipped, so every walk of the project ends and sees a folder once."""
    seen: set[str] = set()
    stack = [os.fspath(root)]
    while stack:
        d = stack.pop()
        real = os.path.realpath(d)
        if real in seen:
            continue
        seen.add(real)
        with os.scandir(d) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=operator.attrgetter("name"))
        yield d, entries
        stack.extend(e.path for e in reversed(entries) if e.is_dir())


def walk_files(root: str | os.PathLike, keep=lambda name: True) -> list[str]:
    """The files under ``root`` whose name ``keep`` accepts, each real file once (a file reached through two
    links is listed at its first path), in walk order (``walk_folders``)."""
    out, seen = [], set()
    for _, entries in walk_folders(root):
        for e in entries:
            if keep(e.name) and e.is_file():
                real = os.path.realpath(e.path)
                if real not in seen:
                    seen.add(real)
                    out.append(e.path)
    return out


TEXT_ERRORS = "surrogateescape"  # a file name that is not UTF-8 is written back as the bytes it was


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """``text`` as UTF-8, atomically; any file name in it, UTF-8 or not, goes through (``TEXT_ERRORS``)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8", TEXT_ERRORS)))


def append_text(path: str | os.PathLike, text: str) -> None:
    """``text`` appended as UTF-8 (a log's line), any file name in it included (``TEXT_ERRORS``)."""
    with open(path, "a", encoding="utf-8", errors=TEXT_ERRORS) as f:
        f.write(text)


def shown(name: str) -> str:
    """A file name fit for a chart or a JSON string: bytes that are not UTF-8 shown as U+FFFD (text files and
    the console get the bytes themselves, ``TEXT_ERRORS``)."""
    return name.encode("utf-8", TEXT_ERRORS).decode("utf-8", "replace")


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writes killed mid-way left in ``folder`` (``.NAME.PID.tmp``, whose process
    is gone: a SIGKILL during a checkpoint's save leaves one of 18-140 MB); the paths removed."""
    removed = []
    for p in Path(folder).glob(".*.*.tmp"):
        pid = p.name.rsplit(".", 2)[-2]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def check_writable(folder: str | os.PathLike, option: str, path: str | os.PathLike | None = None) -> None:
    """Make ``folder`` (and its parents) and check a file can be written there: a one-line error naming it and
    ``option`` now, not after minutes of loading data, naming a temporary file. ``path``: the file the user
    named, where ``folder`` is its parent."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _tmp_name(folder / "write-check")
        probe.write_bytes(b"")
        probe.unlink()
    except (FileExistsError, NotADirectoryError):  # mkdir met a file where a folder is needed
        what = (f"{path}: part of this path is a file, not a folder; choose another path" if path is not None else
                f"{folder}: a file is in the way where a folder is needed; choose another path or move the file")
        raise UsageError(f"{option} {what}") from None
    except OSError as e:
        raise UsageError(f"{option} {folder}: cannot write there ({e.strerror or e}); choose a folder you may "
                         "write to") from None
