"""A local, stateful emulator of the parts of Stripe's API this project uses."""

from .emulator import Emulator

__all__ = ["Emulator"]
