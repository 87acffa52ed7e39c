"""The backend registry and the public ops' argument checks."""
import pytest
import torch

from lomit_fast import ops
from lomit_fast.ops import BackendError, backends


def test_reference_always_available():
    assert "reference" in ops.available_backends("cpu")
    assert ops.resolve("reference", "cpu") == "reference"


def test_unknown_backend_is_a_clear_error():
    x = torch.randn(1, 2, 3, 3)
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        ops.instance_norm(x, backend="nope")
    with pytest.raises(BackendError, match="nope"):
        with ops.use_backend("nope"):
            pass


def test_unavailable_backend_names_the_reason():
    backends.register_backend(backends.Backend("broken", ("cpu",), lambda: "it is broken", dict))
    try:
        with pytest.raises(BackendError, match="'broken'.*it is broken"):
            ops.resolve("broken", "cpu")
    finally:
        backends._BACKENDS.pop("broken")


def test_context_manager_and_environment_choose(monkeypatch):
    calls = []
    fake = {"instance_norm": lambda *a: calls.append("fake") or a[0]}
    backends.register_backend(backends.Backend("fake", ("cpu",), lambda: None, lambda: fake))
    try:
        x = torch.randn(1, 2, 3, 3)
        with ops.use_backend("fake"):
            ops.instance_norm(x)
        assert calls == ["fake"]
        ops.instance_norm(x)  # auto on CPU never picks the fake one
        assert calls == ["fake"]
        monkeypatch.setenv("LOMIT_BACKEND", "fake")
        ops.instance_norm(x)
        assert calls == ["fake", "fake"]
        ops.instance_norm(x, backend="reference")  # the keyword beats the environment
        assert calls == ["fake", "fake"]
        monkeypatch.setenv("LOMIT_BACKEND", "missing")
        with pytest.raises(BackendError, match="LOMIT_BACKEND"):
            ops.instance_norm(x)
        # A backend that does not fuse an op falls back to the spec for it.
        with ops.use_backend("fake"):
            ops.hain(torch.randn(1, 2, 3, 3), torch.rand(1, 1, 3, 3), *[torch.ones(1, 2)] * 4)
    finally:
        backends._BACKENDS.pop("fake")
        backends._impl_cache.pop("fake", None)


def test_backend_must_support_the_device():
    backends.register_backend(backends.Backend("gpu_only", ("cuda",), lambda: None, dict))
    try:
        with pytest.raises(BackendError, match="does not run on cpu"):
            ops.resolve("gpu_only", "cpu")
    finally:
        backends._BACKENDS.pop("gpu_only")


@pytest.mark.parametrize("bad, message", [
    (dict(c=torch.randn(2, 3, 4)), "c must be 4-D"),
    (dict(c=torch.ones(2, 3, 4, 4, dtype=torch.int64)), "c must be a floating tensor"),
    (dict(mask=torch.rand(2, 3, 4, 4)), r"mask must have shape \(2, 1, 4, 4\)"),
    (dict(mu_f=torch.randn(2, 4)), r"mu_f must have shape \(2, 3\)"),
    (dict(sigma_b=torch.randn(1, 3)), r"sigma_b must have shape \(2, 3\)"),
])
def test_hain_argument_errors(bad, message):
    args = dict(c=torch.randn(2, 3, 4, 4), mask=torch.rand(2, 1, 4, 4), mu_f=torch.randn(2, 3),
                sigma_f=torch.rand(2, 3), mu_b=torch.randn(2, 3), sigma_b=torch.rand(2, 3))
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        ops.hain(**args)


def test_instance_norm_argument_errors():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        ops.instance_norm(x, torch.ones(4))
    with pytest.raises(ValueError, match="activation must be one of"):
        ops.instance_norm(x, activation="gelu")
