"""One registry for every extension point: model types of both engines, training modes, live
data sources.

papermill's habit: a registry is a dict with ``register(name, obj)`` and a ``get(name)`` whose
error names the missing key and the known ones. A new model type, training mode or data source is
then one registration, never an edit of an ``if`` chain, and every registry fails the same way:

>>> from workbench.registry import Registry
>>> colours = Registry("colour")
>>> _ = colours.register("red", 1)
>>> colours.get("red")
1
>>> colours.get("blue")
Traceback (most recent call last):
...
workbench.registry.UnknownNameError: unknown colour 'blue'; known: 'red'
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from workbench.errors import ConfigError, ParameterError

T = TypeVar("T")


class UnknownNameError(ConfigError, ParameterError):
    """Raised when a registry has no entry of that name.

    The name comes from a configuration file or a parameter, so the error is both a
    :class:`~workbench.errors.ConfigError` and a :class:`~workbench.errors.ParameterError`:
    callers of either engine catch it as they always did.
    """


class Registry(Generic[T]):
    """Named objects of one kind, registered at import time or by a user.

    Parameters
    ----------
    kind : what the names name (``"model"``, ``"training mode"``); used in error messages.
    context : optional prefix of error messages (``"config key 'model.type'"``).
    check : optional ``check(name, obj)`` run on registration; raises to refuse an object.
    """

    def __init__(self, kind: str, *, context: str = "",
                 check: Callable[[str, T], None] | None = None):
        self.kind, self.context, self._check = kind, context, check
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        """Register ``obj`` as ``name`` (replacing an earlier one); return ``obj``."""
        if self._check is not None:
            self._check(name, obj)
        self._items[str(name)] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` if registered (tests registering temporary entries use this)."""
        self._items.pop(str(name), None)

    def get(self, name: str) -> T:
        """Return the object registered as ``name``.

        Raises
        ------
        UnknownNameError : naming ``name`` and every known name.
        """
        try:
            return self._items[str(name)]
        except KeyError:
            known = ", ".join(repr(k) for k in self.names()) or "none"
            prefix = f"{self.context}: " if self.context else ""
            raise UnknownNameError(f"{prefix}unknown {self.kind} {str(name)!r}; "
                                   f"known: {known}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name) -> bool:
        return str(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
