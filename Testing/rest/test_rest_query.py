"""Searching the whole database over REST: search limit with cut-off, filters, date filter."""

from __future__ import annotations

import datetime as dt

import pytest
from DicomServersLib.date_filters import DateRange
from DicomServersLib.query_model import CUT_OFF_OUR_LIMIT, QueryFilters
from DicomServersLib.rest.query import search_series, search_studies
from rest_helpers import FLAVORS, RequestLog, logged_session, rest_server
from rig.orthanc import OrthancServer
from rig.studies import SampleSet

TODAY = dt.date.today()


def limit_sent(log: RequestLog) -> str:
    (request,) = [r for r in log.requests if r.path.endswith(("/tools/find", "/studies"))]
    if request.body is not None:
        return str(request.body.get("Limit", ""))
    return request.query.get("limit", [""])[0]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_search_everything_most_recent_first(rest_orthanc: OrthancServer, flavor: str) -> None:
    result = search_studies(rest_server(rest_orthanc, flavor))
    assert result.ok, result.diagnosis
    assert [s.accession_number for s in result.studies] == [
        "ACC0001", "ACC0003", "ACC0005", "ACC0002", "ACC0004", "ACC0006", "ACC0007",
    ]  # fmt: skip
    assert (result.cut_off, result.limit) == ("", 1000)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_search_limit_cuts_and_says_so(
    rest_orthanc: OrthancServer, flavor: str, request_log: RequestLog
) -> None:
    server = rest_server(rest_orthanc, flavor, search_limit=3)
    session = logged_session(server, request_log)
    result = search_studies(server, session=session)
    assert len(result.studies) == 3
    assert (result.cut_off, result.limit, result.truncated) == (CUT_OFF_OUR_LIMIT, 3, True)
    assert limit_sent(request_log) == "4"  # one more than the limit tells a cut list apart


@pytest.mark.parametrize("flavor", FLAVORS)
def test_exactly_the_limit_is_not_cut(rest_orthanc: OrthancServer, flavor: str) -> None:
    result = search_studies(rest_server(rest_orthanc, flavor, search_limit=7))
    assert (len(result.studies), result.cut_off) == (7, "")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_zero_is_no_limit_and_filters_limit_wins(rest_orthanc: OrthancServer, flavor: str) -> None:
    server = rest_server(rest_orthanc, flavor, search_limit=0)
    result = search_studies(server)
    assert (len(result.studies), result.cut_off, result.limit) == (7, "", 0)
    result = search_studies(server, QueryFilters(limit=2))
    assert (len(result.studies), result.cut_off) == (2, CUT_OFF_OUR_LIMIT)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_filters_match_on_the_server(rest_orthanc: OrthancServer, flavor: str) -> None:
    server = rest_server(rest_orthanc, flavor)
    by_patient = search_studies(server, QueryFilters(patient_id="DS-P001"))
    assert {s.accession_number for s in by_patient.studies} == {"ACC0001", "ACC0002"}
    by_modality = search_studies(server, QueryFilters(modality="MR"))
    assert {s.accession_number for s in by_modality.studies} == {"ACC0002", "ACC0003", "ACC0006"}
    wildcard = search_studies(
        server, QueryFilters(accession_number="ACC000*", patient_id="DS-P002")
    )
    assert {s.accession_number for s in wildcard.studies} == {"ACC0003", "ACC0004"}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_date_filter_goes_to_the_server(
    rest_orthanc: OrthancServer, flavor: str, request_log: RequestLog
) -> None:
    server = rest_server(
        rest_orthanc, flavor, date_filter="relative", filter_relative_count=2,
        filter_relative_unit="days",
    )  # fmt: skip
    session = logged_session(server, request_log)
    result = search_studies(server, session=session)
    assert {s.accession_number for s in result.studies} == {"ACC0001", "ACC0003"}
    start = (TODAY - dt.timedelta(days=2)).strftime("%Y%m%d")
    (request,) = request_log.requests
    sent = request.body["Query"]["StudyDate"] if request.body else request.query["StudyDate"][0]
    assert sent == f"{start}-"
    # The search's own range replaces the server's filter.
    older = DateRange(TODAY - dt.timedelta(days=50), TODAY - dt.timedelta(days=5))
    result = search_studies(server, QueryFilters(date_range=older))
    assert {s.accession_number for s in result.studies} == {"ACC0002", "ACC0005"}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_series_of_a_study(
    rest_orthanc: OrthancServer, flavor: str, sample_studies: SampleSet
) -> None:
    study = sample_studies.study("ACC0001")
    result = search_series(rest_server(rest_orthanc, flavor), study.study_instance_uid)
    assert result.ok, result.diagnosis
    assert [(s.series_number, s.modality, s.series_description, s.instance_count) for s in
            result.series] == [("1", "CT", "Thorax 5 mm", 4), ("2", "CT", "Lunge 1 mm", 3)]  # fmt: skip
    assert {s.study_uid for s in result.series} == {study.study_instance_uid}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_search_failure_is_a_value(rest_orthanc: OrthancServer, flavor: str) -> None:
    result = search_studies(rest_server(rest_orthanc, flavor, rest_password="wrong"))
    assert not result.ok and result.studies == []
    assert "wrong user name or password" in result.diagnosis
