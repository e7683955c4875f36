"""Attribute matching of C-FIND query keys, after PS3.4 C.2.2.2.

One function decides whether a key of a query identifier matches the value an entity holds:

- universal matching (C.2.2.2.3): an empty key matches everything;
- empty value matching (C.2.2.2.8): the key ``""`` (two quotation marks) matches only entities
  whose value is empty;
- single value matching (C.2.2.2.1): equal values; Person Name (PN) values are compared
  without regard to case (the standard leaves this to the SCP), and a PN key also matches one
  component group of a multi-group name (``山田^太郎`` matches ``Yamada^Tarou=山田^太郎``);
- list of UID matching (C.2.2.2.2): a UI key holding several UIDs (``uid1\\uid2``) matches any
  of them;
- wild card matching (C.2.2.2.4): ``*`` (any run of characters) and ``?`` (one character), for
  every VR except dates, times, UIDs, numbers and binary values; a lone ``*`` also matches
  entities without a value, like universal matching;
- range matching (C.2.2.2.5): ``YYYYMMDD-YYYYMMDD``, ``-YYYYMMDD``, ``YYYYMMDD-`` for DA, and the
  same for TM and DT (a ``-`` in a DT key always makes it a range: UTC offsets are not supported
  in DT keys); an entity with no value never matches a range. Date and time are matched
  separately (no combined date-time matching, C.2.2.2.5.1);
- several values in a key (``CT\\MR``, as for Modalities in Study) match when any of them
  matches; an entity holding several values matches when any of its values does.

Sequence matching (C.2.2.2.6) is done by the callers, item by item, with the same function.

Invalid keys (a date range with three parts, a malformed date) raise :class:`QueryKeyError`
naming the attribute and the rule, which the SCP reports as a failure with an Error Comment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

__all__ = ["NO_WILDCARD_VRS", "QueryKeyError", "key_values", "match_key", "value_strings"]

NO_WILDCARD_VRS = frozenset(
    {"DA", "TM", "DT", "UI", "SQ", "IS", "DS", "SS", "US", "SL", "UL", "SV", "UV", "FL", "FD"}
    | {"AT", "OB", "OW", "OF", "OD", "OL", "OV", "UN"}
)
"""VRs whose keys are never matched with wild cards (PS3.4 C.2.2.2.4)."""

RANGE_VRS = frozenset({"DA", "TM", "DT"})
"""VRs matched by range (PS3.4 C.2.2.2.5)."""

EMPTY_VALUE_KEY = '""'
"""The key of empty value matching (PS3.4 C.2.2.2.8)."""

_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")
_DATETIME = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?$")


class QueryKeyError(ValueError):
    """A query key cannot be matched: it breaks the rules of its VR.

    Parameters
    ----------
    keyword : str
        The attribute, e.g. ``StudyDate``.
    reason : str
        What rule it breaks.
    """

    def __init__(self, keyword: str, reason: str) -> None:
        super().__init__(f"{keyword}: {reason}")
        self.keyword = keyword
        self.reason = reason


def value_strings(value: Any) -> list[str]:
    """Return an element value as a list of strings (empty list when it has no value).

    Parameters
    ----------
    value : Any
        A pydicom element value: a string, a PersonName, a number, a MultiValue or None.

    Returns
    -------
    list of str
        One string per value, surrounding spaces and NULs removed; empty values dropped.
    """
    if value is None:
        return []
    if isinstance(value, bytes):
        return []
    if isinstance(value, str):
        items: Sequence[Any] = value.split("\\") if "\\" in value else [value]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = value
    else:
        items = [value]
    result = []
    for item in items:
        text = str(item).strip(" \0") if item is not None else ""
        if text:
            result.append(text)
    return result


def key_values(value: Any) -> list[str]:
    """Return the values of a query key, keeping ``""`` (empty value matching) as it is."""
    return value_strings(value)


@lru_cache(maxsize=512)
def _wildcard(pattern: str, fold_case: bool) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if fold_case else re.DOTALL)


def _check_point(keyword: str, vr: str, text: str) -> None:
    pattern = {"DA": _DATE, "TM": _TIME, "DT": _DATETIME}[vr]
    if not pattern.match(text):
        rule = {
            "DA": "a date is YYYYMMDD",
            "TM": "a time is HH, HHMM, HHMMSS or HHMMSS.FFFFFF",
            "DT": "a date-time is YYYYMMDDHHMMSS.FFFFFF or a leading part of it",
        }[vr]
        raise QueryKeyError(keyword, f"{text!r} is not valid ({rule}; ranges are A-B, -B or A-)")


def _normal_time(text: str) -> str:
    """Drop the colons of old-style times (``10:30``) so they compare as digits."""
    return text.replace(":", "")


def _in_range(keyword: str, vr: str, key: str, value: str) -> bool:
    """Range or single value matching of one DA/TM/DT key against one value."""
    if vr == "TM":
        value = _normal_time(value)
    if "-" in key:
        parts = key.split("-")
        if len(parts) != 2 or (not parts[0] and not parts[1]):
            raise QueryKeyError(keyword, f"{key!r} is not a range (use A-B, -B or A-)")
        low, high = parts
        for bound in (low, high):
            if bound:
                _check_point(keyword, vr, bound)
        # A bound is as precise as it is written: compare the value cut to the bound's length
        # (an upper bound of 10 in TM means "up to 10:59:59.999999").
        if low and value[: len(low)] < low:
            return False
        return not (high and value[: len(high)] > high)
    _check_point(keyword, vr, key)
    if vr == "DA":
        return value == key
    return value[: len(key)] == key


def _match_one(keyword: str, vr: str, key: str, value: str) -> bool:
    if vr in RANGE_VRS:
        return _in_range(keyword, vr, key, value)
    fold = vr == "PN"
    if vr not in NO_WILDCARD_VRS and ("*" in key or "?" in key):
        pattern = _wildcard(key, fold)
        candidates = [value, *value.split("=")] if fold and "=" in value else [value]
        return any(pattern.fullmatch(c) for c in candidates)
    if fold:
        wanted = key.casefold()
        groups = [value, *value.split("=")] if "=" in value else [value]
        return any(g.rstrip("^").casefold() == wanted.rstrip("^") for g in groups)
    return value == key


def match_key(keyword: str, vr: str, key: Any, value: Any) -> bool:
    """Tell whether an entity value matches a query key (PS3.4 C.2.2.2).

    Parameters
    ----------
    keyword : str
        Attribute keyword, for error messages.
    vr : str
        Value Representation of the attribute.
    key : Any
        Value of the key in the query identifier.
    value : Any
        Value the entity holds (None or empty when it has none).

    Returns
    -------
    bool
        True when the entity matches.

    Raises
    ------
    QueryKeyError
        The key is not valid for its VR (e.g. a malformed date range).
    """
    keys = key_values(key)
    if not keys or (keys == ["*"] and vr not in NO_WILDCARD_VRS):
        return True  # universal matching (a lone "*" is one too, C.2.2.2.4)
    values = value_strings(value)
    if keys == [EMPTY_VALUE_KEY]:
        return not values
    if not values:
        # An entity without a value only matches universal and empty value matching; the
        # key is still checked so that a malformed key is reported, not silently unmatched.
        if vr in RANGE_VRS:
            for k in keys:
                _in_range(keyword, vr, k, "0" * 8)
        return False
    if vr == "UI":
        return any(v in keys for v in values)
    return any(_match_one(keyword, vr, k, v) for k in keys for v in values)
