"""Fuzzing the notification listener with at least 100,000 inputs (issue 8 §5).

The validation path (the listener's own ``parse_body`` and ``resolve_server``) gets
``--fuzz-inputs`` bodies (default 100,000; ``DICOMSERVERS_FUZZ_INPUTS`` too), the real HTTP
listener a few thousand whole requests; see :mod:`listener_fuzz` for the generators and the
properties. The longer run is ``bench/fuzz_listener.py --inputs N``.
"""

from __future__ import annotations

import json

import pytest
from DicomServersLib.notifications.listener import parse_body
from listener_fuzz import fuzz_http, fuzz_validation, make_listener, send_raw

HTTP_INPUTS = 3_000


@pytest.mark.slow
def test_validation_path_fuzz(fuzz_inputs: int) -> None:
    report = fuzz_validation(fuzz_inputs, seed=8, time_limit_s=600)
    print(report.line("listener validation fuzz"))
    assert report.failures == []
    assert report.inputs == fuzz_inputs >= 100_000
    assert report.statuses[202] > 0 and report.statuses[400] > 0  # both paths exercised


def test_real_listener_fuzz() -> None:
    report = fuzz_http(HTTP_INPUTS, seed=9)
    print(report.line("listener HTTP fuzz"))
    assert report.failures == []
    assert report.inputs == HTTP_INPUTS


@pytest.mark.parametrize("depth", [1_001, 30_000])
def test_deeply_nested_json_is_refused_not_a_crash(depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    data, reason = parse_body(body)
    assert data is None and reason.startswith("body: not valid UTF-8 JSON")
    listener = make_listener()
    listener.start()
    try:
        request = f"POST /notify HTTP/1.0\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        assert send_raw(listener.address[1], request) == 400
        assert not listener.counts.get("500")
        valid = json.dumps({"kind": "study", "study_uid": "1.2.3", "server": "Other"}).encode()
        request = f"POST /notify HTTP/1.0\r\nContent-Length: {len(valid)}\r\n\r\n".encode()
        assert send_raw(listener.address[1], request + valid) == 202
    finally:
        listener.stop()
