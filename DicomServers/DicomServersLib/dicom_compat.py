"""One place for the differences between pydicom 2.4 (Slicer 5.10) and pydicom 3 (Slicer 5.12+).

Everything else in the core reads and writes DICOM files through these functions, so that no
other module needs to know which pydicom it runs on.

The file format written is the DICOM File Format of PS3.10 §7: a 128-byte preamble, the ``DICM``
prefix and a File Meta Information group (0002,eeee) that names the SOP Class, the SOP Instance
and the Transfer Syntax of the data set.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

__all__ = ["PYDICOM3", "PYDICOM_MAJOR", "read_header", "write_dataset"]

PYDICOM_MAJOR: int = int(pydicom.__version__.split(".", 1)[0])
"""Major version of the pydicom that is imported."""

PYDICOM3: bool = PYDICOM_MAJOR >= 3
"""True on pydicom 3 and later (Slicer 5.12+), False on pydicom 2.4 (Slicer 5.10)."""

PathLike = str | os.PathLike[str]


def _complete_file_meta(ds: Dataset) -> FileMetaDataset:
    """Add the File Meta Information elements a Part-10 file needs, keeping any already set.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The data set to write. Its ``file_meta`` is created or completed in place.

    Returns
    -------
    pydicom.dataset.FileMetaDataset
        The completed file meta group (PS3.10 §7.1).

    Raises
    ------
    ValueError
        If the data set has no SOPClassUID or SOPInstanceUID and the file meta does not name
        them either: a Part-10 file must say what it holds.
    """
    meta = getattr(ds, "file_meta", None)
    if not isinstance(meta, FileMetaDataset):
        new_meta = FileMetaDataset()
        if isinstance(meta, Dataset):
            new_meta.update(meta)
        meta = new_meta
    if "MediaStorageSOPClassUID" not in meta:
        if "SOPClassUID" not in ds:
            raise ValueError("cannot write a DICOM file without SOPClassUID")
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "MediaStorageSOPInstanceUID" not in meta:
        if "SOPInstanceUID" not in ds:
            raise ValueError("cannot write a DICOM file without SOPInstanceUID")
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "ImplementationClassUID" not in meta:
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    return meta


def write_dataset(ds: Dataset, path: PathLike | BinaryIO) -> None:
    """Write a data set as a DICOM Part-10 file (preamble, ``DICM`` and file meta).

    Missing File Meta Information elements (Media Storage SOP Class/Instance UID, Transfer
    Syntax UID, Implementation Class UID) are added to ``ds.file_meta`` in place; the Transfer
    Syntax defaults to Explicit VR Little Endian. Elements already present are kept.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The data set to write.
    path : str, os.PathLike or binary file object
        Where to write. An existing file is overwritten.

    Raises
    ------
    ValueError
        If the data set lacks the SOP Class UID or SOP Instance UID that the file meta needs.

    Notes
    -----
    pydicom 2.4 writes the file format with ``write_like_original=False``; pydicom 3 with
    ``enforce_file_format=True`` (``write_like_original`` is deprecated there). See PS3.10 §7.
    """
    meta = _complete_file_meta(ds)
    options: dict[str, Any]
    if PYDICOM3:
        options = {"enforce_file_format": True}
    else:
        # pydicom 2.4 encodes with the data set's own flags: derive them from the syntax.
        syntax = UID(str(meta.TransferSyntaxUID))
        ds.is_little_endian = syntax.is_little_endian
        ds.is_implicit_VR = syntax.is_implicit_VR
        options = {"write_like_original": False}
    pydicom.dcmwrite(path, ds, **options)


def read_header(path: PathLike | BinaryIO, stop_before_pixels: bool = True) -> Dataset:
    """Read a DICOM file, by default without its pixel data.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The file to read. It must be a Part-10 file or a raw data set pydicom recognises.
    stop_before_pixels : bool, optional
        Stop reading before (7FE0,0010) Pixel Data (default True), which keeps reading a large
        image cheap when only the header is needed.

    Returns
    -------
    pydicom.dataset.Dataset
        The data set read (a ``FileDataset``), with ``file_meta`` when the file had one.

    Raises
    ------
    pydicom.errors.InvalidDicomError
        If the file is not DICOM.
    OSError
        If the file cannot be read.
    """
    return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
