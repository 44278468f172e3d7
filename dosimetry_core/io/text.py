"""Text from DICOM headers and file names made safe to print on a terminal.

Header values (Patient's Name, Series Description, ...) and file names are
chosen by whoever wrote the file.  Printed raw, a carriage return or line feed
forges extra report lines, an ANSI escape sequence (ESC, ECMA-48) recolours or
clears the terminal, and a file name that is not valid UTF-8 (kept by Python as
lone surrogates, PEP 383) makes writing to a UTF-8 terminal fail.
:func:`printable` escapes all of these; JSON output keeps the raw string
(``json.dumps`` escapes control characters itself).
"""

from __future__ import annotations

__all__ = ["printable"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: Unicode bidirectional formatting characters (Unicode Standard Annex #9): they
#: reorder what a terminal shows ("Trojan Source", CVE-2021-42574).
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F))


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a non-UTF-8 file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    code = ord(ch)
    return (
        code < 0x20  # C0 controls (CR, LF, ESC, ...)
        or code == 0x7F  # DEL
        or 0x80 <= code <= 0x9F  # C1 controls (CSI 0x9B, ...)
        or 0xD800 <= code <= 0xDFFF  # lone surrogates
        or ch in _BIDI
    )


def printable(text: object) -> str:
    """``text`` with control characters escaped, safe to print on one line.

    CR, LF and TAB become ``\\r``, ``\\n``, ``\\t``; other C0 and C1 controls, DEL
    and the ESC of ANSI sequences become ``\\xNN``; bytes of a non-UTF-8 file
    name (lone surrogates) become ``\\xNN`` of the original byte; Unicode
    bidirectional overrides become ``\\uNNNN``.  Other text (backslashes of
    multi-valued DICOM strings included) is unchanged.

    Examples
    --------
    >>> printable("Doe^John\\r\\nTP9 · 0.0 h")
    'Doe^John\\\\r\\\\nTP9 · 0.0 h'
    >>> printable("\\x1b[2J")
    '\\\\x1b[2J'
    """
    s = str(text)
    if not any(_unsafe(ch) for ch in s):
        return s
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in s)
