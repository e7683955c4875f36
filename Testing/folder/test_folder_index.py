"""The PACS-folder index: header-only, incremental, and it finds a study's files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from DicomServersLib.folder_index import FolderIndex, retrieve_from_folder
from rig.studies import SampleSet


@pytest.fixture
def pacs_folder(sample_studies: SampleSet, tmp_path: Path) -> Path:
    """A copy of the samples in an Orthanc-like layout: UUID-ish names, no extension."""
    folder = tmp_path / "pacs"
    for number, path in enumerate(sample_studies.paths):
        target = folder / f"{number % 7:02x}" / f"{number:032x}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (folder / "00" / "README").write_text("not dicom")
    return folder


def test_incremental_updates(pacs_folder: Path, tmp_path: Path, sample_studies: SampleSet) -> None:
    count = len(sample_studies.paths)
    with FolderIndex(pacs_folder, tmp_path / "index.sqlite") as index:
        cold = index.update()
        assert (cold.files, cold.read, cold.not_dicom) == (count + 1, count + 1, 1)
        warm = index.update()
        assert (warm.read, warm.unchanged, warm.removed) == (0, count + 1, 0)
        victim = next(p for p in pacs_folder.rglob("*") if p.is_file() and p.name != "README")
        victim.unlink()
        changed = next(p for p in pacs_folder.rglob("*") if p.is_file() and p.name != "README")
        os.utime(changed, ns=(1, 1))
        after = index.update()
        assert (after.read, after.removed) == (1, 1)
    with FolderIndex(pacs_folder, tmp_path / "index.sqlite") as reopened:  # persisted
        assert reopened.update().read == 0


def test_study_lookup_and_listing(
    pacs_folder: Path, tmp_path: Path, sample_studies: SampleSet
) -> None:
    study = sample_studies.studies[0]
    with FolderIndex(pacs_folder, tmp_path / "i.sqlite") as index:
        index.update()
        files = index.study_files(study.study_instance_uid)
        assert len(files) == len(study.paths)
        assert {f.read_bytes() for f in files} == {p.read_bytes() for p in study.paths}
        one_series = study.series[0]
        assert len(
            index.study_files(study.study_instance_uid, [one_series.series_instance_uid])
        ) == len(one_series.paths)
        listed = {s.study_uid: s for s in index.studies()}
        assert set(listed) == {s.study_instance_uid for s in sample_studies.studies}
        assert listed[study.study_instance_uid].instance_count == len(study.paths)
        assert [s.series_uid for s in index.series(study.study_instance_uid)] == sorted(
            (s.series_instance_uid for s in study.series),
            key=lambda uid: next(
                x.series_number for x in study.series if x.series_instance_uid == uid
            ),
        )


def test_retrieve_in_place_and_copy(
    pacs_folder: Path, tmp_path: Path, sample_studies: SampleSet
) -> None:
    study = sample_studies.studies[1]
    index = FolderIndex(pacs_folder, tmp_path / "i.sqlite")
    in_place = retrieve_from_folder(index, study.study_instance_uid)
    assert in_place.ok and all(str(f).startswith(str(pacs_folder)) for f in in_place.files)
    dest = tmp_path / "dest"
    copied = retrieve_from_folder(index, study.study_instance_uid, dest=dest)
    assert copied.ok and copied.received == len(study.paths)
    assert all(f.is_file() and f.parent.parent.parent == dest for f in copied.files)
    again = retrieve_from_folder(index, study.study_instance_uid, dest=dest)
    assert (again.received, again.skipped) == (0, len(study.paths))
    missing = retrieve_from_folder(index, "1.2.3.999")
    assert not missing.ok and "not in the PACS folder" in missing.diagnosis
    index.close()


def test_missing_folder_is_reported(tmp_path: Path) -> None:
    index = FolderIndex(tmp_path / "gone", tmp_path / "i.sqlite")
    result = retrieve_from_folder(index, "1.2.3")
    assert not result.ok and "storage_folder" in result.diagnosis


def test_orthanc_storage_folder_with_orthanc_stopped(
    orthanc_factory, sample_studies: SampleSet, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server = orthanc_factory(preload=sample_studies)
    storage = server.storage_dir
    server.stop()
    study = sample_studies.studies[2]
    with FolderIndex(storage, tmp_path / "o.sqlite") as index:
        result = retrieve_from_folder(index, study.study_instance_uid)
    assert result.ok and len(result.files) == len(study.paths)


def test_folder_written_by_storescp(
    storescp_factory, sample_studies: SampleSet, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    scp = storescp_factory()
    study = sample_studies.studies[0]
    subprocess.run(
        ["storescu", "-aec", scp.ae_title, scp.host, str(scp.port), *map(str, study.paths)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    scp.wait_for_files(len(study.paths))
    with FolderIndex(scp.output_dir, tmp_path / "s.sqlite") as index:
        result = retrieve_from_folder(index, study.study_instance_uid)
    assert result.ok and len(result.files) == len(study.paths)


def test_an_emptied_file_is_not_trusted_on_rerun(
    pacs_folder: Path, tmp_path: Path, sample_studies: SampleSet
) -> None:
    """After a power loss a renamed file can be empty: the rerun fetches it again."""
    study = sample_studies.studies[1]
    index = FolderIndex(pacs_folder, tmp_path / "i.sqlite")
    dest = tmp_path / "dest"
    first = retrieve_from_folder(index, study.study_instance_uid, dest=dest)
    source_bytes = {p: p.read_bytes() for p in pacs_folder.rglob("*") if p.is_file()}
    first.files[0].write_bytes(b"")  # a copy: the PACS's own file is untouched
    assert {p: p.read_bytes() for p in pacs_folder.rglob("*") if p.is_file()} == source_bytes
    again = retrieve_from_folder(index, study.study_instance_uid, dest=dest)
    assert (again.received, again.skipped) == (1, len(study.paths) - 1)
    assert first.files[0].stat().st_size > 132
    index.close()
