"""Signing keys: generating an elliptic-curve key pair and reading keys back.

Keys are ECDSA P-256 in PEM, the kind OpenSSF `model-signing` signs with offline (keyless
Sigstore signing needs a network). The private key is written unencrypted with mode 0600,
like an SSH key; the public key is what a team commits and lists under
`models.NAME.trusted_keys`.

A key is named by its *key id*: the BLAKE3 hex digest of the public key in canonical PEM
(SubjectPublicKeyInfo, as `cryptography` writes it). Canonical, so that the same key read
from files that differ only in line endings has one id; BLAKE3, so that the id is also the
address of the public key in the blob store and a stored signature finds its key by id.

`cryptography` arrives with the `signing` extra; it is imported only inside functions, and
its absence is an error that says how to install it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.errors import InputError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

SIGNING_EXTRA = "pip install 'seaway[signing]'"
DEFAULT_KEY_NAME = "seaway-signing"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
# The curves model-signing accepts (it follows Sigstore's protobuf specs).
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")


def require_signing_extra() -> None:
    """Fail with an install hint when the `signing` extra is missing."""
    try:
        import cryptography  # noqa: F401
        import model_signing  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"signing model versions needs OpenSSF model-signing, which is not installed "
            f"({exc.name or exc})",
            hint=SIGNING_EXTRA,
        ) from exc


@dataclass(frozen=True)
class KeyPair:
    """A key pair `generate_keys` wrote."""

    private_path: Path
    public_path: Path
    key_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "private_key": str(self.private_path),
            "public_key": str(self.public_path),
            "key_id": self.key_id,
        }


@dataclass(frozen=True)
class PublicKey:
    """A public key in canonical PEM, its id, and where it was read from (for messages)."""

    pem: bytes
    key_id: str
    source: str

    @property
    def short_id(self) -> str:
        return self.key_id[:12]


def key_id_of(pem: bytes) -> str:
    from seaway.store.hashing import hash_bytes

    return hash_bytes(pem)


def default_public_path(private_path: Path) -> Path:
    """`team.key` -> `team.pub`; a private key without a suffix gets `.pub` appended."""
    if private_path.suffix and private_path.suffix != PUBLIC_SUFFIX:
        return private_path.with_suffix(PUBLIC_SUFFIX)
    return private_path.with_name(private_path.name + PUBLIC_SUFFIX)


def _public_pem(private_key: EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _exists(path: Path) -> UsageError:
    return UsageError(
        f"{path} already exists; refusing to overwrite a key",
        hint="choose another path, or pass --force (overwrite=True from Python) to replace it; "
        "signatures made with the old key stay verifiable only with the old public key",
    )


def _write_file(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        raise InputError(
            f"cannot write {path}: {exc.strerror or exc}", hint="check the folder exists"
        ) from exc
    try:
        # os.open's mode applies only to a new file; an overwritten one keeps its old mode.
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)


def generate_keys(
    private_path: Path, public_path: Path | None = None, *, overwrite: bool = False
) -> KeyPair:
    """Write a new ECDSA P-256 key pair in PEM: the private key with mode 0600 (unencrypted),
    the public key next to it (`NAME.pub` unless `public_path` is given).

    Refuses to replace an existing file unless `overwrite`: losing a private key cannot be
    undone, and a replaced public key no longer verifies what the old key signed.
    """
    require_signing_extra()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_path = Path(private_path)
    public_path = (
        Path(public_path) if public_path is not None else default_public_path(private_path)
    )
    if private_path.resolve() == public_path.resolve():
        raise UsageError(
            f"the private and the public key would both be written to {private_path}",
            hint="give them different paths",
        )
    if not overwrite:
        # Check both before writing either, so a refusal leaves nothing half-made.
        for path in (private_path, public_path):
            if path.exists():
                raise _exists(path)
    for path in (private_path, public_path):
        if not path.parent.is_dir():
            raise InputError(
                f"cannot write {path}: folder {path.parent} does not exist",
                hint="create the folder first, or choose another path",
            )
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = _public_pem(key)
    _write_file(private_path, private_pem, 0o600, overwrite=overwrite)
    try:
        _write_file(public_path, public_pem, 0o644, overwrite=overwrite)
    except BaseException:
        # A private key without its public half is useless and only invites confusion.
        with contextlib.suppress(OSError):
            private_path.unlink()
        raise
    return KeyPair(private_path, public_path, key_id_of(public_pem))


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"{what} {path} does not exist",
            hint="create a key pair with `seaway keys generate`",
        ) from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a folder, not a PEM file") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _check_curve(curve: str, path: Path | str) -> None:
    if curve not in SUPPORTED_CURVES:
        raise InputError(
            f"{path} is an elliptic-curve key on {curve}, which model-signing does not support",
            hint="use a P-256, P-384 or P-521 key (`seaway keys generate` makes P-256)",
        )


def read_private_key(path: Path) -> EllipticCurvePrivateKey:
    """The elliptic-curve private key in the PEM file `path`, with errors that say what is
    wrong with the file rather than a parser's message."""
    require_signing_extra()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _read(path, "private key")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise InputError(
            f"{path} is a public key; signing needs the private key",
            hint="pass the private key that `seaway keys generate` wrote next to it",
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InputError(
            f"{path} is an encrypted private key; seaway signs with unencrypted keys",
            hint="decrypt it (openssl pkey -in KEY -out PLAIN.key) and keep the file mode 0600",
        ) from None
    except Exception as exc:  # cryptography raises several kinds on malformed input
        raise InputError(
            f"{path} is not a PEM private key ({type(exc).__name__})",
            hint="pass a key written by `seaway keys generate` or `openssl ecparam -genkey`",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(
            f"{path} is a {type(key).__name__.removeprefix('_')} key; model-signing signs with "
            "elliptic-curve keys",
            hint="create one with `seaway keys generate`",
        )
    _check_curve(key.curve.name, path)
    return key


def public_key_of_private(path: Path) -> PublicKey:
    """The public half of the private key at `path`."""
    pem = _public_pem(read_private_key(path))
    return PublicKey(pem, key_id_of(pem), str(path))


def read_public_key(path: Path, *, source: str | None = None) -> PublicKey:
    """The public key in the PEM file `path`. A private key is accepted too (its public half
    is used), since it holds everything verification needs."""
    data = _read(path, "public key")
    if b"PRIVATE KEY-----" in data:
        key = public_key_of_private(path)
        return PublicKey(key.pem, key.key_id, source or str(path))
    return public_key_from_pem(data, source or str(path))


def public_key_from_pem(data: bytes, source: str) -> PublicKey:
    """Canonicalise a public key PEM (from a file or the blob store)."""
    require_signing_extra()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(data)
    except Exception as exc:  # cryptography raises several kinds on malformed input
        raise InputError(
            f"{source} is not a PEM public key ({type(exc).__name__})",
            hint="pass the .pub file that `seaway keys generate` wrote",
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(
            f"{source} is a {type(key).__name__.removeprefix('_')} key; model-signing "
            "verifies elliptic-curve keys",
        )
    _check_curve(key.curve.name, source)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PublicKey(pem, key_id_of(pem), source)


def private_key_mode_problem(path: Path) -> str | None:
    """A warning when a private key file can be read by others, else None."""
    try:
        mode = stat.S_IMODE(Path(path).stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return f"{path} can be read by other users (mode {mode:04o}); chmod 600 it"
    return None


def git_ignored(path: Path) -> bool | None:
    """Whether git ignores `path` (True/False), or None outside a work tree or without git.

    The CLI uses it to warn before a private key lands where `git add .` would commit it.
    """
    import subprocess

    path = Path(path).resolve()
    try:
        inside = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        result = subprocess.run(
            ["git", "check-ignore", "-q", str(path)],
            cwd=path.parent,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode not in (0, 1):
        return None
    return result.returncode == 0


__all__ = [
    "DEFAULT_KEY_NAME",
    "PRIVATE_SUFFIX",
    "PUBLIC_SUFFIX",
    "SIGNING_EXTRA",
    "KeyPair",
    "PublicKey",
    "default_public_path",
    "generate_keys",
    "git_ignored",
    "key_id_of",
    "private_key_mode_problem",
    "public_key_from_pem",
    "public_key_of_private",
    "read_private_key",
    "read_public_key",
    "require_signing_extra",
]
