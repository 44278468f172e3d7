"""Reference media for dose calculation: elemental composition and density.

Each medium names one material of the NIST compound database as shipped by
``xraylib`` (``GetCompoundDataNISTByName``; T. Schoonjans et al., "The xraylib
library for X-ray-matter interactions. Recent developments", Spectrochim Acta B
66:776-784, 2011), which reproduces the ICRU Report 37 / ICRP compositions
used by NIST ESTAR/XCOM.  The composition is always read from that entry, and
the mean excitation energy ``I`` in ``resources/dose/mean_excitation_energies.json``
(ICRU Report 37, 1984, as used by ESTAR) names the same entry.  The density is
that entry's NIST density too (read from ``xraylib``, not typed here), so
density, composition and ``I`` describe one NIST/ICRP material, except for
the two media marked below, whose nominal density is a dose convention kept
on purpose (the composition and ``I`` are still the NIST entry's):

=============  ===========================  ================  ==========================
name           NIST compound (xraylib)      density g/cm^3    density source
=============  ===========================  ================  ==========================
water          Water, Liquid                1.00              NIST (xraylib)
soft-tissue    Tissue, Soft (ICRP)          1.04 (*)          ICRU Report 44 (1989)
bone           Bone, Cortical (ICRP)        1.85              NIST (xraylib); ICRU 37 I = 106.4 eV
lung           Lung (ICRP)                  0.26 (*)          ICRP 89 (inflated lung)
adipose        Adipose Tissue (ICRP)        0.92              NIST (xraylib); ICRU 37 I = 63.2 eV
air            Air, Dry (near sea level)    0.001205          NIST (xraylib)
=============  ===========================  ================  ==========================

(*) Not the NIST density of the entry (Tissue, Soft (ICRP) 1.00; Lung (ICRP)
1.05).  Soft tissue at 1.04 g/cm^3 is the density the dose kernels are
compared at (Lanconelli et al., Phys Med Biol 57:517, 2012; see
``resources/dose/README.md``); lung at 0.26 g/cm^3 is the same tissue
inflated with air (bulk density, negligible change of composition).
Bone and adipose used ICRU Report 44 densities (1.92 and 0.95 g/cm^3,
which belong to ICRU 44's own, different compositions) until issue 13; they
now use the density of the ICRP composition their ``I`` belongs to.

The electron stopping powers evaluate the density-effect correction at the
NIST density of the entry (:mod:`dosimetry_core.dose.electron_transport`);
the nominal density here converts mass thickness to millimetres and is the
default density of kernels.  Kernels cached on disk are keyed by medium and
density (:func:`dosimetry_core.dose.kernels.voxel_kernel`), so a density
change here gives a new cache entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dosimetry_core.errors import InvalidInputError


@dataclass(frozen=True)
class Material:
    """A homogeneous medium: composition by mass fraction and a nominal density.

    ``nist_name`` is the NIST compound (``xraylib``) the composition, the
    density (except :data:`DENSITY_CONVENTIONS_G_CM3`) and the ICRU 37 mean
    excitation energy all come from.
    """

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


_MEDIA: dict[str, str] = {
    "water": "Water, Liquid",
    "soft-tissue": "Tissue, Soft (ICRP)",
    "bone": "Bone, Cortical (ICRP)",
    "lung": "Lung (ICRP)",
    "adipose": "Adipose Tissue (ICRP)",
    "air": "Air, Dry (near sea level)",
}
"""Medium name -> NIST compound (xraylib) giving composition, density and ``I``."""

DENSITY_CONVENTIONS_G_CM3: dict[str, tuple[float, str]] = {
    "soft-tissue": (1.04, "ICRU Report 44 (1989); density of the Lanconelli 2012 comparison"),
    "lung": (0.26, "ICRP Publication 89 (2002), inflated lung"),
}
"""Media whose nominal density is not the NIST one: (g/cm^3, source)."""


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
    nist = _MEDIA[key]
    data = xraylib.GetCompoundDataNISTByName(nist)
    density = (
        DENSITY_CONVENTIONS_G_CM3[key][0]
        if key in DENSITY_CONVENTIONS_G_CM3
        else float(data["density"])
    )
    return Material(
        name=key,
        nist_name=nist,
        density_g_cm3=density,
        atomic_numbers=tuple(int(z) for z in data["Elements"]),
        mass_fractions=tuple(float(w) for w in data["massFractions"]),
    )
