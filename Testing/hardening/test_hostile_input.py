"""Hostile values from a PACS never become paths outside the destination (issue 8 §5).

UIDs that end up in file names (``<dest>/<Study>/<Series>/<SOP>.dcm``) arrive in C-STOREs of
C-GET (a raw peer that sends anything: ``../``, absolute paths, over 64 characters, a
backslash, NUL, a Windows device name), of C-MOVE (a pynetdicom PACS: what pynetdicom can
send), in Orthanc REST listings and in WADO-RS parts (crafted HTTP answers). Each time: the
hostile instances are refused and counted, the valid ones stored, nothing is written outside
the destination, and the result says why.
"""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from DicomServersLib.dicom_compat import write_dataset
from DicomServersLib.dimse.query import find_studies
from DicomServersLib.dimse.retrieve import retrieve
from DicomServersLib.rest import retrieve_study
from DicomServersLib.server import DicomServer
from fake_rest import FakeRest, Reply, json_reply, multipart_reply
from fault_peers import RawSCP, dcm_files, qr_answers, stored_from, temporaries
from pydicom import dcmread
from pydicom.dataset import Dataset
from rig.hostile import HOSTILE_UIDS, hostile_identifier, hostile_instance, is_sendable_uid
from rig.ports import free_port
from rig.studies import SampleSet, StudyInfo

# The hostile values break PS3.5 on purpose: pydicom warns when it encodes them.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")

LOOPBACK = "127.0.0.1"
MOVE_AE = "DSHOSTILE"
#: Everything a PACS may put where a UID belongs: the rig's list, and a few more.
HOSTILE = (
    *HOSTILE_UIDS,
    "1.2.3\\4.5",  # a backslash: two values
    "",  # empty
    "..",
    "1.2.840.10008.1.2.01",  # a zero-led component
    "C:\\Windows\\win.ini",
    "1." + "2" * 70,  # over-long digits
)


def files_outside(root: Path, dest: Path, before: set[Path]) -> list[Path]:
    """Files under ``root`` that are new and not under ``dest``."""
    now = {p for p in root.rglob("*") if p.is_file()}
    return sorted(p for p in now - before if dest not in p.parents)


def snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def dimse_server(peer, **changes) -> DicomServer:
    fields = {
        "name": "Hostile PACS",
        "called_ae_title": peer.ae_title,
        "host": LOOPBACK,
        "port": peer.port,
        "calling_ae_title": "DSTEST",
        "move_destination_ae_title": MOVE_AE,
        "timeout_s": 5.0,
        "search_limit": 0,
    }
    fields.update(changes)
    return DicomServer(**fields)


def with_uids(template: Dataset, *, study: str, series: str, sop: str) -> Dataset:
    ds = copy.deepcopy(template)
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = sop
    return ds


@pytest.fixture
def study(sample_studies: SampleSet) -> StudyInfo:
    return sample_studies.study("ACC0005")


@pytest.fixture
def good(study: StudyInfo) -> list[Dataset]:
    return [dcmread(path) for path in study.paths]


# -- DIMSE ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["series", "sop"])
def test_c_get_from_a_raw_peer_sending_hostile_uids(
    tmp_path: Path, study: StudyInfo, good: list[Dataset], where: str
) -> None:
    dest = tmp_path / "dest"
    template = good[0]
    series_uid = str(template.SeriesInstanceUID)
    evil = []
    for index, value in enumerate(HOSTILE):
        sop = f"{template.SOPInstanceUID}.{index + 1}"
        ds = with_uids(
            template,
            study=study.study_instance_uid,
            series=value if where == "series" else series_uid,
            sop=value if where == "sop" else sop,
        )
        # The command's Affected SOP Instance UID carries the hostile value too.
        evil.append(stored_from(ds, sop_instance_uid=value if where == "sop" else sop))
    peer = RawSCP(stores=[*evil, *(stored_from(ds) for ds in good)]).start()
    before = snapshot(tmp_path)
    try:
        result = retrieve(dimse_server(peer), study.study_instance_uid, dest)
    finally:
        peer.stop()
    assert not result.ok
    assert f"{len(HOSTILE)} image(s) with invalid UIDs were refused" in result.diagnosis
    assert result.failed >= len(HOSTILE)
    assert files_outside(tmp_path, dest, before) == []
    assert {p.stem for p in dcm_files(dest)} == {i.sop_instance_uid for i in study.instances}
    assert temporaries(dest) == []
    refused = [s for s in peer.store_statuses if s != 0]
    assert len(refused) == len(HOSTILE) and all(0xC000 <= s <= 0xCFFF for s in refused)


def test_c_get_of_another_study_is_refused(
    tmp_path: Path, study: StudyInfo, good: list[Dataset]
) -> None:
    """Instances claiming another (hostile) study are refused: they could not be filed."""
    dest = tmp_path / "dest"
    evil = [
        stored_from(
            with_uids(
                good[0],
                study=value,
                series=str(good[0].SeriesInstanceUID),
                sop=f"{good[0].SOPInstanceUID}.{i}",
            )
        )
        for i, value in enumerate(HOSTILE, start=1)
    ]
    peer = RawSCP(stores=evil).start()
    before = snapshot(tmp_path)
    try:
        result = retrieve(dimse_server(peer), study.study_instance_uid, dest)
    finally:
        peer.stop()
    assert not result.ok and result.diagnosis
    assert files_outside(tmp_path, dest, before) == [] and dcm_files(dest) == []


def test_c_move_from_a_pacs_sending_hostile_uids(
    pynetdicom_scp_factory, tmp_path: Path, study: StudyInfo, good: list[Dataset]
) -> None:
    dest = tmp_path / "dest"
    sendable = [uid for uid in HOSTILE if uid and is_sendable_uid(uid)]
    evil = []
    for index, value in enumerate(sendable):
        ds = hostile_instance(good[0], value)
        ds.StudyInstanceUID = study.study_instance_uid  # so that it is not refused as foreign
        ds.SOPInstanceUID = value if index % 2 else f"{good[0].SOPInstanceUID}.{index + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        evil.append(ds)
    storage_port = free_port()
    everything = [*evil, *good]
    scp = pynetdicom_scp_factory.qr(
        "EVILMOVE",
        datasets=everything,
        find_responses=qr_answers(good),
        move_destinations={MOVE_AE: storage_port},
    )
    server = dimse_server(scp, retrieve_method="c-move", storage_port=storage_port)
    before = snapshot(tmp_path)
    # Blind: ask for the whole study, so every hostile instance is sent.
    scp.find_responses = ()
    result = retrieve(server, study.study_instance_uid, dest, listen_host=LOOPBACK)
    assert not result.ok
    assert "invalid UIDs were refused" in result.diagnosis, result.diagnosis
    assert files_outside(tmp_path, dest, before) == []
    assert {p.stem for p in dcm_files(dest)} == {i.sop_instance_uid for i in study.instances}
    assert temporaries(dest) == []


def test_hostile_c_find_answers_are_listed_never_filed(
    pynetdicom_scp_factory, tmp_path: Path
) -> None:
    answers = [hostile_identifier(uid) for uid in HOSTILE_UIDS]
    scp = pynetdicom_scp_factory.qr("EVILFIND", find_responses=answers)
    before = snapshot(tmp_path)
    found = find_studies(dimse_server(scp))
    assert found.ok, found.diagnosis
    assert len(found.studies) == len(answers)
    assert snapshot(tmp_path) == before


# -- REST -------------------------------------------------------------------------------------


def part10(ds: Dataset) -> bytes:
    """A Part-10 file of ``ds`` (file meta naming its SOP Instance UID), as bytes."""
    buffer = io.BytesIO()
    ds = copy.deepcopy(ds)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    write_dataset(ds, buffer)
    return buffer.getvalue()


@pytest.fixture
def fake() -> Iterator[FakeRest]:
    server = FakeRest()
    yield server
    server.stop()


def orthanc_listing(fake: FakeRest, study_uid: str, items: list[tuple[str, str, bytes]]) -> None:
    """Make ``fake`` answer an Orthanc REST retrieve of ``items`` (series, SOP, file bytes)."""
    series_ids = {
        series: f"se{n}" for n, series in enumerate(dict.fromkeys(s for s, _, _ in items))
    }
    fake.route("POST", "/tools/lookup", json_reply('[{"Type": "Study", "ID": "st1"}]'))
    series_json = ",".join(
        f'{{"ID": "{sid}", "MainDicomTags": {{"SeriesInstanceUID": {_js(uid)}}}}}'
        for uid, sid in series_ids.items()
    )
    fake.route("GET", "/studies/st1/series", json_reply(f"[{series_json}]"))
    instances = ",".join(
        f'{{"ID": "i{n}", "ParentSeries": "{series_ids[series]}", "FileSize": {len(data)},'
        f' "MainDicomTags": {{"SOPInstanceUID": {_js(sop)}}}}}'
        for n, (series, sop, data) in enumerate(items)
    )
    fake.route("GET", "/studies/st1/instances", json_reply(f"[{instances}]"))
    files = {f"i{n}": data for n, (_, _, data) in enumerate(items)}
    fake.route(
        "GET",
        r"/instances/(i\d+)/file",
        lambda request, match: _file(files[match.group(1)]),
    )


def _js(value: str) -> str:
    return json.dumps(value)


def _file(data: bytes) -> Reply:
    return Reply(200, {"Content-Type": "application/dicom"}, data)


def test_orthanc_rest_listing_with_hostile_uids(
    fake: FakeRest, tmp_path: Path, study: StudyInfo, good: list[Dataset]
) -> None:
    dest = tmp_path / "dest"
    items = [(str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), part10(ds)) for ds in good]
    for n, value in enumerate(HOSTILE):
        ds = with_uids(
            good[0],
            study=study.study_instance_uid,
            series=str(good[0].SeriesInstanceUID) if n % 2 else value,
            sop=value if n % 2 else f"{good[0].SOPInstanceUID}.{n + 1}",
        )
        items.append((str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), part10(ds)))
    orthanc_listing(fake, study.study_instance_uid, items)
    server = DicomServer(name="Fake", rest_enabled=True, rest_url=fake.url, timeout_s=5.0)
    before = snapshot(tmp_path)
    result = retrieve_study(server, study.study_instance_uid, dest)
    assert not result.ok
    assert "with invalid UIDs" in result.diagnosis and "refused" in result.diagnosis
    assert result.failed == len(HOSTILE)
    assert files_outside(tmp_path, dest, before) == []
    assert {p.stem for p in dcm_files(dest)} == {i.sop_instance_uid for i in study.instances}
    assert temporaries(dest) == []


def test_wado_rs_parts_with_hostile_uids(
    fake: FakeRest, tmp_path: Path, study: StudyInfo, good: list[Dataset]
) -> None:
    dest = tmp_path / "dest"
    series_uid = str(good[0].SeriesInstanceUID)
    evil = [
        with_uids(good[0], study=study.study_instance_uid, series=series_uid, sop=value or "x")
        for value in HOSTILE
    ]
    parts = [part10(ds) for ds in (*evil, *good)]
    qido = json.dumps(
        [
            {
                "0020000E": {"vr": "UI", "Value": [series_uid]},
                "00201209": {"vr": "IS", "Value": [len(parts)]},
            }
        ]
    )
    fake.route("GET", rf"/dicom-web/studies/{study.study_instance_uid}/series", json_reply(qido))
    fake.route(
        "GET",
        rf"/dicom-web/studies/{study.study_instance_uid}/series/{series_uid}",
        lambda request, match: multipart_reply(parts),
    )
    server = DicomServer(
        name="Fake",
        rest_enabled=True,
        rest_flavor="dicomweb",
        rest_url=fake.url + "/dicom-web",
        timeout_s=5.0,
    )
    before = snapshot(tmp_path)
    result = retrieve_study(server, study.study_instance_uid, dest)
    assert not result.ok and "cannot be stored" in result.diagnosis, result.diagnosis
    assert files_outside(tmp_path, dest, before) == []
    assert {p.stem for p in dcm_files(dest)} == {i.sop_instance_uid for i in study.instances}
    assert temporaries(dest) == []
    assert result.failed == len(HOSTILE)


def test_no_symlink_escape(tmp_path: Path, study: StudyInfo, good: list[Dataset]) -> None:
    """A study folder that is a symlink out of dest is not something a PACS can create."""
    # UIDs are digits and dots only, so a PACS cannot name ".." or a link; check the rule.
    from DicomServersLib.dicom_files import UnsafeUIDError, instance_path

    for value in HOSTILE:
        with pytest.raises(UnsafeUIDError):
            instance_path(tmp_path, value, "1.2", "1.3")
        with pytest.raises(UnsafeUIDError):
            instance_path(tmp_path, "1.2", value, "1.3")
        with pytest.raises(UnsafeUIDError):
            instance_path(tmp_path, "1.2", "1.3", value)
    assert os.sep not in instance_path(tmp_path, "1.2", "1.3", "1.4").name
