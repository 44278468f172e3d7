"""Unit conventions of the dose engines (one place).

* S-values and voxel kernels are held internally in **Gy per (Bq*s)**: absorbed
  dose in the target per decay in the source.  Users see **mGy/(MBq*s)**
  (the unit of MIRD Pamphlet 17 and of Lanconelli et al. 2012), which is
  ``1e9`` times the internal number.
* Time-integrated activity enters the engines in **Bq*s** per voxel
  (the number of decays); the case stores MBq*h (``model/units.py``).
* Energies are MeV; masses g; densities g/cm^3; lengths mm; dose Gy.

Constants: 1 MeV = 1.602176634e-13 J (exact, 2019 SI redefinition of the
elementary charge).
"""

from __future__ import annotations

J_PER_MEV = 1.602176634e-13
"""Joule per MeV (exact since the 2019 SI redefinition)."""

MGY_PER_MBQ_S_PER_GY_PER_BQ_S = 1e9
"""Multiply an S-value in Gy/(Bq*s) by this to get mGy/(MBq*s)."""

BQ_S_PER_MBQ_H = 3.6e9
"""Decays per MBq*h: 1e6 Bq * 3600 s."""

KG_PER_G = 1e-3
CM3_PER_MM3 = 1e-3


def dose_gy_per_decay(energy_mev: float, mass_g: float) -> float:
    """Absorbed dose (Gy) from ``energy_mev`` deposited in ``mass_g`` grams."""
    return energy_mev * J_PER_MEV / (mass_g * KG_PER_G)
