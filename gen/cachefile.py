"""Cache entries that cannot be half-read or silently corrupt: JSON with its own digest.

An entry is written to a unique temporary name and renamed into place, so a reader sees the
whole file or none; it carries the sha256 of its canonical JSON, so a damaged or hand-edited
entry (or one from before digests) reads as missing and is rebuilt, never trusted. The key
(the file name) is the caller's: a hash of every input and tool version.
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

__all__ = ["read_entry", "write_entry"]

_DIGEST = "_sha256"


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def read_entry(path: Path) -> dict | None:
    """The entry at ``path``, or ``None`` if it is missing, unreadable, not JSON, or its digest
    does not match its content."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    digest = data.pop(_DIGEST, None)
    return data if digest == _digest(data) else None


def write_entry(path: Path, data: dict) -> None:
    """Write ``data`` (JSON-able) to ``path`` atomically, with its digest."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({**data, _DIGEST: _digest(data)}, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
