"""Old module paths kept as thin aliases of the modules that now hold their code.

``make_alias("nbtrade.backtesting", "nbtrade.engine.signals", ...)`` turns the (already imported) module
``nbtrade.backtesting`` into a view: reading any name, public or private, returns it from the first target
module that has it; setting one that a target has (``monkeypatch.setattr(nbtrade.backtesting, ...)`` in
tests) sets it there, so the code that reads it sees the change.
"""
from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any


class AliasModule(types.ModuleType):
    """A module forwarding attribute reads and writes to its targets (``__alias_of__``)."""

    def __getattr__(self, name: str) -> Any:
        for target in self.__dict__.get("__alias_of__", ()):
            mod = import_module(target)
            if hasattr(mod, name):
                return getattr(mod, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        for target in self.__dict__.get("__alias_of__", ()):
            mod = import_module(target)
            if name in vars(mod):
                # the target's value before the first forwarded write, for __delattr__ to restore
                self.__dict__.setdefault("__alias_saved__", {}).setdefault((target, name), vars(mod)[name])
                setattr(mod, name, value)
                return
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        # Deleting a forwarded name undoes the forwarded writes: the target gets its value back.
        # (pytest >= 9.1's monkeypatch.undo() deletes a name the module's own __dict__ did not hold.)
        if name not in self.__dict__:
            saved = self.__dict__.get("__alias_saved__", {})
            for (target, n) in list(saved):
                if n == name:
                    setattr(import_module(target), name, saved.pop((target, n)))
                    return
        super().__delattr__(name)

    def __dir__(self) -> list[str]:
        names = set(self.__dict__)
        for target in self.__dict__.get("__alias_of__", ()):
            names |= set(getattr(import_module(target), "__all__", ()))
        return sorted(names)


def make_alias(name: str, *targets: str) -> None:
    """Make the module ``name`` an alias of ``targets`` (searched in order)."""
    mod = sys.modules[name]
    mod.__dict__["__alias_of__"] = tuple(targets)
    mod.__class__ = AliasModule
