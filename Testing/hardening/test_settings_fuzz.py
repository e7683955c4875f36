"""Fuzzing the settings loader: it never crashes and never drops a valid entry (issue 8 §5)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from DicomServersLib.ini_settings import IniSettings
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.secret_store import MemorySecretStore
from DicomServersLib.settings_store import KEY_SERVERS, SettingsStore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ae = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\"),
    min_size=1,
    max_size=16,
)
valid_entry = st.fixed_dictionaries(
    {
        "called_ae_title": ae,
        "calling_ae_title": ae,
        "port": st.integers(1, 65535),
        "host": st.sampled_from(["localhost", "10.0.0.1", "::1", "pacs.example.org"]),
        "retrieve_method": st.sampled_from(["c-get", "c-move"]),
        "load_mode": st.sampled_from(["auto", "manual"]),
        "search_limit": st.integers(0, 10**6),
        "filter_relative_count": st.integers(1, 999),
    },
    optional={"future_field": st.integers() | st.text(max_size=5), "date_filter": st.just("none")},
)
json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
invalid_entry = st.one_of(
    json_junk.filter(lambda v: not isinstance(v, dict)),
    st.fixed_dictionaries(
        {"port": st.integers(-10, 0) | st.integers(65536, 10**6) | st.text(max_size=4)}
    ),
    st.fixed_dictionaries({"called_ae_title": st.text(min_size=17, max_size=30)}),
    st.fixed_dictionaries(
        {"retrieve_method": st.text(max_size=6).filter(lambda t: t not in ("c-get", "c-move"))}
    ),
    st.fixed_dictionaries({"timeout_s": st.just("soon") | st.just(-1)}),
    st.dictionaries(
        st.sampled_from(["port", "host", "rest_enabled", "name"]), json_junk, min_size=1, max_size=3
    ),
)


def load(text: str) -> ServerRegistry:
    folder = Path(tempfile.mkdtemp())
    settings_file = IniSettings(folder / "Slicer.ini")
    settings_file.setValue(KEY_SERVERS, text)
    settings_file.sync()
    return ServerRegistry(
        SettingsStore(IniSettings(folder / "Slicer.ini"), MemorySecretStore(values={}))
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), valid_entry, invalid_entry), min_size=0, max_size=8))
def test_valid_entries_survive_any_neighbours(
    entries: list[tuple[bool, dict[str, Any], Any]],
) -> None:
    servers: list[Any] = []
    expected: list[str] = []
    for index, (is_valid, good, bad) in enumerate(entries):
        if is_valid:
            good = {**good, "name": f"Server {index}"}
            servers.append(good)
            expected.append(good["name"])
        else:
            servers.append(bad)
    registry = load(json.dumps({"schema_version": 1, "servers": servers}))
    names = registry.names()
    # Every valid entry is loaded; an invalid dict that happens to be valid is loaded too.
    assert [n for n in names if n in expected] == expected
    kept_aside = len(registry.load_result.rejected)
    assert len(names) + kept_aside == len(servers)
    registry.add("Added after load")  # saving must not lose the rejected entries
    assert registry.store is not None
    again = ServerRegistry(registry.store)
    assert again.names() == [*names, "Added after load"]
    assert len(again.store.rejected) == kept_aside  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_in_the_key_never_crashes(text: str) -> None:
    registry = load(text)
    assert registry.names() == [] or isinstance(registry.names()[0], str)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400), st.integers(0, 2000))
def test_corrupted_ini_bytes_never_crash(noise: bytes, position: int) -> None:
    folder = Path(tempfile.mkdtemp())
    path = folder / "Slicer.ini"
    good = IniSettings(path)
    good.setValue(
        KEY_SERVERS, json.dumps({"schema_version": 1, "servers": [{"name": "A"}, {"name": "B"}]})
    )
    good.setValue("DICOM/ServerNodeCount", 2)
    good.sync()
    data = path.read_bytes()
    position %= len(data) + 1
    path.write_bytes(data[:position] + noise + data[position:])
    damaged = path.read_bytes()
    registry = ServerRegistry(SettingsStore(IniSettings(path), MemorySecretStore(values={})))
    ours_intact = all(line in damaged.split(b"\n") for line in data.split(b"\n")[:2])
    if ours_intact:  # the noise hit someone else's lines: nothing of ours may be lost
        assert registry.names() == ["A", "B"]
    registry.add("C")  # saving keeps every byte of the lines it did not change
    after = path.read_bytes().split(b"\n")
    # Whitespace-only lines are blank lines, which the writer normalises; every other is kept.
    kept = [line for line in damaged.split(b"\n") if line.strip() and b"Servers=" not in line]
    assert all(line in after for line in kept)
