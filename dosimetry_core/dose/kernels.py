"""Voxel S-value kernels for any nuclide, voxel size and medium: computed, cached, imported.

A kernel is the mean absorbed dose in each voxel of a grid per decay uniformly
distributed in the central voxel, in Gy/(Bq*s), array ``[z, y, x]`` with odd
sizes (MIRD Pamphlet 17, Bolch et al., J Nucl Med 1999;40:11S-36S).

How a kernel is made (:func:`voxel_kernel`)
-------------------------------------------
* Decay chain: the nuclide and its short-lived progeny
  (:func:`dosimetry_core.physics.nuclides.decay_chain`), each weighted by its
  decays per parent decay.
* Electrons (beta spectra, internal-conversion and Auger lines of ICRP-107):
  radial point kernels from our condensed-history Monte Carlo in the medium
  (:func:`dosimetry_core.dose.electron_transport.electron_point_kernel`),
  integrated over source and target voxels
  (:func:`dosimetry_core.dose.point_kernels.voxel_kernel_from_point_kernel`).
* Photons (gamma, X-ray and annihilation lines of the chain): radial point
  kernel from our photon Monte Carlo with ``xraylib`` cross sections
  (:func:`dosimetry_core.dose.monte_carlo.photon_point_kernel`), integrated the
  same way, out to ``photon_radius_mm`` (default 200 mm: the kernel is cropped
  to the dose grid at convolution anyway).
* Alpha particles and recoil nuclei (ranges < 0.1 mm): deposited in the source
  voxel.

Cache: ``$MRTDOSE_KERNEL_CACHE`` or ``~/.cache/mrt-dosimetry/kernels``, one
``.npz`` per kernel, named by the SHA-256 of every input (nuclide, voxel size,
medium, density, components, histories, seed, code version).  A corrupt cache
file is recomputed.

Files (:func:`write_kernel`, :func:`read_kernel`)
--------------------------------------------------
``.npz``: arrays ``values_gy_per_bq_s`` and ``meta`` (JSON text).  ``.txt``: a
text table a user can also write by hand for an external kernel (e.g. from
another code or a published database)::

    # {"nuclide": "Lu-177", "medium": "soft-tissue", "voxel_mm": [4.8, 4.8, 4.8],
    #  "unit": "mGy/(MBq*s)", "density_g_cm3": 1.04, "source": "..."}
    # i j k value
    0 0 0 1.780e-01
    0 0 1 2.460e-03
    ...

``i j k`` are voxel offsets along x, y, z.  Lines may cover one octant only
(all offsets >= 0): the kernel is then completed by mirror symmetry and, for
cubic voxels, by exchanging i, j and k (so each offset may be listed once).
Offsets missing from the table are zero.  Values are in the unit given
(``mGy/(MBq*s)`` or ``Gy/(Bq*s)``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.dose.units import (
    CM3_PER_MM3,
    J_PER_MEV,
    KG_PER_G,
    MGY_PER_MBQ_S_PER_GY_PER_BQ_S,
)
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.progress import (
    CancelCheck,
    ProgressCallback,
    check_cancel,
    report,
    sub_progress,
)

KERNEL_CODE_VERSION = "1"
"""Bump when the transport or integration changes: old cache entries are then ignored."""

COMPONENTS = ("electron", "photon", "alpha")
DEFAULT_PHOTON_RADIUS_MM = 200.0
DEFAULT_ELECTRON_HISTORIES = 200_000
DEFAULT_PHOTON_HISTORIES = 1_000_000
UNITS = {"mGy/(MBq*s)": 1.0 / MGY_PER_MBQ_S_PER_GY_PER_BQ_S, "Gy/(Bq*s)": 1.0}


@dataclass(frozen=True)
class VoxelKernel:
    """Voxel S-values of one nuclide (chain) for one voxel size and medium."""

    nuclide: str
    medium: str
    density_g_cm3: float
    spacing_mm: tuple[float, float, float]
    """Voxel size (x, y, z), mm."""
    values_gy_per_bq_s: NDArray[np.float64]
    """``[z, y, x]``, odd sizes, source voxel at the centre."""
    emitted_mev: dict[str, float] = field(default_factory=dict)
    """Energy emitted per (parent) decay by component, MeV."""
    source: str = "computed"
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def voxel_mass_g(self) -> float:
        v = float(np.prod(self.spacing_mm)) * CM3_PER_MM3
        return v * self.density_g_cm3

    def absorbed_energy_mev(self) -> float:
        """Energy absorbed within the kernel per decay: sum(S) x voxel mass (MeV)."""
        total = float(np.sum(self.values_gy_per_bq_s, dtype=np.float64))
        return total * self.voxel_mass_g * KG_PER_G / J_PER_MEV

    def emitted_energy_mev(self) -> float:
        return float(sum(self.emitted_mev.values()))

    def value_mgy_per_mbq_s(self, offset: str | Sequence[int]) -> float:
        """S-value at a voxel offset ``"i,j,k"`` (x, y, z) from the source voxel, mGy/(MBq*s)."""
        if isinstance(offset, str):
            try:
                i, j, k = (int(v) for v in offset.split(","))
            except ValueError as exc:
                raise InvalidInputError(f"bad voxel offset {offset!r}; use 'i,j,k'") from exc
        else:
            i, j, k = (int(v) for v in offset)
        arr = self.values_gy_per_bq_s
        cz, cy, cx = (n // 2 for n in arr.shape)
        z, y, x = cz + k, cy + j, cx + i
        if not (0 <= z < arr.shape[0] and 0 <= y < arr.shape[1] and 0 <= x < arr.shape[2]):
            return 0.0
        return float(arr[z, y, x]) * MGY_PER_MBQ_S_PER_GY_PER_BQ_S

    def describe(self) -> dict[str, Any]:
        """Everything but the values (for provenance records)."""
        return {
            "nuclide": self.nuclide,
            "medium": self.medium,
            "density_g_cm3": self.density_g_cm3,
            "voxel_mm": list(self.spacing_mm),
            "shape_zyx": list(self.values_gy_per_bq_s.shape),
            "emitted_mev": dict(self.emitted_mev),
            "absorbed_energy_mev": self.absorbed_energy_mev(),
            "source": self.source,
            "provenance": dict(self.provenance),
        }


def _spacing3(spacing_mm: float | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(spacing_mm, int | float):
        vals = [float(spacing_mm)]
    else:
        vals = [float(v) for v in spacing_mm]
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3 or not all(np.isfinite(v) and v > 0 for v in vals):
        raise InvalidInputError(
            f"voxel size must be 1 or 3 positive numbers (mm), got {spacing_mm!r}"
        )
    return (vals[0], vals[1], vals[2])


KERNEL_VOXEL_RANGE_MM = (0.1, 100.0)
"""Voxel sizes for which a kernel is computed (mm).  Clinical SPECT/PET voxels are
2-5 mm and preclinical ones a few tenths of a mm; below 0.1 mm the grid needed to
reach the electron range holds more voxels than memory (the photon grid has its own
limit, :data:`MAX_KERNEL_GRID_VOXELS`).  Above about 20 mm one voxel holds nearly
every electron track (the electron part is the local-deposition one) but the photon
part still matters: the engine-agreement test uses 80 mm voxels in a 1.6 m water
cube; beyond 100 mm no patient or phantom grid is meant."""


def _kernel_spacing(spacing_mm: float | Sequence[float]) -> tuple[float, float, float]:
    spacing = _spacing3(spacing_mm)
    lo, hi = KERNEL_VOXEL_RANGE_MM
    bad = [s for s in spacing if not lo <= s <= hi]
    if bad:
        raise InvalidInputError(
            f"voxel size (voxel_mm) {bad[0]:g} mm is outside the {lo:g}-{hi:g} mm for which "
            "a kernel is computed (finer voxels need more memory than is available; "
            "coarser ones are the local-deposition method)",
            field="voxel_mm",
        )
    return spacing


MAX_KERNEL_GRID_VOXELS = 200_000_000
"""Largest photon kernel grid computed (voxels; 1.6 GB as float64)."""


def _check_grid(spacing: tuple[float, float, float], photon_radius_mm: float) -> None:
    hw = _half_width(photon_radius_mm, spacing)
    n = (2 * hw[0] + 1) * (2 * hw[1] + 1) * (2 * hw[2] + 1)
    if n > MAX_KERNEL_GRID_VOXELS:
        raise InvalidInputError(
            f"voxel size (voxel_mm) {min(spacing):g} mm is too fine for a photon kernel of "
            f"{photon_radius_mm:g} mm radius: {n:.3g} voxels, more than the "
            f"{MAX_KERNEL_GRID_VOXELS:.3g} computed (use larger voxels)",
            field="voxel_mm",
        )


def cache_dir() -> Path:
    """Where computed kernels are kept (``$MRTDOSE_KERNEL_CACHE`` or the user cache)."""
    env = os.environ.get("MRTDOSE_KERNEL_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "mrt-dosimetry" / "kernels"


def _half_width(radius_mm: float, spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    return (
        int(np.ceil(radius_mm / spacing[0])),
        int(np.ceil(radius_mm / spacing[1])),
        int(np.ceil(radius_mm / spacing[2])),
    )


def _max_radius_mm(pk: Any) -> float:
    """Outer edge of the last shell with deposited energy."""
    frac = np.asarray(pk.fraction)
    nz = np.flatnonzero(frac > 0)
    if nz.size == 0:
        return float(pk.r_edges_mm[1])
    return float(pk.r_edges_mm[nz[-1] + 1])


def _embed(small: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Centre ``small`` in a zero array of ``shape`` (both odd)."""
    out = np.zeros(shape, dtype=np.float64)
    sl = tuple(
        slice((n - m) // 2, (n - m) // 2 + m) for n, m in zip(shape, small.shape, strict=True)
    )
    out[sl] += small
    return out


def voxel_kernel(
    nuclide: str,
    spacing_mm: float | Sequence[float],
    medium: str = "soft-tissue",
    *,
    include_progeny: bool = True,
    components: Sequence[str] = COMPONENTS,
    density_g_cm3: float | None = None,
    photon_radius_mm: float = DEFAULT_PHOTON_RADIUS_MM,
    electron_histories: int = DEFAULT_ELECTRON_HISTORIES,
    photon_histories: int = DEFAULT_PHOTON_HISTORIES,
    electron_emissions: Sequence[str] = ("beta", "IE", "auger"),
    seed: int = 0,
    use_cache: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> VoxelKernel:
    """The voxel S-value kernel of ``nuclide`` (module docstring), from the cache if there.

    ``electron_emissions``: ICRP-107 electron emissions transported (all by
    default; a subset only to reproduce a published kernel made that way).
    """
    from dosimetry_core.physics.materials import material, normalize_medium
    from dosimetry_core.physics.nuclides import normalize_nuclide

    nuc = normalize_nuclide(nuclide)
    med = normalize_medium(medium)
    spacing = _kernel_spacing(spacing_mm)
    comps = tuple(sorted(set(components)))
    bad = [c for c in comps if c not in COMPONENTS]
    if bad or not comps:
        raise InvalidInputError(f"kernel components must be among {', '.join(COMPONENTS)}")
    if "photon" in comps:
        _check_grid(spacing, photon_radius_mm)
    rho = float(material(med).density_g_cm3 if density_g_cm3 is None else density_g_cm3)
    if not rho > 0:
        raise InvalidInputError("the kernel medium density must be positive")
    key_data = {
        "nuclide": nuc,
        "spacing_mm": [round(s, 6) for s in spacing],
        "medium": med,
        "density_g_cm3": round(rho, 6),
        "include_progeny": include_progeny,
        "components": list(comps),
        "photon_radius_mm": photon_radius_mm,
        "electron_histories": int(electron_histories),
        "photon_histories": int(photon_histories),
        "seed": int(seed),
        "electron_emissions": sorted(set(electron_emissions)),
        "code": KERNEL_CODE_VERSION,
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir() / f"{nuc}_{key}.npz"
    if use_cache and path.exists():
        try:
            k = read_kernel(path)
            report(progress, 1.0, f"kernel {nuc} from the cache")
            return k
        except (InvalidInputError, OSError, ValueError, KeyError):
            pass  # corrupt or foreign cache entry: recompute
    k = _compute(
        nuc, spacing, med, rho, include_progeny, comps, photon_radius_mm,
        electron_histories, photon_histories, tuple(electron_emissions), seed, progress, cancel,
    )  # fmt: skip
    k = VoxelKernel(
        k.nuclide,
        k.medium,
        k.density_g_cm3,
        k.spacing_mm,
        k.values_gy_per_bq_s,
        k.emitted_mev,
        "computed",
        {**k.provenance, **key_data, "cache_key": key},
    )
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            write_kernel(k, tmp)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache is not an error: the kernel is still returned
    return k


def _compute(
    nuc: str,
    spacing: tuple[float, float, float],
    med: str,
    rho: float,
    include_progeny: bool,
    comps: tuple[str, ...],
    photon_radius_mm: float,
    electron_histories: int,
    photon_histories: int,
    electron_emissions: tuple[str, ...],
    seed: int,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> VoxelKernel:
    from dosimetry_core.dose.electron_transport import (
        electron_emission_energy_mev,
        electron_point_kernel,
    )
    from dosimetry_core.dose.monte_carlo import photon_point_kernel
    from dosimetry_core.dose.point_kernels import voxel_kernel_from_point_kernel
    from dosimetry_core.physics.nuclides import (
        chain_photon_lines,
        decay_chain,
        energy_per_decay,
    )

    chain = decay_chain(nuc, include_progeny=include_progeny)
    emitted = {"electron": 0.0, "photon": 0.0, "alpha": 0.0}
    parts: list[NDArray[np.float64]] = []
    voxel_mass_kg = float(np.prod(spacing)) * CM3_PER_MM3 * rho * KG_PER_G
    n_steps = len(chain) + 1
    step = 0
    if "electron" in comps:
        for m in chain:
            check_cancel(cancel)
            e = electron_emission_energy_mev(m.nuclide, electron_emissions)
            if e <= 0:
                step += 1
                continue
            report(progress, step / n_steps, f"electron transport: {m.nuclide}")
            pk = electron_point_kernel(
                m.nuclide,
                med,
                density_g_cm3=rho,
                histories=electron_histories,
                seed=seed,
                progress=sub_progress(progress, step / n_steps, (step + 0.8) / n_steps),
                cancel=cancel,
                emissions=electron_emissions,
            )
            hw = _half_width(_max_radius_mm(pk) + max(spacing), spacing)
            vk = voxel_kernel_from_point_kernel(pk, spacing, hw)
            parts.append(m.decays_per_parent_decay * np.asarray(vk, dtype=np.float64))
            emitted["electron"] += m.decays_per_parent_decay * e
            step += 1
    if "photon" in comps:
        check_cancel(cancel)
        energies, yields = chain_photon_lines(nuc, include_progeny=include_progeny)
        keep = yields > 0
        if np.any(keep):
            report(progress, step / n_steps, "photon transport")
            edges = np.concatenate(
                [
                    np.arange(0.0, 20.0, 0.25),
                    np.arange(20.0, photon_radius_mm + 1e-9, 1.0),
                ]
            )
            pk = photon_point_kernel(
                (energies[keep], yields[keep]),
                med,
                r_edges_mm=edges,
                histories=photon_histories,
                seed=seed,
                density_g_cm3=rho,
            )
            hw = _half_width(photon_radius_mm, spacing)
            parts.append(np.asarray(voxel_kernel_from_point_kernel(pk, spacing, hw), dtype=float))
            emitted["photon"] += float(np.sum(energies[keep] * yields[keep]))
    if "alpha" in comps:
        e_alpha = sum(
            m.decays_per_parent_decay
            * (energy_per_decay(m.nuclide).alpha_mev + energy_per_decay(m.nuclide).alpha_recoil_mev)
            for m in chain
        )
        if e_alpha > 0:
            local = np.zeros((1, 1, 1))
            local[0, 0, 0] = e_alpha * J_PER_MEV / voxel_mass_kg
            parts.append(local)
            emitted["alpha"] = e_alpha
    if not parts:
        raise InvalidInputError(f"{nuc} emits nothing in the components {', '.join(comps)}")
    shape = tuple(max(p.shape[i] for p in parts) for i in range(3))
    total = np.zeros(shape, dtype=np.float64)
    for p in parts:
        total += _embed(p, shape)
    report(progress, 1.0, f"kernel {nuc} ready")
    return VoxelKernel(
        nuclide=nuc,
        medium=med,
        density_g_cm3=rho,
        spacing_mm=spacing,
        values_gy_per_bq_s=total,
        emitted_mev={k: v for k, v in emitted.items() if v > 0},
        source="computed",
        provenance={"chain": [(m.nuclide, m.decays_per_parent_decay) for m in chain]},
    )


# ------------------------------------------------------------------ files
def write_kernel(kernel: VoxelKernel, path: str | Path) -> None:
    """Write a kernel as ``.npz`` (exact) or ``.txt`` (one octant if symmetric, else all)."""
    p = Path(path)
    meta = {
        "format": "mrt-dosimetry voxel kernel, version 1",
        "nuclide": kernel.nuclide,
        "medium": kernel.medium,
        "density_g_cm3": kernel.density_g_cm3,
        "voxel_mm": list(kernel.spacing_mm),
        "emitted_mev": kernel.emitted_mev,
        "source": kernel.source,
        "provenance": kernel.provenance,
    }
    if p.suffix == ".npz" or p.name.endswith(".npz"):
        with open(p, "wb") as f:
            np.savez_compressed(
                f, values_gy_per_bq_s=kernel.values_gy_per_bq_s, meta=np.array(json.dumps(meta))
            )
        return
    arr = kernel.values_gy_per_bq_s * MGY_PER_MBQ_S_PER_GY_PER_BQ_S
    cz, cy, cx = (n // 2 for n in arr.shape)
    meta["unit"] = "mGy/(MBq*s)"
    meta["shape_zyx"] = list(arr.shape)
    lines = ["# " + json.dumps(meta), "# i j k value"]
    zz, yy, xx = np.nonzero(arr)
    for z, y, x in zip(zz, yy, xx, strict=True):
        lines.append(f"{x - cx} {y - cy} {z - cz} {arr[z, y, x]:.6e}")
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_kernel(path: str | Path) -> VoxelKernel:
    """Read a kernel written by :func:`write_kernel` or an external text table (module doc)."""
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"kernel file {p} does not exist")
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                values = np.asarray(z["values_gy_per_bq_s"], dtype=np.float64)
                meta = json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"kernel file {p} cannot be read: {exc}") from exc
        return _from_meta(values, meta, p)
    return _read_text(p)


def _from_meta(values: NDArray[np.float64], meta: dict[str, Any], p: Path) -> VoxelKernel:
    for key in ("nuclide", "medium", "voxel_mm"):
        if key not in meta:
            raise InvalidInputError(f"kernel file {p} lacks {key!r} in its header")
    if values.ndim != 3 or any(n % 2 == 0 for n in values.shape):
        raise InvalidInputError(f"kernel file {p}: the kernel must be 3-D with odd sizes")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InvalidInputError(f"kernel file {p}: values must be finite and non-negative")
    density = meta.get("density_g_cm3")
    if density is None:
        from dosimetry_core.physics.materials import material

        density = material(meta["medium"]).density_g_cm3
    return VoxelKernel(
        nuclide=str(meta["nuclide"]),
        medium=str(meta["medium"]),
        density_g_cm3=float(density),
        spacing_mm=_spacing3(meta["voxel_mm"]),
        values_gy_per_bq_s=values,
        emitted_mev=dict(meta.get("emitted_mev") or {}),
        source=str(meta.get("source") or f"imported from {p.name}"),
        provenance=dict(meta.get("provenance") or {}),
    )


def _read_text(p: Path) -> VoxelKernel:
    meta: dict[str, Any] = {}
    rows: list[tuple[int, int, int, float]] = []
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"kernel file {p} cannot be read: {exc}") from exc
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s.lstrip("#").strip()
            if body.startswith("{"):
                try:
                    meta.update(json.loads(body))
                except ValueError as exc:
                    raise InvalidInputError(f"{p}:{n}: bad JSON header ({exc})") from exc
            continue
        parts = s.replace(",", " ").split()
        if len(parts) != 4:
            raise InvalidInputError(f"{p}:{n}: expected 'i j k value', got {s!r}")
        try:
            rows.append((int(parts[0]), int(parts[1]), int(parts[2]), float(parts[3])))
        except ValueError as exc:
            raise InvalidInputError(f"{p}:{n}: expected 'i j k value', got {s!r}") from exc
    if not rows:
        raise InvalidInputError(f"kernel file {p} has no 'i j k value' lines")
    unit = meta.get("unit", "mGy/(MBq*s)")
    if unit not in UNITS:
        raise InvalidInputError(f"kernel file {p}: unit {unit!r} not one of {', '.join(UNITS)}")
    ijk = np.array([r[:3] for r in rows], dtype=int)
    vals = np.array([r[3] for r in rows], dtype=float) * UNITS[unit]
    octant = bool(np.all(ijk >= 0))
    cubic = False
    if "voxel_mm" in meta:
        sp = _spacing3(meta["voxel_mm"])
        cubic = sp[0] == sp[1] == sp[2]
    given = {tuple(int(v) for v in row): float(val) for row, val in zip(ijk, vals, strict=True)}
    if octant and cubic:
        # a cubic-voxel table may list each offset once (any order of i, j, k)
        for (i, j, k), v in list(given.items()):
            for perm in {(i, j, k), (i, k, j), (j, i, k), (j, k, i), (k, i, j), (k, j, i)}:
                given.setdefault(perm, v)
    half = np.abs(np.array(list(given), dtype=int)).max(axis=0)  # (i, j, k) = (x, y, z)
    shape = (2 * half[2] + 1, 2 * half[1] + 1, 2 * half[0] + 1)
    arr = np.zeros(shape, dtype=np.float64)
    for (i, j, k), v in given.items():
        signs_i = (i, -i) if octant else (i,)
        signs_j = (j, -j) if octant else (j,)
        signs_k = (k, -k) if octant else (k,)
        for a in set(signs_i):
            for b in set(signs_j):
                for c in set(signs_k):
                    arr[half[2] + c, half[1] + b, half[0] + a] = v
    full = meta.get("shape_zyx")
    if isinstance(full, list) and len(full) == 3:
        target = tuple(int(n) for n in full)
        if all(t >= n and t % 2 == 1 for t, n in zip(target, arr.shape, strict=True)):
            arr = _embed(arr, target)
    return _from_meta(arr, meta, p)
