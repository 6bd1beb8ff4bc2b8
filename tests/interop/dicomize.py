"""Real chest films from the manifest as DICOM CR instances, as a modality would send them
(tests and benchmarks of the DICOM receiver; nothing is written into the repository)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def manifest_test_films(shared_data: Path, n: int, datasets: tuple[str, ...] = ()) -> list[Path]:
    """The first `n` test-split films of the manifest (of `datasets`, if given)."""
    out: list[Path] = []
    with (shared_data / "cxr" / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] != "test" or (datasets and row["dataset"] not in datasets):
                continue
            out.append(shared_data / "cxr" / row["path"])
            if len(out) == n:
                break
    return out


def film_as_cr(image: Path, patient_id: str, study_uid: str | None = None) -> Dataset:
    """A CR instance holding `image` (8-bit greyscale), chest PA, with fresh UIDs."""
    with Image.open(image) as img:
        pixels = np.asarray(img.convert("L"), dtype=np.uint8)
    now = datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CR_STORAGE
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CR_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Test^Film"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ""
    ds.Manufacturer = "dxassist test"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    return ds
