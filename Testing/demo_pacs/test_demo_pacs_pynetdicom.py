"""The embedded demo PACS with pynetdicom clients: statuses, Error Comments, C-CANCEL during
C-FIND and C-GET, C-GET with role selection, C-MOVE to a pynetdicom Storage SCP, refused
stores, and its one log line per association."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pydicom
import pytest
from demo_pacs_helpers import AE_TITLE, series_uid, study_uid
from DicomServersLib.demo_pacs import DemoPacs
from DicomServersLib.demo_pacs.samples import sample_instances
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


@contextmanager
def association(
    pacs: DemoPacs,
    *abstract_syntaxes: str,
    storage_scp: bool = False,
    handlers: list[Any] | None = None,
) -> Iterator[Any]:
    """Open an association to the PACS; with ``storage_scp`` we accept C-STORE (C-GET)."""
    ae = AE(ae_title="PYSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for syntax in abstract_syntaxes:
        ae.add_requested_context(syntax)
    roles = []
    if storage_scp:
        for sop_class in (CT, MR):
            ae.add_requested_context(sop_class)
            roles.append(build_role(sop_class, scp_role=True))
    assoc = ae.associate(
        "127.0.0.1", pacs.port, ae_title=AE_TITLE, ext_neg=roles, evt_handlers=handlers or []
    )
    assert assoc.is_established
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


def identifier(**keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def responses(generator: Iterator[tuple[Dataset, Dataset | None]]) -> list[tuple[int, Any]]:
    return [(int(status.Status), (status, ident)) for status, ident in generator]


def test_find_answers_decode_in_each_character_set(pacs: DemoPacs) -> None:
    query = identifier(
        QueryRetrieveLevel="STUDY", PatientName="*", AccessionNumber="", SpecificCharacterSet=""
    )
    with association(pacs, STUDY_FIND) as assoc:
        result = responses(assoc.send_c_find(query, STUDY_FIND))
    assert result[-1][0] == 0x0000
    names = {str(i.AccessionNumber): str(i.PatientName) for s, (_, i) in result if s == 0xFF00}
    assert names == {
        "DEMO1001": "Doe^Jane",
        "DEMO1002": "Doe^Jane",
        "DEMO1003": "Müller^Jürgen",
        "DEMO1004": "Yamada^Tarou=山田^太郎=やまだ^たろう",
        "DEMO1005": "Παπαδοπούλου^Ελένη",
        "DEMO1006": "Ødegård^Åse",
    }


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # the invalid keys we send
@pytest.mark.parametrize(
    ("sop_class", "keys", "named"),
    [
        (STUDY_FIND, {"QueryRetrieveLevel": "STUDY", "StudyDate": "2024-01-01"}, "StudyDate"),
        (STUDY_FIND, {"QueryRetrieveLevel": "STUDY", "StudyTime": "25h-"}, "StudyTime"),
        (STUDY_FIND, {"QueryRetrieveLevel": "PATIENT", "PatientID": ""}, "QueryRetrieveLevel"),
        (PATIENT_FIND, {"QueryRetrieveLevel": "FRAME"}, "QueryRetrieveLevel"),
        (STUDY_FIND, {"PatientID": ""}, "QueryRetrieveLevel"),
    ],
)
def test_an_invalid_identifier_fails_with_a_comment_naming_the_key(
    pacs: DemoPacs, sop_class: str, keys: dict[str, str], named: str
) -> None:
    with association(pacs, sop_class) as assoc:
        result = responses(assoc.send_c_find(identifier(**keys), sop_class))
    assert [status for status, _ in result] == [0xA900]
    comment = str(result[0][1][0].ErrorComment)
    assert comment.startswith(named + ":")


def test_c_cancel_stops_a_find(slow_pacs: DemoPacs) -> None:
    query = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID="")
    statuses = []
    with association(slow_pacs, STUDY_FIND) as assoc:
        context_id = assoc.accepted_contexts[0].context_id
        for status, _ in assoc.send_c_find(query, STUDY_FIND, msg_id=7):
            statuses.append(int(status.Status))
            if len(statuses) == 1:
                assoc.send_c_cancel(7, context_id)
    assert statuses == [0xFF00, 0xFE00]


def test_c_get_a_series_with_role_selection(pacs: DemoPacs) -> None:
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0x0000

    query = identifier(QueryRetrieveLevel="SERIES", SeriesInstanceUID=series_uid("DEMO1003", 1))
    handlers = [(evt.EVT_C_STORE, on_store)]
    with association(pacs, STUDY_GET, storage_scp=True, handlers=handlers) as assoc:
        result = responses(assoc.send_c_get(query, STUDY_GET))
    final = result[-1][1][0]
    assert int(final.Status) == 0x0000
    assert int(final.NumberOfCompletedSuboperations) == 6
    assert len(received) == 6
    assert {str(ds.PatientName) for ds in received} == {"Müller^Jürgen"}


def test_c_get_patient_root_at_patient_level(pacs: DemoPacs) -> None:
    received: list[str] = []
    handlers = [(evt.EVT_C_STORE, lambda event: received.append(event.dataset.SOPInstanceUID) or 0)]
    query = identifier(QueryRetrieveLevel="PATIENT", PatientID="DEMO-005")
    with association(pacs, PATIENT_GET, storage_scp=True, handlers=handlers) as assoc:
        result = responses(assoc.send_c_get(query, PATIENT_GET))
    assert result[-1][0] == 0x0000
    assert len(received) == 6


def test_a_retrieve_without_its_unique_key_fails_with_a_comment(pacs: DemoPacs) -> None:
    query = identifier(QueryRetrieveLevel="SERIES", Modality="CT")
    with association(pacs, STUDY_GET, storage_scp=True) as assoc:
        result = responses(assoc.send_c_get(query, STUDY_GET))
    assert result[-1][0] == 0xA900
    assert str(result[-1][1][0].ErrorComment).startswith("SeriesInstanceUID:")


def test_c_cancel_stops_a_get(slow_pacs: DemoPacs) -> None:
    received: list[str] = []
    handlers = [(evt.EVT_C_STORE, lambda event: received.append(event.dataset.SOPInstanceUID) or 0)]
    query = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid("DEMO1001"))
    statuses = []
    with association(slow_pacs, STUDY_GET, storage_scp=True, handlers=handlers) as assoc:
        context_id = next(
            cx.context_id for cx in assoc.accepted_contexts if cx.abstract_syntax == STUDY_GET
        )
        for status, _ in assoc.send_c_get(query, STUDY_GET, msg_id=9):
            statuses.append(int(status.Status))
            if len(statuses) == 1:
                assoc.send_c_cancel(9, context_id)
        final = status
    assert statuses[0] == 0xFF00 and statuses[-1] == 0xFE00
    assert len(received) < 16
    assert int(final.NumberOfRemainingSuboperations) == 16 - len(received)


def test_c_move_to_a_pynetdicom_storage_scp(pacs: DemoPacs, pynetdicom_scp_factory) -> None:
    storage = pynetdicom_scp_factory.storage("PYSTORE")
    pacs.add_move_destination("PYSTORE", "127.0.0.1", storage.port)
    try:
        query = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid("DEMO1003"))
        with association(pacs, STUDY_MOVE) as assoc:
            result = responses(assoc.send_c_move(query, "PYSTORE", STUDY_MOVE))
        received = storage.wait_for_datasets(12)
    finally:
        pacs.remove_move_destination("PYSTORE")
    final = result[-1][1][0]
    assert int(final.Status) == 0x0000
    assert int(final.NumberOfCompletedSuboperations) == 12
    assert {ds.StudyInstanceUID for ds in received} == {study_uid("DEMO1003")}


def test_c_move_to_an_unknown_destination_is_a801(pacs: DemoPacs) -> None:
    query = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid("DEMO1001"))
    with association(pacs, STUDY_MOVE) as assoc:
        result = responses(assoc.send_c_move(query, "UNKNOWNAE", STUDY_MOVE))
    assert [status for status, _ in result] == [0xA801]


def test_c_move_to_a_destination_nobody_listens_on_is_a801(pacs: DemoPacs, free_port: int) -> None:
    pacs.add_move_destination("GONE", "127.0.0.1", free_port)
    try:
        query = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid("DEMO1005"))
        with association(pacs, STUDY_MOVE) as assoc:
            result = responses(assoc.send_c_move(query, "GONE", STUDY_MOVE))
    finally:
        pacs.remove_move_destination("GONE")
    assert [status for status, _ in result] == [0xA801]


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # the unsafe UID we send
def test_a_store_with_an_unsafe_uid_is_refused_and_nothing_is_written(
    empty_pacs: DemoPacs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.IGNORE)
    ds = next(iter(sample_instances()))
    ds.StudyInstanceUID = ".."
    with association(empty_pacs, CT) as assoc:
        status = assoc.send_c_store(ds)
    assert int(status.Status) == 0xC000
    assert "StudyInstanceUID" in str(status.ErrorComment)
    assert [p for p in empty_pacs.folder.storage.rglob("*") if p.is_file()] == []
    assert len(empty_pacs.index) == 0


def test_a_stored_instance_is_found_at_once(empty_pacs: DemoPacs) -> None:
    ds = next(iter(sample_instances()))
    with association(empty_pacs, CT, STUDY_FIND) as assoc:
        assert int(assoc.send_c_store(ds).Status) == 0x0000
        query = identifier(QueryRetrieveLevel="IMAGE", SOPInstanceUID=ds.SOPInstanceUID)
        result = responses(assoc.send_c_find(query, STUDY_FIND))
    assert [status for status, _ in result] == [0xFF00, 0x0000]


def test_worklist_find_with_pynetdicom(pacs: DemoPacs) -> None:
    step = Dataset()
    step.ScheduledStationAETitle = ""
    step.ScheduledProcedureStepStartDate = ""
    query = identifier(
        PatientName="wang*", AccessionNumber="", ScheduledProcedureStepSequence=[step]
    )
    with association(pacs, WORKLIST_FIND) as assoc:
        result = responses(assoc.send_c_find(query, WORKLIST_FIND))
    assert [status for status, _ in result] == [0xFF00, 0x0000]
    answer = result[0][1][1]
    assert answer.SpecificCharacterSet == "ISO_IR 192"
    assert str(answer.PatientName) == "Wang^XiaoDong=王^小東"
    assert answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate == "20240614"


def test_each_association_is_logged_in_one_line(
    pacs: DemoPacs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="DicomServersLib.demo_pacs")
    query = identifier(QueryRetrieveLevel="STUDY", PatientName="doe*")
    with association(pacs, STUDY_FIND, "1.2.840.10008.1.1") as assoc:
        assoc.send_c_echo()
        list(assoc.send_c_find(query, STUDY_FIND))
    deadline = time.monotonic() + 5
    lines: list[str] = []
    while time.monotonic() < deadline and not lines:
        lines = [r.getMessage() for r in caplog.records if "PYSCU@127.0.0.1" in r.getMessage()]
        time.sleep(0.02)
    assert len(lines) == 1
    assert "released" in lines[0]
    assert "C-ECHO x1" in lines[0] and "C-FIND x1 (2 answers)" in lines[0]
