"""Batch buffers in shared memory that the loader workers reuse, so a batch costs no fresh pages.

A torch ``DataLoader`` worker normally stacks each batch into a new array, copies it into a new
shared-memory segment to send it, and the main process maps that segment and touches every page
again. Each new page is a page fault on both sides: about 3 us a page on a virtual machine, which
is 0.2-0.5 ms per 224-px image, as much as resizing it. ``BatchSlots`` allocates, once and before
the workers start, a ring of ``depth`` buffers per worker. A worker stacks its batch straight into
its next slot and sends only the slot's address (``SlotRef``); the main process reads the slot in
place.

Why a slot is never overwritten while it is read: the ``DataLoader`` gives worker ``w`` its next
batch only when the main process takes one of ``w``'s batches, so a worker is never more than
``prefetch_factor`` batches ahead of the batch the main process holds. With ``depth =
prefetch_factor + 1`` the slot a worker writes is the one of a batch the consumer finished with
before it asked for the batch it holds. The consumer must therefore be done with a batch's pixels
(copied, normalized or pinned) when it asks for the next one; ``DeviceLoader`` is.
"""

from __future__ import annotations

import os
import uuid
import weakref
from dataclasses import dataclass

import torch

_LIVE: "weakref.WeakValueDictionary[str, BatchSlots]" = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class SlotRef:
    """Where a worker left a batch: ring ``token``, worker, slot, and the batch's shape."""

    token: str
    worker: int
    slot: int
    shape: tuple[int, ...]


class BatchSlots:
    """``depth`` uint8 buffers of ``capacity`` bytes for each of ``workers`` workers, in shared memory."""

    def __init__(self, workers: int, depth: int, capacity: int):
        self.token = uuid.uuid4().hex
        self.depth = depth
        self.capacity = capacity
        # A shared segment whose pages the kernel maps on first touch (by a worker's first batch in a
        # slot): gigabytes of slots cost nothing at start-up.
        storage = torch.UntypedStorage._new_shared(workers * depth * capacity)
        self.buffer = torch.empty(0, dtype=torch.uint8).set_(storage, 0, (workers, depth, capacity))
        self._count = 0  # batches this process has written; each worker process has its own copy
        _LIVE[self.token] = self

    def __setstate__(self, state):  # unpickled in a spawned worker
        self.__dict__.update(state)
        _LIVE[self.token] = self

    def take(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, SlotRef] | None:
        """In a worker: the next slot as a tensor of ``shape``, and its address; None if it does not fit."""
        info = torch.utils.data.get_worker_info()
        numel = 1
        for s in shape:
            numel *= s
        if info is None or info.id >= self.buffer.shape[0] or numel > self.capacity:
            return None
        slot = self._count % self.depth
        self._count += 1
        ref = SlotRef(self.token, info.id, slot, tuple(shape))
        return self.buffer[info.id, slot, :numel].view(shape), ref


def resolve(ref: SlotRef) -> torch.Tensor:
    """In the main process: the pixels a worker left at ``ref`` (a view, valid until the slot is reused)."""
    slots = _LIVE.get(ref.token)
    if slots is None:
        raise RuntimeError("a batch arrived for a loader that no longer exists")
    numel = 1
    for s in ref.shape:
        numel *= s
    return slots.buffer[ref.worker, ref.slot, :numel].view(ref.shape)


def outgoing_state(obj, small: tuple[str, ...]) -> dict:
    """``obj``'s state for the trip from a worker, its ``small`` tensors as arrays: they travel as bytes in
    the message, where each tensor would take a shared segment and a socket message of its own."""
    state = dict(obj.__dict__)
    for key in small:
        state[key] = state[key].numpy()
    return state


def incoming_state(obj, state: dict, small: tuple[str, ...]) -> None:
    """The receiving side of ``outgoing_state``: set ``obj``'s state, with its ``small`` arrays as tensors."""
    for key in small:
        state[key] = torch.from_numpy(state[key])
    obj.__dict__.update(state)


def shared_memory_free() -> int | None:
    """Bytes free in /dev/shm, where the slots live on Linux (None where there is no such folder)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize
