"""Ed25519 keys for bundles: the national EOC signs, the laptops trust its public key.

Why Ed25519 (``cryptography``, already a dependency for AES PDFs): small keys
that paste into an email or a USB stick's README, fast, deterministic
signatures, no parameters to get wrong. The private key is written with mode
0600 and never overwritten (a lost key means laptops must be given a new
public key; an overwritten one means that silently). A key is known by its id,
the first 16 hex digits of the SHA-256 of its raw public bytes, so a refusal
can say which key signed a bundle and which keys this laptop trusts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from neoc_assistant.errors import InputError

PUBLIC_SUFFIX = ".pub"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(private_path: Path) -> tuple[Path, str]:
    """Write a new private key (0600) to ``private_path`` and its public key beside it (``.pub``);
    returns (the public key's path, its id). An existing file is never overwritten."""
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + PUBLIC_SUFFIX)
    for existing in (private_path, public_path):
        if existing.exists():
            raise InputError(f"{existing} exists: refusing to overwrite a key (laptops may trust it); "
                             "choose another name or move the old one aside")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    os.chmod(private_path, 0o600)  # whatever the umask
    public_path.write_bytes(public_pem)
    return public_path, key_id(key.public_key())


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise InputError(f"cannot read the signing key {path}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path} is not a private key made by `kb keygen` ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path} is not an Ed25519 key (make one with `kb keygen`)")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read the public key {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not a public key made by `kb keygen` ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path} is not an Ed25519 public key")
    return key


def trusted_keys(folder: Path) -> dict[str, Ed25519PublicKey]:
    """Every ``*.pub`` in ``folder`` by key id (a missing folder trusts nobody)."""
    if not folder.is_dir():
        return {}
    keys = {}
    for path in sorted(folder.glob("*" + PUBLIC_SUFFIX)):
        key = load_public(path)
        keys[key_id(key)] = key
    return keys


def install_public_key(source: Path, folder: Path) -> tuple[Path, str]:
    """Copy a public key into the trusted folder under its id; returns (where, id)."""
    key = load_public(source)
    ident = key_id(key)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{ident}{PUBLIC_SUFFIX}"
    target.write_bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return target, ident


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """``signature.json``: the signature over the manifest's exact bytes, and who made it."""
    return json.dumps({"algorithm": "ed25519", "key_id": key_id(key.public_key()),
                       "signature": base64.b64encode(key.sign(manifest)).decode("ascii")}).encode("utf-8")


def verify(manifest: bytes, signature: bytes, trusted: dict[str, Ed25519PublicKey], where: Path) -> str:
    """The id of the trusted key that signed ``manifest``; ``InputError`` otherwise (saying why)."""
    try:
        data = json.loads(signature.decode("utf-8"))
        ident, raw = str(data["key_id"]), base64.b64decode(data["signature"], validate=True)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the bundle's signature is unreadable ({exc}): refused") from exc
    key = trusted.get(ident)
    if key is None:
        known = ", ".join(sorted(trusted)) or "none"
        raise InputError(f"the bundle is signed by key {ident}, which this laptop does not trust (trusted keys in "
                         f"{where}: {known}); install the national EOC's public key with `kb trust KEY.pub` "
                         "if it is theirs; refused")
    try:
        key.verify(raw, manifest)
    except InvalidSignature as exc:
        raise InputError(f"the bundle's signature does not match its manifest (key {ident}): the bundle was "
                         "altered after it was signed; refused") from exc
    return ident
