from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tidings.tls import TlsFiles, ensure_local_tls, load_tls_pair


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _verify(files: TlsFiles, subject: DNSName | IPAddress) -> None:
    store = Store([_cert(files.ca_cert)])
    verifier = PolicyBuilder().store(store).build_server_verifier(subject)
    verifier.verify(_cert(files.cert), [])


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    return tmp_path / "home" / "tls"


@pytest.fixture
def files(tls_dir: Path) -> TlsFiles:
    return ensure_local_tls(tls_dir)


def test_creates_files_with_private_modes(tls_dir: Path, files: TlsFiles) -> None:
    assert _mode(tls_dir) == 0o700
    assert sorted(p.name for p in tls_dir.iterdir()) == [
        "ca-key.pem",
        "ca.pem",
        "server-key.pem",
        "server.pem",
    ]
    assert files == TlsFiles(tls_dir / "ca.pem", tls_dir / "server.pem", tls_dir / "server-key.pem")
    assert _mode(tls_dir / "ca-key.pem") == 0o600
    assert _mode(files.key) == 0o600
    assert _mode(files.ca_cert) & 0o077 == 0o044  # public material stays readable for clients


def test_certificate_profile(files: TlsFiles) -> None:
    ca, leaf = _cert(files.ca_cert), _cert(files.cert)
    now = dt.datetime.now(dt.UTC)

    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Tidings local CA"
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert ca.not_valid_after_utc - now > dt.timedelta(days=3640)

    assert leaf.issuer == ca.subject
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]
    )
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert dt.timedelta(days=825) <= lifetime <= dt.timedelta(days=825, minutes=2)
    assert leaf.not_valid_before_utc < now - dt.timedelta(seconds=30)


@pytest.mark.parametrize(
    "subject", [DNSName("localhost"), IPAddress(ipaddress.ip_address("127.0.0.1"))], ids=["dns", "ip"]
)
def test_server_cert_verifies_against_ca(files: TlsFiles, subject: DNSName | IPAddress) -> None:
    _verify(files, subject)


def test_server_cert_does_not_verify_for_other_names(files: TlsFiles) -> None:
    with pytest.raises(VerificationError):
        _verify(files, DNSName("example.com"))


@pytest.fixture
def tls_server(files: TlsFiles) -> Iterator[int]:
    """Serve TLS on 127.0.0.1 with the generated pair, answering b"ok" to each handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.cert, files.key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass  # the untrusting client hangs up mid-handshake

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port: int = listener.getsockname()[1]
    yield port
    stop.set()
    socket.create_connection(("127.0.0.1", port)).close()  # close() alone does not wake accept()
    thread.join(timeout=5)
    listener.close()
    assert not thread.is_alive()


def _fetch(port: int, ctx: ssl.SSLContext, server_hostname: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.recv(2)


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_tls_handshake_trusting_ca(files: TlsFiles, tls_server: int, server_hostname: str) -> None:
    ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    assert ctx.check_hostname
    assert _fetch(tls_server, ctx, server_hostname) == b"ok"


def test_tls_handshake_without_ca_fails(tls_server: int) -> None:
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cadata=_unrelated_ca_pem())  # never the system store: keep the test hermetic
    with pytest.raises(ssl.SSLCertVerificationError):
        _fetch(tls_server, ctx, "localhost")


def test_tls_handshake_wrong_hostname_fails(files: TlsFiles, tls_server: int) -> None:
    ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    with pytest.raises(ssl.SSLCertVerificationError):
        _fetch(tls_server, ctx, "example.com")


def test_second_call_reuses_files(tls_dir: Path, files: TlsFiles) -> None:
    before = _snapshot(tls_dir)
    assert ensure_local_tls(tls_dir) == files
    assert _snapshot(tls_dir) == before


def test_subset_of_names_reuses_files(tls_dir: Path) -> None:
    ensure_local_tls(tls_dir, hostnames=("localhost", "tidings.test"))
    before = _snapshot(tls_dir)
    ensure_local_tls(tls_dir, hostnames=("TIDINGS.test",), ip_addresses=("0:0::1",))
    assert _snapshot(tls_dir) == before


def test_extra_hostname_reissues_server_cert_only(tls_dir: Path, files: TlsFiles) -> None:
    before = _snapshot(tls_dir)
    ensure_local_tls(tls_dir, hostnames=("localhost", "tidings.test"))
    after = _snapshot(tls_dir)

    assert after["ca.pem"] == before["ca.pem"]
    assert after["ca-key.pem"] == before["ca-key.pem"]
    assert after["server.pem"] != before["server.pem"]
    _verify(files, DNSName("tidings.test"))
    _verify(files, DNSName("localhost"))


def test_extra_ip_reissues_server_cert(tls_dir: Path, files: TlsFiles) -> None:
    ensure_local_tls(tls_dir, ip_addresses=("127.0.0.1", "::1", "192.0.2.7"))
    _verify(files, IPAddress(ipaddress.ip_address("192.0.2.7")))


def test_nearly_expired_server_cert_is_renewed(tls_dir: Path, files: TlsFiles) -> None:
    ca_pem = files.ca_cert.read_bytes()
    ca_key = _load_ec_key(tls_dir / "ca-key.pem")
    now = dt.datetime.now(dt.UTC)
    _write_leaf(files, _cert(files.ca_cert), ca_key, now - dt.timedelta(days=800), now + dt.timedelta(days=5))
    _verify(files, DNSName("localhost"))  # the planted cert is otherwise perfectly good

    ensure_local_tls(tls_dir)

    assert files.ca_cert.read_bytes() == ca_pem
    assert _cert(files.cert).not_valid_after_utc > now + dt.timedelta(days=800)
    _verify(files, DNSName("localhost"))
    load_tls_pair(files.cert, files.key)


def test_leaf_from_another_ca_is_replaced(tls_dir: Path, files: TlsFiles) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _self_signed(other_key, "Someone else")
    now = dt.datetime.now(dt.UTC)
    _write_leaf(files, other_ca, other_key, now, now + dt.timedelta(days=400))

    ensure_local_tls(tls_dir)

    _verify(files, DNSName("localhost"))


def test_mismatched_server_key_is_replaced(tls_dir: Path, files: TlsFiles) -> None:
    files.key.write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1())))
    ensure_local_tls(tls_dir)
    load_tls_pair(files.cert, files.key)


@pytest.mark.parametrize(
    "damage", ["delete-ca", "garbage-ca", "delete-ca-key", "foreign-ca-key", "expired-ca"]
)
def test_broken_ca_regenerates_everything(tls_dir: Path, files: TlsFiles, damage: str) -> None:
    ca_key_path = tls_dir / "ca-key.pem"
    before = _snapshot(tls_dir)
    if damage == "delete-ca":
        files.ca_cert.unlink()
    elif damage == "garbage-ca":
        files.ca_cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    elif damage == "delete-ca-key":
        ca_key_path.unlink()
    elif damage == "foreign-ca-key":
        ca_key_path.write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1())))
    else:  # same key and name, so the existing leaf still chains to it, but past its end date
        now = dt.datetime.now(dt.UTC)
        expired = _self_signed(_load_ec_key(ca_key_path), "Tidings local CA", now - dt.timedelta(days=1))
        files.ca_cert.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    damaged = _snapshot(tls_dir)

    ensure_local_tls(tls_dir)

    after = _snapshot(tls_dir)
    assert set(after) == set(before)
    for name in ("ca.pem", "ca-key.pem", "server.pem"):
        assert after[name] not in (before[name], damaged.get(name))
    load_tls_pair(files.ca_cert, ca_key_path)  # the new CA key belongs to the new CA cert
    _verify(files, DNSName("localhost"))
    assert _mode(ca_key_path) == 0o600


def test_invalid_ip_is_rejected(tls_dir: Path) -> None:
    with pytest.raises(ValueError):
        ensure_local_tls(tls_dir, ip_addresses=("localhost",))
    assert not tls_dir.exists()


def test_load_tls_pair_accepts_generated_pair(files: TlsFiles) -> None:
    load_tls_pair(files.cert, files.key)


def test_load_tls_pair_rejects_mismatched_key(tls_dir: Path, files: TlsFiles) -> None:
    with pytest.raises(ValueError, match="does not match"):
        load_tls_pair(files.cert, tls_dir / "ca-key.pem")


def test_load_tls_pair_rejects_garbage(tmp_path: Path, files: TlsFiles) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not PEM\n")
    with pytest.raises(ValueError, match="not a PEM certificate"):
        load_tls_pair(garbage, files.key)
    with pytest.raises(ValueError, match="not a PEM private key"):
        load_tls_pair(files.cert, garbage)
    with pytest.raises(ValueError, match="not a PEM private key"):
        load_tls_pair(files.cert, files.cert)  # a certificate where the key should be


def test_load_tls_pair_rejects_missing_and_encrypted(tmp_path: Path, files: TlsFiles) -> None:
    with pytest.raises(ValueError, match="cannot read TLS certificate"):
        load_tls_pair(tmp_path / "missing.pem", files.key)
    with pytest.raises(ValueError, match="cannot read TLS key"):
        load_tls_pair(files.cert, tmp_path / "missing.pem")
    encrypted = tmp_path / "encrypted.pem"
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ValueError, match="encrypted"):
        load_tls_pair(files.cert, encrypted)


# --- helpers that build certificates independently of tidings.tls ---


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _self_signed(
    key: ec.EllipticCurvePrivateKey, cn: str, not_after: dt.datetime | None = None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    not_after = not_after or now + dt.timedelta(days=30)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )


def _unrelated_ca_pem() -> str:
    cert = _self_signed(ec.generate_private_key(ec.SECP256R1()), "Unrelated CA")
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _write_leaf(
    files: TlsFiles,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> None:
    """Plant a standards-conforming localhost leaf with the given validity window."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(aki, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files.key.write_bytes(_key_pem(key))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
