"""``query`` and ``retrieve`` over REST through :mod:`DicomServersLib.dispatch` and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from DicomServersLib import dispatch
from DicomServersLib.query_model import CUT_OFF_OUR_LIMIT, QueryFilters
from DicomServersLib.rest.backend import RestBackend
from DicomServersLib.validation import ValidationError
from rest_helpers import FLAVORS, Cli, add_server, rest_server
from rig.orthanc import OrthancServer
from rig.studies import SampleSet


def test_rest_enabled_servers_go_over_rest(rest_orthanc: OrthancServer, free_port: int) -> None:
    # The DIMSE port leads nowhere: only REST can answer.
    server = rest_server(rest_orthanc, port=free_port, search_limit=3)
    assert isinstance(dispatch.backend_for(server), RestBackend)
    result = dispatch.query_studies(server, QueryFilters())
    assert result.ok, result.diagnosis
    assert (len(result.studies), result.cut_off) == (3, CUT_OFF_OUR_LIMIT)


def test_via_rest_forces_rest_and_needs_a_url(rest_orthanc: OrthancServer) -> None:
    server = rest_server(rest_orthanc, rest_enabled=False)
    assert dispatch.choose_via(server) == "dimse"
    result = dispatch.query_studies(server, QueryFilters(patient_id="DS-P001"), via="rest")
    assert {s.accession_number for s in result.studies} == {"ACC0001", "ACC0002"}
    with pytest.raises(ValidationError, match="rest_url"):
        dispatch.query_studies(server.copy(rest_url=""), via="rest")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_retrieve_several_series_over_rest(
    rest_orthanc: OrthancServer, flavor: str, sample_studies: SampleSet, tmp_path: Path
) -> None:
    study = sample_studies.study("ACC0002")  # two MR series
    wanted = [s.series_instance_uid for s in study.series]
    result = dispatch.retrieve(
        rest_server(rest_orthanc, flavor), study.study_instance_uid, tmp_path, series_uids=wanted
    )
    assert result.ok, result.diagnosis
    assert result.received == len(study.instances)
    assert {p.parent.name for p in result.files} == set(wanted)
    series = dispatch.query_series(rest_server(rest_orthanc, flavor), study.study_instance_uid)
    assert [s.series_uid for s in series.series] == wanted


def test_cli_query_and_retrieve_via_rest(
    cli: Cli,
    fresh_orthanc: Callable[..., OrthancServer],
    sample_studies: SampleSet,
    tmp_path: Path,
) -> None:
    orthanc = fresh_orthanc(preload=sample_studies)
    add_server(cli, orthanc, rest_enabled="false", search_limit="2")
    query = cli("query", "PACS", "--via", "rest", "--all-dates", "--json")
    assert query.returncode == 0, query.stderr
    data = json.loads(query.stdout)
    assert (len(data["studies"]), data["cut_off"]) == (2, "our_limit")

    uid = sample_studies.study("ACC0001").study_instance_uid
    dest = tmp_path / "dest"
    fetched = cli("retrieve", "PACS", uid, "--dest", str(dest), "--via", "rest", "--json")
    assert fetched.returncode == 0, fetched.stderr
    result = json.loads(fetched.stdout)
    assert (result["method"], result["received"]) == ("orthanc-rest", 7)
    again = json.loads(
        cli("retrieve", "PACS", uid, "--dest", str(dest), "--via", "rest", "--json").stdout
    )
    assert (again["received"], again["skipped"]) == (0, 7)
