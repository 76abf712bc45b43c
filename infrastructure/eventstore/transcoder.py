"""The event store's transcoder: the library's JSON format, read with orjson.

Stored events keep exactly the format of eventsourcing's JSONTranscoder (typed values as
``{"_type_": ..., "_data_": ...}``), so the two read each other's bytes; only decoding is
faster, which is what catch-up, rebuild and aggregate loads spend their time on.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder


class OrjsonTranscoder(JSONTranscoder):
    def decode(self, data: bytes) -> Any:
        value = orjson.loads(data)
        kind = type(value)
        if kind is dict or kind is list:
            return self._revive(value)
        return value

    def _revive(self, value: Any) -> Any:
        # orjson hands back fresh objects, so they are revived in place, innermost first (as
        # the library's object hook does). A typed value among a container's items is decoded
        # here, without a call per item: most of an event's nested dicts are typed leaves
        # (times, ids).
        if type(value) is dict:
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                return self._typed(value)
            for key, item in value.items():
                kind = type(item)
                if kind is dict:
                    value[key] = self._typed(item) if len(item) == 2 and "_type_" in item and "_data_" in item else self._revive(item)
                elif kind is list:
                    value[key] = self._revive(item)
            return value
        for index, item in enumerate(value):
            kind = type(item)
            if kind is dict or kind is list:
                value[index] = self._revive(item)
        return value

    def _typed(self, value: dict[str, Any]) -> Any:
        data = value["_data_"]
        kind = type(data)
        if kind is dict or kind is list:
            data = self._revive(data)
        transcoding = self.names.get(value["_type_"])  # type: ignore[call-overload]
        if transcoding is None:  # the library's error, naming the type
            return self._decode_obj({"_type_": value["_type_"], "_data_": data})
        return transcoding.decode(data)
