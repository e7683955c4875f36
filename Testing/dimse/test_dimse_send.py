"""C-STORE of files and folders to a real Orthanc (checked through Orthanc's REST API)."""

from __future__ import annotations

from pathlib import Path

import pytest
from DicomServersLib.dicom_compat import PYDICOM3, write_dataset
from DicomServersLib.dimse.send import send
from dimse_helpers import server_for
from pydicom import dcmread
from pydicom.uid import generate_uid
from rig.ports import free_port
from rig.scp import FakeQRSCP

RLE_LOSSLESS = "1.2.840.10008.1.2.5"


def orthanc_instance(orthanc, sop_uid: str) -> dict:
    """Orthanc's record of one instance (found by SOP Instance UID), with its transfer syntax."""
    found = orthanc.rest_json(
        "POST", "/tools/find", json={"Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}}
    )
    assert len(found) == 1, f"{sop_uid} is not on the PACS"
    syntax = orthanc.rest("GET", f"/instances/{found[0]}/metadata/TransferSyntax").text
    return {"id": found[0], "transfer_syntax": syntax}


def rle_copy(source: Path, folder: Path) -> Path:
    """An RLE Lossless copy of a sample image (a compressed file to send as it is)."""
    ds = dcmread(source)
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["rle", str(source)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if PYDICOM3:
        ds.compress(RLE_LOSSLESS)
    else:
        ds.compress(RLE_LOSSLESS, encoding_plugin="pydicom")
    path = folder / "rle.dcm"
    write_dataset(ds, path)
    assert dcmread(path).file_meta.TransferSyntaxUID == RLE_LOSSLESS
    return path


def test_folder_and_files_arrive_with_their_own_transfer_syntax(
    orthanc_factory, sample_studies, tmp_path: Path
) -> None:
    orthanc = orthanc_factory(dicomweb=False)
    study = sample_studies.study("ACC0001")
    compressed = rle_copy(study.instances[0].path, tmp_path)
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    progress = []
    result = send(
        server_for(orthanc), [study.directory, compressed, junk], progress=progress.append
    )
    assert not result.ok and "1 of 9 file(s) not stored" in result.diagnosis
    by_path = {item.path: item for item in result.items}
    assert not by_path[junk].ok and "not a readable DICOM file" in by_path[junk].diagnosis
    stored = [item for item in result.items if item.ok]
    assert len(stored) == 8 and all(item.status == 0 for item in stored)
    for instance in study.instances:
        assert orthanc_instance(orthanc, instance.sop_instance_uid)["transfer_syntax"] == (
            "1.2.840.10008.1.2.1"
        )
    rle_uid = dcmread(compressed).SOPInstanceUID
    assert orthanc_instance(orthanc, rle_uid)["transfer_syntax"] == RLE_LOSSLESS
    assert progress[-1].completed == 8 and progress[-1].remaining == 0


def test_send_to_a_server_that_is_down(sample_studies) -> None:
    study = sample_studies.study("ACC0005")
    result = send(server_for(FakeQRSCP("DOWN"), port=free_port()), [study.directory])
    assert not result.ok and len(result.items) == len(study.instances)
    assert all("Connection refused" in item.diagnosis for item in result.items)


def test_refusals_are_reported_per_file(pynetdicom_scp_factory, sample_studies) -> None:
    scp = pynetdicom_scp_factory.storage("STORESCP", store_status=0xA700)
    study = sample_studies.study("ACC0005")
    result = send(server_for(scp), [study.directory])
    assert not result.ok
    assert all(
        item.status == 0xA700 and "out of resources" in item.diagnosis for item in result.items
    )
    assert len(scp.received) == len(study.instances)


def test_cancel_leaves_the_rest_unsent(pynetdicom_scp_factory, sample_studies) -> None:
    scp = pynetdicom_scp_factory.storage("STORESCP")
    study = sample_studies.study("ACC0001")
    result = send(server_for(scp), [study.directory], progress=lambda value: value.completed < 2)
    assert [item.ok for item in result.items].count(True) == 2
    assert "The send was cancelled." in result.diagnosis
    assert len(scp.received) == 2


@pytest.mark.parametrize("paths", [[], ["/nonexistent/file.dcm"]], ids=["nothing", "missing"])
def test_nothing_to_send(orthanc, paths) -> None:
    result = send(server_for(orthanc), paths)
    assert not result.ok
