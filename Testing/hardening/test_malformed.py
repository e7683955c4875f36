"""Malformed answers: bad data sets, broken PDUs, bad JSON, files that are not DICOM (issue 8 §4).

Peers: the raw DICOM peer of :mod:`fault_peers` (sends any bytes in a C-STORE or a PDU) and
the scriptable HTTP server of :mod:`fake_rest` posing as Orthanc or a DICOMweb server. Every
time: a plain-language failure (never an exception), nothing partial or foreign on disk, and
what was there before (files, the cached study list) is kept.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from DicomServersLib.dicom_compat import write_dataset
from DicomServersLib.dimse.query import find_studies
from DicomServersLib.dimse.retrieve import retrieve
from DicomServersLib.rest import refresh, retrieve_study, search_studies
from DicomServersLib.rest.cache import StudyCache, cache_identity, cache_path
from DicomServersLib.server import DicomServer
from fake_rest import FakeRest, Reply, json_reply
from fault_peers import RawSCP, Stored, dcm_files, incomplete, stored_from, temporaries
from pydicom import dcmread
from pydicom.dataset import Dataset
from rig.studies import SampleSet, StudyInfo

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")

LOOPBACK = "127.0.0.1"


@pytest.fixture
def study(sample_studies: SampleSet) -> StudyInfo:
    return sample_studies.study("ACC0005")


@pytest.fixture
def good(study: StudyInfo) -> list[Dataset]:
    return [dcmread(path) for path in study.paths]


def raw_server(peer: RawSCP) -> DicomServer:
    return DicomServer(
        name="Raw",
        called_ae_title=peer.ae_title,
        host=LOOPBACK,
        port=peer.port,
        calling_ae_title="DSTEST",
        timeout_s=5.0,
        search_limit=0,
    )


def assert_clean(dest: Path) -> None:
    """Only whole DICOM files, no temporary left."""
    assert [incomplete(p) for p in dcm_files(dest) if incomplete(p)] == []
    assert temporaries(dest) == []


# -- DIMSE ------------------------------------------------------------------------------------


def truncated(item: Stored, keep: int) -> Stored:
    """The same C-STORE with its data set cut after ``keep`` bytes (inside the pixel data)."""
    return Stored(item.sop_class_uid, item.sop_instance_uid, item.data[:keep])


@pytest.mark.parametrize(
    "damage",
    ["garbage", "empty", "truncated-header", "truncated-pixels", "bad-length", "odd-tail"],
)
def test_c_get_with_a_malformed_data_set(
    tmp_path: Path, study: StudyInfo, good: list[Dataset], damage: str
) -> None:
    dest = tmp_path / "dest"
    extra = copy.deepcopy(good[0])
    extra.SOPInstanceUID = f"{good[0].SOPInstanceUID}.99"
    bad = stored_from(extra)
    size = len(bad.data)
    if damage == "garbage":
        bad = Stored(bad.sop_class_uid, bad.sop_instance_uid, bytes(range(256)) * 8)
    elif damage == "empty":
        bad = Stored(bad.sop_class_uid, bad.sop_instance_uid, b"")
    elif damage == "truncated-header":
        bad = truncated(bad, 40)
    elif damage == "truncated-pixels":
        bad = truncated(bad, size - 1000)
    elif damage == "bad-length":  # the last element claims more bytes than there are
        data = bytearray(bad.data)
        data[-len(extra.PixelData) - 4 : -len(extra.PixelData)] = (10**6).to_bytes(4, "little")
        bad = Stored(bad.sop_class_uid, bad.sop_instance_uid, bytes(data))
    else:  # three stray bytes after the last element
        bad = Stored(bad.sop_class_uid, bad.sop_instance_uid, bad.data + b"\x01\x02\x03")
    peer = RawSCP(stores=[bad, *(stored_from(ds) for ds in good)]).start()
    try:
        result = retrieve(raw_server(peer), study.study_instance_uid, dest)
    finally:
        peer.stop()
    assert not result.ok and result.failed >= 1, result
    assert result.diagnosis
    assert extra.SOPInstanceUID not in {p.stem for p in dcm_files(dest)}
    assert {p.stem for p in dcm_files(dest)} == {i.sop_instance_uid for i in study.instances}
    assert_clean(dest)


def test_broken_pdu_after_some_images(
    tmp_path: Path, study: StudyInfo, good: list[Dataset]
) -> None:
    dest = tmp_path / "dest"
    peer = RawSCP(
        stores=[stored_from(ds) for ds in good[:2]], raw_after_stores=b"\x09\x00" + b"\xff" * 30
    ).start()
    try:
        result = retrieve(raw_server(peer), study.study_instance_uid, dest)
    finally:
        peer.stop()
    assert not result.ok
    assert "C-GET" in result.diagnosis or "protocol" in result.diagnosis.lower(), result
    assert {p.stem for p in dcm_files(dest)} == {str(ds.SOPInstanceUID) for ds in good[:2]}
    assert_clean(dest)


@pytest.mark.parametrize("answer", [b"\xff" * 17, b"\x08\x00\x20\x00DA\xff\xff", b""])
def test_c_find_with_a_malformed_identifier(answer: bytes) -> None:
    peer = RawSCP(find_answers=[answer]).start()
    try:
        found = find_studies(raw_server(peer))
    finally:
        peer.stop()
    assert found.diagnosis or found.ok  # never an exception
    if not found.ok:
        assert len(found.diagnosis) > 20


# -- REST -------------------------------------------------------------------------------------


def part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    write_dataset(copy.deepcopy(ds), buffer)
    return buffer.getvalue()


@pytest.fixture
def fake() -> Iterator[FakeRest]:
    server = FakeRest()
    yield server
    server.stop()


def orthanc_like(
    fake: FakeRest, good: list[Dataset], *, lookup=None, series=None, instances=None, files=None
) -> None:
    """Answer an Orthanc REST retrieve of ``good``, some answers replaced by broken ones."""
    import json

    series_uid = str(good[0].SeriesInstanceUID)
    fake.route("POST", "/tools/lookup", lookup or json_reply('[{"Type": "Study", "ID": "st1"}]'))
    fake.route(
        "GET",
        "/studies/st1/series",
        series
        or json_reply(
            json.dumps([{"ID": "se1", "MainDicomTags": {"SeriesInstanceUID": series_uid}}])
        ),
    )
    listing = [
        {
            "ID": f"i{n}",
            "ParentSeries": "se1",
            "MainDicomTags": {"SOPInstanceUID": str(ds.SOPInstanceUID)},
        }
        for n, ds in enumerate(good)
    ]
    fake.route("GET", "/studies/st1/instances", instances or json_reply(json.dumps(listing)))
    data = {f"i{n}": part10(ds) for n, ds in enumerate(good)}
    fake.route(
        "GET",
        r"/instances/(i\d+)/file",
        files or (lambda request, match: Reply(200, {}, data[match.group(1)])),
    )


BROKEN_JSON = [
    "{not json",
    "",
    "null",
    "42",
    '{"an": "object"}',
    "[1, 2, 3]",
    '[{"ID": "x"}]',
    '[{"ID": 1, "MainDicomTags": null}]',
    '[{"Type": "Study"}]',
    "<html><body>Login</body></html>",
]


@pytest.mark.parametrize("where", ["lookup", "series", "instances"])
@pytest.mark.parametrize("text", BROKEN_JSON, ids=range(len(BROKEN_JSON)))
def test_orthanc_rest_bad_json(
    fake: FakeRest, tmp_path: Path, study: StudyInfo, good: list[Dataset], where: str, text: str
) -> None:
    orthanc_like(fake, good, **{where: json_reply(text)})
    server = DicomServer(name="Fake", rest_enabled=True, rest_url=fake.url, timeout_s=5.0)
    dest = tmp_path / "dest"
    result = retrieve_study(server, study.study_instance_uid, dest)
    assert not result.ok and len(result.diagnosis) > 20, result
    assert "Traceback" not in result.diagnosis
    assert_clean(dest)


@pytest.mark.parametrize(
    "body",
    [b"<html>Internal error</html>", b"", bytes(128) + b"DICM", b"\x00" * 400],
    ids=["html", "empty", "preamble-only", "zeros"],
)
def test_orthanc_rest_file_that_is_not_dicom(
    fake: FakeRest, tmp_path: Path, study: StudyInfo, good: list[Dataset], body: bytes
) -> None:
    data = {f"i{n}": part10(ds) for n, ds in enumerate(good)}
    data["i0"] = body

    def files(request, match):
        return Reply(200, {"Content-Type": "application/dicom"}, data[match.group(1)])

    orthanc_like(fake, good, files=files)
    server = DicomServer(name="Fake", rest_enabled=True, rest_url=fake.url, timeout_s=5.0)
    dest = tmp_path / "dest"
    result = retrieve_study(server, study.study_instance_uid, dest)
    assert not result.ok and result.failed == 1, result
    assert {p.stem for p in dcm_files(dest)} == {str(ds.SOPInstanceUID) for ds in good[1:]}
    assert_clean(dest)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(
            200,
            {"Content-Type": "multipart/related; boundary=XX"},
            b"--XX\r\n\r\nnot dicom\r\n--XX--",
        ),
        Reply(200, {"Content-Type": "multipart/related"}, b"no boundary"),
        Reply(200, {"Content-Type": "text/html"}, b"<html></html>"),
        Reply(200, {"Content-Type": "multipart/related; boundary=XX"}, b"--XX\r\nhalf a part"),
    ],
    ids=["part-not-dicom", "no-boundary", "html", "cut"],
)
def test_wado_rs_malformed_answers(
    fake: FakeRest, tmp_path: Path, study: StudyInfo, good: list[Dataset], reply: Reply
) -> None:
    import json

    series_uid = str(good[0].SeriesInstanceUID)
    qido = json.dumps([{"0020000E": {"vr": "UI", "Value": [series_uid]}}])
    uid = study.study_instance_uid
    fake.route("GET", rf"/dicom-web/studies/{uid}/series", json_reply(qido))
    fake.route("GET", rf"/dicom-web/studies/{uid}/series/{series_uid}", reply)
    server = DicomServer(
        name="Fake",
        rest_enabled=True,
        rest_flavor="dicomweb",
        rest_url=fake.url + "/dicom-web",
        timeout_s=5.0,
    )
    dest = tmp_path / "dest"
    result = retrieve_study(server, uid, dest)
    assert not result.ok and len(result.diagnosis) > 20, result
    assert dcm_files(dest) == []
    assert_clean(dest)


@pytest.mark.parametrize("flavor", ["orthanc", "dicomweb"])
@pytest.mark.parametrize("text", ["{not json", "[1, 2", '{"a": 1}', "[[[]]]", "[null]"])
def test_bad_json_study_list_keeps_the_cache(
    orthanc, fake: FakeRest, tmp_path: Path, monkeypatch, flavor: str, text: str
) -> None:
    """A refresh that gets nonsense fails clearly and leaves the cached list as it was."""
    monkeypatch.setenv("DICOMSERVERS_CACHE_DIR", str(tmp_path / "cache"))
    url = orthanc.dicomweb_url if flavor == "dicomweb" else orthanc.http_url
    server = DicomServer(
        name="PACS",
        rest_enabled=True,
        rest_flavor=flavor,
        rest_url=url,
        rest_user=orthanc.user,
        rest_password=orthanc.password,
        timeout_s=5.0,
    )
    first = refresh(server, full=True)
    assert first.ok, first.diagnosis
    path = cache_path(server)
    with StudyCache(path, cache_identity(server)) as cache:
        before = sorted(r.study_uid for r in cache.studies())
    assert before
    # The same server (same cache), now answering nonsense to every request.
    for method in ("GET", "POST"):
        fake.route(method, r"/.*", json_reply(text))
    broken = server.copy(rest_url=fake.url + ("/dicom-web" if flavor == "dicomweb" else ""))
    broken.id = server.id
    second = refresh(broken, full=True, cache=StudyCache(path, cache_identity(server)))
    assert not second.ok and len(second.diagnosis) > 20, second
    with StudyCache(path, cache_identity(server)) as cache:
        assert sorted(r.study_uid for r in cache.studies()) == before
    found = search_studies(broken)
    assert not found.ok and found.diagnosis
