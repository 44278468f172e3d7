"""PS3.15 Basic Profile de-identification on a hand-made data set (known answers).

Dates: a shift of -100 days moves 2026-03-05 to 2025-11-25 (worked by hand:
-28 days to 2026-02-05, -31 to 2026-01-05, -31 to 2025-12-05, -10 to 2025-11-25).
Pseudonyms are recomputed independently in the test with the standard library's
HMAC-SHA-256 (RFC 2104).
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.anonymize import (
    PROFILE_PATH,
    Pseudonymiser,
    anonymize_dataset,
    anonymize_file,
    basic_profile,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_UID = "1.2.826.0.1.3680043.8.498.11"
SERIES_UID = "1.2.826.0.1.3680043.8.498.12"
SOP_UID = "1.2.826.0.1.3680043.8.498.13"
FOR_UID = "1.2.826.0.1.3680043.8.498.14"
REF_UID = "1.2.826.0.1.3680043.8.498.15"


def _dataset() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(CT)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(SOP_UID)
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = SOP_UID
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = FOR_UID
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "19610412"
    ds.PatientSex = "F"
    ds.PatientWeight = "61"
    ds.OtherPatientIDs = "XYZ-1"
    ds.InstitutionName = "St Elsewhere Hospital"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.PerformingPhysicianName = "Quinn^Michaela"
    ds.AccessionNumber = "ACC123"
    ds.StudyID = "S77"
    ds.StationName = "NM01"
    ds.StudyDescription = "Lu-177 DOTATATE Jane Doe"
    ds.StudyDate = "20260305"
    ds.StudyTime = "101530"
    ds.AcquisitionDateTime = "20260304094500.000000"
    ds.Modality = "CT"
    ds.BurnedInAnnotation = "NO"
    ref = Dataset()
    ref.ReferencedSOPClassUID = CT
    ref.ReferencedSOPInstanceUID = REF_UID
    ds.ReferencedImageSequence = Sequence([ref])
    ds.add_new(0x00091010, "LO", "private secret")
    ds.add_new(0x00091001, "LO", "Creator")
    return ds


def _hmac_hex(secret: str, msg: str) -> str:
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def test_profile_table_has_its_source_and_key_actions():
    data = json.loads(PROFILE_PATH.read_text())
    assert "PS3.15" in data["source"] and "E.1-1" in data["source"]
    assert all(e["source"] for e in data["attributes"].values())
    p = basic_profile()
    # spot checks against PS3.15 Table E.1-1 (Basic Profile column)
    assert p.action(0x00100010) == "Z"  # Patient's Name
    assert p.action(0x00100020) == "Z/D"  # Patient ID
    assert p.action(0x0020000D) == "U"  # Study Instance UID
    assert p.action(0x00080080) == "X/Z/D"  # Institution Name
    assert p.action(0x50001234) == "X"  # Curve Data (50xx,xxxx)
    assert p.action(0x00280010) is None  # Rows: not in the table


def test_basic_profile_on_a_hand_made_dataset():
    ds = _dataset()
    pseudo = Pseudonymiser("project-secret", date_shift_days=-100)
    name = anonymize_dataset(ds, pseudo)
    expected = "ANON-" + _hmac_hex("project-secret", "patient:MRN-0042")[:16].upper()
    assert name == expected
    assert ds.PatientID == expected and str(ds.PatientName) == expected
    assert ds.PatientBirthDate == ""
    assert "PatientWeight" not in ds and "OtherPatientIDs" not in ds
    assert "StudyDescription" not in ds and "PerformingPhysicianName" not in ds
    assert ds.InstitutionName == "" and ds.ReferringPhysicianName == ""
    assert ds.AccessionNumber == "" and ds.StudyID == "" and ds.StationName == ""
    assert ds.PatientSex == ""  # Z unless Retain Patient Characteristics
    # dates shifted by the same offset, times kept
    assert ds.StudyDate == "20251125" and ds.StudyTime == "101530"
    assert ds.AcquisitionDateTime == "20251124094500.000000"
    # private tags gone
    assert not any(e.tag.is_private for e in ds.iterall())
    # UIDs replaced, registered UIDs (SOP Class) kept, nested UIDs replaced consistently
    for original in (STUDY_UID, SERIES_UID, SOP_UID, FOR_UID, REF_UID):
        assert original not in {str(e.value) for e in ds.iterall() if e.VR == "UI"}
    assert ds.SOPClassUID == CT
    assert ds.ReferencedImageSequence[0].ReferencedSOPClassUID == CT
    assert ds.StudyInstanceUID == pseudo.uid(STUDY_UID)
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == pseudo.uid(REF_UID)
    # de-identification is declared
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100", "113107"]


def test_uid_is_a_2_25_uuid_integer_from_the_hmac():
    pseudo = Pseudonymiser("k")
    new = pseudo.uid(STUDY_UID)
    value = int(_hmac_hex("k", f"uid:{STUDY_UID}")[:32], 16)
    value = (value & ~(0xF << 76)) | (0x8 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    assert new == f"2.25.{value}"
    assert UID(new).is_valid and len(new) <= 64
    assert Pseudonymiser("k").uid(STUDY_UID) == new  # same secret, same UID
    assert Pseudonymiser("other").uid(STUDY_UID) != new


def test_automatic_date_shift_is_per_patient_and_reproducible():
    a = Pseudonymiser("k").shift_days("MRN-0042")
    assert a == -(1 + int(_hmac_hex("k", "date-shift:MRN-0042")[:16], 16) % 3650)
    assert -3650 <= a <= -1
    assert Pseudonymiser("k").shift_days("MRN-0042") == a
    assert Pseudonymiser("k", date_shift_days=-7).shift_days("anyone") == -7


def test_retain_patient_characteristics_option():
    ds = _dataset()
    anonymize_dataset(ds, Pseudonymiser("k"), retain_patient_characteristics=True)
    assert ds.PatientSex == "F" and float(ds.PatientWeight) == 61.0
    assert "113108" in [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]


def test_refuses_burned_in_annotation_and_empty_secret():
    ds = _dataset()
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(InvalidInputError, match="Burned In Annotation"):
        anonymize_dataset(ds, Pseudonymiser("k"))
    with pytest.raises(InvalidInputError, match="secret"):
        Pseudonymiser("  ")


def test_anonymize_file_round_trip(tmp_path):
    ds = _dataset()
    src = tmp_path / "in.dcm"
    ds.save_as(src, enforce_file_format=True)
    dst = tmp_path / "out" / "out.dcm"
    anonymize_file(src, dst, Pseudonymiser("k", date_shift_days=-1))
    back = pydicom.dcmread(dst)
    assert back.PatientID.startswith("ANON-") and back.StudyDate == "20260304"
    raw = dst.read_bytes()
    for text in (b"Doe^Jane", b"MRN-0042", b"St Elsewhere", b"ACC123", STUDY_UID.encode()):
        assert text not in raw


def test_roi_names_kept_only_when_free_of_identity():
    ds = _dataset()
    rois = []
    for name in ("Kidney_L", "Tumour Doe", "liver mrn-0042"):
        item = Dataset()
        item.ROIName = name
        rois.append(item)
    ds.StructureSetROISequence = Sequence(rois)
    anonymize_dataset(ds, Pseudonymiser("k"), retain_structure_names=True)
    assert [r.ROIName for r in ds.StructureSetROISequence] == ["Kidney_L", "", ""]
    plain = _dataset()
    plain.StructureSetROISequence = Sequence([Dataset()])
    plain.StructureSetROISequence[0].ROIName = "Kidney_L"
    anonymize_dataset(plain, Pseudonymiser("k"))  # Basic Profile: ROI Name is Z
    assert plain.StructureSetROISequence[0].ROIName == ""
