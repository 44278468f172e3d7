"""Encapsulated PDF (PS3.3 A.45.1): the dosimetry report filed with the source study.

highdicom (0.28) has no Encapsulated PDF class, so the object is built with pydicom.
Modules: Patient (C.7.1.1), General Study (C.7.2.1), Encapsulated Document Series
(C.24.1, Modality DOC), General Equipment (C.7.5.1), SC Equipment (C.8.6.1,
Conversion Type WSD = workstation), Encapsulated Document (C.24.2) and SOP Common.

Encapsulated Document (0042,0011) is OB and must have even length (PS3.5 7.1.1):
an odd-length PDF is padded with one NUL byte, and Encapsulated Document Length
(0042,0015) records the true length so the reader returns the bytes unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, generate_uid

from dosimetry_core.errors import DicomError, InvalidInputError
from dosimetry_core.io._dicom_common import format_da, format_dt, format_tm, get_str, read_dataset
from dosimetry_core.io.rtdose import StudyRef, fill_patient_study, new_file_dataset
from dosimetry_core.model import Patient

__all__ = ["ENCAPSULATED_PDF_STORAGE", "ReadPdf", "read_encapsulated_pdf", "write_encapsulated_pdf"]

#: Encapsulated PDF Storage SOP Class (PS3.6 Annex A).
ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
_PDF_MAGIC = b"%PDF-"


@dataclass
class ReadPdf:
    """An Encapsulated PDF read back."""

    pdf: bytes
    document_title: str
    patient_id: str
    patient_name: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str


def write_encapsulated_pdf(
    pdf: bytes,
    path: str | Path,
    *,
    patient: Patient,
    study: StudyRef,
    document_title: str = "Dosimetry report",
    series_instance_uid: str | None = None,
    series_number: int = 950,
    content_datetime: datetime | None = None,
    software_version: str = "",
    manufacturer: str = "MRT Dosimetry Workstation",
) -> Path:
    """Write a PDF report as an Encapsulated PDF instance of the source study.

    Parameters
    ----------
    pdf
        The PDF file's bytes (must start with ``%PDF-``).
    path
        Output file (its folder is created).
    patient, study
        Identity of the source study.
    document_title
        Document Title (0042,0010).

    Raises
    ------
    InvalidInputError
        Empty input or bytes that are not a PDF.
    """
    if not pdf or not pdf.startswith(_PDF_MAGIC):
        raise InvalidInputError("the report is not a PDF (it does not start with '%PDF-')")
    path = Path(path)
    series_uid = series_instance_uid or str(generate_uid())
    ds = new_file_dataset(ENCAPSULATED_PDF_STORAGE, generate_uid(entropy_srcs=[series_uid, "PDF"]))
    when = content_datetime or datetime.now().replace(microsecond=0)
    ds.InstanceCreationDate = format_da(when)
    ds.InstanceCreationTime = format_tm(when)
    fill_patient_study(ds, patient, study)
    # Encapsulated Document Series (C.24.1)
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = UID(series_uid)
    ds.SeriesNumber = int(series_number)
    ds.SeriesDescription = document_title[:64]
    # General Equipment (C.7.5.1), SC Equipment (C.8.6.1)
    ds.Manufacturer = manufacturer
    if software_version:
        ds.SoftwareVersions = software_version[:64]
    ds.ConversionType = "WSD"
    # Encapsulated Document (C.24.2)
    ds.InstanceNumber = 1
    ds.ContentDate = format_da(when)
    ds.ContentTime = format_tm(when)
    ds.AcquisitionDateTime = format_dt(when)
    ds.BurnedInAnnotation = "YES"  # a report names the patient in its text
    ds.DocumentTitle = document_title[:64]
    ds.ConceptNameCodeSequence = DicomSequence([])
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def read_encapsulated_pdf(path: str | Path) -> ReadPdf:
    """Read the PDF bytes (unpadded) and identity of an Encapsulated PDF file.

    Raises
    ------
    DicomError
        Not an Encapsulated PDF, or no document in it.
    """
    path = Path(path)
    ds: Dataset = read_dataset(path)
    if get_str(ds, "SOPClassUID") != ENCAPSULATED_PDF_STORAGE:
        raise DicomError("not an Encapsulated PDF (SOP Class UID)", str(path))
    raw = ds["EncapsulatedDocument"].value if "EncapsulatedDocument" in ds else None
    if not raw:
        raise DicomError("Encapsulated PDF without a document", str(path))
    data = bytes(raw)
    length = ds.get("EncapsulatedDocumentLength")
    if length:
        data = data[: int(length)]
    elif data.endswith(b"\0"):
        data = data[:-1]
    return ReadPdf(
        pdf=data,
        document_title=get_str(ds, "DocumentTitle"),
        patient_id=get_str(ds, "PatientID"),
        patient_name=get_str(ds, "PatientName"),
        study_instance_uid=get_str(ds, "StudyInstanceUID"),
        series_instance_uid=get_str(ds, "SeriesInstanceUID"),
        sop_instance_uid=get_str(ds, "SOPInstanceUID"),
    )
