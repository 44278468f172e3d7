"""A case with a hand-written protocol run (no images): fast report tests."""

from __future__ import annotations

from datetime import datetime

from dosimetry_core.model.case import Administration, Case, Patient
from dosimetry_core.model.results import ProtocolRun


def synthetic_case(store, patient_id: str, kidney_gy_per_gbq: float, activity_mbq: float = 7400.0):
    dose = kidney_gy_per_gbq * activity_mbq / 1e3
    case = Case(
        patient=Patient(patient_id, name=f"Test^{patient_id}"),
        administrations=[Administration("Lu-177", activity_mbq, datetime(2026, 1, 5, 9, 0))],
        protocol="lu177-dotatate",
    )
    run = {
        "format": "mrt-protocol-run/1",
        "case_id": case.case_id,
        "protocol": "lu177-dotatate",
        "method": "multi-point",
        "dose_method": "vsv-density",
        "nuclide": "Lu-177",
        "administered_activity_mbq": activity_mbq,
        "dose_map_id": None,
        "organs": {
            "kidneys": {
                "label": "Kidneys", "vois": ["Kidney_L"], "review_flags": [""],
                "mass_g": 300.0, "dose_gy": dose, "dose_sd_gy": 0.1 * dose,
                "bed_gy": 1.1 * dose, "eqd2_gy": 0.9 * dose,
                "dose_per_activity_gy_per_gbq": kidney_gy_per_gbq,
            }
        },
        "vois": [
            {
                "voi_id": "voi-k", "voi_name": "Kidney_L", "role": "oar", "organ_id": "kidneys",
                "review_flag": "", "mass_g": 300.0, "tia_mbq_h": 1234.5, "dose_gy": dose,
                "dose_sd_gy": 0.1 * dose, "bed_gy": 1.1 * dose, "eqd2_gy": 0.9 * dose,
                "tissue": "kidney", "model": "mono", "method": "voxel vsv-density",
                "sphere_model_dose_gy": None, "uncertainty_budget": [], "notes": [],
            }
        ],
        "limit_checks": [
            {
                "organ_id": "kidneys", "quantity": "dose_gy", "scope": "cumulative",
                "limit": 23.0, "value": dose, "this_cycle": dose, "previous_cycles": 0.0,
                "fraction_of_limit": dose / 23.0, "passed": dose <= 23.0,
                "source": "Emami 1991 (external beam)", "when": None,
            }
        ],
        "all_limits_passed": dose <= 23.0,
        "next_cycle": {},
        "previous_cycle_cases": [],
        "warnings": [],
        "checklist": [],
        "computed_at": "2026-01-12T10:00:00",
        "user": "physicist",
    }  # fmt: skip
    case.add_result(ProtocolRun.from_dict(run))
    store.save_case(case)
    return case.case_id
