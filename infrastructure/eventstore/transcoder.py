"""The event store's transcoder: the library's JSON format, written and read with orjson.

Stored events keep exactly the format of eventsourcing's JSONTranscoder (typed values as
``{"_type_": ..., "_data_": ...}``, compact separators, UTF-8 unescaped), so the two read each
other's bytes, and for the values events hold the bytes are the same.

Writing: orjson would write a UUID or a datetime natively (as a plain string), losing the type,
so a walk first turns every value of a registered transcoding into its typed form; the result
holds only JSON's own types, which orjson writes exactly as the standard library's encoder does
(the same escapes). Anything the walk is not sure orjson writes byte for byte as the library
(a float, whose exponent orjson writes as ``1e16`` where the library writes ``1e+16``; a
subclass of str, int, dict, list or tuple; a non-string key; an integer beyond 64 bits; an
unregistered type, which the library refuses with its own error) sends the whole value to the
library's encoder instead. Reading: orjson, then typed values revived in place.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, Transcoding

from infrastructure.errors import InfrastructureError

# Values orjson writes as the standard library's encoder does (exact types only).
_PLAIN = frozenset({str, int, bool, type(None)})
# Types the library's encoder writes natively, never through a transcoding (nor their subclasses).
_JSON_NATIVE = (str, int, float, list, tuple, dict)


class _NotPlain(InfrastructureError):
    """A value the walk leaves to the library's encoder (never leaves this module)."""


class OrjsonTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        # The registered transcodings the library's encoder would use (its ``default`` hook is
        # only called for types it cannot write natively).
        self._typed: dict[type, Transcoding] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        if not issubclass(transcoding.type, _JSON_NATIVE):
            self._typed[transcoding.type] = transcoding

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._plain(obj))
        except (_NotPlain, orjson.JSONEncodeError, RecursionError):
            return super().encode(obj)

    def _plain(self, value: Any) -> Any:
        """``value`` with every typed value in its stored form; _NotPlain when the library
        should write it (see the module's docstring)."""
        kind = type(value)
        if kind is dict:
            plain = self._plain
            return {k: v if type(v) in _PLAIN else plain(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            plain = self._plain
            return [v if type(v) in _PLAIN else plain(v) for v in value]
        if kind in _PLAIN:
            return value
        transcoding = self._typed.get(kind)
        if transcoding is None:
            raise _NotPlain(kind.__name__)
        return {"_type_": transcoding.name, "_data_": self._plain(transcoding.encode(value))}

    def decode(self, data: bytes) -> Any:
        value = orjson.loads(data)
        kind = type(value)
        if kind is dict or kind is list:
            return self._revive(value)
        return value

    def revive(self, value: Any) -> Any:
        """A state parsed from JSON (a dict or list, revived in place) with its typed values
        decoded, as ``decode`` returns it: for a caller that parses and changes it first."""
        return self._revive(value)

    def _revive(self, value: Any) -> Any:
        # orjson hands back fresh objects, so they are revived in place, innermost first (as
        # the library's object hook does). A typed value among a container's items is decoded
        # here, without a call per item: most of an event's nested dicts are typed leaves
        # (times, ids).
        if type(value) is dict:
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                return self._typed_value(value)
            for key, item in value.items():
                kind = type(item)
                if kind is dict:
                    value[key] = self._typed_value(item) if len(item) == 2 and "_type_" in item and "_data_" in item else self._revive(item)
                elif kind is list:
                    value[key] = self._revive(item)
            return value
        for index, item in enumerate(value):
            kind = type(item)
            if kind is dict or kind is list:
                value[index] = self._revive(item)
        return value

    def _typed_value(self, value: dict[str, Any]) -> Any:
        data = value["_data_"]
        kind = type(data)
        if kind is dict or kind is list:
            data = self._revive(data)
        transcoding = self.names.get(value["_type_"])  # type: ignore[call-overload]
        if transcoding is None:  # the library's error, naming the type
            return self._decode_obj({"_type_": value["_type_"], "_data_": data})
        return transcoding.decode(data)
