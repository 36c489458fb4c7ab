"""`pamiq certs`: a run's certificate authority and one key and certificate per host.

`secure:=true` has every host prove itself to every other with a certificate that this CA
signed (TLS over Fast DDS's TCP transport, both sides verified), so a participant with another
CA's certificate, or none, gets no data and cannot inject any.

    <dir>/ca.key            the CA's private key: stays where it was made (it signs new hosts)
    <dir>/ca.crt            the CA's certificate
    <dir>/<host>/ca.crt     \
    <dir>/<host>/host.crt    > what <host> needs: copy the folder there, `certs:=<that folder>`
    <dir>/<host>/host.key   /  (its private key: 0600, its folder 0700)

Keys are ECDSA P-256 (every OpenSSL since 1.0 handles them, the wheels' Fast DDS has 1.1.1);
host certificates allow both TLS roles, since each host both connects and accepts.
"""

from __future__ import annotations

import datetime
import os
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pamiq.ros.host_certs import (
    CA_CERT,
    CA_KEY,
    HOST_CERT,
    HOST_KEY,
    CertificateError,
    read_certificate,
    read_private_key,
)

DEFAULT_DAYS = 365
# A host name is a folder name and a certificate's DNS name: keep it to what both accept.
HOST_NAME = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')


def make_certs(directory: str, hosts: list[str], days: int = DEFAULT_DAYS) -> list[str]:
    """Make (or reuse) the CA in `directory` and a key and certificate for each host.

    An existing CA signs the new hosts (add an actor later with the same command); an existing
    host folder is never overwritten. Returns the host folders made.
    """
    if not hosts:
        raise CertificateError('name at least one host (--hosts trainer actor1 ...)')
    for host in hosts:
        if not HOST_NAME.match(host):
            raise CertificateError(
                f'host name {host!r}: use letters, digits and inner hyphens (a DNS label)'
            )
    if len(set(hosts)) != len(hosts):
        raise CertificateError(f'a host is named twice in {" ".join(hosts)}')
    if days < 1:
        raise CertificateError(f'--days {days}: a certificate must be valid at least one day')
    for host in hosts:
        if os.path.exists(os.path.join(directory, host)):
            raise CertificateError(
                f'{os.path.join(directory, host)} exists: remove it to make that host again'
            )
    os.makedirs(directory, mode=0o700, exist_ok=True)
    ca_key, ca_cert = load_or_make_ca(directory, days)
    made = []
    for host in hosts:
        folder = os.path.join(directory, host)
        os.mkdir(folder, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = host_certificate(host, key, ca_key, ca_cert, days)
        write_private_key(os.path.join(folder, HOST_KEY), key)
        write_certificate(os.path.join(folder, HOST_CERT), cert)
        write_certificate(os.path.join(folder, CA_CERT), ca_cert)
        made.append(folder)
    return made


def load_or_make_ca(
    directory: str, days: int
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_path, cert_path = os.path.join(directory, CA_KEY), os.path.join(directory, CA_CERT)
    if os.path.exists(key_path) or os.path.exists(cert_path):
        key, cert = read_private_key(key_path), read_certificate(cert_path)
        if key.public_key() != cert.public_key():
            raise CertificateError(f'{key_path} is not the key of {cert_path}')
        return key, cert
    key = ec.generate_private_key(ec.SECP256R1())
    name = subject(f'pamiq run CA {os.path.basename(os.path.abspath(directory))}')
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private_key(key_path, key)
    write_certificate(cert_path, cert)
    return key, cert


def host_certificate(
    host: str,
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    days: int,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject(host))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(cert_sign=False), critical=True)
        # Every host is a TLS server (it accepts) and a TLS client (it connects).
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def subject(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'pamiq'),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])  # fmt: skip


def key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def write_private_key(path: str, key: ec.EllipticCurvePrivateKey) -> None:
    """PEM PKCS#8, unencrypted (nodes start unattended), created 0600: never readable by others,
    not even for a moment."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, 'wb') as stream:
        stream.write(data)


def write_certificate(path: str, cert: x509.Certificate) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(descriptor, 'wb') as stream:
        stream.write(cert.public_bytes(serialization.Encoding.PEM))
