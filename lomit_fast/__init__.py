"""lomit_fast: LOMIT local mask-based image-to-image translation, with fast kernels.

The package root stays light: importing lomit_fast (or lomit_fast.ops.reference) builds nothing
else. The names below are loaded on first use (PEP 562)."""
from .version import __version__

_LAZY = {"Config": "config", "ConfigError": "config", "ModelConfig": "config",
         "load_config": "config", "Critic": "models", "Generator": "models"}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'lomit_fast' has no attribute '{name}'")
