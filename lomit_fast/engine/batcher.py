"""Dynamic batching: one worker thread owns the translator (and its device); callers from any
thread submit single translations and get a Future back.

    batcher = Batcher(translator, max_batch=32, max_wait_ms=5).start()
    result = batcher.submit(Item(x, exemplar)).result()     # Result(image, mask_in, mask_ex, ...)
    batcher.close()                                          # finishes every queued item first

The worker takes the first queued item, waits at most max_wait_ms for more (up to max_batch),
and runs them as one batch. Items that give masks and items that do not run as separate
sub-batches (the translator takes a mask for a whole batch or none). A sub-batch whose items
all carry the same exemplar_key (same exemplar, same exemplar mask) runs on the translator's
exemplar cache, as the batch CLI does with one exemplar: exact, and the exemplar is encoded once.
If a batch raises, its items are retried one by one, so a bad item fails alone. Items whose
caller gave up (a cancelled Future) are dropped before they run.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from ..ops.reference import upsample_mask


CACHED = 8  # exemplar caches kept: a few styles in use at once


class QueueFull(RuntimeError):
    """More items are waiting than the batcher accepts."""


class Closed(RuntimeError):
    """The batcher is shutting down and takes no new items."""


@dataclass
class Item:
    x: Tensor                          # (1, 3, S, S) in [-1, 1]
    exemplar: Tensor                   # (1, 3, S, S) in [-1, 1]
    mask_in: Optional[Tensor] = None   # (1, 1, S, S) in [0, 1]: replaces the predicted input mask
    mask_ex: Optional[Tensor] = None   # (1, 1, S, S) in [0, 1]
    exemplar_key: Optional[bytes] = None  # equal keys: the same exemplar and exemplar mask
    future: Future = field(default_factory=Future)


@dataclass
class Result:
    image: Tensor      # (1, 3, S, S) in [-1, 1], on the CPU
    mask_in: Tensor    # (1, 1, S, S) in [0, 1]: the mask that was used, at image resolution
    mask_ex: Tensor    # (1, 1, S, S) in [0, 1]
    batch_size: int    # how many items ran in the same translator call
    backend: str


@dataclass
class Stats:
    submitted: int = 0
    served: int = 0
    failed: int = 0
    cancelled: int = 0
    batches: int = 0
    largest_batch: int = 0


class Batcher:
    def __init__(self, translator, max_batch: int = 32, max_wait_ms: float = 5.0,
                 max_queue: int = 1024):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be 0 or more, got {max_wait_ms}")
        self.translator = translator
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.max_queue = max_queue
        self.stats = Stats()
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._lock = threading.Lock()  # submit and close: nothing is queued after the sentinel
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="lomit-batcher", daemon=True)
        self._caches: OrderedDict[bytes, object] = OrderedDict()  # worker only: no lock

    def start(self) -> "Batcher":
        self._thread.start()
        return self

    @property
    def pending(self) -> int:
        """Submitted and not yet answered: queued, being collected or running."""
        s = self.stats
        return s.submitted - s.served - s.failed - s.cancelled

    def submit(self, item: Item) -> Future:
        with self._lock:
            if self._closing:
                raise Closed("the service is shutting down")
            if self._queue.qsize() >= self.max_queue:
                raise QueueFull(f"{self.max_queue} requests are already waiting")
            self._queue.put(item)
            self.stats.submitted += 1
        return item.future

    def close(self, timeout: float | None = None) -> None:
        """Stop taking items, finish the queued ones, stop the worker."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the worker -----------------------------------------------------------------------
    def _run(self) -> None:
        last = False
        while not last:
            batch, last = self._collect()
            live = [item for item in batch if item.future.set_running_or_notify_cancel()]
            self.stats.cancelled += len(batch) - len(live)
            groups: dict[tuple[bool, bool], list[Item]] = {}
            for item in live:
                groups.setdefault((item.mask_in is None, item.mask_ex is None), []).append(item)
            for group in groups.values():
                self._run_group(group)

    def _collect(self) -> tuple[list[Item], bool]:
        """The next batch, and whether the close sentinel was seen (then it is the last)."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:  # once closing, queued items run at once: nobody else is coming
                item = (self._queue.get(timeout=remaining) if remaining > 0 and not self._closing
                        else self._queue.get_nowait())
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run_group(self, group: list[Item]) -> None:
        try:
            results = self._translate(group)
        except Exception as e:  # noqa: BLE001  (reported to the caller, the worker goes on)
            if len(group) > 1:
                for item in group:  # find the culprit: its batch-mates still get results
                    self._run_group([item])
                return
            self.stats.failed += 1
            group[0].future.set_exception(e)
            return
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(group))
        for item, result in zip(group, results):
            self.stats.served += 1
            item.future.set_result(result)

    def _translate(self, group: list[Item]) -> list[Result]:
        def cat(name: str) -> Optional[Tensor]:
            parts = [getattr(item, name) for item in group]
            return None if parts[0] is None else torch.cat(parts)

        size = group[0].x.shape[-2:]
        key = group[0].exemplar_key
        if key is not None and all(item.exemplar_key == key for item in group):
            images, m_in, m_ex = self.translator.translate(cat("x"), self._cache(group[0]),
                                                           cat("mask_in"))
        else:
            images, m_in, m_ex = self.translator.translate(cat("x"), cat("exemplar"),
                                                           cat("mask_in"), cat("mask_ex"))
        images = images.cpu()
        m_in = upsample_mask(m_in.float(), size).clamp(0, 1).cpu()
        m_ex = upsample_mask(m_ex.float(), size).clamp(0, 1).cpu()
        backend = self.translator.backend
        return [Result(images[i:i + 1], m_in[i:i + 1], m_ex[i:i + 1], len(group), backend)
                for i in range(len(group))]

    def _cache(self, item: Item):
        """The translator's ExemplarCache of this item's exemplar (the last CACHED are kept)."""
        cache = self._caches.pop(item.exemplar_key, None)
        if cache is None:
            cache = self.translator.cache_exemplar(item.exemplar, item.mask_ex)
        self._caches[item.exemplar_key] = cache
        while len(self._caches) > CACHED:
            self._caches.popitem(last=False)
        return cache
