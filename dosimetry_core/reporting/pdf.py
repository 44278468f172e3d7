"""The dose report as a PDF (reportlab, A4).

Layout: a header with patient, protocol and EANM level on every page; therapy and
administrations; methods and software version; organ and VOI tables (units in the
column heads, each VOI's number beside its contour review flag); limits with
pass/fail; next-cycle activity; population percentiles; the figures (TACs with fits,
DVHs, fused SPECT/CT with dose); the signature block (pending, or signed by whom, as
what, when, with the signature hash prefix); a footer with report id, version,
content hash and "page x of y".
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

ROLE_LABELS = {"mpe": "medical physics expert (MPE)", "practitioner": "practitioner"}


def _f(x: Any, fmt: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | float):
        return format(float(x), fmt)
    return str(x)


def _styles() -> dict[str, ParagraphStyle]:
    ss = getSampleStyleSheet()
    return {
        "h1": ParagraphStyle("h1", parent=ss["Heading2"], fontSize=12, spaceBefore=6, spaceAfter=3),
        "body": ParagraphStyle("body", parent=ss["BodyText"], fontSize=8.5, leading=10.5),
        "small": ParagraphStyle("small", parent=ss["BodyText"], fontSize=7, leading=8.5),
        "cell": ParagraphStyle("cell", parent=ss["BodyText"], fontSize=7, leading=8.2),
    }


def _table(rows: list[list[Any]], widths: list[float], st: dict[str, ParagraphStyle]) -> Table:
    body = [
        [c if not isinstance(c, str) else Paragraph(escape(c), st["cell"]) for c in row]
        for row in rows
    ]
    t = Table(body, colWidths=[w * mm for w in widths], repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee")),
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return t


def _image(png: bytes, width_mm: float) -> Image:
    from reportlab.lib.utils import ImageReader

    w, h = ImageReader(io.BytesIO(png)).getSize()
    return Image(io.BytesIO(png), width=width_mm * mm, height=width_mm * mm * h / w)


def signature_lines(signatures: list[dict[str, Any]]) -> list[str]:
    """One line per signature role: pending, or signed by whom at what time (hash prefix)."""
    out = []
    for role in ("mpe", "practitioner"):
        s = next((x for x in signatures if x["signed_as"] == role), None)
        if s is None:
            out.append(f"{ROLE_LABELS[role]}: pending")
        else:
            out.append(
                f"{ROLE_LABELS[role]}: signed by {s['username']} ({s['role']}) at {s['at']}; "
                f"signature {s['signature_hash'][:16]}"
            )
    return out


def render_report_pdf(
    content: dict[str, Any],
    figures: dict[str, bytes],
    *,
    report: dict[str, Any],
    signatures: list[dict[str, Any]],
    personal_signatures: bool = False,
) -> bytes:
    """The report as PDF bytes.

    Parameters
    ----------
    content
        :func:`~dosimetry_core.reporting.content.build_report_content` (with its
        ``report`` section: id, version, amendment).
    figures
        PNG bytes by name (``tac``, ``dvh``, ``fused``).
    report
        ``report_id``, ``version``, ``status``, ``content_hash``, ``inputs_hash``.
    signatures
        Signature records (``username``, ``role``, ``signed_as``, ``at``,
        ``signature_hash``), in signing order.
    personal_signatures
        True for a store with personal keys: the page is rendered once, before the
        PAdES signatures are embedded, and says where to find them; False (a
        single-user store) lists the hash-only sign-off records and says "unsigned".
    """
    st = _styles()
    p = content["patient"]
    th = content["therapy"]
    lvl = th["eanm_level"]
    header = (
        f"Patient {p['name']} ({p['patient_id']}), born {p['birth_date'] or '-'}  |  "
        f"{th['protocol_name']}  |  EANM level {lvl['level']}"
    )
    status = (
        "signed only if digital signatures are embedded"
        if personal_signatures
        else report["status"]
    )
    footer = (
        f"report {report['report_id']}  version {report['version']} ({status})  "
        f"content SHA-256 {report['content_hash'][:16]}"
    )

    def make_story() -> list[Any]:
        story: list[Any] = []
        story.append(Paragraph("Patient dosimetry report", st["h1"]))
        amend = (content.get("report") or {}).get("amendment_reason")
        if amend:
            story.append(
                Paragraph(
                    "<b>Amended version</b> superseding "
                    f"{escape(str(content['report']['supersedes']))}"
                    f": {escape(amend)}",
                    st["body"],
                )
            )
        story.append(
            Paragraph(
                escape(
                    f"Patient {p['name']}, ID {p['patient_id']}, sex {p['sex'] or '-'}, "
                    f"born {p['birth_date'] or '-'}, {_f(p['weight_kg'], 'g')} kg. "
                    f"Protocol {th['protocol']} ({th['nuclide']}, {th['radiopharmaceutical']}), "
                    f"cycle {th['cycle']}; administered "
                    f"{_f(th['administered_activity_mbq'], '.0f')} "
                    "MBq (net of the residual, decay-corrected to the administration; "
                    "Gy/GBq per this activity). "
                    f"EANM level {lvl['level']}: {lvl['reason']}."
                ),
                st["body"],
            )
        )
        rows: list[list[Any]] = [["time", "nuclide", "activity (MBq)", "residual (MBq)", "cycle"]]
        for a in content["administrations"]:
            rows.append(
                [
                    a["time"],
                    a["nuclide"],
                    _f(a["activity_mbq"], ".1f"),
                    _f(a["residual_activity_mbq"], ".1f"),
                    _f(a["cycle"], "g"),
                ]
            )
        story += [Paragraph("Administrations", st["h1"]), _table(rows, [40, 25, 30, 30, 15], st)]
        m = content["methods"]
        story.append(Paragraph("Methods", st["h1"]))
        tps = ", ".join(f"{t['label']} {_f(t['time_h'], '.1f')} h" for t in content["time_points"])
        story.append(
            Paragraph(
                escape(
                    f"Software {m['software']['name']} {m['software']['version']}. Method "
                    f"{m['method']}, dose {m['dose_method']}; computed {m['computed_at']} by "
                    f"{m['computed_by'] or '-'}. Time points: {tps}. Uncertainty: "
                    f"{m['uncertainty']}. {m['radiobiology']}."
                ),
                st["body"],
            )
        )
        story.append(Paragraph("Organ doses", st["h1"]))
        rows = [
            [
                "organ",
                "mass (g)",
                "dose (Gy)",
                "SD (Gy)",
                "BED (Gy)",
                "EQD2 (Gy)",
                "Gy/GBq",
                "contour review",
            ]
        ]
        for o in content["organs"].values():
            flags = "; ".join(sorted(set(o.get("review_flags") or []))) or "approved"
            rows.append(
                [
                    o["label"],
                    _f(o["mass_g"], ".0f"),
                    _f(o["dose_gy"]),
                    _f(o["dose_sd_gy"]),
                    _f(o["bed_gy"]),
                    _f(o["eqd2_gy"]),
                    _f(o["dose_per_activity_gy_per_gbq"]),
                    flags,
                ]
            )
        story.append(_table(rows, [24, 16, 17, 16, 17, 17, 16, 57], st))
        story.append(Paragraph("VOI doses (each number beside its contour review flag)", st["h1"]))
        rows = [
            [
                "VOI",
                "role",
                "TIA (MBq h)",
                "dose (Gy)",
                "SD (Gy)",
                "BED (Gy)",
                "EQD2 (Gy)",
                "sphere (Gy)",
                "review flag",
            ]
        ]
        for v in content["vois"]:
            rows.append(
                [
                    v["voi_name"],
                    v["role"],
                    _f(v["tia_mbq_h"], ".4g"),
                    _f(v["dose_gy"]),
                    _f(v["dose_sd_gy"]),
                    _f(v["bed_gy"]),
                    _f(v["eqd2_gy"]),
                    _f(v.get("sphere_model_dose_gy")),
                    v["review_flag"] or "approved",
                ]
            )
        story.append(_table(rows, [20, 13, 19, 15, 14, 15, 15, 16, 53], st))
        story.append(Paragraph("Limits", st["h1"]))
        rows = [
            [
                "organ",
                "quantity",
                "scope",
                "limit",
                "this cycle",
                "earlier",
                "total",
                "% of limit",
                "result",
                "source",
            ]
        ]
        for c in content["limit_checks"]:
            unit = "Gy"
            res = Paragraph(
                "<b>PASS</b>" if c["passed"] else "<font color='red'><b>FAIL</b></font>", st["cell"]
            )
            rows.append(
                [
                    c["organ_id"],
                    c["quantity"],
                    c["scope"],
                    f"{_f(c['limit'], 'g')} {unit}",
                    _f(c["this_cycle"]),
                    _f(c["previous_cycles"]),
                    _f(c["value"]),
                    _f(100 * c["fraction_of_limit"], ".1f"),
                    res,
                    c["source"],
                ]
            )
        story.append(_table(rows, [17, 14, 17, 13, 15, 13, 13, 13, 12, 46], st))
        nc = content["next_cycle"]
        if nc.get("activity_mbq") is not None:
            story.append(
                Paragraph(
                    escape(
                        f"Next cycle (EANM level 3, proposed): at most "
                        f"{_f(nc['activity_mbq'], '.0f')} MBq, limited by {nc['binding']} "
                        f"({nc.get('assumption', '')})."
                    ),
                    st["body"],
                )
            )
        pop = content.get("population") or {}
        if pop:
            story.append(Paragraph(f"Population ({escape(pop['protocol'])}, Gy/GBq)", st["h1"]))
            rows = [
                [
                    "organ",
                    "this patient",
                    "n (signed / unsigned)",
                    "min",
                    "median",
                    "max",
                    "percentile",
                ]
            ]
            for o in pop["organs"].values():
                rows.append(
                    [
                        o["label"],
                        _f(o["value_gy_per_gbq"]),
                        f"{o['n']} ({o['n_signed']} / {o['n_unsigned']})",
                        _f(o["min"]),
                        _f(o["median"]),
                        _f(o["max"]),
                        _f(o["percentile"], ".0f"),
                    ]
                )
            story.append(_table(rows, [30, 22, 32, 20, 20, 20, 20], st))
            story.append(Paragraph(escape(pop["definition"]), st["small"]))
        if content["warnings"]:
            story.append(Paragraph("Warnings", st["h1"]))
            for w in content["warnings"]:
                story.append(Paragraph(escape(f"- {w}"), st["small"]))
        captions = {
            "tac": "Time-activity curves with fits",
            "dvh": "Cumulative dose-volume histograms",
            "fused": "SPECT/CT with absorbed-dose overlay",
        }
        for name, cap in captions.items():
            if name in figures:
                story.append(KeepTogether([Paragraph(cap, st["h1"]), _image(figures[name], 165)]))
        sig = [Paragraph("Signatures", st["h1"])]
        if personal_signatures:
            lines = [
                "Digital signatures (PAdES) of the medical physics expert and of the "
                "practitioner are embedded in this file, one per sign-off; a copy without "
                "them is an unsigned draft."
            ]
            check = "mrtdose verify-report FILE --trust CA.pem (or --store)"
        else:
            lines = [
                "Unsigned (single-user store): the sign-off records below are hash records "
                "without personal keys.",
                *signature_lines(signatures),
            ]
            check = "mrtdose verify-report FILE --store STORE"
        sig += [Paragraph(escape(line), st["body"]) for line in lines]
        sig.append(Spacer(1, 2 * mm))
        sig.append(
            Paragraph(
                escape(
                    f"Content SHA-256 {report['content_hash']}; inputs SHA-256 "
                    f"{report['inputs_hash']}. Check with: {check}."
                ),
                st["small"],
            )
        )
        story.append(KeepTogether(sig))
        return story

    def on_page(canvas: Any, doc: Any, total: int | None = None) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.drawString(15 * mm, A4[1] - 10 * mm, header[:150])
        canvas.line(15 * mm, A4[1] - 11.5 * mm, A4[0] - 15 * mm, A4[1] - 11.5 * mm)
        canvas.drawString(15 * mm, 8 * mm, footer)
        page = f"page {doc.page}" + (f" of {total}" if total else "")
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, page)
        canvas.restoreState()

    def build(total: int | None) -> tuple[bytes, int]:
        buf = io.BytesIO()
        doc = SimpleDocTemplate(
            buf,
            pagesize=A4,
            leftMargin=15 * mm,
            rightMargin=15 * mm,
            topMargin=15 * mm,
            bottomMargin=14 * mm,
            title=f"Dose report {report['report_id']} v{report['version']}",
            author="mrt-dosimetry",
            subject=f"content-sha256 {report['content_hash']}",
            invariant=1,
        )

        def cb(c: Any, d: Any) -> None:
            on_page(c, d, total)

        doc.build(make_story(), onFirstPage=cb, onLaterPages=cb)
        return buf.getvalue(), int(doc.page)

    _, n_pages = build(None)
    data, _ = build(n_pages)
    return data
