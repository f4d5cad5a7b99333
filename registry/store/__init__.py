"""Registry stores: the interface and its implementations."""

from registry.store.base import RegistryStore

__all__ = ["RegistryStore"]
