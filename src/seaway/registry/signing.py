"""Signatures for model versions, made and checked with OpenSSF model-signing (key-based).

What is signed: a version's files as `materialize` lays them out, which is the folder the
loader reads. model-signing hashes them one by one with BLAKE3, every file included (no
ignored paths, git files too, symlinks refused), so each signed digest is the same string
as the file's blob address and its entry in the version's manifest: one digest means one
thing in every message. Keyless Sigstore signing needs a network; keys do not.

The signature is a Sigstore bundle (a DSSE envelope around an in-toto statement listing
every file and its digest), model-signing's own format: a bundle taken out of seaway
verifies with `model_signing.verifying.Config().use_elliptic_key_verifier(public_key=PUB)
.verify(DIR, BUNDLE)`, which reads the hash algorithm from the bundle (give it a hashing
config with `ignore_git_paths=False` when the version holds .git* files). The 1.1
command-line tool always hashes with SHA-256; BLAKE3 was chosen over it for the one-digest
property above and because it hashes large files several times faster. The bundle and the
signer's public key are stored as blobs; a `model_signatures` row names the bundle, the
key id (the BLAKE3 of the public key's PEM, which is also that key's blob address), the
signer and the time; the `model.signed` event is written in the same transaction.

Which key verifies, in order: the key given (`key=` / `--key`), else the model's
`trusted_keys` in seaway.yaml, else the public key stored at signing. The last proves
integrity only (the files are unchanged since signing), not who signed: anyone who can
write the store could sign with a key of their own. Results say which it was (`trusted`).

Where the signature sits among the other checks: `materialize` re-hashes its cached copy
and rebuilds an edited one from the blob store, and the blob store refuses a blob whose
bytes do not match its address. What only a signature catches is a version whose *recorded*
files were swapped consistently (a new blob, a new manifest, the version row pointed at
it): every content address still matches, but the files are no longer the ones the key
holder signed, and the check names each file with the signed and the actual digest.

Layers: `sign_directory` / `verify_directory` work on any folder; `sign_version`,
`check_version`, `verify_version` and `require_verified` on registered versions.
`check_version` returns a verdict and never raises for a failed check (the signature gate
calls it); `verify_version` and `require_verified` (what `load_model` calls where a
signature is required) raise `SignatureError`. `signature_status` is the cheap "is it
signed at all" for policy facts.

model-signing is imported only inside functions; without it every entry point says to
`pip install 'seaway[signing]'`.
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat, utcnow
from seaway.errors import IntegrityError, NotFound, SeawayError
from seaway.registry.keys import (
    PublicKey,
    public_key_from_pem,
    public_key_of_private,
    read_public_key,
    require_signing_extra,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project
    from seaway.registry.versions import ModelVersion

METHOD_KEY = "key"
HASH_ALGORITHM = "blake3"
_BUNDLE_FILE = "model.sig"
_KEY_FILE = "key.pub"
# model-signing reports a content difference (after the signature itself verified) with a
# ValueError that starts so; everything else it raises is about the signature or the key.
_MISMATCH_PREFIX = "Signature mismatch"
_SUPPORTED_HASHES = ("sha256", "blake2", "blake3")


class SignatureError(IntegrityError):
    """A version is unsigned, or its signature does not verify: it must not be loaded."""

    exit_code = 1
    http_status = 422

    def __init__(
        self, message: str, *, hint: str | None = None, check: SignatureCheck | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.check = check
        self.problems: list[str] = list(check.problems) if check is not None else []


# -- bundles -----------------------------------------------------------------------


@dataclass(frozen=True)
class SignedManifest:
    """What a bundle says was signed: file -> digest, and how the digests were made.

    Read from the bundle without checking its signature; trust it only after
    `verify_directory` (or `check_version`) passed."""

    model_name: str
    hash_type: str
    files: dict[str, str]
    serialization: dict[str, Any]


def _malformed(why: str) -> SignatureError:
    return SignatureError(
        f"the signature bundle is not a model-signing bundle: {why}",
        hint="sign the version again; a bundle is written by `seaway sign` or `model_signing sign`",
    )


def read_bundle(bundle: bytes) -> SignedManifest:
    """Parse a model-signing bundle (a Sigstore bundle holding a DSSE envelope) into the
    manifest it carries. Does not check the signature."""
    try:
        doc = json.loads(bundle)
        envelope = doc["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"]))
        predicate = statement["predicate"]
        serialization = dict(predicate["serialization"])
        subject = statement["subject"][0]
        files = {str(r["name"]): str(r["digest"]) for r in predicate["resources"]}
        algorithms = {str(r["algorithm"]) for r in predicate["resources"]}
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _malformed(f"{type(exc).__name__}: {exc}") from None
    hash_type = str(serialization.get("hash_type", ""))
    if serialization.get("method") != "files":
        raise _malformed(
            f"it hashes by {serialization.get('method')!r}; seaway verifies file-by-file "
            "signatures (method 'files')"
        )
    if hash_type not in _SUPPORTED_HASHES or algorithms - {hash_type}:
        raise _malformed(f"unknown hash algorithm {hash_type!r}")
    return SignedManifest(str(subject.get("name", "")), hash_type, files, serialization)


def _hashing_config(serialization: dict[str, Any] | None = None) -> Any:
    """model-signing's hashing settings: seaway's own (BLAKE3, every file) to sign, and the
    ones a bundle records to verify it."""
    from model_signing import hashing

    # Any: model-signing types the algorithm as a Literal; read_bundle checked the value.
    algorithm: Any
    ignored: list[str]
    if serialization is None:
        algorithm, symlinks, ignored = HASH_ALGORITHM, False, []
    else:
        algorithm = serialization["hash_type"]
        symlinks = bool(serialization.get("allow_symlinks", False))
        ignored = list(serialization.get("ignore_paths", []))
    # model-signing skips .git* files unless told otherwise; a version's files are all of it.
    return (
        hashing.Config()
        .set_ignored_paths(paths=ignored, ignore_git_paths=False)
        .use_file_serialization(hashing_algorithm=algorithm, allow_symlinks=symlinks)
        .set_allow_symlinks(symlinks)
    )


def _check_directory(directory: Path) -> Path:
    from seaway.errors import InputError

    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory} is not a folder", hint="sign a folder of model files")
    return directory


def sign_directory(directory: Path, key: Path) -> bytes:
    """Sign every file under `directory` with the elliptic-curve private key at `key`;
    return the bundle (JSON bytes). Nothing is written next to the files."""
    require_signing_extra()
    from model_signing import signing

    directory = _check_directory(directory)
    public_key_of_private(Path(key))  # refuses a missing, public, encrypted or RSA key clearly
    with tempfile.TemporaryDirectory(prefix="seaway-sign-") as tmp:
        target = Path(tmp) / _BUNDLE_FILE
        (
            signing.Config()
            .use_elliptic_key_signer(private_key=Path(key))
            .set_hashing_config(_hashing_config())
            .sign(directory, target)
        )
        return target.read_bytes()


def _describe_failure(exc: Exception) -> str:
    text = str(exc).strip()
    if text.startswith("Key mismatch"):
        return "it was made with a different key"
    if type(exc).__name__ == "InvalidSignature":
        return "the signature does not match the signed statement (the bundle was altered)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _file_problems(directory: Path, signed: SignedManifest) -> list[str]:
    """One line per file that differs from the signed manifest, with both digests."""
    actual_manifest = _hashing_config(signed.serialization).hash(directory)
    actual = {
        str(rd.identifier): rd.digest.digest_hex for rd in actual_manifest.resource_descriptors()
    }
    alg = signed.hash_type
    problems = []
    for name in sorted(signed.files.keys() | actual.keys()):
        expected, got = signed.files.get(name), actual.get(name)
        if expected is None:
            problems.append(f"file {name} is not covered by the signature ({alg} {got})")
        elif got is None:
            problems.append(f"file {name} is missing (signed {alg} {expected})")
        elif expected != got:
            problems.append(f"file {name} changed: expected {alg} {expected}, actual {alg} {got}")
    return problems


def directory_problems(
    directory: Path, bundle: bytes, public_key: PublicKey
) -> tuple[SignedManifest | None, list[str]]:
    """Check `bundle` over `directory` with `public_key`: (the signed manifest when the
    signature itself verified, the problems found). No problems: the files are exactly
    the signed ones."""
    require_signing_extra()
    from model_signing import verifying

    directory = _check_directory(directory)
    try:
        signed = read_bundle(bundle)
    except SignatureError as exc:
        return None, [exc.message]
    with tempfile.TemporaryDirectory(prefix="seaway-verify-") as tmp:
        bundle_path, key_path = Path(tmp) / _BUNDLE_FILE, Path(tmp) / _KEY_FILE
        bundle_path.write_bytes(bundle)
        key_path.write_bytes(public_key.pem)
        try:
            (
                verifying.Config()
                .use_elliptic_key_verifier(public_key=key_path)
                .set_hashing_config(_hashing_config(signed.serialization))
                .verify(directory, bundle_path)
            )
            return signed, []
        except Exception as exc:  # model-signing raises ValueError and cryptography's own
            failure = exc
    if isinstance(failure, ValueError) and str(failure).startswith(_MISMATCH_PREFIX):
        # The signature verified before the contents were compared: the manifest is genuine.
        return signed, _file_problems(directory, signed) or [str(failure)]
    return None, [
        f"the signature does not verify with key {public_key.short_id} ({public_key.source}): "
        f"{_describe_failure(failure)}"
    ]


def verify_directory(
    directory: Path, bundle: bytes, public_key: Path | PublicKey
) -> SignedManifest:
    """Verify that `directory` holds exactly the files `bundle` signed, signed by
    `public_key` (a PEM path or a PublicKey). Returns the signed manifest; raises
    SignatureError naming each changed, added or missing file with both digests."""
    key = public_key if isinstance(public_key, PublicKey) else read_public_key(Path(public_key))
    signed, problems = directory_problems(directory, bundle, key)
    if problems or signed is None:
        raise SignatureError(
            f"{directory} does not match its signature:\n"
            + "\n".join(f"  - {p}" for p in problems),
            hint="the files are not the ones that were signed; do not load them",
        )
    return signed


# -- records -------------------------------------------------------------------------


@dataclass
class SignatureRecord:
    """One signature of a version, as recorded in the metadata database."""

    id: int
    model: str
    number: int
    bundle_digest: str
    key_id: str
    method: str
    signer: str
    signed_at: datetime
    created: bool = True  # False: this key had already signed the version

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "model": self.model,
            "version": self.number,
            "bundle_digest": self.bundle_digest,
            "key_id": self.key_id,
            "method": self.method,
            "signer": self.signer,
            "signed_at": isoformat(self.signed_at),
            "created": self.created,
        }


def _resolve(project: Project, version_or_ref: ModelVersion | str) -> ModelVersion:
    if isinstance(version_or_ref, str):
        from seaway.registry.versions import get_version

        return get_version(project, version_or_ref)
    return version_or_ref


def _signature_rows(conn: Connection, version: ModelVersion) -> list[SignatureRecord]:
    from sqlalchemy import select

    from seaway.store.schema import model_signatures as ms

    rows = conn.execute(
        select(ms)
        .where(ms.c.model_id == version.model_id, ms.c.number == version.number)
        .order_by(ms.c.signed_at.desc(), ms.c.id.desc())
    )
    return [
        SignatureRecord(
            id=r.id,
            model=version.model,
            number=r.number,
            bundle_digest=r.bundle_digest,
            key_id=r.key_id,
            method=r.method,
            signer=r.signer,
            signed_at=as_utc(r.signed_at),
        )
        for r in rows
    ]


def list_signatures(project: Project, version_or_ref: ModelVersion | str) -> list[SignatureRecord]:
    """The signatures recorded for a version, newest first."""
    version = _resolve(project, version_or_ref)
    with project.metadata.read() as conn:
        return _signature_rows(conn, version)


def signature_status(project: Project, version: ModelVersion) -> bool:
    """Whether the version has at least one recorded signature (no verification: a cheap
    fact for policies; `check_version` says whether it holds)."""
    from sqlalchemy import select

    from seaway.store.schema import model_signatures as ms

    with project.metadata.read() as conn:
        found = conn.execute(
            select(ms.c.id)
            .where(ms.c.model_id == version.model_id, ms.c.number == version.number)
            .limit(1)
        ).first()
    return found is not None


def _current_actor(project: Project) -> str:
    from seaway.policy.identity import current_identity

    return current_identity(project).name


def sign_version(
    project: Project, ref: str | ModelVersion, key: Path, *, actor: str | None = None
) -> SignatureRecord:
    """Sign the version `ref` names with the private key at `key`; store the bundle and the
    public key as blobs, record the signature and a `model.signed` event.

    Signing again with a key that already signed the version returns that signature
    (`created=False`). Refuses (IntegrityError) to sign files that differ from the ones
    the version records.
    """
    require_signing_extra()
    from seaway.registry.loading import materialize
    from seaway.store.events import record_event
    from seaway.store.schema import model_signatures

    key = Path(key)
    public = public_key_of_private(key)  # a bad key file is refused before any work
    version = _resolve(project, ref)
    who = actor or _current_actor(project)
    for existing in list_signatures(project, version):
        if existing.key_id == public.key_id and project.blobs.check(existing.bundle_digest) == "ok":
            return replace(existing, created=False)

    recorded = {e.path: e.digest for e in version.files(project)}
    directory = materialize(project, version)
    bundle = sign_directory(directory, key)
    signed = read_bundle(bundle)
    if signed.files != recorded:
        # materialize checks its copy, so this means the copy changed while it was signed.
        differing = sorted(
            p
            for p in signed.files.keys() | recorded.keys()
            if signed.files.get(p) != recorded.get(p)
        )
        raise IntegrityError(
            f"refusing to sign {version.ref}: files on disk differ from the recorded version "
            f"({', '.join(differing[:5])})",
            hint=f"run `seaway sign {version.ref}` again; if it repeats, check the store with "
            "`seaway data verify`",
        )
    blobs = project.blobs
    key_blob = blobs.put_bytes(public.pem)
    if key_blob != public.key_id:  # pragma: no cover - both are BLAKE3 of the same bytes
        raise AssertionError("key id and key blob digest disagree")
    bundle_digest = blobs.put_bytes(bundle)
    signed_at = utcnow()

    def write(conn: Connection) -> int:
        result = conn.execute(
            model_signatures.insert().values(
                model_id=version.model_id,
                number=version.number,
                bundle_digest=bundle_digest,
                key_id=public.key_id,
                method=METHOD_KEY,
                signer=who,
                signed_at=signed_at,
            )
        )
        pk = result.inserted_primary_key
        record_event(
            conn,
            "model.signed",
            version.subject,
            {
                "key_id": public.key_id,
                "bundle_digest": bundle_digest,
                "method": METHOD_KEY,
                "digest": version.digest,
                "files": len(signed.files),
            },
            actor=who,
        )
        return int(pk[0]) if pk else 0

    signature_id = project.metadata.run_write(write)
    return SignatureRecord(
        id=signature_id,
        model=version.model,
        number=version.number,
        bundle_digest=bundle_digest,
        key_id=public.key_id,
        method=METHOD_KEY,
        signer=who,
        signed_at=signed_at,
    )


# -- verification ----------------------------------------------------------------------


@dataclass
class SignatureCheck:
    """The verdict on a version's signature.

    `trusted`: verified with a key the caller gave or seaway.yaml trusts, so it says who
    signed; otherwise only that the files are unchanged since signing."""

    ref: str
    ok: bool = False
    signed: bool = False
    signatures: int = 0
    key_id: str | None = None
    key_source: str | None = None
    trusted: bool = False
    signer: str | None = None
    signed_at: datetime | None = None
    problems: list[str] = field(default_factory=list)
    hint: str | None = None

    @property
    def note(self) -> str:
        """One sentence on what the verdict means."""
        key = (self.key_id or "")[:12]
        if not self.signed:
            return f"{self.ref} is not signed"
        if not self.ok:
            return f"{self.ref} failed signature verification"
        if self.trusted:
            return (
                f"{self.ref} is signed with key {key} ({self.key_source}) by {self.signer} "
                f"at {isoformat(self.signed_at)}"
            )
        return (
            f"{self.ref}: the files are unchanged since {self.signer} signed them at "
            f"{isoformat(self.signed_at)} with key {key}, but that key is not trusted, so this "
            "proves integrity, not who signed"
        )

    def error(self) -> SignatureError:
        if not self.signed:
            return SignatureError(
                f"{self.ref} is not signed",
                hint=self.hint or f"sign it: seaway sign {self.ref} --key PRIVATE.key",
                check=self,
            )
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return SignatureError(
            f"{self.ref} failed signature verification:\n{lines}", hint=self.hint, check=self
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "ok": self.ok,
            "signed": self.signed,
            "signatures": self.signatures,
            "key_id": self.key_id,
            "key_source": self.key_source,
            "trusted": self.trusted,
            "signer": self.signer,
            "signed_at": isoformat(self.signed_at),
            "problems": list(self.problems),
            "hint": self.hint,
            "note": self.note,
        }


def _given_or_trusted_keys(
    project: Project, version: ModelVersion, key: Path | None
) -> tuple[list[PublicKey], str | None]:
    """The keys to verify with and where they come from; ([], None): the stored key."""
    from seaway.errors import InputError

    if key is not None:
        return [read_public_key(Path(key))], "key given"
    if not project.spec_path.is_file():
        return [], None
    spec = project.spec.models.get(version.model)
    if spec is None or not spec.trusted_keys:
        return [], None
    keys = []
    for listed in spec.trusted_keys:
        path = Path(listed)
        full = path if path.is_absolute() else project.root / path
        try:
            keys.append(read_public_key(full, source=f"trusted key {listed}"))
        except InputError as exc:
            raise InputError(
                f"models.{version.model}.trusted_keys in {project.spec_path.name}: {exc.message}",
                hint="list public key files relative to the project root "
                "(`seaway keys generate` writes NAME.pub)",
            ) from exc
    return keys, "trusted_keys"


def _blob_problem(what: str, digest: str, exc: SeawayError) -> str:
    state = "missing" if isinstance(exc, NotFound) else "damaged"
    return f"{what} (blob {digest[:12]}) is {state} in the blob store"


def _actual_digest(project: Project, digest: str) -> str | None:
    """What a damaged local blob hashes to now (other stores refuse to hand it out)."""
    from seaway.store.blobs import LocalBlobStore
    from seaway.store.hashing import hash_file

    blobs = project.blobs
    if not isinstance(blobs, LocalBlobStore):
        return None
    try:
        return hash_file(blobs.path(digest))
    except OSError:
        return None


def _store_problems(project: Project, version: ModelVersion) -> list[str]:
    """Each file of the version whose blob is missing or no longer matches its address."""
    problems = []
    for entry in version.files(project):
        state = project.blobs.check(entry.digest)
        if state == "missing":
            problems.append(f"file {entry.path}: its blob {entry.digest} is missing from the store")
        elif state == "corrupt":
            actual = _actual_digest(project, entry.digest) or "unknown"
            problems.append(
                f"file {entry.path}: its stored blob is damaged: expected {HASH_ALGORITHM} "
                f"{entry.digest}, actual {HASH_ALGORITHM} {actual}"
            )
    return problems


def check_version(
    project: Project,
    version_or_ref: ModelVersion | str,
    *,
    key: Path | None = None,
    check_store: bool = False,
    directory: Path | None = None,
) -> SignatureCheck:
    """Check a version's signature and return the verdict; a failed check is `ok=False`
    with `problems`, never an exception (bad input is: a missing key file, an unknown
    version).

    `key`: the public key to verify with, else the model's trusted_keys, else the stored
    key (integrity only). `check_store` also re-hashes the version's blobs in the store,
    which the copy being loaded does not need but `seaway verify` reports. `directory` is
    the version's materialized copy when the caller has it already (the one about to be
    loaded).
    """
    require_signing_extra()
    from seaway.registry.loading import materialize

    version = _resolve(project, version_or_ref)
    keys, source = _given_or_trusted_keys(project, version, key)
    check = SignatureCheck(ref=version.ref)
    records = list_signatures(project, version)
    check.signed, check.signatures = bool(records), len(records)
    if not records:
        check.problems.append(f"{version.ref} is not signed")
        check.hint = f"sign it: seaway sign {version.ref} --key PRIVATE.key"
        return check

    public: PublicKey
    if keys:
        by_id = {k.key_id: k for k in keys}
        matching = [r for r in records if r.key_id in by_id]
        if not matching:
            wanted = ", ".join(f"{k.source} ({k.short_id})" for k in keys)
            found = ", ".join(f"key {r.key_id[:12]} by {r.signer}" for r in records)
            check.problems.append(
                f"{version.ref} is not signed with {wanted}; its signatures: {found}"
            )
            check.hint = (
                f"sign it with a trusted key (seaway sign {version.ref} --key PRIVATE.key), "
                f"or add the signer's public key to models.{version.model}.trusted_keys"
                if source == "trusted_keys"
                else "pass the public key of the key that signed it"
            )
            return check
        record, public, check.trusted = matching[0], by_id[matching[0].key_id], True
        check.key_source = public.source
    else:
        record = records[0]
        check.key_source = "the public key stored at signing (not trusted)"
        try:
            public = public_key_from_pem(
                project.blobs.get_bytes(record.key_id), "the public key stored at signing"
            )
        except (NotFound, IntegrityError) as exc:
            check.problems.append(
                _blob_problem("the public key stored at signing", record.key_id, exc)
            )
            check.hint = "verify with the signer's public key: --key PUBLIC.pub"
            return check
    check.key_id, check.signer, check.signed_at = record.key_id, record.signer, record.signed_at

    try:
        bundle = project.blobs.get_bytes(record.bundle_digest)
    except (NotFound, IntegrityError) as exc:
        check.problems.append(_blob_problem("the signature bundle", record.bundle_digest, exc))
        check.hint = f"sign the version again: seaway sign {version.ref} --key PRIVATE.key"
        return check

    try:
        if directory is None:
            directory = materialize(project, version)
    except (NotFound, IntegrityError) as exc:
        # The store refused a blob: name the files it belongs to, not only the blob.
        check.problems.extend(_store_problems(project, version) or [exc.message])
        check.hint = "the stored files are damaged; restore the blob store from a copy"
        return check

    _signed, problems = directory_problems(directory, bundle, public)
    check.problems.extend(problems)
    if problems:
        check.hint = (
            f"the files of {version.ref} are not the ones that were signed: do not serve it; "
            "see who changed it with `seaway audit list`, and restore the original files"
        )
    if check_store:
        store = _store_problems(project, version)
        check.problems.extend(store)
        if store and not check.hint:
            check.hint = "the stored files are damaged; restore the blob store from a copy"
    check.ok = not check.problems
    return check


def verify_version(
    project: Project, version_or_ref: ModelVersion | str, *, key: Path | None = None
) -> SignatureCheck:
    """Verify a version's signature (and its stored blobs); raise SignatureError when it is
    unsigned or does not verify, naming each changed file with both digests."""
    check = check_version(project, version_or_ref, key=key, check_store=True)
    if not check.ok:
        raise check.error()
    return check


def require_verified(
    project: Project, version: ModelVersion, *, directory: Path | None = None
) -> None:
    """What `load_model` calls where a signature is required: the files about to be loaded
    (`directory`, the version's materialized copy) must be exactly the signed ones (checked
    with the model's trusted keys, else the stored key); raise SignatureError otherwise."""
    check = check_version(project, version, directory=directory)
    if not check.ok:
        raise check.error()


__all__ = [
    "HASH_ALGORITHM",
    "METHOD_KEY",
    "SignatureCheck",
    "SignatureError",
    "SignatureRecord",
    "SignedManifest",
    "check_version",
    "directory_problems",
    "list_signatures",
    "read_bundle",
    "require_verified",
    "sign_directory",
    "sign_version",
    "signature_status",
    "verify_directory",
    "verify_version",
]
