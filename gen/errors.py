"""The exception type the command line turns into a single ``sparsegen: error:`` line, and the
check of the folders sparsegen writes its caches and builds into."""

import os
import tempfile
from pathlib import Path

__all__ = ["UsageError", "usable_folder"]


class UsageError(Exception):
    """Bad input from the user or their machine: unknown design or parameter, bad value, bad
    tensor, bad path, an unusable cache folder.

    The message is one line that names the offending thing; the CLI prints it and exits 2.
    Anything else that escapes a command is a bug in sparsegen, reported as one.
    """


_usable: set[Path] = set()


def usable_folder(path: Path, setting: str) -> Path:
    """``path``, created if needed, once it is known to be a folder this process can write.

    Parameters
    ----------
    path:
        The folder (a cache or build root).
    setting:
        How the user chooses it (e.g. ``"SPARSEGEN_CACHE_DIR"``), named in the error.

    Raises
    ------
    UsageError
        ``path`` is a file, cannot be created, or refuses a file (read-only, full, no
        permission); one line naming the folder, the setting and the reason.
    """
    path = Path(path)
    if path in _usable:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except FileExistsError:
        raise UsageError(f"cannot use {path} (set by {setting}) as a folder: it is a "
                         f"file") from None
    except OSError as exc:
        raise UsageError(f"cannot use {path} (set by {setting}) as a folder: "
                         f"{exc.strerror or exc}") from None
    if not os.path.isdir(path):
        raise UsageError(f"cannot use {path} (set by {setting}) as a folder")
    _usable.add(path)
    return path
