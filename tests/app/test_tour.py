"""The self-running tour, run as a user would: ``mrt-dosimetry --demo --tour OUT_DIR`` under Xvfb.

Checks tour.json's exact shape, the figures on screen against the demo's ground
truth where it has one (net administered activity after the residual, decay
corrected; the registrations' known shifts), that every PNG exists, has the
window's size and is not blank (the 3D view included), and that the demo report
was written: the report made, signed twice and verified through the GUI, whose
saved PDF validates in pyHanko against the CA certificate the GUI exported.  Runs
in a subprocess so the tour's own QApplication, store and exit status are what
the user gets.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.xvfb]


def _pixels(path: Path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.sizeInBytes())
    return (
        arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
        .reshape(img.height(), img.width(), 3)
        .astype(int)
    )


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs an X display (run under xvfb-run)")
    out = tmp_path_factory.mktemp("tour")
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    p = subprocess.run(
        [sys.executable, "-m", "app.main", "--demo", "--tour", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=1500,
    )
    return p, out


def test_tour_passes_every_step(tour):
    p, out = tour
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    data = json.loads((out / "tour.json").read_text())
    assert list(data) == ["steps"]
    names = [s["name"] for s in data["steps"]]
    assert names[:5] == ["login", "demo-case", "data-entry", "viewer", "registration"]
    for n, step in enumerate(data["steps"], start=1):
        assert set(step) == {"name", "png", "shown"}
        assert step["png"] == f"{n:02d}-{step['name']}.png"
        assert isinstance(step["shown"], dict) and step["shown"]
    assert "demo report" in p.stdout
    assert list((out / "report").glob("*.pdf"))
    assert names[-4:] == ["report", "sign", "verify", "export"]


def test_figures_on_screen_match_the_demo(tour):
    p, out = tour
    steps = {s["name"]: s["shown"] for s in json.loads((out / "tour.json").read_text())["steps"]}
    assert steps["login"] == {"user": "tour.phys", "role": "physicist"}
    assert steps["demo-case"]["n_time_points"] == 4
    # net administered activity: A - R * exp(-ln2 * dt / T1/2) decay-corrected to the
    # administration (Lu-177, T1/2 = 6.647 d), read from the form after the residual
    entry = steps["data-entry"]
    dt_h = (
        datetime.fromisoformat(entry["residual_time"])
        - datetime.fromisoformat(entry["administration_time"])
    ).total_seconds() / 3600
    expected = entry["administered_activity_mbq"] - entry["residual_activity_mbq"] * math.exp(
        math.log(2) * dt_h / (6.647 * 24)
    )
    assert entry["net_administered_activity_mbq"] == pytest.approx(expected, abs=0.2)
    assert steps["viewer"]["view3d"]["rendered"] is True
    reg = steps["registration"]["time_points"]
    assert len(reg) == 3 and all(t["status"] == "accepted" for t in reg)
    for t in reg:  # the demo's known shifts are a few mm
        assert all(abs(v) < 20 for v in t["translation_mm"])


def test_the_physicists_analysis_steps_agree_with_each_other_and_the_phantom(tour):
    """Contouring, kinetics, dose, protocol run and QA ran in that order, and their
    figures hang together: the kidney TIA has a small SD; the protocol's mass-weighted
    kidney dose (density-corrected kernel) is within 5 % of the dose step's kidney means
    (plain kernel); the QA factor is the cylinder phantom's 9.0 cps/MBq within 2 %."""
    p, out = tour
    data = json.loads((out / "tour.json").read_text())["steps"]
    names = [s["name"] for s in data]
    assert names[5:10] == ["contouring", "kinetics", "dose", "protocol-run", "qa"]
    steps = {s["name"]: s["shown"] for s in data}
    assert steps["contouring"]["voi"] == "Tour_threshold" and steps["contouring"]["volume_ml"] > 0
    kin = steps["kinetics"]
    assert kin["voi"] == "Kidney_L" and kin["tia_map"] is True
    assert 0 < kin["tia_sd_mbq_h"] < 0.1 * kin["tia_mbq_h"]
    dose = steps["dose"]
    kidneys = (dose["kidney_left_mean_gy"] + dose["kidney_right_mean_gy"]) / 2
    assert steps["protocol-run"]["kidney_gy"] == pytest.approx(kidneys, rel=0.05)
    assert steps["protocol-run"]["next_cycle_gbq"] > 0
    assert steps["qa"]["calibration_factor_cps_per_mbq"] == pytest.approx(9.0, rel=0.02)


def test_the_physician_approves_the_kidney_the_physicist_submitted(tour):
    p, out = tour
    steps = {s["name"]: s["shown"] for s in json.loads((out / "tour.json").read_text())["steps"]}
    assert steps["contouring"]["submitted"] == "Kidney_L"
    review = steps["review"]
    assert review["voi"] == "Kidney_L" and review["status"] == "approved"
    assert review["reviewer"] == "tour.doc"


def test_screenshots_exist_and_are_not_blank(tour):
    p, out = tour
    steps = json.loads((out / "tour.json").read_text())["steps"]
    for step in steps:
        px = _pixels(out / step["png"])
        assert px.shape[0] >= 700 and px.shape[1] >= 1000, step["png"]
        assert px.std() > 10, f"{step['png']} is blank"
    # the viewer's screenshot shows the 3D view: colour (the MIP) low in the window
    viewer = _pixels(out / next(s["png"] for s in steps if s["name"] == "viewer"))
    lower = viewer[viewer.shape[0] // 2 :]
    coloured = (np.abs(lower[..., 0] - lower[..., 2]) > 40).sum()
    assert coloured > 500


def test_the_report_is_made_signed_twice_and_verified_through_the_gui(tour):
    """report: pages and the kidney dose beside the preview, equal to the protocol step's;
    sign: MPE then practitioner, both valid and chained to the department CA; verify: the
    saved PDF intact against the exported CA; the tour's report is that signed PDF, and
    pyHanko's own validation says the same."""
    from io import BytesIO

    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    p, out = tour
    steps = {s["name"]: s["shown"] for s in json.loads((out / "tour.json").read_text())["steps"]}
    report = steps["report"]
    assert report["pages"] >= 2 and report["status"] == "draft"
    assert report["kidney_gy"] == pytest.approx(steps["protocol-run"]["kidney_gy"], abs=1e-3)
    sign = steps["sign"]
    assert sign["mpe_status"] == "mpe-signed" and sign["status"] == "signed"
    assert [(s["signer"], s["role"], s["valid"]) for s in sign["signatures"]] == [
        ("tour.phys", "physicist", "yes"),
        ("tour.doc", "physician", "yes"),
    ]
    assert all(s["chain"].startswith("yes") for s in sign["signatures"])
    verify = steps["verify"]
    assert verify["intact"] is True and "INTACT" in verify["result"]
    pdf = Path(verify["pdf"])
    assert f"tour: demo report {pdf}" in p.stdout
    vc = ValidationContext(trust_roots=[load_cert_from_pemder(verify["ca_certificate"])])
    sigs = PdfFileReader(BytesIO(pdf.read_bytes())).embedded_signatures
    assert [s.field_name for s in sigs] == ["MPE", "Practitioner"]
    assert all(validate_pdf_signature(s, vc).bottom_line for s in sigs)
    export = steps["export"]
    assert export["files_by_type"]["RT Dose"] >= 1
    assert export["files_by_type"]["Segmentation (SEG)"] == 1
    assert export["files_by_type"].get("Encapsulated PDF") == 1  # the signed report
    assert "version 1, signed (MPE and practitioner)" in export["report_offered"]
