"""Versions of the software a result was made with, looked up one way.

Every record hamattn writes (the manifest's ``tools``, a synthesis report's
``tool_versions``, a board build's ``tools``, a simulation run's record) takes its versions
from here:

* :func:`dist_version` / :func:`dist_versions`: installed PyPI distributions (``None`` for
  one that is not installed);
* :func:`command_version`: the first line a program prints for its version flag
  (``["verilator", "--version"]``; ``None`` if it cannot be run);
* :func:`python_version`: the running interpreter's (``"3.12.3"``).

This module imports nothing else of the package.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

__all__ = ["dist_version", "dist_versions", "command_version", "python_version"]


def dist_version(dist):
    """The installed version of the PyPI distribution ``dist``, or ``None``."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def dist_versions(dists):
    """``{dist: dist_version(dist)}`` for each of ``dists``, in their order."""
    return {dist: dist_version(dist) for dist in dists}


def command_version(cmd, timeout=30):
    """The first line ``cmd`` prints (stdout, else stderr), or ``None`` if it cannot run."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def python_version():
    """The running Python's version (``platform.python_version()``)."""
    return platform.python_version()
