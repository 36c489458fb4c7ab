"""A host's certificate folder, as `pamiq certs` writes it, shown to belong together before
`secure:=true` hands it to Fast DDS (pamiq.ros.transport).

    <folder>/ca.crt     the run CA's certificate
    <folder>/host.crt   this host's certificate, signed by that CA
    <folder>/host.key   its private key (0600)
"""

from __future__ import annotations

import datetime
import os
import stat

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

CA_KEY = 'ca.key'
CA_CERT = 'ca.crt'
HOST_KEY = 'host.key'
HOST_CERT = 'host.crt'


class CertificateError(ValueError):
    """A certificate directory that cannot be made or used; the message says which file and why."""


def read_certificate(path: str) -> x509.Certificate:
    try:
        with open(path, 'rb') as stream:
            return x509.load_pem_x509_certificate(stream.read())
    except OSError as error:
        raise CertificateError(f'{path}: {error.strerror}') from None
    except ValueError:
        raise CertificateError(f'{path} is not a PEM certificate') from None


def read_private_key(path: str) -> ec.EllipticCurvePrivateKey:
    try:
        with open(path, 'rb') as stream:
            return serialization.load_pem_private_key(stream.read(), password=None)
    except OSError as error:
        raise CertificateError(f'{path}: {error.strerror}') from None
    except (ValueError, TypeError):
        raise CertificateError(
            f'{path} is not an unencrypted PEM private key (pamiq certs writes one)'
        ) from None


def check_host_certs(folder: str) -> dict[str, str]:
    """The absolute paths of a host folder's CA, certificate and key, once they are shown to
    belong together: the certificate is the CA's, in date, and the key is its key, readable only
    by its owner. Fast DDS itself, given a file it cannot use, logs "using TCP transport
    without security" and goes on (TCPTransportInterface::init), so every such mistake is caught
    here first."""
    folder = os.path.abspath(folder)
    if not os.path.isdir(folder):
        raise CertificateError(
            f'certs:={folder} is not a directory (make one with `pamiq certs <dir> --hosts ...`)'
        )
    paths = {name: os.path.join(folder, name) for name in (CA_CERT, HOST_CERT, HOST_KEY)}
    for path in paths.values():
        if not os.path.isfile(path):
            raise CertificateError(f'{path} is missing (pamiq certs makes {", ".join(paths)})')
    mode = stat.S_IMODE(os.stat(paths[HOST_KEY]).st_mode)
    if mode & 0o077:
        raise CertificateError(
            f'{paths[HOST_KEY]} is readable by others (mode {mode:o}): chmod 600 it'
        )
    ca, cert = read_certificate(paths[CA_CERT]), read_certificate(paths[HOST_CERT])
    key = read_private_key(paths[HOST_KEY])
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError(f'{paths[HOST_CERT]} is not signed by {paths[CA_CERT]}') from None
    now = datetime.datetime.now(datetime.timezone.utc)
    for path, certificate in ((paths[CA_CERT], ca), (paths[HOST_CERT], cert)):
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise CertificateError(
                f'{path} is valid from {certificate.not_valid_before_utc:%Y-%m-%d} '
                f'to {certificate.not_valid_after_utc:%Y-%m-%d}, not now'
            )
    if key.public_key() != cert.public_key():
        raise CertificateError(f'{paths[HOST_KEY]} is not the key of {paths[HOST_CERT]}')
    return {'ca': paths[CA_CERT], 'cert': paths[HOST_CERT], 'key': paths[HOST_KEY]}
