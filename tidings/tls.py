"""Local certificate authority for ``tidings serve --tls``.

The official Vonage SDKs only speak https:// to their configured host, so a local gateway needs a
certificate their HTTP clients will trust. We mint a private CA once (users point
REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS at ``ca.pem``) and issue server certificates from it,
re-issuing only the leaf when it expires or the names change so that trust survives.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
# The longest leaf lifetime Apple platforms (and therefore browsers) accept.
SERVER_VALIDITY = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=30)
# Backdate so a client whose clock lags ours does not see a "not yet valid" certificate.
BACKDATE = dt.timedelta(minutes=1)
CA_NAME = "Tidings local CA"

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
# Everything that means "this file is not what we wrote"; such files are regenerated, never trusted.
_BROKEN = (OSError, ValueError, TypeError, UnsupportedAlgorithm, InvalidSignature, x509.ExtensionNotFound)


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path  # PEM, the file users point REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS at
    cert: Path  # server certificate chain PEM (leaf)
    key: Path  # server private key PEM (file mode 0600)


def ensure_local_tls(
    directory: Path,
    hostnames: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
) -> TlsFiles:
    """Create (or reuse) a local CA and a server certificate for ``hostnames``/``ip_addresses``."""
    if not hostnames:
        raise ValueError("at least one hostname is required for the server certificate")
    ips = [ipaddress.ip_address(a) for a in ip_addresses]  # ValueError on typos, before touching disk
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)  # explicit: mkdir's mode is filtered by the umask
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca_key_path = directory / "ca-key.pem"
    now = dt.datetime.now(dt.UTC)

    loaded = _load_ca(files.ca_cert, ca_key_path, now)
    if loaded is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _make_ca(ca_key, now)
        # Key first: if we crash before the cert lands, the key/cert mismatch forces a clean redo.
        _write_atomic(ca_key_path, _key_pem(ca_key), 0o600)
        _write_atomic(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    else:
        ca_cert, ca_key = loaded
        if _server_is_current(files, ca_cert, hostnames, ips, now):
            return files

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _make_server(key, ca_cert, ca_key, hostnames, ips, now)
    _write_atomic(files.key, _key_pem(key), 0o600)
    _write_atomic(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def load_tls_pair(cert: Path, key: Path) -> None:
    """Fail fast if an operator-supplied certificate/key pair is unreadable or mismatched."""
    try:
        certs = x509.load_pem_x509_certificates(cert.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read TLS certificate {cert}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ValueError(f"TLS certificate {cert} is not a PEM certificate") from exc
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except OSError as exc:
        raise ValueError(f"cannot read TLS key {key}: {exc.strerror or exc}") from exc
    except TypeError as exc:  # raised for password-protected keys
        raise ValueError(f"TLS key {key} is encrypted; supply an unencrypted PEM key") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"TLS key {key} is not a PEM private key") from exc
    # The first certificate in a chain file is the leaf, the one the key must belong to.
    if _spki(private.public_key()) != _spki(certs[0].public_key()):
        raise ValueError(f"TLS key {key} does not match the certificate in {cert}")


def _load_ca(
    cert_path: Path, key_path: Path, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except _BROKEN:
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _spki(key.public_key()) != _spki(cert.public_key()):
        return None
    # A CA about to expire would cap every leaf it signs, so treat it like a missing one. The start
    # date is deliberately not checked: a clock stepping back must not silently replace a trusted CA.
    if now + RENEW_BEFORE >= cert.not_valid_after_utc:
        return None
    return cert, key


def _server_is_current(
    files: TlsFiles, ca: x509.Certificate, hostnames: Sequence[str], ips: Sequence[_IP], now: dt.datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
        # Catches a leaf left over from a previous CA (e.g. a crash between the two rewrites).
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except _BROKEN:
        return False
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return False
    if now + RENEW_BEFORE > cert.not_valid_after_utc:
        return False
    # DNS names are case-insensitive; IP addresses compare as values so "::1" == "0:0::1".
    dns = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    return {h.lower() for h in hostnames} <= dns and set(ips) <= set(san.get_values_for_type(x509.IPAddress))


def _make_ca(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    return (
        _builder(name, name, key.public_key(), now, now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _make_server(
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hostnames: Sequence[str],
    ips: Sequence[_IP],
    now: dt.datetime,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [x509.IPAddress(ip) for ip in ips]
    # Never outlive the issuer: some verifiers reject a leaf that does.
    not_after = min(now + SERVER_VALIDITY, ca.not_valid_after_utc)
    return (
        _builder(subject, ca.subject, key.public_key(), now, not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
    )


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _spki(public_key: PublicKeyTypes) -> bytes:
    # Comparing DER SubjectPublicKeyInfo works for every key type without per-algorithm branches.
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # Temp file in the same directory + os.replace: readers (and a crash) see the old file or the
    # new one, never half a key. mkstemp creates it 0600, so key bytes are never world-readable.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
