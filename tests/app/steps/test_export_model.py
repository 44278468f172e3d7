"""The exports step's view-model without Qt: report choice, checks, secret handling, run.

Known answers: the newest *signed* report is offered before a newer draft; a draft
is labelled unsigned; every refusal names its field; an error that quotes the
project secret is replaced by one that does not; a cancel before the core writes
into the destination leaves it empty.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.steps.export import model as m
from app.steps.export.model import ExportForm, ExportModel, report_option
from dosimetry_core.errors import Cancelled, InvalidInputError
from dosimetry_core.model import Case, Patient

SECRET = "Zebra-Secret-7731"


def _rec(version: int, status: str, rid: str = "") -> SimpleNamespace:
    return SimpleNamespace(report_id=rid or f"rep-{version}", version=version, status=status)


def test_newest_signed_report_before_a_newer_draft():
    recs = [_rec(1, "superseded"), _rec(2, "signed"), _rec(3, "draft")]
    opt = report_option(recs)
    assert opt is not None and (opt.version, opt.signed) == (2, True)
    assert "signed (MPE and practitioner)" in opt.label and "UNSIGNED" not in opt.label


def test_a_draft_is_labelled_unsigned_and_superseded_is_never_offered():
    draft = report_option([_rec(1, "superseded"), _rec(2, "draft")])
    assert draft is not None and draft.version == 2 and "UNSIGNED draft" in draft.label
    mpe = report_option([_rec(1, "mpe-signed")])
    assert mpe is not None and "UNSIGNED by the practitioner" in mpe.label
    assert report_option([_rec(1, "superseded")]) is None
    assert report_option([]) is None


@pytest.fixture()
def model() -> ExportModel:
    case = Case(patient=Patient("P-1", name="Doe^Jane"), case_id="c1")
    return ExportModel(case, True, [_rec(1, "draft")])


def _field(model: ExportModel, form: ExportForm, typed: str = "") -> str | None:
    with pytest.raises(InvalidInputError) as info:
        model.check(form, typed)
    assert SECRET not in str(info.value)
    return info.value.field


def test_refusals_name_their_field(model, tmp_path):
    out = str(tmp_path / "out")
    assert _field(model, ExportForm(out_dir="  ")) == "out_dir"
    (tmp_path / "f").write_text("x")
    assert _field(model, ExportForm(out_dir=str(tmp_path / "f"))) == "out_dir"
    assert _field(model, ExportForm(out_dir=out, rtdose=False)) == "objects"
    assert _field(model, ExportForm(out_dir=out, anonymize=True)) == "secret"
    assert _field(model, ExportForm(out_dir=out, anonymize=True, report=True), SECRET) == "report"
    form = ExportForm(out_dir=out, anonymize=True, date_shift_days="ten")
    assert _field(model, form, SECRET) == "date_shift_days"
    assert _field(model, ExportForm(out_dir=out, seg=True)) == "ct_dir"
    assert _field(model, ExportForm(out_dir=out, seg=True, ct_dir=str(tmp_path / "no"))) == "ct_dir"
    no_report = ExportModel(model.case, True, [])
    assert _field(no_report, ExportForm(out_dir=out, report=True)) == "report"


def test_accepted_choices_become_the_core_arguments(model, tmp_path):
    out = str(tmp_path / "out")
    kw = model.check(ExportForm(out_dir=out, seg=True, images=True, report=True), "")
    assert kw["report_id"] == "rep-1" and kw["images"] is True and kw["seg"] is True
    assert kw["anonymize"] is False and kw["secret_file"] is None and kw["date_shift_days"] is None
    kw = model.check(
        ExportForm(out_dir=out, anonymize=True, date_shift_days="-30", secret_file=" s.txt "),
        "",
    )
    assert kw["date_shift_days"] == -30 and kw["secret_file"] == "s.txt" and kw["images"] is None
    assert SECRET not in repr(model.check(ExportForm(out_dir=out, anonymize=True), SECRET))


def test_without_permission_nothing_is_offered():
    case = Case(patient=Patient("P-1"), case_id="c1")
    denied = ExportModel(case, False)
    assert not denied.can_export and "physicist or physician" in denied.denied_reason()
    assert not ExportModel(None, True).can_export


def test_secret_file_messages_name_the_file_not_its_content(tmp_path):
    f = tmp_path / "secret.txt"
    f.write_text(f"  {SECRET}\n")
    assert m.read_secret_file(str(f)) == SECRET
    f.write_text("   \n")
    with pytest.raises(InvalidInputError, match="empty") as info:
        m.read_secret_file(str(f))
    assert info.value.field == "secret"
    f.write_bytes(b"\xff\xfe" + SECRET.encode("utf-16-le"))
    with pytest.raises(InvalidInputError, match="cannot read") as info:
        m.read_secret_file(str(f))
    assert SECRET not in str(info.value)
    with pytest.raises(InvalidInputError, match="cannot read"):
        m.read_secret_file(str(tmp_path / "missing.txt"))


def test_an_error_quoting_the_secret_is_replaced(monkeypatch, tmp_path):
    def leaky(*_a, **kw):
        raise ValueError(f"bad key {kw['secret']}")

    monkeypatch.setattr("dosimetry_core.pipeline.export.export_case", leaky)
    with pytest.raises(InvalidInputError) as info:
        m.run_export(None, "c1", str(tmp_path), secret=SECRET, anonymize=True)
    assert SECRET not in str(info.value) and "secret" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_cancel_before_writing_leaves_the_destination_empty(monkeypatch, tmp_path):
    seen: list[float] = []

    def fake_export(store, case_id, out_dir, *, progress, **_kw):
        for f in (0.05, 0.4, 0.6, 0.8):
            progress(f, "step")
            seen.append(f)
        Path(out_dir).mkdir()
        (Path(out_dir) / "x.dcm").write_bytes(b"x")
        raise AssertionError("not reached")

    monkeypatch.setattr("dosimetry_core.pipeline.export.export_case", fake_export)
    stop = iter([False, False, True]).__next__
    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        m.run_export(None, "c1", str(out), stop=stop)
    assert seen == [0.05] and not out.exists()


def test_a_late_cancel_is_reported_not_hidden(monkeypatch, tmp_path):
    result = SimpleNamespace(
        files={}, n_files=0, out_dir=tmp_path, anonymized=False, warnings=["w"]
    )
    calls: list[float] = []

    def fake_export(store, case_id, out_dir, *, progress, **_kw):
        progress(0.8, "copying")
        calls.append(0.8)
        flag["stop"] = True  # the user clicks Cancel while files are being written
        progress(1.0, "done")
        return result

    flag = {"stop": False}
    monkeypatch.setattr("dosimetry_core.pipeline.export.export_case", fake_export)
    outcome = m.run_export(None, "c1", str(tmp_path), stop=lambda: flag["stop"])
    assert outcome.late_cancel and calls == [0.8]
    lines = m.summary_lines(outcome)
    assert lines[0].startswith("Exported 0 file(s)")
    assert any("export completed" in x for x in lines) and lines[-1] == "Warning: w"


def test_a_destination_with_files_is_flagged(tmp_path):
    assert m.destination_note("") == "" and m.destination_note(str(tmp_path / "new")) == ""
    assert m.destination_note(str(tmp_path)) == ""
    (tmp_path / "RTDOSE").mkdir()
    (tmp_path / "RTDOSE" / "a.dcm").write_bytes(b"x")
    assert "already holds 1 file(s)" in m.destination_note(str(tmp_path))
    assert "is a file" in m.destination_note(str(tmp_path / "RTDOSE" / "a.dcm"))
