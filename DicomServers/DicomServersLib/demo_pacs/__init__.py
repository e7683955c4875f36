"""The default PACS of the demo: sample studies on a real DICOM server, nothing to install.

``make demo`` opens the DICOM Servers panel and the study browser in a standalone window; this
package gives them a PACS to talk to.

Which server runs (decision)
----------------------------
:func:`start_demo` starts **Orthanc when it is installed** (:class:`~.orthanc.OrthancDemo`:
DIMSE, REST and DICOMweb, authentication with a generated password kept in the in-memory
secret store), **otherwise the embedded PACS** (:class:`~.scp.DemoPacs`: pure Python on
pynetdicom and pydicom, which the module needs anyway, so a pip install is enough). Both
listen on loopback, hold the same samples (:mod:`.samples`: 5 patients, 6 CT and MR studies
with non-ASCII names and one study without a date, 4 worklist items), serve the same worklist
folder, and return a "Demo PACS" server record (the default server) from
``demo_server_record()``.

The embedded PACS is a real, small PACS: C-ECHO; C-STORE into its folder; C-FIND in the Study
Root and Patient Root models at every level with the matching rules of PS3.4 C.2.2.2; C-GET;
C-MOVE to the destinations of an AE title → (host, port) map (0xA801 for an unknown one);
C-CANCEL; Modality Worklist C-FIND from ``*.wl`` files. It is also a test peer.

Use from the standalone window::

    from DicomServersLib.demo_pacs import start_demo

    demo = start_demo("build/demo")       # Orthanc if installed, else the embedded PACS
    server = demo.demo_server_record()    # add it to the registry (the default server)
    ...
    demo.stop()                           # when the window closes

From a terminal (foreground, one log line per association, Ctrl-C stops)::

    python -m DicomServersLib.demo_pacs --port 11112 --aet DEMOPACS --folder build/demo/pacs

Folder layout: see :mod:`.layout`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from types import TracebackType
from typing import Any, Protocol

from DicomServersLib.server import DicomServer

from .index import PacsIndex
from .layout import DemoFolder
from .matching import QueryKeyError
from .orthanc import OrthancDemo, OrthancDemoError, find_orthanc, start_orthanc_demo
from .samples import install_samples, write_samples
from .scp import DEFAULT_AE_TITLE, DEFAULT_MOVE_DESTINATIONS, DEMO_SERVER_NAME, DemoPacs

__all__ = [
    "DEFAULT_AE_TITLE",
    "DEFAULT_MOVE_DESTINATIONS",
    "DEMO_SERVER_NAME",
    "DemoFolder",
    "DemoPacs",
    "DemoServer",
    "OrthancDemo",
    "OrthancDemoError",
    "PacsIndex",
    "QueryKeyError",
    "find_orthanc",
    "install_samples",
    "start_demo",
    "start_orthanc_demo",
    "write_samples",
]


class DemoServer(Protocol):
    """What the standalone window needs of a running demo server."""

    def start(self) -> Any:
        """Start it (no-op when running)."""
        ...

    def stop(self) -> None:
        """Stop it."""
        ...

    def demo_server_record(self, **changes: Any) -> DicomServer:
        """Return the "Demo PACS" server record pointing at it."""
        ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def start_demo(
    folder: str | os.PathLike[str],
    *,
    prefer_orthanc: bool = True,
    reference_date: dt.date | None = None,
    **options: Any,
) -> DemoPacs | OrthancDemo:
    """Start the demo's default PACS: Orthanc when installed, else the embedded PACS.

    Parameters
    ----------
    folder : str or os.PathLike
        The demo folder (samples, worklists, storage; see :mod:`.layout`).
    prefer_orthanc : bool, optional
        Use Orthanc when it is installed (default). False always starts the embedded PACS.
    reference_date : datetime.date, optional
        "Today" of the samples; defaults to today.
    **options
        Keyword arguments for :class:`~.orthanc.OrthancDemo` or :class:`~.scp.DemoPacs`,
        used with the one started (e.g. ``move_destinations``).

    Returns
    -------
    DemoPacs or OrthancDemo
        The running server; call ``stop()`` when done.

    Raises
    ------
    OSError
        The embedded PACS cannot bind its port.

    Notes
    -----
    If Orthanc is installed but fails to start, the embedded PACS is started instead (the
    failure is logged): the demo must open.
    """
    if prefer_orthanc and find_orthanc() is not None:
        orthanc_options = {k: v for k, v in options.items() if k in _ORTHANC_OPTIONS}
        try:
            return start_orthanc_demo(folder, reference_date=reference_date, **orthanc_options)
        except OrthancDemoError as error:
            logging.getLogger(__name__).warning(
                "Orthanc did not start, using the embedded demo PACS: %s", error
            )
    pacs_options = {k: v for k, v in options.items() if k in _PACS_OPTIONS}
    return DemoPacs(folder, reference_date=reference_date, **pacs_options).start()


_ORTHANC_OPTIONS = frozenset(
    {"ae_title", "dicom_port", "http_port", "move_destinations", "secrets", "samples"}
    | {"startup_timeout_s", "request_timeout_s", "binary"}
)
_PACS_OPTIONS = frozenset(
    {"ae_title", "host", "port", "move_destinations", "samples", "timeout_s", "response_delay_s"}
)
