"""A content-addressed cache of synthesis results.

A job's key is the SHA-256 of everything that decides its result: the Verilog text, the
scripts and tool arguments, the tool versions and the target. A result found under that key
in the cache directory is returned without running any tool.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile

__all__ = ["DEFAULT_CACHE_DIR", "cache_key", "cache_load", "cache_store", "resolve_cache_dir"]

#: relative to the current directory, like the rest of ``build/``
DEFAULT_CACHE_DIR = pathlib.Path("build") / "synth-cache"

#: bump when the meaning of a cached result changes
CACHE_FORMAT = 3          # 3: placed results name their critical path


def resolve_cache_dir(cache_dir):
    """``None`` -> the default directory, ``False`` -> no caching, else the path."""
    if cache_dir is False:
        return None
    return pathlib.Path(DEFAULT_CACHE_DIR if cache_dir is None else cache_dir)


def cache_key(**parts):
    """SHA-256 (hex) of ``parts``, a JSON-serialisable mapping (strings, numbers, lists,
    dicts); key order does not matter."""
    blob = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _path(cache_dir, key):
    return pathlib.Path(cache_dir) / key[:2] / f"{key}.json"


def cache_load(cache_dir, key):
    """The cached result for ``key``, or None."""
    if cache_dir is None:
        return None
    path = _path(cache_dir, key)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def cache_store(cache_dir, key, result):
    """Store ``result`` under ``key`` (atomically: a reader never sees half a file)."""
    if cache_dir is None:
        return
    path = _path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
