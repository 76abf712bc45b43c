"""The namespace of OneStop's name-based (uuid5) ids: the same command gives the same id."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://onestop.example/ids")
