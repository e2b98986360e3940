"""Primero v2 (CPIMS+ / GBVIMS+) adapter; the native record shapes are in `adapter`."""

from adapters.primero.adapter import EXTERNAL_REFERENCE, PrimeroAdapter

__all__ = ["EXTERNAL_REFERENCE", "PrimeroAdapter"]
