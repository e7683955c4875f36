"""The spec's three ways of loading a server's images, as one policy per server.

From the DICOM Servers page of the specification:

- **manual** ("Load DICOM Images Manually"): nothing moves until the user presses Transfer in
  the study/series preview;
- **folder** ("Load DICOM Images from the PACS Folder"): the files are read directly from the
  server's storage folder, with no network transfer (see
  :class:`~DicomServersLib.folder_index.FolderIndex`); selecting a study makes it available at
  once, as there is nothing to download;
- **auto** (neither toggle on): selecting a study retrieves the whole study in the background.

The study browser, the Slicer console and the CLI all ask this module what a selection or a
Transfer press does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .query_model import StudyRecord
from .server import DicomServer
from .transfer_queue import TransferRequest

MODE_AUTO = "auto"
MODE_MANUAL = "manual"
MODE_FOLDER = "folder"

_DESCRIPTIONS = {
    MODE_AUTO: "Selecting a study retrieves it in the background.",
    MODE_MANUAL: "Images are transferred only when you press Transfer.",
    MODE_FOLDER: "Images are read from the PACS storage folder, with no network transfer.",
}


def study_label(study: StudyRecord) -> str:
    """Return how a study is named in the transfer list: patient, date and description."""
    date = study.study_date
    when = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) >= 8 else ""
    parts = [p for p in (study.patient_name.replace("^", " ").strip(), when) if p]
    text = ", ".join(parts) or study.study_uid
    if study.study_description:
        text += f" – {study.study_description}"
    return text


@dataclass(frozen=True)
class LoadingPolicy:
    """What selecting a study and pressing Transfer do for one server.

    Attributes
    ----------
    mode : str
        ``auto``, ``manual`` or ``folder`` (the server's ``load_mode``).
    """

    mode: str

    @classmethod
    def for_server(cls, server: DicomServer) -> LoadingPolicy:
        """Return the policy of a server (an unknown mode counts as ``auto``)."""
        mode = server.load_mode if server.load_mode in _DESCRIPTIONS else MODE_AUTO
        return cls(mode)

    @property
    def retrieves_on_select(self) -> bool:
        """True when selecting a study brings it here without asking (auto and folder)."""
        return self.mode in (MODE_AUTO, MODE_FOLDER)

    @property
    def uses_network(self) -> bool:
        """False in folder mode: the images come from the storage folder."""
        return self.mode != MODE_FOLDER

    @property
    def description(self) -> str:
        """One sentence for the user saying what happens."""
        return _DESCRIPTIONS[self.mode]

    def destination(self, dest: Path, *, in_place: bool) -> Path | None:
        """Return where a request's files go: ``dest``, or None to use the PACS folder's files.

        ``in_place`` is the host's choice (Slicer indexes the PACS folder's files where they
        are; outside Slicer they are linked or copied into ``dest``); it only applies in
        folder mode.
        """
        return None if (self.mode == MODE_FOLDER and in_place) else dest

    def request(
        self,
        server: DicomServer,
        study: StudyRecord,
        dest: Path,
        *,
        series_uids: tuple[str, ...] = (),
        in_place: bool = False,
        tag: object = None,
    ) -> TransferRequest:
        """Return the transfer request for a study (or some of its series)."""
        return TransferRequest(
            server=server,
            study_uid=study.study_uid,
            series_uids=tuple(series_uids),
            dest=self.destination(dest, in_place=in_place),
            label=study_label(study),
            series_count=len(series_uids) if series_uids else study.series_count,
            instance_count=None if series_uids else study.instance_count,
            tag=tag,
        )

    def on_select(
        self, server: DicomServer, study: StudyRecord, dest: Path, *, in_place: bool = False
    ) -> TransferRequest | None:
        """Return what selecting ``study`` queues: the whole study, or None in manual mode."""
        if not self.retrieves_on_select:
            return None
        return self.request(server, study, dest, in_place=in_place)
