"""lomit_fast: LOMIT local mask-based image-to-image translation, with fast kernels."""
__version__ = "0.1.0"

from .config import Config, ConfigError, ModelConfig, load_config  # noqa: E402
from .models import Critic, Generator  # noqa: E402

__all__ = ["Config", "ConfigError", "ModelConfig", "load_config", "Critic", "Generator",
           "__version__"]
