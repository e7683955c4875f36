"""DICOM networking (DIMSE): connection test, query, retrieve, send and modality worklist.

Everything a DicomServers server record needs to talk DIMSE to a PACS, as plain functions
returning values (network failures are values with a plain-language diagnosis; misuse raises
:class:`~DicomServersLib.validation.ValidationError`):

- :func:`.echo.echo` and :func:`.connection_test.check_connection` (C-ECHO, C-FIND, C-MOVE or
  C-GET of one image);
- :func:`.query.find_studies`, :func:`.query.find_series`, :func:`.query.list_instances`
  (C-FIND, Study Root);
- :func:`.retrieve.retrieve` (C-GET or C-MOVE to :mod:`.storage_scp`, resumable, cancellable);
- :func:`.send.send` (C-STORE);
- :func:`.worklist.find_worklist` (Modality Worklist C-FIND).

Modules: :mod:`.association` (pynetdicom AEs, timeouts, opening associations),
:mod:`.upper_layer` (a single-threaded DICOM Upper Layer for the bulk paths),
:mod:`.commands` (DIMSE command sets), :mod:`.elements` (fast data set reading, character
sets), :mod:`.find` (C-FIND sessions), :mod:`.contexts` (storage presentation contexts),
:mod:`.instance_store` (atomic writing of received instances), :mod:`.diagnosis` and
:mod:`.outcome` (what went wrong, what to do).
"""
