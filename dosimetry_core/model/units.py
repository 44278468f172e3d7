"""Unit conventions of the whole workstation, documented once.

Names carry their unit (ARCHITECTURE rule 4, STYLE 6).  Internally:

==========================  =====================================================
quantity                    convention
==========================  =====================================================
activity (records)          MBq (``activity_mbq``); SI Bq only inside formulas
activity concentration      Bq/mL in image volumes (``ImageUnits.BQML``)
absolute time               naive :class:`datetime.datetime` in local wall-clock
                            time, as DICOM records it (DA/TM without offset);
                            administration and scan times of one case share that
                            clock.  Elapsed times are differences of these.
elapsed time                hours for kinetics (``time_h``); seconds for
                            acquisition durations (``duration_s``)
half-life                   hours (``half_life_h``) unless named otherwise
length                      mm (``spacing_mm``, ``origin_mm``)
volume                      mL (= cm^3)
mass                        g (``mass_g``); kg only where a formula says so
density                     g/cm^3 (``density_g_cm3``)
energy                      MeV per decay (``energy_mev``)
absorbed dose               Gy (``dose_gy``)
time-integrated activity    MBq*h (``tia_mbq_h``); TIAC in h
camera sensitivity          cps/MBq (``cps_per_mbq``)
==========================  =====================================================

Geometry follows DICOM patient coordinates (LPS, mm); see :mod:`.geometry`.
"""

from __future__ import annotations

from enum import StrEnum

MBQ_PER_BQ = 1e-6
BQ_PER_MBQ = 1e6
SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
ML_PER_MM3 = 1e-3


class ImageUnits(StrEnum):
    """Units of the voxel values of a :class:`~dosimetry_core.model.volume.Volume`.

    Values are the short codes shown to users and written in case files.
    """

    HU = "HU"
    """CT Hounsfield units."""
    BQML = "Bq/mL"
    """Activity concentration (DICOM Units code ``BQML``)."""
    COUNTS = "counts"
    """Reconstructed counts per voxel for the whole acquisition (not yet calibrated)."""
    SUV = "SUV"
    """Standardised uptake value (g/mL); needs the patient weight to become Bq/mL."""
    DENSITY = "g/cm3"
    MASK = "mask"
    GY = "Gy"
    MBQH_PER_ML = "MBq*h/mL"
    UNKNOWN = "unknown"


def is_quantitative(units: ImageUnits) -> bool:
    """True when voxel values are an activity concentration in Bq/mL."""
    return units == ImageUnits.BQML
