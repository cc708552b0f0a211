"""Certificates for TLS tests, made with the openssl command (no Python crypto package is a
dependency): a private CA, a server certificate it signs for 127.0.0.1, one it signs for another
name, and a self-signed one for that name, as an impostor would present."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    ca: Path  # the private CA's certificate (PEM): what a ca_file option would name
    server: tuple[Path, Path]  # certificate and key for IP 127.0.0.1, signed by the CA
    other_name: tuple[Path, Path]  # signed by the CA, for attacker.invalid
    self_signed: tuple[Path, Path]  # CN=attacker.invalid, signed by itself

    def server_context(self, which: tuple[Path, Path]) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*which)
        return context


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _signed(folder: Path, name: str, san: str, ca: Path, ca_key: Path) -> tuple[Path, Path]:
    key, csr, cert, ext = (folder / f"{name}.{s}" for s in ("key", "csr", "pem", "ext"))
    _openssl("req", *EC, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    ext.write_text(
        f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-out", str(cert), "-extfile", str(ext))  # fmt: skip
    return cert, key


def make_pki(folder: Path) -> Pki:
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    _openssl("req", "-x509", *EC, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
             "-subj", "/CN=cubehook test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    rogue, rogue_key = folder / "rogue.pem", folder / "rogue.key"
    _openssl("req", "-x509", *EC, "-keyout", str(rogue_key), "-out", str(rogue), "-days", "2",
             "-subj", "/CN=attacker.invalid")  # fmt: skip
    return Pki(
        ca=ca,
        server=_signed(folder, "server", "IP:127.0.0.1", ca, ca_key),
        other_name=_signed(folder, "attacker.invalid", "DNS:attacker.invalid", ca, ca_key),
        self_signed=(rogue, rogue_key),
    )
