"""pydicom side of tests/pydicom_interop.rs.

`gen`: prints JSON {name: {"implicit": hex, "explicit": hex, "json": str}} for an MPPS N-CREATE and a
final N-SET dataset written by pydicom.
`check`: reads JSON {"implicit": hex, "explicit": hex, "json": str} (our encodings of one stored
instance) on stdin, decodes each with pydicom and prints the attributes the test compares.
"""
import io, sys, json, os
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.filewriter import write_dataset
from pydicom.filebase import DicomBytesIO

def create_ds():
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.Modality = "CT"
    ds.PatientName = "Müller^Jörg"
    ds.PatientID = "P1"
    ds.PatientBirthDate = ""
    ds.PatientSex = "M"
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedProcedureStepStartDate = "20250101"
    ds.PerformedProcedureStepStartTime = "081500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepID = "PPS-1"
    item = Dataset()
    item.StudyInstanceUID = "1.2.3.4.5.6"
    item.AccessionNumber = "A1"
    item.ReferencedStudySequence = Sequence([])
    ds.ScheduledStepAttributesSequence = Sequence([item])
    ds.PerformedSeriesSequence = Sequence([])
    return ds

def set_ds():
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    ds.PerformedProcedureStepEndDate = "20250101"
    ds.PerformedProcedureStepEndTime = "091500"
    img = Dataset()
    img.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    img.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.1"
    s = Dataset()
    s.SeriesInstanceUID = "1.2.3.4.5.6.7"
    s.ProtocolName = "HEAD"
    s.OperatorsName = "Op^One"
    s.ReferencedImageSequence = Sequence([img])
    ds.PerformedSeriesSequence = Sequence([s])
    return ds

def encode(ds, implicit):
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def summary(ds):
    series = ds.PerformedSeriesSequence[0] if len(ds.get("PerformedSeriesSequence", [])) else None
    return {
        "status": ds.PerformedProcedureStepStatus,
        "study": ds.ScheduledStepAttributesSequence[0].StudyInstanceUID,
        "patient": str(ds.PatientName),
        "end_date": ds.get("PerformedProcedureStepEndDate", ""),
        "series": series.SeriesInstanceUID if series is not None else None,
        "image": series.ReferencedImageSequence[0].ReferencedSOPInstanceUID if series is not None else None,
        "empty_birth_date": "PatientBirthDate" in ds and ds.PatientBirthDate in ("", None),
    }

if sys.argv[1] == "gen":
    out = {}
    for name, ds in [("create", create_ds()), ("set", set_ds())]:
        out[name] = {"implicit": encode(ds, True).hex(), "explicit": encode(ds, False).hex(), "json": ds.to_json()}
    print(json.dumps(out))
else:
    from pydicom.filereader import read_dataset
    got = json.load(sys.stdin)
    res = {}
    for ts in ("implicit", "explicit"):
        ds = read_dataset(io.BytesIO(bytes.fromhex(got[ts])), ts == "implicit", True)
        res[ts] = summary(ds)
    res["json"] = summary(Dataset.from_json(got["json"]))
    print(json.dumps(res))
