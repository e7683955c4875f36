"""Per-user folders and files: settings, cache, and Slicer's own settings file.

Slicer stores its settings with Qt's INI format under the organisation domain ``slicer.org``
(Slicer ``Base/QTCore/qSlicerCoreApplication.cxx``: ``QSettings::setDefaultFormat(IniFormat)``),
so ``Slicer.ini`` is ``~/.config/slicer.org/Slicer.ini`` on Linux and macOS and
``%APPDATA%\\slicer.org\\Slicer.ini`` on Windows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

ENV_SETTINGS = "DICOMSERVERS_SETTINGS"
ENV_CACHE = "DICOMSERVERS_CACHE_DIR"


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return the folder for our own per-user configuration files."""
    env = os.environ if env is None else env
    if sys.platform == "win32":
        return Path(env.get("APPDATA") or _home(env) / "AppData" / "Roaming") / "DicomServers"
    base = env.get("XDG_CONFIG_HOME") or str(_home(env) / ".config")
    return Path(base) / "DicomServers"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return the per-user cache folder (study-list caches, folder indexes)."""
    env = os.environ if env is None else env
    if env.get(ENV_CACHE):
        return Path(env[ENV_CACHE])
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or _home(env) / "AppData" / "Local")
        return base / "DicomServers" / "cache"
    if sys.platform == "darwin":
        return _home(env) / "Library" / "Caches" / "DicomServers"
    return Path(env.get("XDG_CACHE_HOME") or _home(env) / ".cache") / "DicomServers"


def slicer_settings_file(env: Mapping[str, str] | None = None) -> Path:
    """Return where Slicer keeps ``Slicer.ini`` for this user."""
    env = os.environ if env is None else env
    if sys.platform == "win32":
        base = Path(env.get("APPDATA") or _home(env) / "AppData" / "Roaming")
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or _home(env) / ".config")
    return base / "slicer.org" / "Slicer.ini"


def default_settings_file(env: Mapping[str, str] | None = None) -> Path:
    """Return the settings file the CLI uses when ``--settings`` is not given.

    ``DICOMSERVERS_SETTINGS`` if set; else Slicer's own ``Slicer.ini`` when it exists (so the
    CLI manages the same list as Slicer); else ``DicomServers.ini`` in our config folder.
    """
    env = os.environ if env is None else env
    if env.get(ENV_SETTINGS):
        return Path(env[ENV_SETTINGS]).expanduser()
    slicer_ini = slicer_settings_file(env)
    if slicer_ini.is_file():
        return slicer_ini
    return config_dir(env) / "DicomServers.ini"
