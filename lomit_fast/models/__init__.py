"""LOMIT networks: the generator (E_c, M, E_s, MLPs, HAIN, G) and the critic."""
from .discriminator import Critic
from .generator import Generator

__all__ = ["Critic", "Generator"]
