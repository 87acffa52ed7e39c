from tests.engine.conftest import checkpoint  # noqa: F401  (the small 32x32 model)
