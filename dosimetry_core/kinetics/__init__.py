"""Kinetics: TAC models, weighted fits with AICc selection, TIA ± SD, single-time-point methods.

Times are hours after administration; activities are MBq at scan time (not
decay corrected).  See :mod:`dosimetry_core.kinetics.fitting` for the weights,
covariance and model-selection rule.
"""

from dosimetry_core.kinetics.fitting import CandidateFit, FitResult, fit_tac, validate_tac
from dosimetry_core.kinetics.models import MODEL_NAMES, MODELS, KineticModel, trapezoid_tia
from dosimetry_core.kinetics.population import PopulationTeff, load_table, lookup
from dosimetry_core.kinetics.stp import (
    STPResult,
    compare_stp_with_multipoint,
    haenscheid,
    madsen,
    stp_tia,
)

__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "CandidateFit",
    "FitResult",
    "KineticModel",
    "PopulationTeff",
    "STPResult",
    "compare_stp_with_multipoint",
    "fit_tac",
    "haenscheid",
    "load_table",
    "lookup",
    "madsen",
    "stp_tia",
    "trapezoid_tia",
    "validate_tac",
]
