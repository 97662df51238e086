"""Typed config values: Python values to and from the text and ValueType the config
service stores."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Union

from google.protobuf import timestamp_pb2

from ._proto.pharos.config.v1 import config_pb2 as pb

JSONValue = Union[dict[str, Any], list[Any]]
Value = Union[str, int, float, bool, timedelta, dict[str, Any], list[Any]]


class ValueType(str, Enum):
    """How a value's text is read; the server checks values against it."""

    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    JSON = "json"
    DURATION = "duration"

    def to_pb(self) -> pb.ValueType:
        return pb.ValueType.Value(f"VALUE_TYPE_{self.name}")  # type: ignore[return-value]

    @classmethod
    def from_pb(cls, number: int) -> ValueType:
        name = pb.ValueType.Name(number)
        return cls[name.removeprefix("VALUE_TYPE_")] if name != "VALUE_TYPE_UNSPECIFIED" else cls.STRING


def infer_type(value: Value) -> ValueType:
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return ValueType.BOOL
    if isinstance(value, int):
        return ValueType.INT
    if isinstance(value, float):
        return ValueType.FLOAT
    if isinstance(value, timedelta):
        return ValueType.DURATION
    if isinstance(value, (dict, list)):
        return ValueType.JSON
    if isinstance(value, str):
        return ValueType.STRING
    raise TypeError(f"cannot store a {type(value).__name__} as a config value")


def format_duration(value: timedelta) -> str:
    """A timedelta as humantime text, like 1h 30m or 250ms."""
    if value < timedelta(0):
        raise ValueError("durations must not be negative")
    micros = value // timedelta(microseconds=1)
    parts: list[str] = []
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000),
                       ("s", 1_000_000), ("ms", 1_000), ("us", 1)):
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def to_text(value: Value, value_type: ValueType) -> str:
    """The stored text of `value`. A str is taken as the text itself, whatever the type (the
    server checks it)."""
    if isinstance(value, str):
        return value
    if value_type is ValueType.BOOL:
        if not isinstance(value, bool):
            raise TypeError(f"a BOOL value must be a bool, not {type(value).__name__}")
        return "true" if value else "false"
    if value_type is ValueType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"an INT value must be an int, not {type(value).__name__}")
        return str(value)
    if value_type is ValueType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"a FLOAT value must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError("a FLOAT value must be finite")
        return repr(float(value))
    if value_type is ValueType.DURATION:
        if isinstance(value, timedelta):
            return format_duration(value)
        raise TypeError("a DURATION value must be a timedelta or humantime text like 30s")
    if value_type is ValueType.JSON:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    raise TypeError(f"a STRING value must be a str, not {type(value).__name__}")


_UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("nsec", "ns"), 1e-9),
    (("usec", "us", "µs"), 1e-6),
    (("msec", "ms"), 1e-3),
    (("seconds", "second", "secs", "sec", "s"), 1.0),
    (("minutes", "minute", "mins", "min", "m"), 60.0),
    (("hours", "hour", "hrs", "hr", "h"), 3600.0),
    (("days", "day", "d"), 86400.0),
    (("weeks", "week", "w"), 604800.0),
    (("months", "month", "M"), 2_630_016.0),
    (("years", "year", "y"), 31_557_600.0),
):
    for _name in _names:
        _UNITS[_name] = _seconds
_PART = re.compile(r"\s*(\d+)\s*([A-Za-zµ]+)")


def parse_duration(text: str) -> timedelta:
    """humantime text (as the server accepts it: 30s, 5m, 1h30m, 2days 4h) as a timedelta."""
    rest = text.strip()
    if not rest:
        raise ValueError("empty duration")
    total = 0.0
    micros = 0
    while rest:
        match = _PART.match(rest)
        if not match or match.group(2) not in _UNITS:
            raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
        seconds = _UNITS[match.group(2)]
        if seconds < 1:
            micros += int(int(match.group(1)) * seconds * 1e6)
        else:
            total += int(match.group(1)) * seconds
        rest = rest[match.end():].lstrip()
    return timedelta(seconds=total, microseconds=micros)


def from_text(text: str, value_type: ValueType) -> Value:
    if value_type is ValueType.INT:
        return int(text.strip())
    if value_type is ValueType.FLOAT:
        return float(text.strip())
    if value_type is ValueType.BOOL:
        return text.strip() == "true"
    if value_type is ValueType.JSON:
        parsed: Value = json.loads(text)
        return parsed
    if value_type is ValueType.DURATION:
        return parse_duration(text)
    return text


def to_datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    return datetime.fromtimestamp(stamp.seconds, tz=timezone.utc) + timedelta(
        microseconds=stamp.nanos // 1000
    )
