"""C-ECHO and the deep connection test against real peers, with their diagnoses.

Peers: the rig's Orthanc (``DicomCheckCalledAet`` on), this package's Orthanc that knows our
move destination (:func:`conftest.pacs`), pynetdicom SCPs (a PACS without C-GET, one that
knows no move destination, one that rejects our calling AE), a TCP listener that never
answers, and a port where nothing listens.
"""

from __future__ import annotations

from DicomServersLib.dimse import connection_test
from DicomServersLib.dimse.association import Timeouts
from DicomServersLib.dimse.echo import echo
from DicomServersLib.dimse.outcome import (
    NO_ANSWER,
    NOT_SUPPORTED,
    REFUSED,
    REJECTED,
    STATUS,
)
from DicomServersLib.progress import CancelToken
from dimse_helpers import MOVE_AE, NoGetSCP, datasets_of, fake_pacs, qr_answers, server_for
from rig.orthanc import RemoteModality
from rig.ports import free_port
from rig.scp import FakeQRSCP

FAST = Timeouts(connect_s=2.0, acse_s=1.0, idle_s=2.0)


def test_echo_passes(orthanc) -> None:
    step = echo(server_for(orthanc))
    assert step.ok and step.step == "echo"
    assert step.status == 0x0000 and step.duration_s > 0 and step.diagnosis == ""


def test_wrong_called_ae_title_is_rejected_with_advice(orthanc) -> None:
    step = echo(server_for(orthanc, called_ae_title="NOTORTHANC"))
    assert not step.ok and step.kind == REJECTED
    assert "called AE title not recognised" in step.detail
    assert "'NOTORTHANC'" in step.diagnosis and "AE Title field" in step.diagnosis


def test_unknown_calling_ae_title_asks_to_register_it(pynetdicom_scp_factory) -> None:
    scp = pynetdicom_scp_factory.qr("FAKEPACS", accepted_calling_ae_titles=["KNOWNONLY"])
    step = echo(server_for(scp, calling_ae_title="STRANGER"))
    assert not step.ok and step.kind == REJECTED
    assert "calling AE title not recognised" in step.detail
    assert "Ask the PACS administrator to register calling AE STRANGER" in step.diagnosis


def test_server_down_means_host_port_or_firewall() -> None:
    port = free_port()
    step = echo(server_for(FakeQRSCP("DOWN"), port=port))
    assert not step.ok and step.kind == REFUSED
    assert f"127.0.0.1 port {port}" in step.diagnosis
    assert "Remote IP and Remote port" in step.diagnosis and "firewall" in step.diagnosis


def test_peer_that_never_answers_times_out(pynetdicom_scp_factory) -> None:
    silent = pynetdicom_scp_factory.silent()
    step = echo(server_for(silent), timeouts=FAST)
    assert not step.ok and step.kind == NO_ANSWER
    assert "did not answer the DICOM association request within 1 s" in step.diagnosis
    assert step.duration_s < 5


def test_deep_test_with_c_get(pacs) -> None:
    server = server_for(pacs.orthanc, retrieve_method="c-get")
    result = connection_test.check_connection(server, listen_host="127.0.0.1")
    assert [s.step for s in result.steps] == ["echo", "find", "get"]
    assert result.ok, result.to_dict()
    assert all(step.duration_s > 0 for step in result.steps)


def test_deep_test_with_c_move_proves_the_route_back(pacs) -> None:
    server = server_for(pacs.orthanc, retrieve_method="c-move", storage_port=pacs.storage_port)
    seen = []
    result = connection_test.test_connection(server, listen_host="127.0.0.1", on_step=seen.append)
    assert result.ok, result.to_dict()
    assert [s.step for s in seen] == ["echo", "find", "move"]
    assert result.to_dict()["steps"][2]["status_hex"] == "0x0000"


def test_orthanc_unknown_move_destination_is_diagnosed(pacs) -> None:
    # Orthanc 1.10 answers 0xC000 (not 0xA801) when it does not know the destination.
    server = server_for(
        pacs.orthanc,
        retrieve_method="c-move",
        move_destination_ae_title="NOBODY",
        storage_port=pacs.storage_port,
    )
    result = connection_test.check_connection(server, listen_host="127.0.0.1")
    move = result.steps[2]
    assert not result.ok and not move.ok and move.kind == STATUS and move.status == 0xC000
    assert f"register AE NOBODY at host 127.0.0.1 port {pacs.storage_port}" in move.diagnosis


def test_move_destination_unknown_a801(pynetdicom_scp_factory, sample_studies) -> None:
    study = sample_studies.study("ACC0005")
    scp = fake_pacs(pynetdicom_scp_factory, study, move_destinations={"SOMEONEELSE": 1})
    storage_port = free_port()
    server = server_for(scp, retrieve_method="c-move", storage_port=storage_port)
    result = connection_test.check_connection(server, listen_host="127.0.0.1")
    move = result.steps[2]
    assert move.status == 0xA801 and move.kind == STATUS
    assert move.diagnosis == (
        f"The PACS 'FAKEPACS' at 127.0.0.1 port {scp.port} does not know the move destination"
        f" '{MOVE_AE}'. Ask the PACS administrator to register AE {MOVE_AE} at host 127.0.0.1"
        f" port {storage_port} on the PACS, or switch this server's retrieve method to C-GET."
    )
    assert scp.requests_for("C-MOVE")[0].move_destination == MOVE_AE


def test_c_get_not_accepted_suggests_c_move(pynetdicom_scp_factory, sample_studies) -> None:
    study = sample_studies.study("ACC0005")
    scp = NoGetSCP("NOGET", find_responses=qr_answers([study]), datasets=datasets_of(study))
    pynetdicom_scp_factory._peers.append(scp)
    scp.start()
    result = connection_test.check_connection(server_for(scp, retrieve_method="c-get"))
    get = result.steps[2]
    assert [s.ok for s in result.steps] == [True, True, False]
    assert get.kind == NOT_SUPPORTED
    assert "does not accept C-GET" in get.diagnosis and "C-MOVE" in get.diagnosis
    assert scp.requests_for("C-GET") == []


def test_failed_echo_skips_the_rest(orthanc) -> None:
    result = connection_test.check_connection(server_for(orthanc, called_ae_title="WRONG"))
    assert [(s.step, s.ok, s.skipped) for s in result.steps] == [
        ("echo", False, False),
        ("find", False, True),
        ("get", False, True),
    ]
    assert result.diagnosis == result.steps[0].diagnosis


def test_cancel_stops_after_the_current_step(orthanc) -> None:
    token = CancelToken()
    token.cancel()
    result = connection_test.check_connection(server_for(orthanc), cancel=token)
    assert [s.skipped for s in result.steps] == [False, True, True]
    assert result.steps[1].diagnosis == "not run: cancelled"


def test_deep_test_on_an_empty_pacs(orthanc_factory) -> None:
    port = free_port()
    empty = orthanc_factory(
        modalities={"slicer": RemoteModality(MOVE_AE, port)}, dicomweb=False, worklists=False
    )
    known = server_for(empty, retrieve_method="c-move", storage_port=port)
    result = connection_test.check_connection(known, listen_host="127.0.0.1")
    assert result.ok, result.to_dict()
    assert result.steps[1].diagnosis == "The PACS answered but holds no study."
    assert "C-MOVE could not be tried" in result.steps[2].diagnosis
    get = connection_test.check_connection(known.copy(retrieve_method="c-get"))
    assert get.ok and "could not be tried" in get.steps[2].diagnosis
