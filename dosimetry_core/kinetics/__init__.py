"""Kinetics: TAC models, weighted fits with AICc selection, TIA ± SD, single-time-point methods.

Times are hours after administration; activities are MBq at scan time (not
decay corrected).  See :mod:`dosimetry_core.kinetics.fitting` for the weights,
covariance and model-selection rule.
"""

from importlib import import_module
from typing import Any

# Exports are resolved on first use (PEP 562) so that importing a light module
# of this package (e.g. the model names for the CLI parser) does not load SciPy.
_EXPORTS = {
    "CandidateFit": "fitting",
    "FitResult": "fitting",
    "fit_tac": "fitting",
    "validate_tac": "fitting",
    "MODEL_NAMES": "models",
    "MODELS": "models",
    "KineticModel": "models",
    "trapezoid_tia": "models",
    "PopulationTeff": "population",
    "load_table": "population",
    "lookup": "population",
    "STPResult": "stp",
    "compare_stp_with_multipoint": "stp",
    "haenscheid": "stp",
    "madsen": "stp",
    "stp_tia": "stp",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


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
