"""The tissue table is read with a size limit, as a regular file only (issue 13, calculators).

``--tissue-table /dev/zero`` used to read until memory ran out; a FIFO blocked
for ever.  Now ``tissue_parameters`` itself (not only the CLI's pre-check) reads
through ``io.limits.read_text_limited``: a refusal in one line naming the field.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.radiobiology.tissues import (
    TISSUE_TABLE_MAX_BYTES,
    TISSUE_TABLE_PATH,
    list_tissues,
    tissue_parameters,
)


def test_dev_zero_is_refused_at_once():
    start = time.monotonic()
    with pytest.raises(InvalidInputError, match="not a regular file") as err:
        tissue_parameters("kidney", path="/dev/zero")
    assert err.value.field == "tissue_table"
    assert "--tissue-table" in str(err.value) and "\n" not in str(err.value)
    assert time.monotonic() - start < 1.0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "table.json"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        list_tissues(fifo)


def test_a_folder_and_a_huge_file_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="not a regular file"):
        tissue_parameters("kidney", path=tmp_path)
    big = tmp_path / "big.json"
    with open(big, "wb") as f:  # sparse: no disk used
        f.truncate(TISSUE_TABLE_MAX_BYTES + 1)
    with pytest.raises(InvalidInputError, match="more than the 1048576 accepted"):
        tissue_parameters("kidney", path=big)
    with pytest.raises(InvalidInputError, match="file not found"):
        tissue_parameters("kidney", path=tmp_path / "missing.json")


def test_a_user_copy_within_the_limit_still_works(tmp_path):
    copy = tmp_path / "tissues.json"
    data = json.loads(TISSUE_TABLE_PATH.read_text(encoding="utf-8"))
    shipped = float(data["tissues"]["kidney"]["alpha_beta_gy"]["value"])
    data["tissues"]["kidney"]["alpha_beta_gy"]["value"] = shipped + 0.5
    copy.write_text(json.dumps(data), encoding="utf-8")
    assert tissue_parameters("kidney", path=copy).alpha_beta_gy == shipped + 0.5
    assert tissue_parameters("kidney").alpha_beta_gy == shipped  # the shipped table untouched
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(InvalidInputError, match="is not utf-8 text"):
        tissue_parameters("kidney", path=bad)


def test_mrtdose_bed_tissue_table_dev_zero_exits_1_in_one_line(capsys):
    argv = ["bed", "--dose-gy", "5", "--t-eff-h", "50", "--tissue", "kidney"]
    code = main([*argv, "--tissue-table", "/dev/zero", "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "/dev/zero" in err and "regular file" in err
