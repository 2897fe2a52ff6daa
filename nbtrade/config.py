"""Configuration: flags > environment variables > TOML file > defaults.

``NBTRADE_HOME`` (default: the per-user data directory, ``$XDG_DATA_HOME/nbtrade``
or ``~/.local/share/nbtrade``) holds ``data/`` (HDF5 store), ``cache/`` and
``reports/``. An optional TOML file (``$NBTRADE_CONFIG``, else
``$NBTRADE_HOME/config.toml``) may set any key of :class:`Settings`.
Environment variables are ``NBTRADE_<KEY>`` in upper case.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def default_home() -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/nbtrade`` or ``~/.local/share/nbtrade``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "nbtrade"


def home() -> Path:
    """``$NBTRADE_HOME``, else :func:`default_home`: the root of data, caches and reports."""
    env = os.environ.get("NBTRADE_HOME")
    return Path(env).expanduser() if env else default_home()


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Paths are absolute."""

    home: Path
    store: Path
    cache: Path
    reports: Path
    base_url: str | None = None
    seed: int = 42

    @property
    def data(self) -> Path:
        return self.store


def _coerce(name: str, value: Any) -> Any:
    if name in ("home", "store", "cache", "reports"):
        return Path(os.path.expanduser(str(value))).absolute()
    if name == "seed":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"seed must be an integer, got {value!r}") from None
    return value


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                  config_file: str | os.PathLike | None = None) -> Settings:
    """Resolve settings from flags, environment and the TOML file, in that order of precedence."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    names = [f.name for f in fields(Settings)]

    home = Path(flags.get("home") or env.get("NBTRADE_HOME") or default_home()).expanduser().absolute()
    path = Path(config_file or env.get("NBTRADE_CONFIG") or home / "config.toml")
    file_values: dict[str, Any] = {}
    if path.exists():
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
        unknown = set(file_values) - set(names)
        if unknown:
            raise ValueError(f"config file {path}: unknown keys {sorted(unknown)}; known: {names}")
        if "home" in file_values and not (flags.get("home") or env.get("NBTRADE_HOME")):
            home = _coerce("home", file_values["home"])

    settings = Settings(home=home, store=home / "data", cache=home / "cache", reports=home / "reports")
    resolved: dict[str, Any] = {}
    for name in names:
        if name == "home":
            continue
        for source in (flags, {k[8:].lower(): v for k, v in env.items() if k.startswith("NBTRADE_")}, file_values):
            if name in source:
                resolved[name] = _coerce(name, source[name])
                break
    return replace(settings, **resolved)
