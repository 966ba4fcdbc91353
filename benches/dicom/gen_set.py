#!/usr/bin/env python3
"""Deterministic C-STORE bench set: N CT-like 512x512x16-bit instances (~0.5 MB each) and
M large multi-frame instances (160 frames, ~84 MB each), Explicit VR Little Endian.

usage: gen_set.py OUTDIR [--ct 400] [--large 2] [--frames 160]
Same arguments -> byte-identical files (UIDs and pixels derive from the index only)."""
import argparse, os, sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

ROOT = "1.2.826.0.1.3680043.10.1395"  # fixed root for generated UIDs
CT = "1.2.840.10008.5.1.4.1.1.2"

def pixels(seed, nbytes):
    row = bytes(((seed * 31 + i * 7) & 0xFF) for i in range(4096))
    reps, rest = divmod(nbytes, len(row))
    return row * reps + row[:rest]

def instance(path, kind, idx, frames):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT
    meta.MediaStorageSOPInstanceUID = f"{ROOT}.{kind}.{idx + 1}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName = "BENCH^CSTORE"
    ds.PatientID = "BENCH1"
    ds.StudyInstanceUID = f"{ROOT}.{kind}.0"
    ds.SeriesInstanceUID = f"{ROOT}.{kind}.0.1"
    ds.InstanceNumber = idx + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 512
    ds.Columns = 512
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels(idx, 512 * 512 * 2 * frames)
    ds["PixelData"].VR = "OW"
    ds.save_as(path, enforce_file_format=True)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--ct", type=int, default=400)
    ap.add_argument("--large", type=int, default=2)
    ap.add_argument("--frames", type=int, default=160)
    a = ap.parse_args()
    for sub, n, kind, frames in (("ct", a.ct, 1, 1), ("large", a.large, 2, a.frames)):
        d = os.path.join(a.out, sub)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            p = os.path.join(d, f"{i:05d}.dcm")
            if not os.path.exists(p):
                instance(p, kind, i, frames)
    print(a.out)

if __name__ == "__main__":
    sys.exit(main())
