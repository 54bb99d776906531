"""The one exception type for bad user input; the CLI turns it into a one-line message and exit code 2.
File-system errors about a user's path get a one-line message too (``os_error_message``)."""

from __future__ import annotations

import errno


class UsageError(Exception):
    """Bad input or bad usage: the message names the file or option and says what to do."""


class MissingExtra(UsageError):
    """An optional extra (timm, safetensors, onnx) is needed and not installed: the message says what to install."""


class CheckError(Exception):
    """A result failed its own check (exit code 1, one line): the message says what and what was kept."""


_OS_ERROR_HINTS = {
    errno.EEXIST: "a file is in the way where a folder is needed; choose another path or move the file",
    errno.ENOTDIR: "part of this path is a file, not a folder; choose another path",
    errno.EISDIR: "is a folder where a file is needed; give a file",
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied; choose a path you may use",
    errno.EPERM: "operation not permitted; choose a path you may use",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOSPC: "the disk is full; free some space or choose another path",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another path",
}


def os_error_message(e: OSError) -> str | None:
    """The one line for a file-system error about a path the user gave (a folder that is a file, no permission,
    a full disk), or None for other OS errors, which keep their traceback."""
    if e.filename is None or e.errno not in _OS_ERROR_HINTS:
        return None
    return f"{e.filename}: {_OS_ERROR_HINTS[e.errno]}"


def reason(e: BaseException, limit: int = 160) -> str:
    """A foreign exception's message for our one-line errors: its first sentence of its first line (libraries'
    messages run on, e.g. torch's zip reader adds two lines of advice), at most ``limit`` characters; its type's
    name when it has no message."""
    text = str(e).strip()
    if not text:
        return type(e).__name__
    return text.splitlines()[0].split(". ")[0][:limit]
