"""Operators' personal-data commands: `onestop keys rotate` (re-wrap every data key with a new
master key) and `onestop retention report|sweep` (README "Personal data")."""

from __future__ import annotations

from pathlib import Path

from application.ports import Clock
from onestop.bootstrap import build_back_office, datastore, load_rule_book
from onestop.settings import Settings, SettingsError


def rotate_master_key(settings: Settings, new_key_file: Path | None) -> dict[str, object]:
    """Re-wrap every data key with a new master key, from ``new_key_file`` (a random key is
    written there if it does not exist) or, without one, a new key that replaces the one in
    ONESTOP_MASTER_KEY_FILE (the old kept as ``<file>.previous``). Events are not touched."""
    import os

    from infrastructure.privacy.keys import MasterKeys, master_key_id, rotate
    from infrastructure.secret_box import new_key, parse_key

    old = MasterKeys(settings.require_master_key(), settings.master_key_previous)
    in_place = new_key_file is None
    target = new_key_file or Path(f"{settings.master_key_file}.new")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_key() + "\n")
    try:
        key = parse_key(target.read_text())
    except ValueError as error:
        raise SettingsError(f"{target}: {error}: a master key is the base64 of 32 random bytes") from None
    app = build_back_office(settings, personal_data=False)
    try:
        rewrapped = rotate(datastore(app), old, key)
    finally:
        app.close()
    if in_place:
        current = settings.master_key_file
        assert current is not None
        current.replace(Path(f"{current}.previous"))
        target.replace(current)
        target = current
    return {"rewrapped": rewrapped, "master_key_id": master_key_id(key), "key_file": str(target),
            "note": "restart every process with the new key; keys made meanwhile under the old one are re-wrapped by running this again"
                    " with ONESTOP_MASTER_KEY_PREVIOUS set to the old key"}


def retention(settings: Settings, *, sweep: bool, clock: Clock | None = None) -> dict[str, object]:
    """People whose every request passed its retention period: listed (``sweep`` False) or
    erased by deleting their keys (``sweep`` True)."""
    from application.erasure import erase_by_index
    from domain.actors import SYSTEM
    from infrastructure.privacy.retention import expired_subjects

    app = build_back_office(settings, clock=clock)
    try:
        found = expired_subjects(datastore(app), app.rules or load_rule_book(settings), app.clock.now())
        erased = []
        if sweep:
            for expired in found:
                basis = (f"retention period passed for {', '.join(expired.services)} (rules file [[retention]]);"
                         " PDPA s.33(1): no longer necessary for the purpose")
                erased.append(erase_by_index(app, expired.subject, basis, SYSTEM, reason="retention"))
        return {"would_erase" if not sweep else "erased": [e.as_dict() for e in found], "count": len(found) if not sweep else len(erased)}
    finally:
        app.close()
