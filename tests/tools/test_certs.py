"""`pamiq certs`: a run's CA and host certificates, private keys kept private, and the checks
`secure:=true` makes before Fast DDS (which carries on without a file it cannot use) sees them."""

from __future__ import annotations

import datetime
import os
import shutil
import stat
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pamiq.ros.host_certs import (
    CA_CERT,
    HOST_CERT,
    HOST_KEY,
    CertificateError,
    check_host_certs,
    read_certificate,
    read_private_key,
)
from pamiq.tools.certs import make_certs, write_certificate
from pamiq.tools.cli import main
import pytest


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_each_host_gets_a_key_only_it_can_read_and_a_certificate_of_the_runs_ca(tmp_path):
    directory = tmp_path / 'certs'
    assert main(['certs', str(directory), '--hosts', 'trainer', 'actor1']) == 0
    ca = read_certificate(str(directory / CA_CERT))
    assert mode(directory) == 0o700 and mode(directory / 'ca.key') == 0o600
    for host in ('trainer', 'actor1'):
        folder = directory / host
        assert sorted(os.listdir(folder)) == [CA_CERT, HOST_CERT, HOST_KEY]
        assert mode(folder) == 0o700 and mode(folder / HOST_KEY) == 0o600
        assert mode(folder / HOST_CERT) == 0o644
        cert = read_certificate(str(folder / HOST_CERT))
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string() == f'CN={host},O=pamiq'
        assert read_private_key(str(folder / HOST_KEY)).public_key() == cert.public_key()
        assert check_host_certs(str(folder))['cert'] == str(folder / HOST_CERT)
    if shutil.which('openssl'):  # OpenSSL, as Fast DDS's TLS uses it, agrees
        host_cert = directory / 'actor1' / HOST_CERT
        result = subprocess.run(
            ['openssl', 'verify', '-CAfile', directory / CA_CERT, host_cert],
            capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr


def test_a_host_added_later_is_signed_by_the_same_ca_and_none_is_made_twice(tmp_path):
    directory = str(tmp_path / 'certs')
    make_certs(directory, ['trainer'])
    ca_before = open(os.path.join(directory, CA_CERT), 'rb').read()
    (actor2,) = make_certs(directory, ['actor2'])
    assert open(os.path.join(directory, CA_CERT), 'rb').read() == ca_before
    check_host_certs(actor2)
    with pytest.raises(CertificateError, match='trainer exists'):
        make_certs(directory, ['trainer'])


@pytest.mark.parametrize(
    ('hosts', 'days', 'message'),
    [
        ([], 365, 'at least one host'),
        (['bad/name'], 365, 'DNS label'),
        (['a', 'a'], 365, 'named twice'),
        (['a'], 0, 'at least one day'),
    ],
)
def test_bad_host_lists_are_refused(tmp_path, hosts, days, message):
    with pytest.raises(CertificateError, match=message):
        make_certs(str(tmp_path / 'certs'), hosts, days)


def test_pamiq_certs_says_what_is_wrong_and_exits_2(tmp_path, capsys):
    assert main(['certs', str(tmp_path / 'c'), '--hosts', 'under_score']) == 2
    assert 'DNS label' in capsys.readouterr().err


def test_a_host_folder_that_cannot_prove_the_runs_ca_is_refused_with_the_file(tmp_path):
    (trainer,) = make_certs(str(tmp_path / 'run'), ['trainer'])
    (stranger,) = make_certs(str(tmp_path / 'other'), ['stranger'])
    with pytest.raises(CertificateError, match='is not a directory'):
        check_host_certs(str(tmp_path / 'nowhere'))

    def broken(name: str) -> str:
        folder = tmp_path / name
        shutil.copytree(trainer, folder)
        return str(folder)

    missing = broken('missing')
    os.remove(os.path.join(missing, HOST_KEY))
    with pytest.raises(CertificateError, match=f'{HOST_KEY} is missing'):
        check_host_certs(missing)
    other_ca = broken('other-ca')
    shutil.copy(os.path.join(stranger, HOST_CERT), os.path.join(other_ca, HOST_CERT))
    with pytest.raises(CertificateError, match='is not signed by'):
        check_host_certs(other_ca)
    wrong_key = broken('wrong-key')
    shutil.copy(os.path.join(stranger, HOST_KEY), os.path.join(wrong_key, HOST_KEY))
    with pytest.raises(CertificateError, match='is not the key of'):
        check_host_certs(wrong_key)
    readable = broken('readable')
    os.chmod(os.path.join(readable, HOST_KEY), 0o644)
    with pytest.raises(CertificateError, match='readable by others'):
        check_host_certs(readable)
    garbage = broken('garbage')
    with open(os.path.join(garbage, HOST_CERT), 'w') as stream:
        stream.write('not a certificate')
    with pytest.raises(CertificateError, match='is not a PEM certificate'):
        check_host_certs(garbage)


def test_an_expired_certificate_is_refused(tmp_path):
    (trainer,) = make_certs(str(tmp_path / 'run'), ['trainer'])
    ca_key = read_private_key(str(tmp_path / 'run' / 'ca.key'))
    cert = read_certificate(os.path.join(trainer, HOST_CERT))
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)
    expired = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(past - datetime.timedelta(days=1))
        .not_valid_after(past)
        .sign(ca_key, hashes.SHA256())
    )
    write_certificate(os.path.join(trainer, HOST_CERT), expired)
    with pytest.raises(CertificateError, match='not now'):
        check_host_certs(trainer)
