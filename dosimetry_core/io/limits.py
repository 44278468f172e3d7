"""Bounded reads of user-named files: a regular file, at most ``max_bytes``, or a refusal.

A path given on the command line or in a form may name ``/dev/zero``, a FIFO, a
directory or a file of many gigabytes; ``Path.read_bytes`` would then block or
read until memory runs out.  These helpers look at the file before opening it
(no blocking open of a FIFO), check again on the open descriptor, and never read
more than ``max_bytes + 1`` bytes.  Every refusal is an
:class:`~dosimetry_core.errors.InvalidInputError` whose ``field`` is ``what``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dosimetry_core.errors import InvalidInputError

__all__ = ["MIB", "read_bytes_limited", "read_text_limited"]

MIB = 1024 * 1024
"""Bytes per mebibyte."""


def _label(what: str) -> str:
    return "--" + what.replace("_", "-") if what.isidentifier() and what != "file" else what


def read_bytes_limited(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, refused beyond ``max_bytes``.

    Parameters
    ----------
    path
        File to read.
    max_bytes
        Largest accepted size in bytes.
    what
        The field or option the path came from (e.g. ``"tissue_table"``,
        ``"file"``); it is the error's ``field`` and is named in its message.

    Raises
    ------
    InvalidInputError
        Missing or unreadable file, not a regular file (device, FIFO,
        directory), or larger than ``max_bytes``.
    """
    p = Path(path)
    name = _label(what)
    try:
        st = os.stat(p)
    except FileNotFoundError as exc:
        raise InvalidInputError(f"{name}: file not found: {p}", field=what) from exc
    except OSError as exc:
        raise InvalidInputError(
            f"{name}: cannot read {p} ({exc.strerror or exc})", field=what
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(
            f"{name}: {p} is not a regular file (a device, pipe or folder cannot be read)",
            field=what,
        )
    if st.st_size > max_bytes:
        raise InvalidInputError(
            f"{name}: {p} is {st.st_size} bytes, more than the {max_bytes} accepted", field=what
        )
    try:
        with open(p, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the stat
                raise InvalidInputError(f"{name}: {p} is not a regular file", field=what)
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidInputError(
            f"{name}: cannot read {p} ({exc.strerror or exc})", field=what
        ) from exc
    if len(data) > max_bytes:
        raise InvalidInputError(
            f"{name}: {p} is more than the {max_bytes} bytes accepted", field=what
        )
    return data


def read_text_limited(path: str | Path, max_bytes: int, what: str, encoding: str = "utf-8") -> str:
    """The text of the regular file ``path`` (:func:`read_bytes_limited`, then decoded).

    Raises
    ------
    InvalidInputError
        As :func:`read_bytes_limited`, or the bytes are not valid ``encoding``.
    """
    data = read_bytes_limited(path, max_bytes, what)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{_label(what)}: {path} is not {encoding} text ({exc.reason})", field=what
        ) from exc
