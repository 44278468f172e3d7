"""Reference media for dose calculation: elemental composition and density.

Compositions come from the NIST compound database as shipped by ``xraylib``
(``GetCompoundDataNISTByName``), which reproduces the ICRU Report 37/44 and
ICRP compositions used by NIST ESTAR/XCOM.  The densities used for dose are
stated per medium below with their source; they are *not* always the NIST
density (the NIST "Tissue, Soft (ICRP)" entry has 1.00 g/cm^3, while ICRP
Publication 89 and ICRU Report 44 give 1.03-1.06 g/cm^3 for soft tissues).

Media (``MEDIA`` keys are the names users type, e.g. ``--medium soft-tissue``):

=============  ===========================  ================  =====================
name           NIST compound (xraylib)      density g/cm^3    density source
=============  ===========================  ================  =====================
water          Water, Liquid                1.00              definition
soft-tissue    Tissue, Soft (ICRP)          1.04              ICRU Report 44 (1989)
bone           Bone, Cortical (ICRP)        1.92              ICRU Report 44 (1989)
lung           Lung (ICRP)                  0.26              ICRP 89 (inflated)
adipose        Adipose Tissue (ICRP)        0.95              ICRU Report 44 (1989)
air            Air, Dry (near sea level)    0.001205          NIST
=============  ===========================  ================  =====================

The voxel S-value database of Lanconelli et al., Phys Med Biol 57:517 (2012)
is computed in ICRP soft tissue; compare kernels at the density that paper
states (see ``resources/dose/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dosimetry_core.errors import InvalidInputError


@dataclass(frozen=True)
class Material:
    """A homogeneous medium: composition by mass fraction and a nominal density."""

    name: str
    nist_name: str
    density_g_cm3: float
    atomic_numbers: tuple[int, ...]
    mass_fractions: tuple[float, ...]

    @property
    def z_over_a(self) -> float:
        """Mean Z/A (mol/g), the electron density per unit mass over N_A."""
        import xraylib

        return float(
            sum(
                w * z / xraylib.AtomicWeight(z)
                for z, w in zip(self.atomic_numbers, self.mass_fractions, strict=True)
            )
        )


_MEDIA: dict[str, tuple[str, float]] = {
    "water": ("Water, Liquid", 1.00),
    "soft-tissue": ("Tissue, Soft (ICRP)", 1.04),
    "bone": ("Bone, Cortical (ICRP)", 1.92),
    "lung": ("Lung (ICRP)", 0.26),
    "adipose": ("Adipose Tissue (ICRP)", 0.95),
    "air": ("Air, Dry (near sea level)", 0.001205),
}

_SYNONYMS = {
    "soft tissue": "soft-tissue",
    "softtissue": "soft-tissue",
    "tissue": "soft-tissue",
    "soft": "soft-tissue",
    "cortical bone": "bone",
    "bone-cortical": "bone",
}

MEDIA = tuple(_MEDIA)
"""Names of the reference media."""


def normalize_medium(name: str) -> str:
    """Canonical medium name (``"soft-tissue"``) from what a user typed."""
    key = str(name).strip().lower().replace("_", "-")
    key = _SYNONYMS.get(key, _SYNONYMS.get(key.replace("-", " "), key))
    if key not in _MEDIA:
        raise InvalidInputError(f"unknown medium {name!r}; choose one of: {', '.join(MEDIA)}")
    return key


@lru_cache(maxsize=32)
def material(name: str) -> Material:
    """The reference :class:`Material` called ``name`` (see the module table)."""
    import xraylib

    key = normalize_medium(name)
    nist, density = _MEDIA[key]
    data = xraylib.GetCompoundDataNISTByName(nist)
    return Material(
        name=key,
        nist_name=nist,
        density_g_cm3=density,
        atomic_numbers=tuple(int(z) for z in data["Elements"]),
        mass_fractions=tuple(float(w) for w in data["massFractions"]),
    )
