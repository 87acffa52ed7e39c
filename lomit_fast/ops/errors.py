"""The error type of the ops layer, in a leaf module so that every ops module can raise it
without importing the registry."""


class BackendError(RuntimeError):
    """An unknown backend, or one that cannot run here."""
