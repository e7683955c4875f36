"""The fast header reader returns what pydicom reads, and falls back where it must."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest
from DicomServersLib.dicom_compat import write_dataset
from DicomServersLib.dicom_header import WANTED, read_header
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from rig.studies import SampleSet


def pydicom_values(path: Path) -> dict[str, str]:
    ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    values = {}
    for name in WANTED.values():
        value = ds.get(name)
        if value in (None, ""):
            continue
        if isinstance(value, list) or type(value).__name__ == "MultiValue":
            value = "\\".join(str(v) for v in value)
        values[name] = str(value).strip("\0 ")
    return values


def test_matches_pydicom_on_every_sample(sample_studies: SampleSet) -> None:
    assert len(sample_studies.paths) > 10
    for path in sample_studies.paths:
        assert read_header(path).values == pydicom_values(path), path


def test_non_ascii_names_decoded(sample_studies: SampleSet) -> None:
    names = {read_header(p).get("PatientName") for p in sample_studies.paths}
    assert any(not n.isascii() for n in names)
    assert names == {
        str(pydicom.dcmread(str(p), stop_before_pixels=True).PatientName)
        for p in sample_studies.paths
    }


@pytest.mark.dcmtk
@pytest.mark.parametrize("option", ["+ti", "+tb", "+td"])  # implicit LE, explicit BE, deflated
def test_other_transfer_syntaxes(sample_studies: SampleSet, tmp_path: Path, option: str) -> None:
    target = tmp_path / "x.dcm"
    subprocess.run(
        ["dcmconv", option, str(sample_studies.paths[0]), str(target)], check=True, timeout=60
    )
    assert read_header(target).values == pydicom_values(target)


def test_undefined_length_sequence_before_group_0020(
    sample_studies: SampleSet, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(str(sample_studies.paths[0]))
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    nested = Dataset()
    nested.CodeValue = "X"
    item.PurposeOfReferenceCodeSequence = Sequence([nested])
    ds.ReferencedImageSequence = Sequence([item, item])
    ds["ReferencedImageSequence"].is_undefined_length = True
    target = tmp_path / "seq.dcm"
    write_dataset(ds, target)
    assert read_header(target).values == pydicom_values(target)


def test_not_dicom(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(ValueError, match="not"):
        read_header(junk)
