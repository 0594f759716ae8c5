"""The ephemeral TLS certificate of the HTTP/3 (WebTransport) listener.

A browser can open a WebTransport session to a server with a self-signed certificate by
pinning its hash (``new WebTransport(url, {serverCertificateHashes: [{algorithm: "sha-256",
value}]})``). W3C WebTransport §"custom certificate requirements" only accepts such a
certificate when it is X.509v3, its validity period is at most two weeks, and its key is
ECDSA on secp256r1 (the one algorithm every user agent must support). So the server makes a
fresh one at every start, valid for less than 14 days, and shows its SHA-256.

No I/O and no clock of its own: ``now`` is passed in.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: Lifetime of the certificate. W3C WebTransport caps pinned certificates at two weeks
#: (Chromium rejects 14 days or more); 10 days leaves margin for the back-dating below.
CERT_VALIDITY = datetime.timedelta(days=10)

#: notBefore lies this far in the past, so a client whose clock is a little behind the
#: server's (or that verifies in the same second the certificate was made) accepts it.
CLOCK_SKEW = datetime.timedelta(minutes=1)

#: The names a loopback server is reached by; the client connects to one of them.
DEFAULT_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate and its key, plus what a client needs to pin it."""

    certificate: x509.Certificate
    """The parsed certificate (what aioquic's configuration takes)."""
    private_key: ec.EllipticCurvePrivateKey
    """Its ECDSA P-256 private key."""
    der: bytes
    """The certificate in DER: what is hashed, and what a client trusts."""
    sha256: bytes
    """SHA-256 of :attr:`der`: the ``serverCertificateHashes`` value a browser pins."""

    @property
    def sha256_hex(self) -> str:
        """:attr:`sha256` as lowercase hex (64 characters)."""
        return self.sha256.hex()

    @property
    def not_valid_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc


def _subject_alt_names(names: Sequence[str]) -> list[x509.GeneralName]:
    """IP addresses become IPAddress entries, everything else a DNSName."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def generate_certificate(
    now: datetime.datetime | None = None, names: Sequence[str] = DEFAULT_NAMES
) -> Certificate:
    """A fresh self-signed ECDSA P-256 certificate for ``names``, valid from ``now - 1 min``.

    ``now`` defaults to the current UTC time; pass it in to make the dates deterministic.
    """
    if not names:
        raise ValueError("a certificate needs at least one name")
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now - CLOCK_SKEW + CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return Certificate(certificate, key, der, hashlib.sha256(der).digest())
