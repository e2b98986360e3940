"""nDelius (UK probation) adapter: case transfers and temporary moves as NSIs."""

from adapters.ndelius.adapter import NdeliusAdapter

__all__ = ["NdeliusAdapter"]
