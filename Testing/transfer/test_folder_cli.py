"""The CLI's ``query`` and ``retrieve`` follow the folder mode: the storage folder, no network.

The server points at a port where nothing listens; its storage folder holds the sample studies
(as Orthanc or ``storescp`` would have written them). Both commands answer from the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.cli_runner import run
from rig.ports import free_port
from rig.studies import write_sample_studies


def test_cli_query_and_retrieve_read_the_pacs_folder(tmp_path: Path) -> None:
    samples = write_sample_studies(tmp_path / "pacs-folder")
    settings = tmp_path / "DicomServers.ini"
    env = {"DICOMSERVERS_CACHE_DIR": str(tmp_path / "cache")}
    added = run(
        settings,
        "servers",
        "add",
        "--name",
        "Folder PACS",
        "host=127.0.0.1",
        f"port={free_port()}",
        "load_mode=folder",
        f"storage_folder={samples.root}",
        env=env,
    )
    assert added.returncode == 0, added.stderr

    query = run(settings, "query", "Folder PACS", "--patient-name", "Doe*", "--json", env=env)
    assert query.returncode == 0, query.stderr
    studies = json.loads(query.stdout)["studies"]
    assert [s["accession_number"] for s in studies] == ["ACC0007"]

    study = samples.study("ACC0002")
    dest = tmp_path / "dest"
    fetched = run(
        settings,
        "retrieve",
        "Folder PACS",
        study.study_instance_uid,
        "--dest",
        str(dest),
        "--json",
        env=env,
    )
    assert fetched.returncode == 0, fetched.stderr
    result = json.loads(fetched.stdout)
    assert result["method"] == "folder"
    assert result["received"] == len(study.instances)
    stored = {p.stem for p in dest.rglob("*.dcm")}
    assert stored == {i.sop_instance_uid for i in study.instances}
