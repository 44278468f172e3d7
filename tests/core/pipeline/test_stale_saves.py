"""No stale saves (issue 13, "a lost update"): a computation saves only if its inputs are unchanged.

The attack of the issue: ``mrtdose run`` computes on the small demo case while
another user commits a contour edit (a bigger Kidney_L mask) through the store;
before this change the run saved its results on top, so the report showed the
kidney mass of the old mask next to the new mask in its inputs.  Here the run
must refuse to save, the stored case must hold the edit and no run results, and
a rerun must give the new mask's mass.  Edits the computation did not read (a
measurement) neither block it nor get lost.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
from scipy import ndimage

from dosimetry_core.cli.main import main
from dosimetry_core.model import Measurement, MeasurementKind, RegistrationStatus
from dosimetry_core.pipeline.contouring import set_voi_mask
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.kinetics import compute_kinetics
from dosimetry_core.pipeline.protocol_run import run_protocol
from dosimetry_core.pipeline.registration import register_case
from dosimetry_core.segmentation.mass import voi_mass_g
from dosimetry_core.store import CaseStore
from dosimetry_core.store import audit as audit_trail
from dosimetry_core.store.case_inputs import StaleInputsError
from dosimetry_core.store.permissions import Actor


@pytest.fixture()
def two_users(small_demo_dirs, use_shared_kernel_cache, tmp_path, monkeypatch):
    """The small demo case (with its RTSTRUCT VOIs) seen by two users in two store objects."""
    store_dir = tmp_path / "store"
    pat = CaseStore(store_dir)
    pat.actor = Actor("pat", "physicist")
    case_id = import_directory(pat, small_demo_dirs["siemens-bqml"]).cases[0].case_id
    ann = CaseStore(store_dir)
    ann.actor = Actor("ann", "physicist")
    yield pat, ann, store_dir, case_id
    pat.close()
    ann.close()


def _voi(case, name):
    return next(v for v in case.vois if v.name == name)


def _grow_kidney(store, case_id, name="Kidney_L"):
    """Another user's contour edit: the kidney mask grown by one voxel, saved and audited."""
    case = store.load_case(case_id)
    voi = _voi(case, name)
    old = store.load_volume(voi.mask)
    grown = ndimage.binary_dilation(np.asarray(old.array) > 0)
    tp = next(t for t in case.time_points if t.time_point_id == voi.time_point_id)
    set_voi_mask(
        store, case, name, grown, old.geometry, time_point=tp, operation="grow 1 voxel", user="ann"
    )
    store.save_case(case, audit=store.audit_spec("contour", voi=name, operation="grow 1 voxel"))
    return store.load_case(case_id)


def _state(store, case_id):
    case = store.load_case(case_id)
    return (
        case.version,
        len(case.results),
        len(case.derived),
        len(audit_trail.entries(store, case_id)),
    )


def test_contour_edit_during_a_protocol_run_is_refused_and_a_rerun_uses_it(two_users):
    pat, ann, _, case_id = two_users
    before = pat.load_case(case_id)
    old_key = _voi(before, "Kidney_L").mask.key
    edited = {}

    def progress(fraction, message):
        # while the run works through the VOIs (after its own TIA map and dose saves)
        if message.startswith("VOI ") and not edited:
            edited["case"] = _grow_kidney(ann, case_id)

    with pytest.raises(StaleInputsError) as err:
        run_protocol(pat, case_id, "lu177-dotatate", user="pat", progress=progress)
    text = str(err.value)
    assert "the case changed while the protocol run was computing" in text
    assert "VOI Kidney_L was changed" in text
    assert "contour by ann at" in text and "run the protocol run again" in text
    assert "\n" not in text
    # the stored case holds the edit and no protocol-run result from the old mask
    stored = pat.load_case(case_id)
    new_voi = _voi(stored, "Kidney_L")
    assert (
        new_voi.mask.key != old_key
        and new_voi.mask.key == _voi(edited["case"], "Kidney_L").mask.key
    )
    assert stored.protocol_run is None
    assert stored.version == edited["case"].version
    actions = [e.action for e in audit_trail.entries(pat, case_id)]
    assert "protocol-run" not in actions and actions[-1] == "contour"

    # the rerun succeeds and its kidney mass is the new mask's (known answer: voi_mass_g)
    ref = stored.sorted_time_points()[0]
    ct = pat.load_volume(ref.anatomical.volume)
    old_mass = voi_mass_g(pat.load_volume(_voi(before, "Kidney_L").mask).array > 0, ct)
    new_mass = voi_mass_g(pat.load_volume(new_voi.mask).array > 0, ct)
    assert new_mass > 1.2 * old_mass
    res = run_protocol(pat, case_id, "lu177-dotatate", user="pat")
    row = next(v for v in res.vois if v.voi_name == "Kidney_L")
    assert row.mass_g == pytest.approx(new_mass, rel=1e-9)
    after = pat.load_case(case_id)
    assert after.protocol_run == res and _voi(after, "Kidney_L").mask.key == new_voi.mask.key
    entry = audit_trail.entries(pat, case_id)[-1]
    assert entry.action == "protocol-run"
    # every audited save records document_sha256; the run's entry too
    import hashlib

    from sqlalchemy import select

    from dosimetry_core.store.schema import cases

    with pat.engine.connect() as conn:
        text = conn.execute(select(cases.c.document).where(cases.c.case_id == case_id)).scalar()
    assert entry.details["document_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert json.loads(text)["version"] == entry.details["case_version"]
    assert pat.verify_documents() == []


def test_mrtdose_run_refuses_in_one_line_when_a_contour_changes(two_users, capsys, monkeypatch):
    """The same attack through the command line: exit 1, one line, nothing saved."""
    import dosimetry_core.pipeline.protocol_run as pr

    pat, ann, store_dir, case_id = two_users
    real = pr._voi_mass_g
    edited = {}

    def mass_then_edit(store, case, voi, tac, cache):  # the edit lands mid-run
        if not edited:
            edited["case"] = _grow_kidney(ann, case_id, "Kidney_R")
        return real(store, case, voi, tac, cache)

    monkeypatch.setattr(pr, "_voi_mass_g", mass_then_edit)
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    monkeypatch.delenv("MRTDOSE_PASSWORD", raising=False)
    code = main(["--store", str(store_dir), "run", case_id, "--protocol", "lu177-dotatate"])
    out, errtext = capsys.readouterr()
    assert code == 1, (out, errtext)
    lines = [ln for ln in errtext.splitlines() if ln.strip()]
    assert len(lines) == 1 and "VOI Kidney_R was changed" in lines[0]
    stored = pat.load_case(case_id)
    assert stored.protocol_run is None and stored.version == edited["case"].version


def test_an_edit_the_fit_does_not_read_neither_blocks_it_nor_is_lost(two_users):
    pat, ann, _, case_id = two_users
    register_case(pat, case_id)
    note_id = {}

    def progress(fraction, message):
        if not note_id:
            case = ann.load_case(case_id)
            m = Measurement(
                MeasurementKind.DOSE_RATE, 21.0, "uSv/h", datetime(2026, 1, 2, 9, 0), "ann"
            )
            case.measurements.append(m)
            ann.save_case(case, audit=ann.audit_spec("enter-measurement"))
            note_id["id"] = m.measurement_id

    rows = compute_kinetics(pat, case_id, vois=["Kidney_L", "Liver"], progress=progress)
    assert [r.voi_name for r in rows] == ["Kidney_L", "Liver"]
    stored = pat.load_case(case_id)
    assert note_id["id"] in {m.measurement_id for m in stored.measurements}
    assert {k.voi_name for k in stored.kinetics.vois} == {"Kidney_L", "Liver"}


def test_a_changed_administration_during_a_fit_is_refused(two_users):
    pat, ann, _, case_id = two_users
    register_case(pat, case_id)
    before = _state(pat, case_id)
    done = []

    def progress(fraction, message):
        if not done:
            case = ann.load_case(case_id)
            case.administrations[0].activity_mbq *= 1.1
            ann.save_case(case, audit=ann.audit_spec("enter-administration"))
            done.append(ann.load_case(case_id).version)

    with pytest.raises(StaleInputsError, match=r"the administration of Lu-177 .* was changed"):
        compute_kinetics(pat, case_id, vois=["Kidney_L"], progress=progress)
    version, n_results, n_derived, n_audit = _state(pat, case_id)
    assert (version, n_results, n_derived) == (done[0], before[1], before[2])
    assert n_audit == before[3] + 1  # the edit only
    assert pat.load_case(case_id).kinetics is None


def test_a_fit_of_other_vois_is_not_blocked_by_an_edit_of_an_unread_voi(two_users):
    pat, ann, _, case_id = two_users
    register_case(pat, case_id)
    done = []

    def progress(fraction, message):
        if not done:
            done.append(_grow_kidney(ann, case_id, "Kidney_R"))

    compute_kinetics(pat, case_id, vois=["Liver"], progress=progress)
    stored = pat.load_case(case_id)
    assert _voi(stored, "Kidney_R").mask.key == _voi(done[0], "Kidney_R").mask.key
    assert [k.voi_name for k in stored.kinetics.vois] == ["Liver"]


def test_a_registration_accepted_meanwhile_is_not_overwritten(two_users):
    pat, ann, _, case_id = two_users
    register_case(pat, case_id)
    done = []

    def progress(fraction, message):
        if not done and "TP2" in message:
            case = ann.load_case(case_id)
            tp = case.time_point("TP2")
            tp.registration.status = RegistrationStatus.ACCEPTED
            tp.registration.reviewed_by = "ann"
            ann.save_case(case, audit=ann.audit_spec("registration-review"))
            done.append(True)

    with pytest.raises(StaleInputsError, match="registration of time point TP2 was changed"):
        register_case(pat, case_id, time_points=["TP2"], progress=progress)
    stored = pat.load_case(case_id)
    assert stored.time_point("TP2").registration.status == RegistrationStatus.ACCEPTED


def test_an_administration_edited_while_the_run_registers_is_caught(two_users):
    """The run reads the administration and the VOIs before its own registration step."""
    pat, ann, _, case_id = two_users
    done = []

    def progress(fraction, message):
        if message.startswith("registration:") and not done:
            case = ann.load_case(case_id)
            case.administrations[0].activity_mbq *= 0.5
            ann.save_case(case, audit=ann.audit_spec("enter-administration"))
            done.append(ann.load_case(case_id).version)

    with pytest.raises(StaleInputsError, match=r"the administration of Lu-177 .* was changed"):
        run_protocol(pat, case_id, "lu177-dotatate", user="pat", progress=progress)
    stored = pat.load_case(case_id)
    assert stored.protocol_run is None and not stored.derived  # no TIA map, no dose either
    assert stored.version == done[0] + 1  # the edit, then the registration (its own check)


def test_a_time_point_recalibrated_during_the_tia_map_is_refused(two_users):
    from dosimetry_core.pipeline.tia_map import compute_tia_map

    pat, ann, _, case_id = two_users
    register_case(pat, case_id)
    done = []

    def progress(fraction, message):
        if not done and fraction > 0.2:  # during the voxel fits
            case = ann.load_case(case_id)
            case.time_point("TP2").functional.cps_per_mbq = 12.3
            ann.save_case(case, audit=ann.audit_spec("enter-measurement"))
            done.append(True)

    with pytest.raises(StaleInputsError, match="time point TP2 was changed"):
        compute_tia_map(pat, case_id, progress=progress)
    stored = pat.load_case(case_id)
    assert stored.time_point("TP2").functional.cps_per_mbq == 12.3 and not stored.derived


def test_a_contour_edited_during_the_dose_is_refused_an_unread_one_is_not(two_users):
    from dosimetry_core.pipeline.dose import compute_dose
    from dosimetry_core.pipeline.tia_map import compute_tia_map

    pat, ann, _, case_id = two_users
    register_case(pat, case_id)
    compute_tia_map(pat, case_id)
    edits = []

    def edit(name):
        def progress(fraction, message):
            if not edits or edits[-1][0] != name:
                edits.append((name, _grow_kidney(ann, case_id, name)))

        return progress

    n_derived = len(pat.load_case(case_id).derived)
    with pytest.raises(StaleInputsError, match="VOI Kidney_L was changed"):
        compute_dose(pat, case_id, method="led", vois=["Kidney_L"], progress=edit("Kidney_L"))
    assert len(pat.load_case(case_id).derived) == n_derived  # no dose map saved
    # a dose of the liver is not blocked by an edit of the right kidney, which is kept
    res = compute_dose(pat, case_id, method="led", vois=["Liver"], progress=edit("Kidney_R"))
    stored = pat.load_case(case_id)
    assert stored.find_derived(res.dose_map.derived_id).kind == "dose"
    assert _voi(stored, "Kidney_R").mask.key == _voi(edits[-1][1], "Kidney_R").mask.key
