"""The Batcher on a stand-in translator: who gets which result, failures that stay with their
item, cancelled items that never run, mask groups, the queue limit, close."""
import threading

import pytest
import torch

from lomit_fast.engine.batcher import Batcher, Closed, Item, QueueFull

BAD = -1.0  # an input the stand-in refuses, like a model error on one image of a batch


class Stub:
    """translate(x, ex, mask_in, mask_ex) -> (x + ex, masks): each output says whose it is."""
    backend = "stub"

    def __init__(self):
        self.gate = threading.Event()      # closed: translate waits (items pile up in the queue)
        self.entered = threading.Event()   # set when a call has started
        self.calls: list[dict] = []

    def translate(self, x, exemplar, mask_in=None, mask_ex=None):
        self.entered.set()
        assert self.gate.wait(10)
        self.calls.append({"ids": x[:, 0, 0, 0].tolist(), "mask_in": mask_in is not None})
        if (x == BAD).any():
            raise ValueError("bad input")
        n = x.shape[0]
        m_in = mask_in if mask_in is not None else torch.full((n, 1, 2, 2), 0.25)
        m_ex = mask_ex if mask_ex is not None else torch.full((n, 1, 2, 2), 0.75)
        return x + exemplar, m_in, m_ex


def item(i: float, mask_in: bool = False) -> Item:
    return Item(torch.full((1, 3, 8, 8), float(i)), torch.full((1, 3, 8, 8), 100.0),
                torch.ones(1, 1, 8, 8) if mask_in else None)


@pytest.fixture
def stub():
    return Stub()


def test_results_go_to_their_callers_in_batches_of_at_most_max_batch(stub):
    batcher = Batcher(stub, max_batch=4, max_wait_ms=0).start()
    items = [item(i) for i in range(10)]
    futures = [batcher.submit(it) for it in items]  # piled up while the gate is closed
    stub.gate.set()
    for i, future in enumerate(futures):
        result = future.result(10)
        assert torch.all(result.image == i + 100)  # its own x + exemplar
        assert result.image.shape == (1, 3, 8, 8) and result.mask_in.shape == (1, 1, 8, 8)
        assert torch.allclose(result.mask_in, torch.tensor(0.25))  # upsampled to image size
        assert result.backend == "stub"
    batcher.close(10)
    assert sorted(i for call in stub.calls for i in call["ids"]) == list(range(10))
    assert max(len(call["ids"]) for call in stub.calls) == 4  # batched, never more than 4
    assert batcher.stats.served == 10 and batcher.pending == 0


def test_a_failing_item_fails_alone(stub):
    batcher = Batcher(stub, max_batch=8, max_wait_ms=0).start()
    blocker = batcher.submit(item(50))
    assert stub.entered.wait(10)
    futures = [batcher.submit(item(BAD if i == 3 else i)) for i in range(6)]
    stub.gate.set()
    assert blocker.result(10).batch_size == 1
    for i, future in enumerate(futures):
        if i == 3:
            with pytest.raises(ValueError, match="bad input"):
                future.result(10)
        else:
            assert torch.all(future.result(10).image == i + 100)
    batcher.close(10)
    assert batcher.stats.failed == 1 and batcher.stats.served == 6
    assert [6] == [len(c["ids"]) for c in stub.calls if len(c["ids"]) > 1]  # tried together first


def test_items_with_and_without_masks_run_as_separate_groups(stub):
    batcher = Batcher(stub, max_batch=8, max_wait_ms=0).start()
    blocker = batcher.submit(item(50))
    assert stub.entered.wait(10)
    futures = [batcher.submit(item(i, mask_in=i % 2 == 1)) for i in range(6)]
    stub.gate.set()
    blocker.result(10)
    for i, future in enumerate(futures):
        expected = 1.0 if i % 2 else 0.25  # the given mask, or the stand-in's prediction
        assert torch.allclose(future.result(10).mask_in, torch.tensor(expected))
    batcher.close(10)
    groups = {tuple(c["ids"]): c["mask_in"] for c in stub.calls[1:]}
    assert groups == {(0.0, 2.0, 4.0): False, (1.0, 3.0, 5.0): True}


def test_a_cancelled_item_never_runs(stub):
    batcher = Batcher(stub, max_batch=8, max_wait_ms=0).start()
    first = batcher.submit(item(1))
    assert stub.entered.wait(10)  # the worker is busy with the first
    second = batcher.submit(item(2))
    assert second.cancel()  # its caller hung up
    third = batcher.submit(item(3))
    stub.gate.set()
    assert first.result(10) and third.result(10)
    batcher.close(10)
    assert [c["ids"] for c in stub.calls] == [[1.0], [3.0]]
    assert batcher.stats.cancelled == 1 and batcher.pending == 0


def test_queue_limit_and_close_finishes_queued_items(stub):
    batcher = Batcher(stub, max_batch=2, max_wait_ms=0, max_queue=3).start()
    futures = [batcher.submit(item(0))]
    assert stub.entered.wait(10)  # taken by the worker: no longer queued
    futures += [batcher.submit(item(i)) for i in (1, 2, 3)]
    with pytest.raises(QueueFull):
        batcher.submit(item(4))
    closer = threading.Thread(target=batcher.close, args=(10,))
    closer.start()
    while not batcher._closing:  # close() has begun: new items are refused ...
        pass
    with pytest.raises(Closed):
        batcher.submit(item(5))
    stub.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert [torch.all(f.result(0).image == i + 100) for i, f in enumerate(futures)] == [True] * 4
    assert batcher.stats.served == 4  # ... and the queued ones were finished before it returned


class CachingStub(Stub):
    """Also cache_exemplar: a cache is the exemplar tensor itself, counted."""

    def __init__(self):
        super().__init__()
        self.cached = 0

    def cache_exemplar(self, exemplar, mask_ex=None):
        self.cached += 1
        return ("cache", exemplar)

    def translate(self, x, exemplar, mask_in=None, mask_ex=None):
        if isinstance(exemplar, tuple):
            self.calls.append({"cached": True})
            exemplar = exemplar[1]
        return super().translate(x, exemplar, mask_in, mask_ex)


def test_items_sharing_an_exemplar_run_on_its_cache():
    stub = CachingStub()
    stub.gate.set()
    batcher = Batcher(stub, max_batch=8, max_wait_ms=0).start()
    shared = [Item(torch.full((1, 3, 8, 8), float(i)), torch.full((1, 3, 8, 8), 100.0),
                   exemplar_key=b"a") for i in range(3)]
    for it in shared:  # one at a time: three batches, one exemplar cache
        assert torch.all(batcher.submit(it).result(10).image == it.x[0, 0, 0, 0] + 100)
    other = Item(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 7.0), exemplar_key=b"b")
    assert torch.all(batcher.submit(other).result(10).image == 7)
    batcher.close(10)
    assert stub.cached == 2 and sum("cached" in c for c in stub.calls) == 4


def test_bad_settings_are_refused(stub):
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(stub, max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        Batcher(stub, max_wait_ms=-1)
