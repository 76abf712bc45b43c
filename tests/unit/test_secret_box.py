"""Webhook secrets are kept encrypted at rest, with a key from ONESTOP_SECRETS_KEY."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from onestop.runner import _secret
from infrastructure.secret_box import PREFIX, SecretBox, SecretUnreadable, new_key, parse_key
from onestop.settings import Settings, SettingsError
from infrastructure.integrations.signing import new_secret

KEY = parse_key(new_key())
ROOT = Path(__file__).resolve().parents[2]


def test_a_sealed_secret_holds_nothing_of_the_plain_one_and_opens_only_for_its_own_row() -> None:
    box = SecretBox(KEY)
    secret = new_secret()
    stored = box.seal(secret, "webhook_subscriptions/a")
    assert stored.startswith(PREFIX)
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert box.seal(secret, "webhook_subscriptions/a") != stored  # a fresh nonce every time
    assert box.open(stored, "webhook_subscriptions/a") == secret
    with pytest.raises(SecretUnreadable):
        box.open(stored, "webhook_subscriptions/b")
    with pytest.raises(SecretUnreadable):
        SecretBox(parse_key(new_key())).open(stored, "webhook_subscriptions/a")
    tampered = stored[:-2] + ("A" if stored[-2] != "A" else "B") + stored[-1]
    with pytest.raises(SecretUnreadable):
        box.open(tampered, "webhook_subscriptions/a")


def test_a_secret_stored_before_encryption_is_read_as_it_is() -> None:
    secret = new_secret()
    assert SecretBox(KEY).open(secret, "webhook_subscriptions/a") == secret


def test_the_key_is_base64_of_32_bytes_in_either_alphabet_with_or_without_padding() -> None:
    raw = os.urandom(32)
    for written in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
                    base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        assert parse_key(written) == raw
    for bad in ("", "not base64!", base64.b64encode(os.urandom(16)).decode(), base64.b64encode(os.urandom(33)).decode()):
        with pytest.raises(ValueError):
            parse_key(bad)


def test_settings_read_the_key_refuse_a_malformed_one_and_say_what_is_missing() -> None:
    raw = os.urandom(32)
    assert Settings.from_env({"ONESTOP_SECRETS_KEY": base64.b64encode(raw).decode()}).require_secrets_key() == raw
    with pytest.raises(SettingsError, match="ONESTOP_SECRETS_KEY"):
        Settings.from_env({"ONESTOP_SECRETS_KEY": "c2hvcnQ="})
    with pytest.raises(SettingsError, match="ONESTOP_SECRETS_KEY is required"):
        Settings.from_env({}).require_secrets_key()
    assert "secrets_key" not in repr(Settings.from_env({"ONESTOP_SECRETS_KEY": base64.b64encode(raw).decode()}))


def test_onestop_run_keeps_a_generated_key_in_the_data_dir_that_settings_accept(tmp_path: Path) -> None:
    key = _secret(tmp_path, "secrets_key")
    assert (tmp_path / "secrets_key").read_text() == key and (tmp_path / "secrets_key").stat().st_mode & 0o077 == 0
    assert _secret(tmp_path, "secrets_key") == key  # kept, not made again
    assert len(Settings.from_env({"ONESTOP_SECRETS_KEY": key}).require_secrets_key()) == 32


@pytest.mark.parametrize("command", ["api", "webhooks", "worker", "jobs"])
def test_processes_that_create_or_deliver_webhooks_refuse_to_start_without_the_key(command: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONESTOP_")}
    env.update(ONESTOP_DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere", ONESTOP_JWT_SECRET="x" * 40,
               ONESTOP_BROKER_URL="amqp://guest:guest@127.0.0.1:1")
    done = subprocess.run([sys.executable, "-m", "onestop.cli", command], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ONESTOP_SECRETS_KEY is required" in done.stderr
