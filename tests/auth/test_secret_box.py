"""SecretBox: AES-256-GCM for the secrets Tidings must read back, and its key file."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from tidings.auth.secret_box import SecretBox
from tidings.config import Settings
from tidings.runtime import secret_box

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def flip_byte(token: str, index: int) -> str:
    version, _, body = token.partition(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[index] ^= 0x01
    return f"{version}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"


@pytest.mark.parametrize("plaintext", ["", "s", "sig-" + "x" * 64, "ünïcødé ✓ 👋", "a\x00b"])
def test_round_trip(plaintext: str) -> None:
    box = SecretBox(KEY)
    assert box.open(box.seal(plaintext)) == plaintext


@given(st.text(max_size=200))
def test_round_trip_any_text(plaintext: str) -> None:
    box = SecretBox(KEY)
    assert box.open(box.seal(plaintext)) == plaintext


def test_sealed_form_is_versioned_and_hides_the_plaintext() -> None:
    sealed = SecretBox(KEY).seal("plain-signature-secret")
    assert sealed.startswith("v1:")
    assert "plain-signature-secret" not in sealed
    assert b"plain-signature-secret" not in base64.urlsafe_b64decode(sealed[3:])


def test_every_seal_uses_a_fresh_nonce() -> None:
    box = SecretBox(KEY)
    sealed = {box.seal("same") for _ in range(20)}
    assert len(sealed) == 20
    assert {box.open(token) for token in sealed} == {"same"}


@pytest.mark.parametrize("index", [0, 11, 12, 20, -1], ids=["nonce-start", "nonce-end", "body", "mid", "tag"])
def test_tampered_ciphertext_is_refused(index: int) -> None:
    box = SecretBox(KEY)
    with pytest.raises(InvalidTag):
        box.open(flip_byte(box.seal("signature-secret"), index))


def test_truncated_ciphertext_is_refused() -> None:
    box = SecretBox(KEY)
    version, _, body = box.seal("signature-secret").partition(":")
    raw = base64.urlsafe_b64decode(body)
    with pytest.raises((InvalidTag, ValueError)):
        box.open(f"{version}:{base64.urlsafe_b64encode(raw[:-1]).decode()}")


def test_wrong_key_is_refused() -> None:
    sealed = SecretBox(KEY).seal("signature-secret")
    with pytest.raises(InvalidTag):
        SecretBox(OTHER_KEY).open(sealed)


@pytest.mark.parametrize("version", ["v0", "v2", "", "V1"])
def test_unknown_version_is_refused(version: str) -> None:
    sealed = SecretBox(KEY).seal("signature-secret")
    with pytest.raises(ValueError, match="version"):
        SecretBox(KEY).open(version + sealed[2:])


def test_the_version_is_authenticated() -> None:
    """The version prefix is associated data: the same ciphertext under another label fails."""
    box = SecretBox(KEY)
    _, _, body = box.seal("signature-secret").partition(":")
    nonce_and_sealed = base64.urlsafe_b64decode(body)
    with pytest.raises(InvalidTag):
        AESGCM(KEY).decrypt(nonce_and_sealed[:12], nonce_and_sealed[12:], b"v2")


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(bytes(length))


def test_from_setting_accepts_padded_and_unpadded_urlsafe_base64() -> None:
    padded = base64.urlsafe_b64encode(KEY).decode()
    assert padded.endswith("=")
    sealed = SecretBox.from_setting(padded).seal("x")
    assert SecretBox.from_setting(padded.rstrip("=")).open(sealed) == "x"
    assert SecretBox(KEY).open(sealed) == "x"


def test_from_setting_refuses_a_short_key() -> None:
    with pytest.raises(ValueError):
        SecretBox.from_setting(base64.urlsafe_b64encode(bytes(16)).decode())


# --- the key file --------------------------------------------------------------------------------


def test_key_file_is_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "home" / "nested" / "secret.key"
    SecretBox.from_key_file(path)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.urlsafe_b64decode(path.read_text().strip())) == 32
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret.key"]  # no temporary left behind


def test_key_file_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    sealed = SecretBox.from_key_file(path).seal("signature-secret")
    content = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    again = SecretBox.from_key_file(path)
    assert again.open(sealed) == "signature-secret"
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == mtime


def test_an_existing_key_file_is_used_as_is(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text(base64.urlsafe_b64encode(KEY).decode() + "\n")
    assert SecretBox.from_key_file(path).open(SecretBox(KEY).seal("x")) == "x"


def test_two_homes_get_different_keys(tmp_path: Path) -> None:
    sealed = SecretBox.from_key_file(tmp_path / "a" / "secret.key").seal("x")
    with pytest.raises(InvalidTag):
        SecretBox.from_key_file(tmp_path / "b" / "secret.key").open(sealed)


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    """Several processes on one fresh home (api + worker) must agree on the key, or one of them
    cannot read what the other sealed."""
    for attempt in range(20):
        path = tmp_path / str(attempt) / "secret.key"
        barrier = threading.Barrier(4)
        boxes: list[SecretBox] = []

        def start(
            path: Path = path, barrier: threading.Barrier = barrier, boxes: list[SecretBox] = boxes
        ) -> None:
            barrier.wait()
            boxes.append(SecretBox.from_key_file(path))

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(boxes) == 4
        for sealer in boxes:
            sealed = sealer.seal("shared")
            assert all(opener.open(sealed) == "shared" for opener in boxes)
        assert sorted(p.name for p in path.parent.iterdir()) == ["secret.key"]


def test_runtime_prefers_the_configured_key_over_the_key_file(tmp_path: Path) -> None:
    configured = base64.urlsafe_b64encode(KEY).decode()
    box = secret_box(Settings(home=tmp_path / "home", secret_key=configured))
    assert box.open(SecretBox(KEY).seal("x")) == "x"
    assert not (tmp_path / "home" / "secret.key").exists()


def test_runtime_uses_a_key_file_under_home_when_no_key_is_configured(tmp_path: Path) -> None:
    box = secret_box(Settings(home=tmp_path / "home", secret_key=None))
    path = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert SecretBox.from_key_file(path).open(box.seal("x")) == "x"
