"""De-identification of DICOM objects for multicentre trials and registries.

Profile applied: DICOM PS3.15 Annex E, **Basic Application Level Confidentiality
Profile** (Table E.1-1, 2024b; the table is ``resources/dicom/ps315_basic_profile.json``
with its source) with the **Retain Longitudinal Temporal Information with Modified
Dates Option** (E.3.6), because dosimetry depends on the intervals between the
administration and the scans.  Optionally the **Retain Patient Characteristics
Option** (E.3.5: sex, age, size, weight, which dose and SUV calculations use).

How each action of the table is applied (PS3.15 E.1.1 defines the codes):

========  ====================================================================
action    what is done
========  ====================================================================
X         attribute removed
Z, X/Z,   value emptied (an empty sequence for SQ); the attribute stays so that
X/Z/D     type 2 attributes keep the IOD valid
D, Z/D,   replaced by a dummy value of its VR (``ANONYMISED``, 0, an empty
X/D       sequence)
U         UID replaced by a consistent pseudonymous UID (below)
X/Z/U*    sequences kept with their UIDs replaced; other VRs emptied
========  ====================================================================

Overrides, applied before the table:

* every DA value (except Patient's Birth Date, which is emptied) and the date part
  of every DT value, anywhere in the data set, is shifted by the same number of
  days for one patient; TM values and the time part of DT values are kept, so all
  intervals (administration -> scans) are unchanged;
* Patient ID and Patient's Name become the patient's pseudonym;
* UIDs not in the table that are not registered DICOM UIDs (SOP classes, transfer
  syntaxes, coding schemes stay) are replaced as well -- an instance UID in an
  unlisted attribute is still an identifier;
* with ``retain_structure_names`` (off by default) ROI Name (3006,0026), which the
  Basic Profile empties, is kept when it contains no part (2 characters or more) of
  the original Patient's Name or Patient ID -- organ and lesion names are what a
  registry needs; a name that fails the check is emptied;
* private attributes are removed (no Retain Safe Private Option);
* an object whose Burned In Annotation (0028,0301) is YES is refused: pixel data
  cannot be cleaned here (Clean Pixel Data Option not supported).

Pseudonyms are keyed hashes with a project secret (HMAC-SHA-256, RFC 2104 /
FIPS 198-1): the same patient and the same secret always give the same pseudonym,
UIDs and date shift, in every export, so that objects exported at different times
still link; another secret gives unrelated values.  UIDs become ``2.25.<integer>``
(ITU-T X.667 / ISO/IEC 9834-8: a UUID as an integer under the 2.25 arc; the UUID
is the first 128 bits of the HMAC with the version-8 and RFC 9562 variant bits).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.tag import Tag
from pydicom.uid import UID

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io._dicom_common import format_da, get_str, parse_da, read_dataset
from dosimetry_core.resources import resource_path

__all__ = [
    "PROFILE_PATH",
    "Pseudonymiser",
    "anonymize_dataset",
    "anonymize_file",
    "basic_profile",
]

PROFILE_PATH = resource_path("dicom", "ps315_basic_profile.json")
"""PS3.15 2024b Table E.1-1 (Basic Profile column) with its source."""

#: Range of the automatic per-patient date shift, days into the past (1 .. this).
MAX_AUTOMATIC_SHIFT_DAYS = 3650
#: Dummy value written for action D on text VRs.
DUMMY_TEXT = "ANONYMISED"
#: Prefix of patient pseudonyms.
PSEUDONYM_PREFIX = "ANON-"

_TAG_PATIENT_ID = Tag("PatientID")
_TAG_PATIENT_NAME = Tag("PatientName")
_TAG_BIRTH_DATE = Tag("PatientBirthDate")
#: Retain Patient Characteristics Option (PS3.15 E.3.5), the attributes dosimetry uses.
_PATIENT_CHARACTERISTICS = frozenset(
    Tag(k) for k in ("PatientSex", "PatientAge", "PatientSize", "PatientWeight")
)
_TAG_ROI_NAME = Tag("ROIName")
_TEXT_VRS = {"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"}
_NUMBER_TEXT_VRS = {"DS", "IS"}
_BINARY_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}


@dataclass(frozen=True)
class _Profile:
    actions: dict[int, str]
    masked: list[tuple[int, int, int, int, str]]

    def action(self, tag: int) -> str | None:
        found = self.actions.get(int(tag))
        if found is not None:
            return found
        group, element = int(tag) >> 16, int(tag) & 0xFFFF
        for g, gm, e, em, act in self.masked:
            if group & gm == g and element & em == e:
                return act
        return None


@lru_cache(maxsize=1)
def basic_profile() -> _Profile:
    """The Basic Profile actions by tag, from :data:`PROFILE_PATH`."""
    data = json.loads(PROFILE_PATH.read_text(encoding="utf-8"))
    actions = {int(tag, 16): entry["action"] for tag, entry in data["attributes"].items()}
    masked = [
        (
            int(m["group"], 16),
            int(m["group_mask"], 16),
            int(m["element"], 16),
            int(m["element_mask"], 16),
            m["action"],
        )
        for m in data.get("masked_attributes", [])
    ]
    return _Profile(actions, masked)


@dataclass
class Pseudonymiser:
    """Consistent pseudonyms, UIDs and date shifts from a project secret.

    Parameters
    ----------
    secret
        The project's secret key (keep it; without it pseudonyms cannot be
        reproduced, with it they can be recomputed from the original IDs).
    date_shift_days
        Days added to every date of every patient (negative = into the past).
        Default: a per-patient shift of -1 to -3650 days derived from the
        secret and the original Patient ID.
    """

    secret: str
    date_shift_days: int | None = None
    uid_map: dict[str, str] = field(default_factory=dict)
    """Original -> new UID, for every UID replaced so far (for the export log)."""

    def __post_init__(self) -> None:
        if not self.secret or not self.secret.strip():
            raise InvalidInputError("anonymised export needs a non-empty project secret")

    def _digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(
            self.secret.encode("utf-8"), f"{purpose}:{value}".encode(), hashlib.sha256
        ).digest()

    def patient_pseudonym(self, patient_id: str) -> str:
        """``ANON-`` and 16 hex digits of HMAC-SHA-256(secret, patient ID)."""
        return PSEUDONYM_PREFIX + self._digest("patient", patient_id).hex()[:16].upper()

    def uid(self, original: str) -> str:
        """Pseudonymous ``2.25.<int>`` UID of an original UID (same in -> same out)."""
        original = str(original).strip()
        if not original:
            return original
        known = self.uid_map.get(original)
        if known is not None:
            return known
        value = int.from_bytes(self._digest("uid", original)[:16], "big")
        value = (value & ~(0xF << 76)) | (0x8 << 76)  # version 8 (RFC 9562)
        value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
        new = f"2.25.{value}"
        self.uid_map[original] = new
        return new

    def shift_days(self, patient_id: str) -> int:
        """Days added to the dates of this patient."""
        if self.date_shift_days is not None:
            return int(self.date_shift_days)
        h = int.from_bytes(self._digest("date-shift", patient_id)[:8], "big")
        return -(1 + h % MAX_AUTOMATIC_SHIFT_DAYS)


def _shift_da(value: str, days: int) -> str:
    d = parse_da(value)
    if d is None:
        return ""  # unparseable date: cannot be shifted, so it is emptied
    return format_da(d + timedelta(days=days))


def _shift_dt(value: str, days: int) -> str:
    s = str(value).strip()
    if len(s) < 8:
        return "" if s else s
    shifted = _shift_da(s[:8], days)
    return shifted + s[8:] if shifted else ""


def _map_values(value: Any, fn: Any) -> Any:
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return [fn(str(v)) for v in value]
    return fn(str(value)) if value not in (None, "") else value


def _dummy(elem: Any) -> Any:
    vr = elem.VR
    if vr == "SQ":
        return DicomSequence([])
    if vr in _TEXT_VRS:
        return DUMMY_TEXT
    if vr in _NUMBER_TEXT_VRS:
        return "0"
    if vr in _BINARY_NUMBER_VRS:
        return 0
    return None


def _is_registered_uid(value: str) -> bool:
    try:
        return bool(UID(value).is_valid and UID(value).name != value)
    except Exception:
        return False


@dataclass
class _Run:
    pseudo: Pseudonymiser
    days: int
    pseudonym: str
    retain_characteristics: bool
    profile: _Profile
    retain_structure_names: bool = False
    forbidden: tuple[str, ...] = ()
    """Lower-case parts of the original name and ID that a retained ROI name must not hold."""

    def uid(self, value: str) -> str:
        return self.pseudo.uid(value)

    def dataset(self, ds: Dataset) -> None:
        for tag in list(ds.keys()):
            elem = ds[tag]
            if Tag(tag).is_private:
                del ds[tag]
                continue
            self.element(ds, elem)

    def element(self, ds: Dataset, elem: Any) -> None:
        tag = int(elem.tag)
        vr = elem.VR
        if tag == _TAG_PATIENT_ID or tag == _TAG_PATIENT_NAME:
            elem.value = self.pseudonym
            return
        if tag == _TAG_BIRTH_DATE:
            elem.value = ""
            return
        if self.retain_characteristics and tag in _PATIENT_CHARACTERISTICS:
            return
        if tag == _TAG_ROI_NAME and self.retain_structure_names:
            text = str(elem.value or "").lower()
            if any(part in text for part in self.forbidden):
                elem.value = ""
            return
        if vr == "DA":
            elem.value = _map_values(elem.value, lambda v: _shift_da(v, self.days))
            return
        if vr == "DT":
            elem.value = _map_values(elem.value, lambda v: _shift_dt(v, self.days))
            return
        if vr == "TM":
            return  # times kept: only whole days are shifted
        action = self.profile.action(tag)
        if action is None:
            if vr == "SQ":
                for item in elem.value:
                    self.dataset(item)
            elif vr == "UI" and elem.value:
                elem.value = _map_values(
                    elem.value, lambda v: v if _is_registered_uid(v) else self.uid(v)
                )
            return
        if action == "U" or (action == "X/Z/U*" and vr == "UI"):
            if vr == "UI":
                elem.value = _map_values(elem.value, self.uid)
            elif vr == "SQ":
                for item in elem.value:
                    self.dataset(item)
            else:
                elem.value = _dummy(elem)
            return
        if action == "X/Z/U*" and vr == "SQ":
            for item in elem.value:
                self.dataset(item)
            return
        if action == "X":
            del ds[elem.tag]
            return
        if action in ("Z", "X/Z", "X/Z/D", "X/Z/U*"):
            elem.value = DicomSequence([]) if vr == "SQ" else (b"" if vr.startswith("O") else "")
            if vr in _BINARY_NUMBER_VRS:
                del ds[elem.tag]
            return
        # D, Z/D, X/D: a dummy value of the VR
        dummy = _dummy(elem)
        if dummy is None:
            del ds[elem.tag]
        else:
            elem.value = dummy


def anonymize_dataset(
    ds: Dataset,
    pseudonymiser: Pseudonymiser,
    *,
    retain_patient_characteristics: bool = False,
    retain_structure_names: bool = False,
) -> str:
    """De-identify a data set in place (module docstring); returns the patient pseudonym.

    Raises
    ------
    InvalidInputError
        Burned In Annotation is YES (the pixels may show the patient's identity).
    """
    if get_str(ds, "BurnedInAnnotation").upper() == "YES":
        raise InvalidInputError(
            f"{get_str(ds, 'SOPInstanceUID') or 'object'}: Burned In Annotation is YES; "
            "the pixel data may show the patient's identity and cannot be cleaned here"
        )
    patient_id = get_str(ds, "PatientID")
    parts = re.split(r"[\^\s,.\-_]+", f"{get_str(ds, 'PatientName')} {patient_id}".lower())
    forbidden = tuple(p for p in parts if len(p) >= 2)
    run = _Run(
        pseudonymiser,
        pseudonymiser.shift_days(patient_id),
        pseudonymiser.patient_pseudonym(patient_id),
        retain_patient_characteristics,
        basic_profile(),
        retain_structure_names,
        forbidden,
    )
    ds.remove_private_tags()
    run.dataset(ds)
    if "PatientID" not in ds:
        ds.PatientID = run.pseudonym
    if "PatientName" not in ds:
        ds.PatientName = run.pseudonym
    # SOP Common / Patient module de-identification attributes (PS3.3 C.7.1.1, C.12.1)
    ds.PatientIdentityRemoved = "YES"
    methods = [
        codes.DCM.BasicApplicationConfidentialityProfile,
        codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption,
    ]
    if retain_patient_characteristics:
        methods.append(codes.DCM.RetainPatientCharacteristicsOption)
    items = []
    for code in methods:
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme_designator
        item.CodeMeaning = code.meaning
        items.append(item)
    method = "PS3.15 Basic Profile; dates shifted, times kept"
    if retain_structure_names:
        method += "; ROI names kept if free of patient name/ID"
    ds.DeidentificationMethod = method[:64]
    ds.DeidentificationMethodCodeSequence = DicomSequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return run.pseudonym


def anonymize_file(
    src: str | Path,
    dst: str | Path,
    pseudonymiser: Pseudonymiser,
    *,
    retain_patient_characteristics: bool = False,
    retain_structure_names: bool = False,
) -> str:
    """Read ``src``, de-identify it, write ``dst`` (folder created); returns the pseudonym."""
    ds = read_dataset(Path(src))
    pseudonym = anonymize_dataset(
        ds,
        pseudonymiser,
        retain_patient_characteristics=retain_patient_characteristics,
        retain_structure_names=retain_structure_names,
    )
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=True)
    return pseudonym
