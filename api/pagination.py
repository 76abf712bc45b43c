"""Keyset pagination, the one way lists page: a cursor this API issued names the last row seen,
the store is asked for one row more than the page, and that extra row says a next page exists."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from api.consistency import wait_for_views
from api.http import decode_cursor, encode_cursor, json_response, next_link, query_int

# (how many rows, after which cursor values or None) -> rows in the list's order
Fetch = Callable[[int, "tuple[Any, ...] | None"], Awaitable[list[dict[str, Any]]]]


def time_and_id(time_field: str, id_field: str) -> Callable[[Mapping[str, Any]], list[Any]]:
    """The cursor values of a list ordered by a timestamp, then an id."""
    return lambda row: [row[time_field].isoformat(), row[id_field]]


async def keyset_page(
    request: web.Request,
    fetch: Fetch,
    cursor_of: Callable[[Mapping[str, Any]], list[Any]],
    *,
    kinds: tuple[str, ...] = ("time", "uuid"),
    default: int = 50,
    most: int = 200,
    from_views: bool = True,
    on_items: Callable[[list[dict[str, Any]]], None] | None = None,
) -> web.Response:
    """``{"items": [...], "next_cursor": ...}`` for ``?limit=`` and ``?cursor=``. ``kinds`` are the
    cursor's element kinds (see ``decode_cursor``); ``from_views`` waits for ``?min_position=``
    first, as every read of the views does; ``on_items`` sees the page before it is answered (the
    access log of who read whose data). Bad input is refused before anything is read. A page with
    a next one carries ``Link: <...>; rel="next"``."""
    limit = query_int(request, "limit", default, 1, most)
    after = decode_cursor(request.query.get("cursor"), kinds)
    if from_views:
        await wait_for_views(request)
    items = await fetch(limit + 1, after)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(cursor_of(items[-1]))
    if on_items is not None:
        on_items(items)
    return json_response({"items": items, "next_cursor": next_cursor}, headers=next_link(request, next_cursor))
