#!/usr/bin/env python3
"""Deterministic Query/Retrieve and worklist fixtures for the interoperability tests.

  qr_fixture.py images DIR [PATIENTS [INSTANCES]]
                             PATIENTS (default 5) patients x 2 studies x 2 series x INSTANCES
                             (default 2) instances as Part 10 files (non-ASCII names in ISO_IR
                             100 and ISO_IR 192, spread dates); the first five patients are
                             always the same
  qr_fixture.py worklist DIR Modality Worklist items as Part 10 *.wl files (as DCMTK's wlmscpfs
                             serves them), plus an empty `lockfile`
"""
import os
import sys

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"
ROOT = "1.2.826.0.1.3680043.10.1138."

PATIENTS = [
    # (id, name, charset, birth date, sex)
    ("P001", "Doe^John", None, "19700101", "M"),
    ("P002", "Müller^Jörg", "ISO_IR 100", "19800215", "M"),
    ("P003", "Ōta^Ren", "ISO_IR 192", "19901231", "F"),
    ("P004", "Smith^Anna", None, "20000704", "F"),
    ("P005", "Дмитриев^Иван", "ISO_IR 192", "19651111", "M"),
]


def write(ds, path, sop_class):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = ROOT + "999"
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def patients(count):
    for p in range(count):
        pid, name, cs, birth, sex = PATIENTS[p % len(PATIENTS)]
        if p >= len(PATIENTS):
            pid = f"P{p + 1:05d}"
            name = name.replace("^", f"{p}^", 1)
        yield p, (pid, name, cs, birth, sex)


def images(out, count=5, per_series=2):
    os.makedirs(out, exist_ok=True)
    n = 0
    for p, (pid, name, cs, birth, sex) in patients(count):
        for s in range(2):
            study = f"{ROOT}{p + 1}.{s + 1}"
            date = f"2024{(p * 2 + s) % 12 + 1:02d}{(p * 7 + s * 3) % 27 + 1:02d}"
            for r in range(2):
                series = f"{study}.{r + 1}"
                modality = ["CT", "MR"][(p + s + r) % 2]
                for i in range(per_series):
                    ds = Dataset()
                    if cs:
                        ds.SpecificCharacterSet = cs
                    ds.SOPClassUID = CT
                    ds.SOPInstanceUID = f"{series}.{i + 1}"
                    ds.StudyDate = date
                    ds.StudyTime = f"{8 + s + r:02d}{(i * 15) % 60:02d}00"
                    ds.AccessionNumber = f"A{p + 1}{s + 1}"
                    ds.Modality = modality
                    ds.StudyDescription = f"Study {s + 1} of {pid}"
                    ds.PatientName = name
                    ds.PatientID = pid
                    ds.PatientBirthDate = birth
                    ds.PatientSex = sex
                    ds.StudyInstanceUID = study
                    ds.SeriesInstanceUID = series
                    ds.StudyID = f"S{s + 1}"
                    ds.SeriesNumber = r + 1
                    ds.InstanceNumber = i + 1
                    ds.Rows = 8
                    ds.Columns = 8
                    ds.SamplesPerPixel = 1
                    ds.PhotometricInterpretation = "MONOCHROME2"
                    ds.BitsAllocated = 16
                    ds.BitsStored = 12
                    ds.HighBit = 11
                    ds.PixelRepresentation = 0
                    ds.PixelData = bytes((n + k) % 256 for k in range(128))
                    write(ds, os.path.join(out, f"{ds.SOPInstanceUID}.dcm"), CT)
                    n += 1
    print(n)


def worklist(out):
    ae_dir = out
    os.makedirs(ae_dir, exist_ok=True)
    open(os.path.join(ae_dir, "lockfile"), "w").close()
    n = 0
    for p, (pid, name, cs, birth, sex) in enumerate(PATIENTS):
        for k in range(2):
            ds = Dataset()
            if cs:
                ds.SpecificCharacterSet = cs
            ds.AccessionNumber = f"W{p + 1}{k + 1}"
            ds.PatientName = name
            ds.PatientID = pid
            ds.PatientBirthDate = birth
            ds.PatientSex = sex
            ds.StudyInstanceUID = f"{ROOT}9.{p + 1}.{k + 1}"
            ds.RequestedProcedureID = f"RP{p + 1}{k + 1}"
            ds.RequestedProcedureDescription = f"Procedure {k + 1}"
            sps = Dataset()
            sps.ScheduledStationAETitle = ["CT01", "MR01"][(p + k) % 2]
            sps.ScheduledProcedureStepStartDate = f"202412{p * 2 + k + 1:02d}"
            sps.ScheduledProcedureStepStartTime = f"{9 + k:02d}0000"
            sps.Modality = ["CT", "MR"][(p + k) % 2]
            sps.ScheduledPerformingPhysicianName = "Radiologist^Rita"
            sps.ScheduledProcedureStepDescription = f"Step {k + 1}"
            sps.ScheduledProcedureStepID = f"SPS{p + 1}{k + 1}"
            ds.ScheduledProcedureStepSequence = Sequence([sps])
            ds.SOPInstanceUID = f"{ROOT}8.{p + 1}.{k + 1}"
            # Worklist files carry no SOP class of their own; any UID serves the File Meta.
            write(ds, os.path.join(ae_dir, f"item{n:03d}.wl"), "1.2.840.10008.5.1.4.31")
            n += 1
    print(n)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("images", "worklist"):
        sys.exit(__doc__)
    if sys.argv[1] == "images":
        images(sys.argv[2], *(int(a) for a in sys.argv[3:5]))
    else:
        worklist(sys.argv[2])
