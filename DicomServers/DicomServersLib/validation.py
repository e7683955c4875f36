"""Every validation rule of a server record, in one module.

Each ``check_*`` function returns ``(ok, reason)``: the caller decides whether to raise, to
highlight a field or to keep an entry aside. Reasons say the rule in plain words; the
field-level functions (:func:`check_field`, :func:`parse_field`) prefix the field's label and
canonical name, so every message names the field and the rule, e.g.
``AE Title (called_ae_title): at most 16 characters (PS3.5 §6.2), got 17``.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from .server import (
    DATE_FILTERS,
    FIELD_INFO,
    FIELD_NAMES,
    FIELD_TYPES,
    LOAD_MODES,
    RELATIVE_UNITS,
    REST_FLAVORS,
    RETRIEVE_METHODS,
    DicomServer,
)

Check = tuple[bool, str]
OK: Check = (True, "")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
MAX_NAME_LENGTH = 64
MAX_TIMEOUT_S = 3600.0


class ValidationError(ValueError):
    """A change was refused; ``errors`` holds ``(field, message)`` pairs naming field and rule."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__("; ".join(message for _, message in self.errors))


# --- Rules on plain values --------------------------------------------------------------------


def check_ae_title(value: str, *, optional: bool = False) -> Check:
    """Check an Application Entity title (PS3.5 §6.2, VR AE).

    1 to 16 characters of the default character repertoire, no backslash, no control
    characters, not only spaces (leading and trailing spaces are not significant).
    ``optional`` accepts the empty string (the field is not used).
    """
    if not isinstance(value, str):
        return False, "must be text"
    if value == "" and optional:
        return OK
    if value.strip(" ") == "":
        return False, "must not be empty or only spaces (PS3.5 §6.2)"
    if len(value) > 16:
        return False, f"at most 16 characters (PS3.5 §6.2), got {len(value)}"
    if "\\" in value:
        return False, "must not contain a backslash (PS3.5 §6.2)"
    if _CONTROL.search(value):
        return False, "must not contain control characters (PS3.5 §6.2)"
    if not value.isascii():
        return False, "only ASCII characters are allowed (PS3.5 §6.2 default repertoire)"
    return OK


def check_port(value: Any) -> Check:
    """Check a TCP port: an integer from 1 to 65535."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False, "must be a whole number from 1 to 65535"
    if not 1 <= value <= 65535:
        return False, f"must be from 1 to 65535, got {value}"
    return OK


def check_host(value: str) -> Check:
    """Check a host: an IPv4 or IPv6 address (brackets allowed) or a host name (RFC 1123)."""
    if not isinstance(value, str) or not value.strip():
        return False, "must be an IPv4 or IPv6 address or a host name, got an empty value"
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ipaddress.ip_address(text)
        return OK
    except ValueError:
        pass
    if ":" in text:
        return False, f"{value!r} is not a valid IPv6 address"
    if re.fullmatch(r"[0-9.]+", text):
        return False, f"{value!r} is not a valid IPv4 address"
    name = text[:-1] if text.endswith(".") else text
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        return False, (
            f"{value!r} is not a valid host name (letters, digits and hyphens in dot-separated"
            " labels of at most 63 characters)"
        )
    return OK


def check_ip_address(value: str) -> Check:
    """Check a literal IPv4 or IPv6 address (a listener binds exactly this address)."""
    try:
        ipaddress.ip_address(str(value).strip().strip("[]"))
    except ValueError:
        return False, f"must be an IPv4 or IPv6 address such as 127.0.0.1, got {value!r}"
    return OK


def normalize_url(value: str) -> str:
    """Return ``value`` with ``http://`` added to a bare host or IP, and no trailing slash."""
    text = value.strip()
    if text and "://" not in text:
        text = "http://" + text
    return text.rstrip("/")


def check_url(value: str) -> Check:
    """Check a REST URL: http or https with a host (bare hosts are normalised first)."""
    if not isinstance(value, str) or not value.strip():
        return False, "must be an http:// or https:// URL, got an empty value"
    text = normalize_url(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        return False, f"must start with http:// or https://, got {parts.scheme}://"
    if "@" in parts.netloc:
        # Never echo the value: it may hold a password.
        return False, (
            "must not contain a user name or password (user:password@host): put them in PACS"
            " User and PACS Password, where the password is kept in the secret store"
        )
    if not parts.hostname:
        return False, "must name a host, e.g. http://pacs.example.org:8042"
    ok, reason = check_host(parts.hostname)
    if not ok:
        return False, f"host {reason}"
    try:
        parts.port  # noqa: B018 - raises on an invalid port
    except ValueError:
        return False, "has an invalid port (1-65535)"
    if any(c.isspace() for c in text):
        return False, "must not contain spaces"
    return OK


def check_non_negative_int(value: Any) -> Check:
    """Check a limit or threshold: a whole number, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False, "must be a whole number, 0 or more"
    if value < 0:
        return False, f"must be 0 or more, got {value}"
    return OK


def check_positive_int(value: Any) -> Check:
    """Check a count: a whole number, 1 or more."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False, "must be a whole number, 1 or more"
    if value < 1:
        return False, f"must be 1 or more, got {value}"
    return OK


def check_timeout(value: Any) -> Check:
    """Check a timeout in seconds: more than 0 and at most one hour."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False, "must be a number of seconds"
    if not 0 < value <= MAX_TIMEOUT_S:
        return False, f"must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {value:g}"
    return OK


def check_date(value: str, *, optional: bool = False) -> Check:
    """Check a real calendar date written YYYY-MM-DD."""
    if value == "" and optional:
        return OK
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False, f"must be a date written YYYY-MM-DD, got {value!r}"
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return False, f"{value} is not a real calendar date"
    return OK


def check_folder(value: str, *, optional: bool = False) -> Check:
    """Check a folder path: absolute (after ``~`` expansion), no control characters.

    The folder need not exist now (a network share may be unmounted); loading reports it.
    """
    if not isinstance(value, str):
        return False, "must be text"
    if value == "" and optional:
        return OK
    if not value.strip():
        return False, "must be a folder path, got an empty value"
    if _CONTROL.search(value):
        return False, "must not contain control characters"
    if not os.path.isabs(os.path.expanduser(value)):
        return False, f"must be an absolute folder path, got {value!r}"
    return OK


def check_file(value: str, *, optional: bool = False) -> Check:
    """Check a file path (certificate, key, CA bundle): absolute after ``~`` expansion.

    The file need not exist now (it is read when connecting, which reports a missing file).
    """
    if not isinstance(value, str):
        return False, "must be text"
    if value == "" and optional:
        return OK
    if not value.strip():
        return False, "must be a file path, got an empty value"
    if _CONTROL.search(value):
        return False, "must not contain control characters"
    if not os.path.isabs(os.path.expanduser(value)):
        return False, f"must be an absolute file path, got {value!r}"
    return OK


def check_name(value: str) -> Check:
    """Check a server name (trimmed): not empty, at most 64 characters, no control characters."""
    if not isinstance(value, str) or not value.strip():
        return False, "must not be empty"
    if len(value.strip()) > MAX_NAME_LENGTH:
        return False, f"at most {MAX_NAME_LENGTH} characters, got {len(value.strip())}"
    if _CONTROL.search(value):
        return False, "must not contain control characters"
    return OK


def check_choice(value: Any, choices: tuple[str, ...]) -> Check:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        return False, f"must be one of {', '.join(choices)}, got {value!r}"
    return OK


def check_bool(value: Any) -> Check:
    """Check a true/false value."""
    if not isinstance(value, bool):
        return False, "must be true or false"
    return OK


def check_text(value: Any) -> Check:
    """Check free text: no control characters."""
    if not isinstance(value, str):
        return False, "must be text"
    if _CONTROL.search(value):
        return False, "must not contain control characters"
    return OK


# --- Field-level rules ------------------------------------------------------------------------


def _ae(value: Any) -> Check:
    return check_ae_title(value)


def _optional_ae(value: Any) -> Check:
    return check_ae_title(value, optional=True)


def _optional(rule: Callable[[Any], Check]) -> Callable[[Any], Check]:
    def checked(value: Any) -> Check:
        return OK if value == "" else rule(value)

    return checked


#: The rule of each field, applied to its value whatever the toggles say.
FIELD_RULES: dict[str, Callable[[Any], Check]] = {
    "name": check_name,
    "is_default": check_bool,
    "called_ae_title": _ae,
    "host": check_host,
    "port": check_port,
    "calling_ae_title": _ae,
    "retrieve_method": lambda v: check_choice(v, RETRIEVE_METHODS),
    "move_destination_ae_title": _optional_ae,
    "storage_port": check_port,
    "timeout_s": check_timeout,
    "tls_enabled": check_bool,
    "tls_ca_file": lambda v: check_file(v, optional=True),
    "tls_cert_file": lambda v: check_file(v, optional=True),
    "tls_key_file": lambda v: check_file(v, optional=True),
    "tls_verify": check_bool,
    "rest_enabled": check_bool,
    "rest_flavor": lambda v: check_choice(v, REST_FLAVORS),
    "rest_url": _optional(check_url),
    "rest_user": check_text,
    "rest_password": lambda v: (True, "") if isinstance(v, str) else (False, "must be text"),
    "rest_ca_bundle": lambda v: check_file(v, optional=True),
    "rest_limit": check_non_negative_int,
    "search_limit": check_non_negative_int,
    "cache_threshold": check_non_negative_int,
    "load_mode": lambda v: check_choice(v, LOAD_MODES),
    "storage_folder": lambda v: check_folder(v, optional=True),
    "worklist_ae_title": _optional_ae,
    "scheduled_station_ae_title": _optional_ae,
    "notifications_enabled": check_bool,
    "notification_ip": check_ip_address,
    "notification_port": check_port,
    "notification_token": check_text,
    "notifications_auto_retrieve": check_bool,
    "date_filter": lambda v: check_choice(v, DATE_FILTERS),
    "filter_from_date": lambda v: check_date(v, optional=True),
    "filter_relative_count": check_positive_int,
    "filter_relative_unit": lambda v: check_choice(v, RELATIVE_UNITS),
    "id": lambda v: (
        (True, "")
        if isinstance(v, str) and re.fullmatch(r"[0-9A-Za-z_-]{1,64}", v)
        else (False, "must be 1-64 letters, digits, '-' or '_'")
    ),
}


def field_message(field: str, reason: str) -> str:
    """Return ``reason`` prefixed with the field's label and canonical name."""
    info = FIELD_INFO.get(field)
    label = info.label if info else field
    return f"{label} ({field}): {reason}"


def check_field(field: str, value: Any) -> Check:
    """Check one field's value; the reason names the field and the rule."""
    rule = FIELD_RULES.get(field)
    if rule is None:
        return False, f"{field}: unknown field (known: {', '.join(FIELD_NAMES)})"
    ok, reason = rule(value)
    return (True, "") if ok else (False, field_message(field, reason))


def parse_field(field: str, text: Any) -> tuple[Any, str]:
    """Convert text (CLI, form, INI) into a field's value and check it.

    Returns ``(value, "")`` when valid, else ``(None, reason)`` naming the field and the rule.
    Text values are trimmed where spaces are not significant; URLs are normalised.
    """
    kind = FIELD_TYPES.get(field)
    if kind is None:
        return None, f"{field}: unknown field (known: {', '.join(FIELD_NAMES)})"
    value: Any = text
    if isinstance(text, str):
        raw = text.strip()
        if kind is bool:
            if raw.lower() in _TRUE:
                value = True
            elif raw.lower() in _FALSE:
                value = False
            else:
                return None, field_message(field, f"must be true or false, got {text!r}")
        elif kind is int:
            if not re.fullmatch(r"[+-]?\d+", raw):
                return None, field_message(field, f"must be a whole number, got {text!r}")
            value = int(raw)
        elif kind is float:
            try:
                value = float(raw)
            except ValueError:
                return None, field_message(field, f"must be a number, got {text!r}")
        elif field in ("rest_password", "notification_token", "storage_folder", "rest_user"):
            value = text
        elif field == "rest_url":
            value = normalize_url(text)
        else:
            value = raw
    elif kind is float and isinstance(text, int) and not isinstance(text, bool):
        value = float(text)
    ok, reason = check_field(field, value)
    return (value, "") if ok else (None, reason)


def parse_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Parse several fields with :func:`parse_field`; raise one error listing every failure.

    Raises
    ------
    ValidationError
        One ``(field, message)`` pair per invalid field.
    """
    parsed: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for field, text in values.items():
        value, reason = parse_field(field, text)
        if reason:
            errors.append((field, reason))
        else:
            parsed[field] = value
    if errors:
        raise ValidationError(errors)
    return parsed


def check_server(server: DicomServer) -> list[tuple[str, str]]:
    """Check every field and the rules that tie fields together.

    Returns ``(field, message)`` pairs; empty when the server is valid. Fields behind a toggle
    that is off keep their values and are only required once the toggle is on.
    """
    errors: list[tuple[str, str]] = []
    for name in FIELD_NAMES:
        ok, reason = check_field(name, getattr(server, name))
        if not ok:
            errors.append((name, reason))
    failed = {name for name, _ in errors}
    required = [
        (server.rest_enabled is True, "rest_url", "is required while the PACS REST API is on"),
        (server.load_mode == "folder", "storage_folder", "is required to load from the folder"),
        (server.date_filter == "from_date", "filter_from_date", "is required to filter by date"),
        (
            server.retrieve_method == "c-move",
            "move_destination_ae_title",
            "is required for C-MOVE",
        ),
    ]
    for active, name, rule in required:
        if active and name not in failed and getattr(server, name) == "":
            errors.append((name, field_message(name, rule)))
    if server.tls_key_file and not server.tls_cert_file and "tls_key_file" not in failed:
        errors.append(
            (
                "tls_key_file",
                field_message(
                    "tls_key_file", "needs the client certificate (tls_cert_file) it belongs to"
                ),
            )
        )
    return errors


def check_names_unique(names: Iterable[str]) -> list[tuple[str, str]]:
    """Check that names are unique ignoring case and surrounding spaces."""
    seen: set[str] = set()
    errors: list[tuple[str, str]] = []
    for name in names:
        if not isinstance(name, str):
            continue  # check_name reports it
        key = name.strip().casefold()
        if key in seen:
            errors.append(("name", field_message("name", f"{name.strip()!r} is already used")))
        seen.add(key)
    return errors
