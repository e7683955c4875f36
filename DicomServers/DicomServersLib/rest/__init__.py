"""The PACS REST API: Orthanc's REST API and DICOMweb (QIDO-RS, WADO-RS, STOW-RS).

Modules
-------
session
    The one place that builds a server's ``requests.Session`` (login, timeouts, TLS, pool).
diagnosis
    Plain-language diagnoses of failures (401, 404, certificate, refused, timeout...).
orthanc, dicomweb, multipart
    The two REST clients and the streamed ``multipart/related`` reader and writer.
connection_test
    The REST login step of a server's connection test.
cache, sync
    The cached study list per server and its incremental or complete refresh.
query
    Searching the whole database, capped by the search limit.
retrieve, send
    Retrieving studies and series to disk; sending files (STOW-RS, Orthanc upload).
"""

from DicomServersLib.rest.cache import StudyCache, SyncState
from DicomServersLib.rest.connection_test import RestCheck, check_rest_login
from DicomServersLib.rest.diagnosis import RestError
from DicomServersLib.rest.query import search_series, search_studies
from DicomServersLib.rest.retrieve import retrieve_study
from DicomServersLib.rest.send import send_files
from DicomServersLib.rest.session import build_session
from DicomServersLib.rest.sync import SyncResult, refresh

__all__ = [
    "RestCheck",
    "RestError",
    "StudyCache",
    "SyncResult",
    "SyncState",
    "build_session",
    "check_rest_login",
    "refresh",
    "retrieve_study",
    "search_series",
    "search_studies",
    "send_files",
]
