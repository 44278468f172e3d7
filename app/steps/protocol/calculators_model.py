"""View-model of the calculators forms (no Qt): fields, prefill from the case, core calls, results.

Five forms, each a :class:`CalculatorForm` with its fields (name, label, unit,
default), which fields a chosen method shows, and :meth:`CalculatorForm.compute`
that turns the typed texts into numbers, calls ONE core function and returns a
:class:`CalcOutcome` (result rows with their units, the formula's source,
warnings, or the core's refusal with the field it names).  Nothing is computed
here: every number comes from :mod:`dosimetry_core` (the same functions as the
``mrtdose`` commands named below):

* ``thyroid`` -- I-131 benign thyroid, Marinelli formula from a fitted uptake
  curve (:mod:`dosimetry_core.protocols.thyroid`, ``mrtdose thyroid``);
* ``sirt`` -- Y-90 microspheres: partition model forward and inverse with the
  lung limits, single compartment, BSA (resin), lung shunt fraction from planar
  (geometric mean) or SPECT counts (:mod:`dosimetry_core.protocols.sirt`,
  ``mrtdose sirt``);
* ``mibg`` -- I-131 mIBG whole-body dose, activity for a target, second
  administration (:mod:`dosimetry_core.protocols.mibg`, ``mrtdose mibg``);
* ``marrow`` -- blood-based red-marrow dose
  (:mod:`dosimetry_core.protocols.marrow`, ``mrtdose marrow``);
* ``bed`` -- BED/EQD2 of a dose and the dose for a BED
  (:mod:`dosimetry_core.radiobiology.bed_calculator`, ``mrtdose bed``).

:func:`prefill` gives the defaults the open case supplies (patient weight,
height and sex, nuclide, net administered activity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.model.case import Case

__all__ = [
    "ACTIVITY_UNITS",
    "FORMS",
    "CalcOutcome",
    "CalculatorForm",
    "Field",
    "ResultRow",
    "choices_of",
    "form_by_id",
    "prefill",
    "unit_key",
]


# ------------------------------------------------------------------ records
@dataclass(frozen=True)
class Field:
    """One input of a form.

    ``kind``: ``"number"`` (one value in ``unit``), ``"numbers"`` (several,
    separated by spaces, commas or semicolons), ``"choice"`` (one of
    ``choices``, ``(value, label)`` pairs) or ``"text"``.  ``optional``: an
    empty box means "not given".  ``when``: shown (and used) only while each
    named choice field has one of the listed values.  ``aliases``: the words
    the core uses for this value in its messages (to put a refusal on the box).
    ``units``: an activity may be typed in any unit of
    :data:`dosimetry_core.model.quantities.ACTIVITY` (MBq, GBq, kBq, mCi, Ci; the
    unit chosen comes in the texts as ``"<name>:unit"``) and is converted by the
    core's :func:`~dosimetry_core.model.quantities.to_stored` to ``unit``.
    """

    name: str
    label: str
    unit: str = ""
    kind: str = "number"
    default: str = ""
    optional: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    aliases: tuple[str, ...] = ()
    tip: str = ""
    units: tuple[str, ...] = ()


ACTIVITY_UNITS: tuple[str, ...] = ("MBq", "GBq", "mCi")
"""Units offered for an activity input (each in ``dosimetry_core.model.quantities.ACTIVITY``)."""


def unit_key(name: str) -> str:
    """The key of a field's chosen unit in the texts of a form."""
    return f"{name}:unit"


@dataclass(frozen=True)
class ResultRow:
    """One result: ``key`` (units in the name, as the CLI's JSON), label, value and unit."""

    key: str
    label: str
    value: float | str | None
    unit: str = ""
    digits: int = 4
    """Significant digits of a number."""

    def text(self) -> str:
        """``'301.4 MBq'``; ``'-'`` when absent; text values as they are."""
        v = self.value
        if v is None:
            return "-"
        if isinstance(v, str):
            return v
        if math.isinf(v):
            return "no limit"
        s = f"{v:.{self.digits}g}"
        if 10 ** (self.digits - 1) <= abs(v) < 1e9:
            s = f"{v:.0f}"
        return f"{s} {self.unit}".rstrip()


@dataclass(frozen=True)
class CalcOutcome:
    """What a computation gives the form: results, or the core's refusal."""

    rows: tuple[ResultRow, ...] = ()
    source: str = ""
    warnings: tuple[str, ...] = ()
    error: str | None = None
    error_field: str | None = None
    """The field the refusal is about (None: not one field's)."""
    data: dict[str, Any] = field(default_factory=dict)
    """The core's result as the CLI's ``--json`` writes it."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def value(self, key: str) -> float | str | None:
        for r in self.rows:
            if r.key == key:
                return r.value
        raise KeyError(key)

    def row(self, key: str) -> ResultRow:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)


# ------------------------------------------------------------------ parsing
def _split(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").replace(";", " ").split() if t]


class _Values:
    """The typed texts of one form, read as numbers with the field named on refusal."""

    def __init__(self, form: CalculatorForm, texts: Mapping[str, str]) -> None:
        self.form = form
        self.texts = {f.name: str(texts.get(f.name, f.default)).strip() for f in form.fields}
        self.units = {f.name: str(texts.get(unit_key(f.name)) or f.unit) for f in form.fields}

    def _field(self, name: str) -> Field:
        return self.form.field(name)

    def text(self, name: str) -> str:
        return self.texts[name]

    def number(self, name: str) -> float | None:
        f = self._field(name)
        t = self.texts[name]
        if not t:
            if f.optional:
                return None
            raise InvalidInputError(f"{f.label} is missing", field=name)
        try:
            value = float(t)
        except ValueError:
            unit = f" (in {self.units[name]})" if f.unit else ""
            raise InvalidInputError(
                f"{f.label} must be a number{unit}, got {t!r}", field=name
            ) from None
        chosen = self.units[name]
        if f.units and chosen != f.unit:
            from dosimetry_core.model.quantities import ACTIVITY, from_stored, to_stored

            if chosen not in ACTIVITY.units:
                raise InvalidInputError(f"{f.label}: unknown unit {chosen!r}", field=name)
            value = from_stored(ACTIVITY, to_stored(ACTIVITY, value, chosen), f.unit)
        return value

    def required(self, name: str) -> float:
        v = self.number(name)
        assert v is not None  # a required field never gives None
        return v

    def integer(self, name: str) -> int:
        v = self.required(name)
        if not (math.isfinite(v) and v == int(v)):
            raise InvalidInputError(
                f"{self._field(name).label} must be a whole number, got {self.texts[name]!r}",
                field=name,
            )
        return int(v)

    def numbers(self, name: str) -> list[float] | None:
        f = self._field(name)
        parts = _split(self.texts[name])
        if not parts:
            if f.optional:
                return None
            raise InvalidInputError(f"{f.label} is missing", field=name)
        out = []
        for p in parts:
            try:
                out.append(float(p))
            except ValueError:
                raise InvalidInputError(
                    f"{f.label}: {p!r} is not a number (separate values by spaces)", field=name
                ) from None
        return out

    def choice(self, name: str) -> str:
        return self.texts[name]


# ------------------------------------------------------------------ forms
Compute = Callable[[_Values], CalcOutcome]


@dataclass(frozen=True)
class CalculatorForm:
    """One calculator: its fields, its source and its core call (module docstring)."""

    form_id: str
    title: str
    fields: tuple[Field, ...]
    source: str
    _compute: Compute

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def defaults(self) -> dict[str, str]:
        """Default texts, and the unit of each field that offers several."""
        out = {f.name: f.default for f in self.fields}
        out.update({unit_key(f.name): f.unit for f in self.fields if f.units})
        return out

    def visible_fields(self, texts: Mapping[str, str]) -> list[str]:
        """Names of the fields shown for the chosen methods (``when`` conditions met)."""
        vals = {f.name: str(texts.get(f.name, f.default)) for f in self.fields}
        return [f.name for f in self.fields if all(vals.get(k) in v for k, v in f.when)]

    def compute(self, texts: Mapping[str, str]) -> CalcOutcome:
        """Read the texts, call the core; a refusal comes back as ``error`` (never raised).

        Unexpected exceptions (bugs) propagate, for the worker to report.
        """
        try:
            return self._compute(_Values(self, texts))
        except InvalidInputError as exc:
            return CalcOutcome(
                error=str(exc), error_field=exc.field or self.guess_field(str(exc), texts)
            )
        except DosimetryError as exc:
            return CalcOutcome(error=str(exc))

    def guess_field(self, message: str, texts: Mapping[str, str]) -> str | None:
        """The visible field whose name or alias the core's message starts with or names."""
        low = message.lower()
        shown = set(self.visible_fields(texts))
        best: tuple[int, int, str] | None = None
        for f in self.fields:
            if f.name not in shown:
                continue
            for word in (f.name, *f.aliases):
                i = low.find(word.lower())
                if i >= 0:
                    cand = (i, -len(word), f.name)
                    if best is None or cand < best:
                        best = cand
        return best[2] if best else None


def _warnings(items: Any) -> tuple[str, ...]:
    return tuple(str(w) for w in (items or ()))


# ................................................................. thyroid
THYROID_SOURCE = (
    "Marinelli formula, A = K D m / (U_max T_eff); EANM SOP: Hänscheid H et al., "
    "Eur J Nucl Med Mol Imaging 2013;40:1126-1134; K from ICRP 107 energies and the "
    "photon absorbed fraction of a unit-density sphere of the thyroid's mass"
)


def _thyroid(v: _Values) -> CalcOutcome:
    from dosimetry_core.protocols.thyroid import (
        absorbed_energy_per_decay,
        fit_uptake,
        k_from_energy,
        prescribe,
        thyroid_dose_from_fit,
    )

    mode = v.choice("mode")
    mass = v.required("mass_g")
    times = v.numbers("uptake_time_h") or []
    uptake = v.numbers("uptake_percent") or []
    method = v.choice("tia_method")
    nuclide = v.text("nuclide") or "I-131"
    assumed = v.number("assumed_t_eff_d")
    tia: Literal["fit", "sop"] = "fit" if method == "fit" else "sop"
    rows: list[ResultRow] = []
    if mode == "prescribe":
        p = prescribe(
            v.required("target_gy"),
            mass,
            times,
            uptake,
            nuclide=nuclide,
            tia_method=tia,
            assumed_t_eff_d=assumed,
        )
        fit, k, af, data = p.fit, p.marinelli_k, p.photon_absorbed_fraction, p.to_dict()
        rows += [
            ResultRow("activity_mbq", f"Activity to administer ({tia} integral)", p.activity_mbq,
                      "MBq"),
            ResultRow("activity_sop_mbq", "Activity, SOP integral U_max T_eff/ln2",
                      p.activity_sop_mbq, "MBq"),
        ]  # fmt: skip
    else:
        fit = fit_uptake(times, uptake, nuclide, assumed_t_eff_d=assumed)
        a = v.required("activity_mbq")
        dose = thyroid_dose_from_fit(a, mass, fit, tia_method=tia)  # checks the mass first
        dose_sop = thyroid_dose_from_fit(a, mass, fit, tia_method="sop")
        e = absorbed_energy_per_decay(fit.nuclide, mass)
        k, af = k_from_energy(e.absorbed_mev), e.photon_absorbed_fraction
        data = {"dose_gy": dose, "dose_sop_gy": dose_sop, "marinelli_k": k, "fit": fit.to_dict()}
        rows += [
            ResultRow("dose_gy", f"Thyroid dose ({tia} integral)", dose, "Gy"),
            ResultRow("dose_sop_gy", "Thyroid dose, SOP integral", dose_sop, "Gy"),
        ]
    rows += [
        ResultRow("model", "Uptake model", f"{fit.model} ({fit.rule})"),
        ResultRow("u_max_percent", "Maximum uptake U_max", fit.u_max_percent, "%"),
        ResultRow("t_eff_d", "Effective half-life T_eff", fit.t_eff_d, "d"),
        ResultRow("t_uptake_h", "Uptake half-time", fit.t_uptake_h, "h"),
        ResultRow("u_peak_percent", "Peak uptake", fit.u_peak_percent, "%"),
        ResultRow("t_peak_h", "Time of the peak", fit.t_peak_h, "h", 3),
        ResultRow("marinelli_k", "Marinelli K", k, "MBq d/(Gy g)"),
        ResultRow("photon_absorbed_fraction", "Photon absorbed fraction", af, "", 3),
    ]
    return CalcOutcome(tuple(rows), THYROID_SOURCE, _warnings(fit.warnings), data=data)


_THYROID = CalculatorForm(
    "thyroid",
    "I-131 thyroid",
    (
        Field(
            "mode",
            "Calculate",
            kind="choice",
            default="prescribe",
            choices=(
                ("prescribe", "activity for a target dose"),
                ("verify", "dose for an activity"),
            ),
        ),
        Field(
            "target_gy",
            "Target dose",
            "Gy",
            default="150",
            when=(("mode", ("prescribe",)),),
            aliases=("target dose",),
        ),
        Field(
            "activity_mbq",
            "Administered activity",
            "MBq",
            units=ACTIVITY_UNITS,
            when=(("mode", ("verify",)),),
            aliases=("administered activity",),
        ),
        Field("mass_g", "Thyroid mass", "g", aliases=("thyroid mass",)),
        Field(
            "uptake_time_h",
            "Uptake reading times",
            "h",
            kind="numbers",
            aliases=("uptake time", "uptake reading", "times"),
            tip="hours after administration, separated by spaces",
        ),
        Field(
            "uptake_percent",
            "Uptake at those times",
            "%",
            kind="numbers",
            aliases=("uptake at", "uptake value", "every uptake", "maximum uptake"),
            tip="% of the administered activity, not decay corrected",
        ),
        Field(
            "tia_method",
            "Time integral",
            kind="choice",
            default="fit",
            choices=(("fit", "fitted curve incl. uptake phase"), ("sop", "SOP: U_max T_eff / ln2")),
        ),
        Field(
            "assumed_t_eff_d",
            "Assumed T_eff (1 reading)",
            "d",
            optional=True,
            aliases=("assumed effective half-life", "assumed_t_eff_d"),
        ),
        Field("nuclide", "Nuclide", kind="text", default="I-131"),
    ),  # fmt: skip
    THYROID_SOURCE,
    _thyroid,
)


# ................................................................. SIRT
SIRT_SOURCE = (
    "Partition model: Ho S et al., Eur J Nucl Med 1996;23:947-952; lung limits 30 Gy "
    "per treatment / 50 Gy cumulative (Ho 1997); EANM SOP: Chiesa C et al., EJNMMI Phys "
    "2021;8:77; K from ICRP 107"
)
SIRT_SC_SOURCE = (
    "Single compartment D = K A (1 - LSF)(1 - r) / m: Gulec SA et al., J Nucl Med "
    "2006;47:1209-1211; TheraSphere IFU; EANM SOP (Chiesa 2021); K from ICRP 107"
)
SIRT_BSA_SOURCE = (
    "BSA method, A = (BSA - 0.2 + V_T/(V_T+V_N)) f_LSF f_perfused: SIR-Spheres IFU; "
    "Kennedy A et al., Int J Radiat Oncol Biol Phys 2007;68:13-23; BSA: Mosteller, "
    "N Engl J Med 1987;317:1098 / Du Bois, Arch Intern Med 1916;17:863"
)
LSF_SOURCE = "LSF: EANM SOP (Chiesa 2021); planar: geometric mean of conjugate views"

_PARTITION = ("partition-forward", "partition-inverse")
_SC = ("single-forward", "single-inverse")
_LSF_USED = (*_PARTITION, *_SC, "bsa")


def _sirt_lsf(v: _Values) -> tuple[float, list[ResultRow], str]:
    from dosimetry_core.protocols.sirt import (
        lung_shunt_fraction_planar,
        lung_shunt_fraction_spect,
    )

    how = v.choice("lsf_source")
    if how == "planar":
        lsf = lung_shunt_fraction_planar(
            v.required("lung_ant"),
            v.required("lung_post"),
            v.required("liver_ant"),
            v.required("liver_post"),
        )
        label = "Lung shunt fraction (planar, geometric mean)"
    elif how == "spect":
        lsf = lung_shunt_fraction_spect(v.required("lung_counts"), v.required("liver_counts"))
        label = "Lung shunt fraction (SPECT counts)"
    else:
        return v.required("lsf"), [], ""
    return lsf, [ResultRow("lsf", label, lsf * 100.0, "%")], "; " + LSF_SOURCE


def _sirt(v: _Values) -> CalcOutcome:
    from dosimetry_core.protocols import sirt

    method = v.choice("method")
    lsf, rows, lsf_source = _sirt_lsf(v)
    residual = v.number("residual_fraction") or 0.0
    if method in _PARTITION:
        sirt.check_liver_mass_kg(v.required("liver_mass_kg"))
        common: dict[str, Any] = dict(
            lsf=lsf,
            tnr=v.required("tnr"),
            liver_mass_kg=v.required("liver_mass_kg"),
            tumour_mass_kg=v.required("tumour_mass_kg"),
            lung_mass_kg=v.number("lung_mass_kg"),
            residual_fraction=residual,
            previous_lung_dose_gy=v.number("previous_lung_dose_gy") or 0.0,
            liver_mass_includes_tumour=v.choice("whole_liver_mass") == "yes",
        )
        if method == "partition-forward":
            data = sirt.partition_model(v.required("activity_gbq"), **common).to_dict()
            rows.append(ResultRow("activity_gbq", "Activity", data["inputs"]["activity_gbq"],
                                  "GBq"))  # fmt: skip
        else:
            target = v.choice("target")
            plan = sirt.plan_partition_activity(
                target,
                v.required("target_dose_gy"),
                normal_liver_limit_gy=v.number("normal_liver_limit_gy"),
                **common,
            )
            data = plan.to_dict()
            rows += [
                ResultRow("activity_gbq", "Activity to administer", data["activity_gbq"], "GBq"),
                ResultRow("binding_constraint", "Binding constraint",
                          data["binding_constraint"]),
            ]  # fmt: skip
            for name, a in plan.constraints_gbq.items():
                rows.append(ResultRow(f"constraint_{name}_gbq", f"Allowed by {name}", a, "GBq"))
        inp = data["inputs"]
        rows += [
            ResultRow("tumour_dose_gy", "Tumour dose", data["tumour_dose_gy"], "Gy"),
            ResultRow("normal_liver_dose_gy", "Normal-liver dose",
                      data["normal_liver_dose_gy"], "Gy"),
            ResultRow("lung_dose_gy", "Lung dose", data["lung_dose_gy"], "Gy"),
            ResultRow("cumulative_lung_dose_gy", "Cumulative lung dose",
                      data["cumulative_lung_dose_gy"], "Gy"),
            ResultRow("normal_liver_mass_kg", "Non-tumoural liver mass m_N",
                      inp["normal_liver_mass_kg"], "kg"),
            ResultRow("lung_mass_kg", "Lung mass", inp["lung_mass_kg"], "kg"),
            ResultRow("dose_constant_gy_kg_per_gbq", "Dose constant K",
                      inp["dose_constant_gy_kg_per_gbq"], "Gy kg/GBq"),
        ]  # fmt: skip
        return CalcOutcome(
            tuple(rows), SIRT_SOURCE + lsf_source, _warnings(data["warnings"]), data=data
        )
    if method in _SC:
        m = v.required("perfused_mass_kg")
        k = sirt.y90_dose_constant_gy_kg_per_gbq()
        if method == "single-forward":
            a = v.required("activity_gbq")
            d = sirt.single_compartment_dose_gy(a, m, lsf, residual)
        else:
            d = v.required("target_dose_gy")
            a = sirt.single_compartment_activity_gbq(d, m, lsf, residual)
        data = {"activity_gbq": a, "perfused_dose_gy": d, "lsf": lsf, "perfused_mass_kg": m}
        rows += [
            ResultRow("activity_gbq", "Activity", a, "GBq"),
            ResultRow("perfused_dose_gy", "Mean dose to the perfused volume", d, "Gy"),
            ResultRow("dose_constant_gy_kg_per_gbq", "Dose constant K", k, "Gy kg/GBq"),
        ]
        return CalcOutcome(tuple(rows), SIRT_SC_SOURCE + lsf_source, data=data)
    bsa = sirt.body_surface_area_m2(
        v.required("height_cm"), v.required("weight_kg"), v.choice("bsa_formula")
    )
    res = sirt.bsa_activity_gbq(
        bsa,
        v.required("tumour_fraction"),
        lsf,
        perfused_fraction=v.required("perfused_fraction"),
    )
    data = res.to_dict()
    rows += [
        ResultRow("activity_gbq", "Activity (resin)", res.activity_gbq, "GBq"),
        ResultRow("whole_liver_activity_gbq", "Whole-liver activity before reductions",
                  res.whole_liver_activity_gbq, "GBq"),
        ResultRow("bsa_m2", "Body surface area", res.bsa_m2, "m²"),
        ResultRow("lung_shunt_factor", "Lung-shunt reduction factor", res.lung_shunt_factor,
                  "", 3),
    ]  # fmt: skip
    return CalcOutcome(tuple(rows), SIRT_BSA_SOURCE + lsf_source, data=data)


def _w(*methods: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("method", methods),)


_SIRT = CalculatorForm(
    "sirt",
    "Y-90 SIRT",
    (
        Field(
            "method",
            "Method",
            kind="choice",
            default="partition-forward",
            choices=(
                ("partition-forward", "partition model: activity → doses"),
                ("partition-inverse", "partition model: target dose → activity"),
                ("single-forward", "single compartment: activity → dose"),
                ("single-inverse", "single compartment: dose → activity"),
                ("bsa", "BSA method (resin)"),
            ),
        ),
        Field(
            "activity_gbq",
            "Activity",
            "GBq",
            units=ACTIVITY_UNITS,
            when=_w("partition-forward", "single-forward"),
            aliases=("activity (gbq)", "activity"),
        ),
        Field(
            "target",
            "Target",
            kind="choice",
            default="tumour",
            choices=(("tumour", "tumour"), ("normal-liver", "normal liver")),
            when=_w("partition-inverse"),
        ),
        Field(
            "target_dose_gy",
            "Target dose",
            "Gy",
            when=_w("partition-inverse", "single-inverse"),
            aliases=("target tumour dose", "target normal-liver dose", "dose (gy)"),
        ),
        Field(
            "lsf_source",
            "Lung shunt from",
            kind="choice",
            default="value",
            choices=(
                ("value", "a known fraction"),
                ("planar", "planar counts (ant/post)"),
                ("spect", "SPECT counts"),
            ),
            when=_w(*_LSF_USED),
        ),
        Field(
            "lsf",
            "Lung shunt fraction",
            "(0-1)",
            default="0.05",
            when=(("lsf_source", ("value",)), ("method", _LSF_USED)),
            aliases=("lung shunt fraction",),
        ),
        Field(
            "lung_ant",
            "Lung counts, anterior",
            "counts",
            when=(("lsf_source", ("planar",)),),
            aliases=("lung anterior",),
        ),
        Field(
            "lung_post",
            "Lung counts, posterior",
            "counts",
            when=(("lsf_source", ("planar",)),),
            aliases=("lung posterior",),
        ),
        Field(
            "liver_ant",
            "Liver counts, anterior",
            "counts",
            when=(("lsf_source", ("planar",)),),
            aliases=("liver anterior",),
        ),
        Field(
            "liver_post",
            "Liver counts, posterior",
            "counts",
            when=(("lsf_source", ("planar",)),),
            aliases=("liver posterior", "liver counts"),
        ),
        Field(
            "lung_counts",
            "Lung VOI counts",
            "counts",
            when=(("lsf_source", ("spect",)),),
            aliases=("lung counts",),
        ),
        Field(
            "liver_counts",
            "Liver VOI counts",
            "counts",
            when=(("lsf_source", ("spect",)),),
            aliases=("liver counts",),
        ),
        Field(
            "tnr",
            "Tumour-to-normal ratio (TNR)",
            "",
            when=_w(*_PARTITION),
            aliases=("tumour-to-normal-liver ratio", "tnr"),
        ),
        Field(
            "liver_mass_kg",
            "Perfused liver mass",
            "kg",
            when=_w(*_PARTITION),
            aliases=("liver mass",),
        ),
        Field(
            "whole_liver_mass",
            "Liver mass includes tumour",
            kind="choice",
            default="no",
            choices=(("no", "no: non-tumoural m_N"), ("yes", "yes: whole perfused liver")),
            when=_w(*_PARTITION),
            aliases=("whole liver mass",),
        ),
        Field(
            "tumour_mass_kg",
            "Perfused tumour mass",
            "kg",
            when=_w(*_PARTITION),
            aliases=("tumour mass",),
        ),
        Field(
            "lung_mass_kg",
            "Lung mass (empty: 1 kg)",
            "kg",
            optional=True,
            when=_w(*_PARTITION),
            aliases=("lung mass",),
        ),
        Field(
            "previous_lung_dose_gy",
            "Previous lung dose",
            "Gy",
            default="0",
            when=_w(*_PARTITION),
            aliases=("previous lung dose",),
        ),
        Field(
            "normal_liver_limit_gy",
            "Normal-liver limit (optional)",
            "Gy",
            optional=True,
            when=_w("partition-inverse"),
            aliases=("normal-liver dose limit",),
        ),
        Field("perfused_mass_kg", "Perfused mass", "kg", when=_w(*_SC), aliases=("perfused mass",)),
        Field(
            "residual_fraction",
            "Residual in vial/tubing",
            "(0-1)",
            default="0",
            when=_w(*_PARTITION, *_SC),
            aliases=("residual fraction",),
        ),
        Field("height_cm", "Patient height", "cm", when=_w("bsa"), aliases=("height",)),
        Field("weight_kg", "Patient weight", "kg", when=_w("bsa"), aliases=("weight",)),
        Field(
            "bsa_formula",
            "BSA formula",
            kind="choice",
            default="mosteller",
            choices=(("mosteller", "Mosteller"), ("dubois", "Du Bois")),
            when=_w("bsa"),
        ),
        Field(
            "tumour_fraction",
            "Tumour fraction V_T/(V_T+V_N)",
            "(0-1)",
            when=_w("bsa"),
            aliases=("tumour fraction",),
        ),
        Field(
            "perfused_fraction",
            "Perfused fraction of the liver",
            "(0-1)",
            default="1",
            when=_w("bsa"),
            aliases=("perfused fraction",),
        ),
    ),  # fmt: skip
    SIRT_SOURCE,
    _sirt,
)


# ................................................................. mIBG
MIBG_SOURCE = (
    "Whole-body dose D = TIA S(WB←WB), S from ICRP 107 with a unit-density sphere of the "
    "body mass (upper estimate): Buckley SE et al., J Nucl Med 2009;50:1518-1524; "
    "EANM SOP: Gear J et al., EJNMMI Phys 2020;7:15"
)


def _mibg(v: _Values) -> CalcOutcome:
    from dosimetry_core.protocols.mibg import (
        mibg_activity_for_target,
        mibg_whole_body_dose,
        plan_second_administration,
    )

    bg_list = v.numbers("background")
    bg: float | list[float] = 0.0
    if bg_list:
        bg = bg_list[0] if len(bg_list) == 1 else bg_list
    r = mibg_whole_body_dose(
        v.numbers("time_h") or [],
        v.numbers("dose_rate") or [],
        administered_activity_mbq=v.required("administered_activity_mbq"),
        body_mass_kg=v.required("body_mass_kg"),
        nuclide=v.text("nuclide") or "I-131",
        background=bg,
        model=v.choice("model"),
    )
    d = r.to_dict()
    rows = [
        ResultRow("whole_body_dose_gy", "Whole-body dose", r.dose_gy, "Gy"),
        ResultRow("dose_per_activity_gy_per_mbq", "Dose per activity",
                  r.dose_per_activity_gy_per_mbq, "Gy/MBq"),
        ResultRow("model", "Retention model", r.fit.model),
        ResultRow("tia_mbq_h", "Whole-body TIA", r.tia_mbq_h, "MBq h", 5),
        ResultRow("tiac_h", "TIA coefficient", d["tiac_h"], "h"),
        ResultRow("s_value_gy_per_mbq_h", "S(WB←WB)", r.s_value_gy_per_mbq_h, "Gy/(MBq h)"),
        ResultRow("photon_absorbed_fraction", "Photon absorbed fraction",
                  r.photon_absorbed_fraction, "", 3),
    ]  # fmt: skip
    target = v.number("target_gy")
    if target is not None:
        n = v.integer("administrations")
        a = mibg_activity_for_target(target, r.dose_per_activity_gy_per_mbq, n_administrations=n)
        d.update(activity_for_target_mbq=a, target_gy=target, administrations=n)
        rows.insert(1, ResultRow("activity_for_target_mbq",
                                 f"Activity for {target:g} Gy in {n} administration(s), each",
                                 a, "MBq"))  # fmt: skip
    total = v.number("target_total_gy")
    if total is not None:
        plan = plan_second_administration(r.administered_activity_mbq, r.dose_gy, total)
        d["second_administration"] = plan.to_dict()
        rows.insert(2 if target is not None else 1, ResultRow("second_activity_mbq",
                                 f"Second administration for {total:g} Gy total",
                                 plan.activity_mbq, "MBq"))  # fmt: skip
    return CalcOutcome(tuple(rows), MIBG_SOURCE, _warnings(r.fit.warnings), data=d)


_MIBG = CalculatorForm(
    "mibg",
    "mIBG",
    (
        Field(
            "time_h",
            "Reading times",
            "h",
            kind="numbers",
            aliases=("time", "reading"),
            tip="h after administration; first before voiding",
        ),
        Field(
            "dose_rate",
            "Dose-rate readings",
            "µSv/h",
            kind="numbers",
            aliases=("dose rate", "dose-rate", "reading"),
            tip="one unit and geometry; the first reading is 100 %",
        ),
        Field(
            "background",
            "Background (optional)",
            "µSv/h",
            kind="numbers",
            optional=True,
            aliases=("background",),
        ),
        Field(
            "administered_activity_mbq",
            "Administered activity",
            "MBq",
            units=ACTIVITY_UNITS,
            aliases=("administered activity",),
        ),
        Field("body_mass_kg", "Body mass", "kg", aliases=("body mass",)),
        Field(
            "model",
            "Retention model",
            kind="choice",
            default="auto",
            choices=(
                ("auto", "auto (AICc)"),
                ("mono", "mono-exponential"),
                ("biexp", "bi-exponential"),
                ("trapezoid", "trapezoid"),
            ),
        ),
        Field(
            "target_gy",
            "Whole-body target (optional)",
            "Gy",
            optional=True,
            aliases=("whole-body dose target",),
        ),
        Field(
            "administrations",
            "Administrations for the target",
            "",
            default="1",
            aliases=("administrations",),
        ),
        Field(
            "target_total_gy",
            "Total target, 2nd admin. (opt.)",
            "Gy",
            optional=True,
            aliases=("cumulative whole-body dose target", "target"),
        ),
        Field("nuclide", "Nuclide", kind="text", default="I-131"),
    ),  # fmt: skip
    MIBG_SOURCE,
    _mibg,
)


# ................................................................. marrow
MARROW_SOURCE = (
    "Blood-based method: Hindorf C et al., EANM guidelines, Eur J Nucl Med Mol Imaging "
    "2010;37:1238-1250; RMBLR: Sgouros G, J Nucl Med 1993;34:689-694; ICRP 89 masses, "
    "ICRP 107 energies"
)


def _marrow(v: _Values) -> CalcOutcome:
    from dosimetry_core.protocols.marrow import marrow_dose_blood_based

    how = v.choice("rmblr")
    rmblr: str | float = v.required("rmblr_value") if how == "value" else how
    r = marrow_dose_blood_based(
        v.required("blood_tia_mbq_h_per_ml"),
        rmblr,
        v.required("patient_mass_kg"),
        v.required("remainder_tia_mbq_h"),
        v.text("nuclide"),
        hematocrit=v.number("hematocrit"),
        red_marrow_mass_g=v.number("red_marrow_mass_g"),
        sex=v.choice("sex"),
    )
    rows = (
        ResultRow("dose_gy", "Red-marrow dose", r.dose_gy, "Gy"),
        ResultRow("self_gy", "Self dose, electrons", r.self_gy, "Gy"),
        ResultRow("self_photon_gy", "Self dose, photons", r.self_photon_gy, "Gy"),
        ResultRow("cross_gy", "Cross dose from the remainder", r.cross_gy, "Gy"),
        ResultRow("marrow_tia_mbq_h", "Red-marrow TIA", r.marrow_tia_mbq_h, "MBq h"),
        ResultRow("rmblr", "RMBLR", r.rmblr, "", 4),
        ResultRow("rmblr_source", "RMBLR from", r.rmblr_source),
        ResultRow("red_marrow_mass_g", "Red-marrow mass", r.red_marrow_mass_g, "g"),
        ResultRow("red_marrow_mass_source", "Red-marrow mass from", r.red_marrow_mass_source),
    )
    return CalcOutcome(rows, MARROW_SOURCE, data=r.to_dict())


_MARROW = CalculatorForm(
    "marrow",
    "Blood-based marrow",
    (
        Field(
            "blood_tia_mbq_h_per_ml", "Blood TIA concentration", "MBq h/mL", aliases=("blood tia",)
        ),
        Field(
            "rmblr",
            "RMBLR",
            kind="choice",
            default="sgouros",
            choices=(
                ("sgouros", "Sgouros: 0.19 / (1 - HCT)"),
                ("one", "1 (small peptides)"),
                ("value", "a value"),
            ),
        ),
        Field("rmblr_value", "RMBLR value", "", when=(("rmblr", ("value",)),), aliases=("rmblr",)),
        Field(
            "hematocrit",
            "Hematocrit",
            "(0-1)",
            optional=True,
            when=(("rmblr", ("sgouros",)),),
            aliases=("hematocrit",),
        ),
        Field(
            "remainder_tia_mbq_h",
            "Remainder-of-body TIA",
            "MBq h",
            aliases=("remainder-of-body tia", "remainder"),
        ),
        Field("patient_mass_kg", "Patient mass", "kg", aliases=("patient mass",)),
        Field(
            "sex",
            "Sex (reference masses)",
            kind="choice",
            default="M",
            choices=(("M", "male"), ("F", "female")),
        ),
        Field(
            "red_marrow_mass_g",
            "Red-marrow mass (empty: ICRP 89)",
            "g",
            optional=True,
            aliases=("red-marrow mass",),
        ),
        Field("nuclide", "Nuclide", kind="text", default="Lu-177", aliases=("nuclide",)),
    ),  # fmt: skip
    MARROW_SOURCE,
    _marrow,
)


# ................................................................. BED
BED_SOURCE = (
    "LQ model with Lea-Catcheside G: Dale RG, Br J Radiol 1985;58:515-528 and Phys Med "
    "Biol 1996;41:1871-1884; EQD2: Withers HR et al., Radiother Oncol 1983;1:187-191"
)


def _tissues() -> tuple[tuple[str, str], ...]:
    try:
        from dosimetry_core.radiobiology.tissues import list_tissues

        names = list_tissues()
    except DosimetryError:  # a broken table: the form still takes explicit values
        names = []
    return (("", "(none: give α/β and T_repair)"), *((n, n) for n in names))


def _bed(v: _Values) -> CalcOutcome:
    from dosimetry_core.radiobiology.bed_calculator import (
        bed_calculation,
        dose_for_bed_calculation,
    )

    kw: dict[str, Any] = dict(
        tissue=v.choice("tissue") or None,
        alpha_beta_gy=v.number("alpha_beta_gy"),
        t_repair_h=v.number("t_repair_h"),
        t_uptake_h=v.number("t_uptake_h"),
        tissue_table=v.text("tissue_table") or None,
    )
    if v.choice("mode") == "bed":
        r = bed_calculation(v.required("dose_gy"), v.required("t_eff_h"), **kw)
    else:
        r = dose_for_bed_calculation(v.required("bed_gy"), v.required("t_eff_h"), **kw)
    rows = (
        ResultRow("bed_gy", "BED", r.bed_gy, "Gy"),
        ResultRow("eqd2_gy", "EQD2", r.eqd2_gy, "Gy"),
        ResultRow("dose_gy", "Absorbed dose", r.dose_gy, "Gy"),
        ResultRow("relative_effectiveness", "Relative effectiveness", r.relative_effectiveness),
        ResultRow("g_factor", "G factor", r.g_factor),
        ResultRow("alpha_beta_gy", "α/β used", r.alpha_beta_gy, "Gy"),
        ResultRow("t_repair_h", "T_repair used", r.t_repair_h, "h"),
        ResultRow("model", "Time course", r.model),
        ResultRow("tissue_source", "Tissue parameters from",
                  r.source or "both given by the user"),
    )  # fmt: skip
    return CalcOutcome(rows, BED_SOURCE, data=r.to_dict())


_BED = CalculatorForm(
    "bed",
    "BED / EQD2",
    (
        Field(
            "mode",
            "Calculate",
            kind="choice",
            default="bed",
            choices=(("bed", "BED and EQD2 of a dose"), ("dose", "dose for a BED")),
        ),
        Field("dose_gy", "Absorbed dose", "Gy", when=(("mode", ("bed",)),), aliases=("dose_gy",)),
        Field("bed_gy", "Target BED", "Gy", when=(("mode", ("dose",)),), aliases=("bed_gy",)),
        Field("t_eff_h", "Effective half-life", "h", aliases=("t_eff_h",)),
        Field("tissue", "Tissue", kind="choice", default="kidney", choices=()),
        Field(
            "alpha_beta_gy",
            "α/β (empty: tissue's)",
            "Gy",
            optional=True,
            aliases=("alpha_beta_gy", "alpha/beta"),
        ),
        Field(
            "t_repair_h",
            "T_repair (empty: tissue's)",
            "h",
            optional=True,
            aliases=("t_repair_h", "t_repair"),
        ),
        Field(
            "t_uptake_h",
            "Uptake half-time (empty: instant)",
            "h",
            optional=True,
            aliases=("t_uptake_h",),
        ),
        Field(
            "tissue_table",
            "Tissue table file (optional)",
            kind="text",
            optional=True,
            aliases=("tissue_table", "tissue parameter file"),
        ),
    ),  # fmt: skip
    BED_SOURCE,
    _bed,
)

FORMS: tuple[CalculatorForm, ...] = (_THYROID, _SIRT, _MIBG, _MARROW, _BED)
"""The calculators in the order of their tabs."""


def form_by_id(form_id: str) -> CalculatorForm:
    for f in FORMS:
        if f.form_id == form_id:
            return f
    raise KeyError(form_id)


def choices_of(form: CalculatorForm, name: str) -> tuple[tuple[str, str], ...]:
    """The (value, label) pairs of a choice field (the tissue list is read from the core)."""
    if form.form_id == "bed" and name == "tissue":
        return _tissues()
    return form.field(name).choices


# ------------------------------------------------------------------ prefill
def prefill(case: Case | None) -> dict[str, dict[str, str]]:
    """Defaults the open case supplies, by form id and field name (texts, units of the field).

    Patient weight (mIBG body mass, marrow patient mass, SIRT/BSA weight), height
    (BSA), sex (marrow reference masses), the nuclide of the first
    administration (marrow), and its net administered activity (core:
    :func:`~dosimetry_core.physics.decay.net_administered_activity_mbq`) for the
    form of that nuclide (I-131: thyroid and mIBG in MBq; Y-90: SIRT in GBq).
    """
    out: dict[str, dict[str, str]] = {f.form_id: {} for f in FORMS}
    if case is None:
        return out
    p = case.patient
    if p.weight_kg:
        w = f"{p.weight_kg:g}"
        out["mibg"]["body_mass_kg"] = w
        out["marrow"]["patient_mass_kg"] = w
        out["sirt"]["weight_kg"] = w
    if p.height_cm:
        out["sirt"]["height_cm"] = f"{p.height_cm:g}"
    if p.sex in ("M", "F"):
        out["marrow"]["sex"] = p.sex
    adm = case.first_administration
    if adm is not None:
        from dosimetry_core.physics.decay import net_administered_activity_mbq
        from dosimetry_core.physics.nuclides import normalize_nuclide

        try:
            nuc = normalize_nuclide(adm.nuclide)
        except DosimetryError:
            nuc = adm.nuclide
        out["marrow"]["nuclide"] = nuc
        a_mbq = net_administered_activity_mbq(adm)
        if nuc == "I-131":
            out["thyroid"]["activity_mbq"] = f"{a_mbq:.6g}"
            out["mibg"]["administered_activity_mbq"] = f"{a_mbq:.6g}"
            out["thyroid"]["nuclide"] = nuc
            out["mibg"]["nuclide"] = nuc
        elif nuc == "Y-90":
            from dosimetry_core.model.quantities import ACTIVITY, from_stored

            out["sirt"]["activity_gbq"] = f"{from_stored(ACTIVITY, a_mbq, 'GBq'):.6g}"
    return out
