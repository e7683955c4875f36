"""The cached study list: complete and incremental refreshes against real Orthanc servers.

The mode a refresh chose is checked twice: by what it reports, and by counting the requests
that reached the server (a response hook on the session, see ``rest_helpers.RequestLog``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from DicomServersLib.progress import Progress
from DicomServersLib.rest.cache import StudyCache, cache_path
from DicomServersLib.rest.sync import SyncResult, refresh
from DicomServersLib.server import DicomServer
from rest_helpers import FLAVORS, RequestLog, StudyMaker, logged_session, rest_server, upload
from rig.orthanc import OrthancServer
from rig.studies import SampleSet

TODAY = dt.date.today()


def sync(server: DicomServer, cache: StudyCache, log: RequestLog, **kwargs: object) -> SyncResult:
    """Refresh with a recorded session (the log is cleared first)."""
    log.clear()
    session = logged_session(server, log)
    try:
        return refresh(server, cache=cache, session=session, **kwargs)  # type: ignore[arg-type]
    finally:
        session.close()


def accessions(cache: StudyCache) -> list[str]:
    return [s.accession_number for s in cache.studies()]


def delete_study(orthanc: OrthancServer, study_uid: str) -> None:
    answer = orthanc.rest_json("POST", "/tools/lookup", data=study_uid)
    (study_id,) = [a["ID"] for a in answer if a["Type"] == "Study"]
    orthanc.rest("DELETE", f"/studies/{study_id}").raise_for_status()


@pytest.fixture
def loaded(fresh_orthanc: Callable[..., OrthancServer], sample_studies: SampleSet) -> OrthancServer:
    """A fresh Orthanc holding the seven sample studies."""
    return fresh_orthanc(preload=sample_studies)


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_first_load_is_complete_then_unchanged_costs_one_or_two_small_requests(
    loaded: OrthancServer, flavor: str, cache_root: Path, request_log: RequestLog
) -> None:
    server = rest_server(loaded, flavor, cache_threshold=5)
    with StudyCache.open(server, cache_root) as cache:
        first = sync(server, cache, request_log)
        assert first.ok, first.diagnosis
        assert (first.mode, first.total, first.added) == ("full", 7, 7)
        assert "first load" in first.reason
        # Most recent first, the undated study last.
        assert accessions(cache) == [
            "ACC0001", "ACC0003", "ACC0005", "ACC0002", "ACC0004", "ACC0006", "ACC0007",
        ]  # fmt: skip
        state = cache.state()
        assert state.last_sync and state.last_full_sync == state.last_sync
        assert state.total == 7 and state.cut_off == ""

        second = sync(server, cache, request_log)
        assert (second.mode, second.added, second.removed, second.total) == ("unchanged", 0, 0, 7)
        if flavor == "orthanc":
            assert request_log.paths() == ["/changes", "/statistics"]
        else:
            (qido,) = request_log.requests
            assert qido.path.endswith("/dicom-web/studies")
            window = (TODAY - dt.timedelta(days=1)).strftime("%Y%m%d")
            assert qido.query["StudyDate"] == [f"{window}-"]
            # The two cached studies of the window + the threshold + 1.
            assert qido.query["limit"] == [str(2 + 5 + 1)]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_new_studies_up_to_the_threshold_are_fetched_incrementally(
    loaded: OrthancServer,
    flavor: str,
    cache_root: Path,
    request_log: RequestLog,
    study_maker: StudyMaker,
) -> None:
    server = rest_server(loaded, flavor, cache_threshold=3)
    with StudyCache.open(server, cache_root) as cache:
        assert sync(server, cache, request_log).mode == "full"
        new = study_maker.many(3, TODAY)  # exactly the threshold: still incremental
        upload(loaded, new)
        result = sync(server, cache, request_log)
        assert result.ok, result.diagnosis
        assert (result.mode, result.added, result.removed, result.total) == (
            "incremental", 3, 0, 10,
        )  # fmt: skip
        assert {s.study_instance_uid for s in new} <= {s.study_uid for s in cache.studies()}
        if flavor == "orthanc":
            assert request_log.finds() == []  # no lookup in the database
            assert not request_log.listings()  # and no listing of it
            (bulk,) = [r for r in request_log.requests if r.path == "/tools/bulk-content"]
            assert len(bulk.body["Resources"]) == 3  # the three new studies, in one request
        else:
            (qido,) = request_log.qido_studies()
            assert qido.query["StudyDate"][0].endswith("-")
            assert len(request_log.requests) == 1


@pytest.mark.parametrize("flavor", FLAVORS)
def test_more_new_studies_than_the_threshold_reload_everything(
    loaded: OrthancServer,
    flavor: str,
    cache_root: Path,
    request_log: RequestLog,
    study_maker: StudyMaker,
) -> None:
    server = rest_server(loaded, flavor, cache_threshold=2)
    with StudyCache.open(server, cache_root) as cache:
        sync(server, cache, request_log)
        upload(loaded, study_maker.many(3, TODAY))
        result = sync(server, cache, request_log)
        assert (result.mode, result.total, result.added) == ("full", 10, 3)
        assert "threshold" in result.reason
        if flavor == "orthanc":
            (listing,) = request_log.listings()  # the whole database, expanded
            assert listing.query["expand"] == [""]
            assert not [r for r in request_log.requests if r.path == "/tools/bulk-content"]
        else:
            listings = [q for q in request_log.qido_studies() if "StudyDate" not in q.query]
            assert listings, "a complete refresh lists every study"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_study_deleted_on_the_server_disappears(
    loaded: OrthancServer,
    flavor: str,
    cache_root: Path,
    request_log: RequestLog,
    sample_studies: SampleSet,
) -> None:
    server = rest_server(loaded, flavor, cache_threshold=5)
    with StudyCache.open(server, cache_root) as cache:
        sync(server, cache, request_log)
        delete_study(loaded, sample_studies.study("ACC0001").study_instance_uid)
        result = sync(server, cache, request_log)
        assert (result.mode, result.removed, result.total) == ("incremental", 1, 6)
        assert "ACC0001" not in accessions(cache)
        if flavor == "orthanc":
            # Orthanc logs no deletion: the count gave it away, identifiers only were listed.
            (ids,) = [r for r in request_log.requests if r.path == "/studies"]
            assert "expand" not in ids.query


def test_orthanc_sees_deletions_of_old_studies_incrementally(
    loaded: OrthancServer, cache_root: Path, request_log: RequestLog, sample_studies: SampleSet
) -> None:
    server = rest_server(loaded, "orthanc", cache_threshold=5)
    with StudyCache.open(server, cache_root) as cache:
        sync(server, cache, request_log)
        delete_study(loaded, sample_studies.study("ACC0006").study_instance_uid)
        result = sync(server, cache, request_log)
        assert (result.mode, result.removed) == ("incremental", 1)
        assert "ACC0006" not in accessions(cache)


def test_dicomweb_sees_old_deletions_at_the_daily_complete_refresh(
    loaded: OrthancServer, cache_root: Path, request_log: RequestLog, sample_studies: SampleSet
) -> None:
    """No changes log in DICOMweb: an old study's deletion is outside the date window."""
    server = rest_server(loaded, "dicomweb", cache_threshold=5)
    with StudyCache.open(server, cache_root) as cache:
        sync(server, cache, request_log)
        delete_study(loaded, sample_studies.study("ACC0006").study_instance_uid)
        assert sync(server, cache, request_log).mode == "unchanged"
        assert "ACC0006" in accessions(cache)
        result = sync(server, cache, request_log, dicomweb_full_after_s=0)
        assert (result.mode, result.removed) == ("full", 1)
        assert "more than a day" in result.reason
        assert "ACC0006" not in accessions(cache)


def test_deletions_count_towards_the_threshold(
    loaded: OrthancServer, cache_root: Path, request_log: RequestLog, sample_studies: SampleSet
) -> None:
    server = rest_server(loaded, "orthanc", cache_threshold=1)
    with StudyCache.open(server, cache_root) as cache:
        sync(server, cache, request_log)
        for accession in ("ACC0004", "ACC0006"):
            delete_study(loaded, sample_studies.study(accession).study_instance_uid)
        result = sync(server, cache, request_log)
        assert (result.mode, result.removed, result.total) == ("full", 2, 5)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_rest_limit_keeps_the_most_recent_studies_and_refills(
    loaded: OrthancServer,
    flavor: str,
    cache_root: Path,
    request_log: RequestLog,
    study_maker: StudyMaker,
) -> None:
    server = rest_server(loaded, flavor, rest_limit=3, cache_threshold=5)
    with StudyCache.open(server, cache_root) as cache:
        first = sync(server, cache, request_log)
        assert (first.mode, first.total, first.cut_off) == ("full", 3, "rest_limit")
        assert accessions(cache) == ["ACC0001", "ACC0003", "ACC0005"]
        # Found with study-date windows sent to the server, the first one open-ended.
        dates = [
            (r.body or {}).get("Query", {}).get("StudyDate") or r.query.get("StudyDate", [""])[0]
            for r in request_log.requests
            if r.path.endswith(("/tools/find", "/dicom-web/studies"))
        ]
        week = (TODAY - dt.timedelta(days=6)).strftime("%Y%m%d")
        assert dates[0] == f"{week}-"
        assert all(d for d in dates), "never a listing of the whole database"

        newest = study_maker.make(TODAY, "235900")
        upload(loaded, [newest])
        result = sync(server, cache, request_log)
        assert (result.mode, result.total, result.cut_off) == ("incremental", 3, "rest_limit")
        assert accessions(cache) == [newest.accession_number, "ACC0001", "ACC0003"]

        delete_study(loaded, newest.study_instance_uid)
        result = sync(server, cache, request_log)
        assert result.mode == "incremental"
        assert accessions(cache) == ["ACC0001", "ACC0003", "ACC0005"]  # refilled from below


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_busy_day_beyond_the_rest_limit_is_no_difference(
    loaded: OrthancServer,
    flavor: str,
    cache_root: Path,
    request_log: RequestLog,
    study_maker: StudyMaker,
) -> None:
    """More studies today than the limit: a refresh with nothing new stays cheap."""
    upload(loaded, [study_maker.make(TODAY, f"{9 + i:02d}0000") for i in range(5)])
    server = rest_server(loaded, flavor, rest_limit=3, cache_threshold=2)
    with StudyCache.open(server, cache_root) as cache:
        assert sync(server, cache, request_log).mode == "full"
        assert [s.study_time for s in cache.studies()] == ["130000", "120000", "110000"]
        again = sync(server, cache, request_log)
        assert (again.mode, again.total, again.cut_off) == ("unchanged", 3, "rest_limit")
        newest = study_maker.make(TODAY, "235000")
        upload(loaded, [newest])
        result = sync(server, cache, request_log)
        assert (result.mode, result.added, result.removed) == ("incremental", 1, 1)
        assert [s.study_time for s in cache.studies()] == ["235000", "130000", "120000"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_rest_limit_above_the_server_count_loads_everything(
    loaded: OrthancServer, flavor: str, cache_root: Path, request_log: RequestLog
) -> None:
    server = rest_server(loaded, flavor, rest_limit=50)
    with StudyCache.open(server, cache_root) as cache:
        result = sync(server, cache, request_log)
        assert (result.total, result.cut_off) == (7, "")
        assert accessions(cache)[-1] == "ACC0007"  # the undated study comes too, last


@pytest.mark.parametrize("flavor", FLAVORS)
def test_date_filter_is_applied_by_the_server(
    loaded: OrthancServer, flavor: str, cache_root: Path, request_log: RequestLog
) -> None:
    server = rest_server(
        loaded, flavor, date_filter="relative", filter_relative_count=30,
        filter_relative_unit="days",
    )  # fmt: skip
    start = (TODAY - dt.timedelta(days=30)).strftime("%Y%m%d")
    with StudyCache.open(server, cache_root) as cache:
        result = sync(server, cache, request_log)
        assert result.ok, result.diagnosis
        assert accessions(cache) == ["ACC0001", "ACC0003", "ACC0005"]
        if flavor == "orthanc":
            (listing,) = request_log.finds(expand=True)
            assert listing.body["Query"] == {"StudyDate": f"{start}-"}
        else:
            assert {q.query["StudyDate"][0] for q in request_log.qido_studies()} == {f"{start}-"}


def test_changed_limit_or_filter_forces_a_complete_refresh(
    loaded: OrthancServer, cache_root: Path, request_log: RequestLog
) -> None:
    server = rest_server(loaded, "orthanc")
    with StudyCache.open(server, cache_root) as cache:
        sync(server, cache, request_log)
        result = sync(server.copy(rest_limit=2), cache, request_log)
        assert (result.mode, result.total) == ("full", 2)
        assert "REST limit or the date filter changed" in result.reason


def test_a_new_orthanc_database_behind_the_same_url_forces_a_complete_refresh(
    loaded: OrthancServer, cache_root: Path, request_log: RequestLog
) -> None:
    server = rest_server(loaded, "orthanc")
    with StudyCache.open(server, cache_root) as cache:
        sync(server, cache, request_log)
        state = cache.state()
        state.change_seq = 10**9  # a position the server's log never reached
        cache.save_state(state)
        result = sync(server, cache, request_log)
        assert (result.mode, result.total) == ("full", 7)
        assert "restarted" in result.reason


@pytest.mark.parametrize("flavor", FLAVORS)
def test_server_down_keeps_the_cache_and_says_why(
    loaded: OrthancServer, flavor: str, cache_root: Path, request_log: RequestLog
) -> None:
    server = rest_server(loaded, flavor)
    with StudyCache.open(server, cache_root) as cache:
        sync(server, cache, request_log)
        before = cache.state()
        loaded.kill()
        result = sync(server, cache, request_log)
        assert not result.ok and result.mode == ""
        assert "refused" in result.diagnosis
        assert result.total == 7 and cache.count() == 7
        assert cache.state().last_sync == before.last_sync


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_password_refresh_is_a_diagnosis(
    loaded: OrthancServer, flavor: str, cache_root: Path, request_log: RequestLog
) -> None:
    server = rest_server(loaded, flavor, rest_password="wrong")
    with StudyCache.open(server, cache_root) as cache:
        result = sync(server, cache, request_log)
        assert not result.ok
        assert "wrong user name or password" in result.diagnosis
        assert cache.count() == 0


@pytest.mark.parametrize("flavor", FLAVORS)
def test_cancel_leaves_the_cache_as_it_was(
    loaded: OrthancServer,
    flavor: str,
    cache_root: Path,
    request_log: RequestLog,
    study_maker: StudyMaker,
) -> None:
    server = rest_server(loaded, flavor)
    with StudyCache.open(server, cache_root) as cache:
        seen: list[Progress] = []

        def stop_at_once(progress: Progress) -> bool:
            seen.append(progress)
            return False

        result = sync(server, cache, request_log, progress=stop_at_once)
        assert (result.ok, result.cancelled) == (False, True)
        assert seen and cache.count() == 0 and not cache.state().last_sync

        sync(server, cache, request_log)
        upload(loaded, study_maker.many(2, TODAY))
        calls = []

        def stop_later(progress: Progress) -> bool:
            calls.append(progress.message)
            return len(calls) < 2

        result = sync(server, cache, request_log, progress=stop_later)
        assert result.cancelled
        assert cache.count() == 7


def test_cache_identity_is_id_type_and_url(tmp_path: Path) -> None:
    server = DicomServer(name="A", rest_url="http://pacs:8042", rest_flavor="orthanc")
    path = cache_path(server, tmp_path)
    assert path.parent == tmp_path / "rest-studies"
    assert cache_path(server.copy(name="Renamed"), tmp_path) == path
    assert cache_path(server.copy(rest_url="http://pacs:8042/"), tmp_path) == path
    assert cache_path(server.copy(rest_url="http://other:8042"), tmp_path) != path
    assert cache_path(server.copy(rest_flavor="dicomweb"), tmp_path) != path
    assert cache_path(server.copy(id="another-server"), tmp_path) != path


def test_changing_the_url_starts_a_new_cache(
    loaded: OrthancServer,
    fresh_orthanc: Callable[..., OrthancServer],
    tmp_path: Path,
    request_log: RequestLog,
) -> None:
    server = rest_server(loaded, "orthanc")
    with StudyCache.open(server, tmp_path) as cache:
        sync(server, cache, request_log)
    other = fresh_orthanc()
    moved = server.copy(rest_url=other.http_url)
    with StudyCache.open(moved, tmp_path) as cache:
        assert cache.count() == 0 and not cache.state().last_sync
    with StudyCache.open(server, tmp_path) as cache:
        assert cache.count() == 7  # the old URL's cache is still there, shown at once


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path) -> None:
    server = DicomServer(rest_url="http://127.0.0.1:8042")
    path = cache_path(server, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with StudyCache.open(server, tmp_path) as cache:
        assert cache.count() == 0


def test_a_cache_written_with_other_record_fields_is_reloaded(tmp_path: Path) -> None:
    import sqlite3

    from DicomServersLib.query_model import StudyRecord
    from DicomServersLib.rest.cache import SyncState

    server = DicomServer(rest_url="http://127.0.0.1:8042")
    with StudyCache.open(server, tmp_path) as cache:
        cache.replace_all([StudyRecord("1.2.3", patient_name="A^B")], SyncState(last_sync="x"))
        assert cache.studies()[0].patient_name == "A^B"
    with sqlite3.connect(cache_path(server, tmp_path)) as conn:
        conn.execute("UPDATE meta SET value='[\"study_uid\", \"gone_field\"]' WHERE key='fields'")
    with StudyCache.open(server, tmp_path) as cache:
        assert cache.count() == 0 and not cache.state().last_sync
