"""The bundled demo patient: generate it, import it, find it again."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from dosimetry_core.errors import DosimetryError
from dosimetry_core.progress import CancelCheck, ProgressCallback, report, sub_progress
from dosimetry_core.store.repository import CaseRepository

DEMO_STYLE = "siemens-bqml"


def demo_patient_id() -> str:
    from dosimetry_core.phantoms.demo import DemoConfig

    return DemoConfig().patient_id


def find_demo_case(store: CaseRepository) -> str | None:
    """Case id of the demo patient in ``store``, or None."""
    cases = store.find_cases(patient_id=demo_patient_id())
    return cases[0].case_id if cases else None


def ensure_demo_case(
    store: CaseRepository,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> str:
    """Return the demo case id, generating and importing the demo patient if missing.

    The demo is written as DICOM (Siemens-style Bq/mL SPECT + CT, 4 time points)
    to a temporary folder and imported through the same path as clinical data,
    so the demo exercises the real reader.  Its RTSTRUCT (the true organ and
    tumour outlines, drawn on TP1) becomes the case's VOIs, as drafts.  The
    ground truth is kept in ``case.extra["demo"]``.
    """
    from dosimetry_core.phantoms.demo import write_demo_dicom

    existing = find_demo_case(store)
    if existing is not None:
        report(progress, 1.0, "demo case already in the store")
        return existing
    from dosimetry_core.pipeline.importing import import_directory

    with tempfile.TemporaryDirectory(prefix="mrt-demo-") as tmp:
        files = write_demo_dicom(
            Path(tmp), style=DEMO_STYLE, progress=sub_progress(progress, 0.0, 0.5), cancel=cancel
        )
        result = import_directory(
            store, tmp, progress=sub_progress(progress, 0.5, 0.95), cancel=cancel
        )
        if not result.cases:
            reasons = "; ".join(s.reason for s in result.skipped[:3])
            raise DosimetryError(f"the demo patient could not be imported: {reasons}")
        case_id = result.cases[0].case_id
        truth = json.loads(Path(files.ground_truth_path).read_text())
        # the true organ outlines (the folder's RTSTRUCT) were attached by the import as
        # draft VOIs: a physician still approves them
        case = store.load_case(case_id)
    case.description = "Demo patient (synthetic): Lu-177 DOTATATE, 4 SPECT/CT time points"
    case.extra["demo"] = {"style": DEMO_STYLE, "ground_truth": truth}
    store.save_case(case, audit=store.audit_spec("import", source="demo ground truth"))
    report(progress, 1.0, "demo case imported")
    return case_id
