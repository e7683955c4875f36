"""Modality Worklist C-FIND against Orthanc's worklist plugin and DCMTK's ``wlmscpfs``."""

from __future__ import annotations

import datetime as dt

import pytest
from DicomServersLib.dimse.worklist import find_worklist
from DicomServersLib.validation import ValidationError
from dimse_helpers import server_for
from rig.studies import SAMPLE_PATIENTS
from rig.worklists import make_worklist_item

TODAY = dt.date.today()
TOMORROW = TODAY + dt.timedelta(days=1)
MULLER, _, YAMADA, _, DOE = SAMPLE_PATIENTS


def items(prefix: str, station: str) -> dict[str, object]:
    """Three items: two for ``station`` (today, tomorrow), one for another station today."""
    return {
        f"{prefix}A": make_worklist_item(
            MULLER,
            accession_number=f"{prefix}A",
            scheduled_station_ae_title=station,
            scheduled_date=TODAY,
            step_description="Thorax nativ",
        ),
        f"{prefix}B": make_worklist_item(
            DOE,
            accession_number=f"{prefix}B",
            scheduled_station_ae_title=station,
            scheduled_date=TOMORROW,
            modality="MR",
        ),
        f"{prefix}C": make_worklist_item(
            YAMADA,
            accession_number=f"{prefix}C",
            scheduled_station_ae_title=station + "X",
            scheduled_date=TODAY,
        ),
    }


@pytest.fixture(params=["orthanc", "wlmscpfs"])
def worklist_peer(request, orthanc, wlmscpfs_factory):
    """(server record, accession prefix, station) for each worklist server."""
    if request.param == "orthanc":
        prefix, station = "DSWLO", "DSWLSTATION1"
        for name, item in items(prefix, station).items():
            orthanc.add_worklist(item, name=name)
        server = server_for(
            orthanc, worklist_ae_title="ORTHANC", scheduled_station_ae_title=station
        )
    else:
        prefix, station = "DSWLD", "DSWLSTATION2"
        scp = wlmscpfs_factory("WLMSCP", items=list(items(prefix, station).values()))
        server = server_for(
            scp,
            called_ae_title="PACS",
            worklist_ae_title="WLMSCP",
            scheduled_station_ae_title=station,
        )
    return server, prefix, station


def accessions(result, prefix: str) -> list[str]:
    return sorted(i.accession_number for i in result.items if i.accession_number.startswith(prefix))


def test_today_for_the_scheduled_station(worklist_peer) -> None:
    server, prefix, station = worklist_peer
    result = find_worklist(server)
    assert result.ok, result.diagnosis
    assert accessions(result, prefix) == [f"{prefix}A"]
    item = next(i for i in result.items if i.accession_number == f"{prefix}A")
    assert item.patient_name == MULLER.name and item.patient_id == MULLER.patient_id
    assert (item.scheduled_station_ae_title, item.modality) == (station, "CT")
    assert item.scheduled_date == TODAY.strftime("%Y%m%d")
    assert item.step_description == "Thorax nativ" and item.requested_procedure_id == "RP1"
    assert result.to_dict()["date"] == TODAY.strftime("%Y%m%d")


def test_other_date_and_any_date(worklist_peer) -> None:
    server, prefix, _ = worklist_peer
    assert accessions(find_worklist(server, date=TOMORROW), prefix) == [f"{prefix}B"]
    assert accessions(find_worklist(server, any_date=True), prefix) == [f"{prefix}A", f"{prefix}B"]


def test_every_station_and_non_ascii_names(worklist_peer) -> None:
    server, prefix, _ = worklist_peer
    result = find_worklist(server, station_ae_title="")
    assert accessions(result, prefix) == [f"{prefix}A", f"{prefix}C"]
    names = {i.accession_number: i.patient_name for i in result.items}
    assert names[f"{prefix}C"] == YAMADA.name


def test_wrong_worklist_ae_title_on_wlmscpfs(wlmscpfs_factory) -> None:
    scp = wlmscpfs_factory("WLMSCP")
    result = find_worklist(server_for(scp, worklist_ae_title="NOTWLM"))
    assert not result.ok
    assert "'NOTWLM'" in result.diagnosis and "AE Title field" in result.diagnosis


def test_worklist_ae_defaults_to_the_pacs(orthanc) -> None:
    result = find_worklist(server_for(orthanc, worklist_ae_title=""), station_ae_title="NOSUCH")
    assert result.ok and result.items == []


def test_invalid_station_raises(orthanc) -> None:
    with pytest.raises(ValidationError, match="scheduled_station_ae_title"):
        find_worklist(server_for(orthanc), station_ae_title="A\\B")


def test_worklist_of_a_pacs_without_the_service(pynetdicom_scp_factory) -> None:
    scp = pynetdicom_scp_factory.storage("STOREONLY")
    result = find_worklist(server_for(scp, worklist_ae_title="STOREONLY"))
    assert not result.ok and "does not offer the Modality Worklist service" in result.diagnosis
