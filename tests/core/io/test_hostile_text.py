"""``printable``: header text and file names made safe for a terminal (issue 13)."""

from __future__ import annotations

import pytest

from dosimetry_core.io.text import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Doe^John", "Doe^John"),
        ("Müller^Zoë · 24 h", "Müller^Zoë · 24 h"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("csi\x9b31m", "csi\\x9b31m"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("/data/\udcff\udcfe.dcm", "/data/\\xff\\xfe.dcm"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("ORIGINAL\\PRIMARY", "ORIGINAL\\PRIMARY"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_output_has_no_control_character_and_encodes_as_utf8() -> None:
    every = "".join(chr(c) for c in range(0x00, 0x250)) + "\udc80\udcff\u2066\u2069"
    out = printable(every)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in out)
    out.encode("utf-8")  # no lone surrogate left
