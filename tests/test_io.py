"""Atomic writes: all or nothing, readable by others."""
import pytest

from lomit_fast import io


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_atomic_writes_are_readable_by_others(tmp_path):
    with io.atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("x")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644


def test_atomic_named_path_gives_the_writer_the_final_name(tmp_path):
    target = tmp_path / "model.pt"
    with io.atomic_named_path(target) as tmp:
        assert tmp.name == "model.pt" and tmp.parent != tmp_path
        tmp.write_text("x")
    assert target.read_text() == "x" and list(tmp_path.iterdir()) == [target]
    with pytest.raises(RuntimeError):
        with io.atomic_named_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "x" and list(tmp_path.iterdir()) == [target]
