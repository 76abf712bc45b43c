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
        return self._revive(orjson.loads(data))

    def _revive(self, value: Any) -> Any:
        # orjson hands back fresh objects, so they are revived in place.
        if type(value) is dict:
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                return self._decode_obj({"_type_": value["_type_"], "_data_": self._revive(value["_data_"])})
            for key, item in value.items():
                if type(item) is dict or type(item) is list:
                    value[key] = self._revive(item)
            return value
        if type(value) is list:
            for index, item in enumerate(value):
                if type(item) is dict or type(item) is list:
                    value[index] = self._revive(item)
        return value
