"""Signing model versions: keys, signing a folder, and signed versions under tampering.

Every test uses real keys, a real scikit-learn model saved with skops, real blob stores and
real metadata databases (SQLite and PostgreSQL through the `project` fixture). Tampering is
done the way someone with write access to the store but without the private key could do
it: edit the cached copy, flip a byte of a stored blob, or swap a version's files
consistently (new blobs, a new manifest, the version row pointed at it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from seaway.errors import InputError, IntegrityError, UsageError
from seaway.project import Project
from seaway.registry import ModelVersion, get_version, load_model, materialize, register_model
from seaway.registry.keys import KeyPair, generate_keys, read_public_key
from seaway.registry.signing import (
    SignatureError,
    check_version,
    list_signatures,
    read_bundle,
    require_verified,
    sign_directory,
    sign_version,
    signature_status,
    verify_directory,
    verify_version,
)
from tests.registry.conftest import save_skops


def _flip(data: bytes, at: int | None = None) -> bytes:
    out = bytearray(data)
    i = len(out) // 2 if at is None else at
    out[i] ^= 0x01
    return bytes(out)


def _b3(data: bytes) -> str:
    return blake3(data).hexdigest()


def _force_write(path: Path, data: bytes) -> None:
    """Write over a read-only file (blobs and materialized copies are 0444)."""
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    path.write_bytes(data)


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    (tmp_path / "keys").mkdir()
    return generate_keys(tmp_path / "keys" / "team.key")


@pytest.fixture
def other_keys(tmp_path: Path) -> KeyPair:
    (tmp_path / "other").mkdir()
    return generate_keys(tmp_path / "other" / "mallory.key")


@pytest.fixture
def version(
    project: Project, skops_model: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> ModelVersion:
    monkeypatch.setenv("SEAWAY_ACTOR", "alice")
    path, _ = skops_model
    return register_model(project, "churn", path, flavor="sklearn").version


@pytest.fixture
def signed(project: Project, version: ModelVersion, keys: KeyPair) -> ModelVersion:
    sign_version(project, version.ref, keys.private_path)
    return version


def _swap_files(project: Project, version: ModelVersion, changes: dict[str, bytes]) -> ModelVersion:
    """Point the version at other files, keeping every content address consistent: what
    someone who can write the store and the database, but has no private key, can do."""
    from seaway.data.tree import FileEntry, encode_manifest, tree_hash
    from seaway.store.schema import model_versions

    blobs = project.blobs
    entries = []
    pending = dict(changes)
    for entry in version.files(project):
        data = pending.pop(entry.path, None)
        if data is None:
            entries.append(entry)
        else:
            entries.append(FileEntry(entry.path, blobs.put_bytes(data), len(data)))
    for path, data in pending.items():
        entries.append(FileEntry(path, blobs.put_bytes(data), len(data)))
    manifest_hash = blobs.put_bytes(encode_manifest(entries))
    with project.metadata.write() as conn:
        conn.execute(
            model_versions.update()
            .where(
                model_versions.c.model_id == version.model_id,
                model_versions.c.number == version.number,
            )
            .values(
                manifest_hash=manifest_hash,
                digest=tree_hash(entries),
                size=sum(e.size for e in entries),
                n_files=len(entries),
            )
        )
    return get_version(project, version.ref)


def _model_file(project: Project, version: ModelVersion) -> tuple[str, bytes]:
    (entry,) = version.files(project)
    return entry.path, project.blobs.get_bytes(entry.digest)


# -- keys ------------------------------------------------------------------------------


def test_generate_keys_writes_a_p256_pair_with_a_private_mode_0600(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pair = generate_keys(tmp_path / "team.key")
    assert pair.public_path == tmp_path / "team.pub"
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(pair.private_path.read_bytes(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.curve.name == "secp256r1"
    public = read_public_key(pair.public_path)
    assert public.key_id == pair.key_id == _b3(pair.public_path.read_bytes())
    # The private key file names the same key id (its public half).
    assert read_public_key(pair.private_path).key_id == pair.key_id


def test_generate_keys_refuses_to_overwrite(tmp_path: Path) -> None:
    pair = generate_keys(tmp_path / "team.key")
    before = (pair.private_path.read_bytes(), pair.public_path.read_bytes())
    with pytest.raises(UsageError, match="already exists") as err:
        generate_keys(tmp_path / "team.key")
    assert err.value.exit_code == 2 and err.value.hint and "--force" in err.value.hint
    # Only the public key existing is enough to refuse, and nothing is half-written.
    (tmp_path / "lone.pub").write_text("keep me")
    with pytest.raises(UsageError, match=r"lone\.pub"):
        generate_keys(tmp_path / "lone.key")
    assert not (tmp_path / "lone.key").exists()
    assert (pair.private_path.read_bytes(), pair.public_path.read_bytes()) == before

    os.chmod(pair.private_path, 0o644)
    again = generate_keys(tmp_path / "team.key", overwrite=True)
    assert again.key_id != pair.key_id
    assert stat.S_IMODE(again.private_path.stat().st_mode) == 0o600


def test_bad_key_files_are_input_errors(tmp_path: Path, keys: KeyPair) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    with pytest.raises(InputError, match="does not exist") as err:
        sign_directory(folder, tmp_path / "nope.key")
    assert err.value.exit_code == 2
    with pytest.raises(InputError, match="is a public key"):
        sign_directory(folder, keys.public_path)
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key")
    with pytest.raises(InputError, match="not a PEM private key"):
        sign_directory(folder, garbage)

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(InputError, match="encrypted"):
        sign_directory(folder, encrypted)
    rsa_key = tmp_path / "rsa.key"
    rsa_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(InputError, match="elliptic-curve"):
        sign_directory(folder, rsa_key)


# -- folders ---------------------------------------------------------------------------


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "sub" / "config.json").write_text('{"layers": 3}')
    (folder / ".gitignore").write_text("*.tmp\n")  # git files are model files too
    return folder


def test_a_signed_folder_verifies_and_lists_every_file(model_dir: Path, keys: KeyPair) -> None:
    bundle = sign_directory(model_dir, keys.private_path)
    signed = verify_directory(model_dir, bundle, keys.public_path)
    assert signed.hash_type == "blake3"
    assert signed.files == {
        "weights.bin": _b3((model_dir / "weights.bin").read_bytes()),
        "sub/config.json": _b3(b'{"layers": 3}'),
        ".gitignore": _b3(b"*.tmp\n"),
    }
    assert read_bundle(bundle) == signed
    # The bundle is model-signing's own format: its Python API verifies it (told not to skip
    # git files, which it does by default).
    from model_signing import hashing, verifying

    sig = model_dir.parent / "model.sig"
    sig.write_bytes(bundle)
    upstream = (
        hashing.Config()
        .set_ignored_paths(paths=[], ignore_git_paths=False)
        .use_file_serialization(hashing_algorithm="blake3")
    )
    verifier = verifying.Config().use_elliptic_key_verifier(public_key=keys.public_path)
    verifier.set_hashing_config(upstream).verify(model_dir, sig)


def test_a_flipped_byte_in_a_signed_folder_names_the_file_and_both_digests(
    model_dir: Path, keys: KeyPair
) -> None:
    bundle = sign_directory(model_dir, keys.private_path)
    weights = model_dir / "weights.bin"
    original = weights.read_bytes()
    weights.write_bytes(_flip(original, at=1000))
    with pytest.raises(SignatureError) as err:
        verify_directory(model_dir, bundle, keys.public_path)
    text = str(err.value)
    assert "weights.bin" in text
    assert f"expected blake3 {_b3(original)}" in text
    assert f"actual blake3 {_b3(weights.read_bytes())}" in text
    assert "config.json" not in text  # only the changed file is named
    assert err.value.exit_code == 1 and isinstance(err.value, IntegrityError)


def test_an_added_or_removed_file_breaks_a_folder_signature(model_dir: Path, keys: KeyPair) -> None:
    bundle = sign_directory(model_dir, keys.private_path)
    (model_dir / "sub" / "extra.py").write_text("import os")
    with pytest.raises(SignatureError, match=r"sub/extra.py is not covered by the signature"):
        verify_directory(model_dir, bundle, keys.public_path)
    (model_dir / "sub" / "extra.py").unlink()
    (model_dir / ".gitignore").unlink()
    with pytest.raises(
        SignatureError, match=r"file .gitignore is missing \(signed blake3 [0-9a-f]{64}\)"
    ):
        verify_directory(model_dir, bundle, keys.public_path)


def test_a_folder_signature_refuses_another_key_and_an_altered_bundle(
    model_dir: Path, keys: KeyPair, other_keys: KeyPair
) -> None:
    bundle = sign_directory(model_dir, keys.private_path)
    with pytest.raises(SignatureError, match="made with a different key"):
        verify_directory(model_dir, bundle, other_keys.public_path)

    # Rewrite the signed statement to claim other content: the signature no longer holds.
    import base64
    import json

    doc = json.loads(bundle)
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SignatureError, match="does not verify with key"):
        verify_directory(model_dir, json.dumps(doc).encode(), keys.public_path)
    with pytest.raises(SignatureError, match="not a model-signing bundle"):
        verify_directory(model_dir, b"{}", keys.public_path)


# -- versions --------------------------------------------------------------------------


def test_signing_records_the_signature_its_blobs_and_an_event(
    project: Project, version: ModelVersion, keys: KeyPair
) -> None:
    from seaway.audit.log import list_events

    assert not signature_status(project, version)
    record = sign_version(project, "churn@1", keys.private_path)
    assert record.created and record.ref == "churn@1"
    assert record.key_id == keys.key_id and record.signer == "alice" and record.method == "key"
    assert signature_status(project, version)
    # The bundle and the public key are blobs; the key id is the key's blob address.
    assert project.blobs.get_bytes(record.key_id) == read_public_key(keys.public_path).pem
    signed = read_bundle(project.blobs.get_bytes(record.bundle_digest))
    assert signed.files == {e.path: e.digest for e in version.files(project)}

    (event,) = list_events(project, kind="model.signed", limit=None)
    assert event.subject == "model:churn@1" and event.actor == "alice"
    assert event.data["key_id"] == keys.key_id
    assert event.data["bundle_digest"] == record.bundle_digest

    # Signing again with the same key keeps the one signature.
    again = sign_version(project, "churn@1", keys.private_path)
    assert not again.created and again.id == record.id
    assert len(list_signatures(project, "churn@1")) == 1
    assert len(list_events(project, kind="model.signed", limit=None)) == 1


def test_a_valid_signature_verifies_trusted_only_with_a_known_key(
    project: Project, signed: ModelVersion, keys: KeyPair
) -> None:
    stored = verify_version(project, "churn@1")
    assert stored.ok and not stored.trusted and stored.problems == []
    assert stored.key_id == keys.key_id and stored.signer == "alice"
    assert "proves integrity, not who signed" in stored.note

    given = verify_version(project, "churn@1", key=keys.public_path)
    assert given.ok and given.trusted
    require_verified(project, signed)  # no exception
    model = load_model("churn@1", project=project, require_signature=True)
    assert hasattr(model, "predict")


def test_an_unsigned_version_is_refused_with_a_hint(
    project: Project, version: ModelVersion
) -> None:
    check = check_version(project, version)  # what a gate calls: a verdict, no exception
    assert not check.ok and not check.signed and check.problems == ["churn@1 is not signed"]
    with pytest.raises(SignatureError, match="churn@1 is not signed") as err:
        verify_version(project, "churn@1")
    assert err.value.hint and "seaway sign churn@1 --key" in err.value.hint
    assert err.value.exit_code == 1
    with pytest.raises(SignatureError, match="not signed"):
        load_model("churn@1", project=project, require_signature=True)
    # Without a requirement the version loads as before.
    assert hasattr(load_model("churn@1", project=project), "predict")


def test_a_key_that_did_not_sign_is_refused(
    project: Project, signed: ModelVersion, other_keys: KeyPair
) -> None:
    check = check_version(project, signed, key=other_keys.public_path)
    assert not check.ok and check.signed
    assert "is not signed with" in check.problems[0] and "mallory.pub" in check.problems[0]
    with pytest.raises(SignatureError, match="not signed with"):
        verify_version(project, "churn@1", key=other_keys.public_path)


def test_flipping_a_byte_in_a_signed_version_refuses_the_load(
    project: Project, signed: ModelVersion, keys: KeyPair
) -> None:
    name, original = _model_file(project, signed)
    changed = _flip(original)
    tampered = _swap_files(project, signed, {name: changed})
    # Every content address is consistent: the registry alone would load the changed file.
    assert materialize(project, tampered).joinpath(name).read_bytes() == changed

    with pytest.raises(SignatureError) as err:
        load_model("churn@1", project=project, require_signature=True)
    text = str(err.value)
    assert f"file {name} changed" in text
    assert f"expected blake3 {_b3(original)}" in text
    assert f"actual blake3 {_b3(changed)}" in text
    assert err.value.hint and "do not serve it" in err.value.hint
    # The same verdict with the trusted key, and through `verify`.
    with pytest.raises(SignatureError, match=f"file {name} changed"):
        verify_version(project, "churn@1", key=keys.public_path)


def test_a_file_added_to_a_signed_version_is_refused(
    project: Project, signed: ModelVersion
) -> None:
    tampered = _swap_files(project, signed, {"hook.py": b"import os; os.system('id')\n"})
    with pytest.raises(SignatureError, match=r"file hook\.py is not covered by the signature"):
        require_verified(project, tampered)


def test_an_edited_cached_copy_is_rebuilt_not_loaded(
    project: Project, signed: ModelVersion, keys: KeyPair
) -> None:
    name, original = _model_file(project, signed)
    copy = materialize(project, signed) / name
    bundle = project.blobs.get_bytes(list_signatures(project, signed)[0].bundle_digest)
    _force_write(copy, _flip(original))
    # The edited copy itself does not match its signature ...
    with pytest.raises(
        SignatureError, match=f"file {name} changed: expected blake3 {_b3(original)}"
    ):
        verify_directory(copy.parent, bundle, keys.public_path)
    # ... and the version check lays out the signed bytes again before it verifies.
    assert verify_version(project, "churn@1", key=keys.public_path).ok
    assert copy.read_bytes() == original


def test_a_flipped_byte_in_a_stored_blob_is_refused(project: Project, signed: ModelVersion) -> None:
    from seaway.store.blobs import LocalBlobStore

    (entry,) = signed.files(project)
    store = project.blobs
    assert isinstance(store, LocalBlobStore)
    blob = store.path(entry.digest)
    changed = _flip(blob.read_bytes())
    _force_write(blob, changed)

    with pytest.raises(SignatureError) as err:
        verify_version(project, "churn@1")
    text = str(err.value)
    assert f"file {entry.path}" in text and "damaged" in text
    assert f"expected blake3 {entry.digest}" in text and f"actual blake3 {_b3(changed)}" in text

    # Without a cached copy the load cannot even lay the files out: refused as well.
    import shutil

    from seaway.registry.loading import CACHE_DIR

    target = project.state_dir / CACHE_DIR / signed.digest
    for f in target.rglob("*"):
        os.chmod(f, 0o644)
    shutil.rmtree(target)
    with pytest.raises(IntegrityError):
        load_model("churn@1", project=project, require_signature=True)


def test_a_damaged_signature_bundle_is_refused(project: Project, signed: ModelVersion) -> None:
    from seaway.store.blobs import LocalBlobStore

    store = project.blobs
    assert isinstance(store, LocalBlobStore)
    bundle_path = store.path(list_signatures(project, signed)[0].bundle_digest)
    _force_write(bundle_path, _flip(bundle_path.read_bytes()))
    check = check_version(project, signed)
    assert not check.ok and "signature bundle" in check.problems[0]
    assert "damaged" in check.problems[0]


def test_trusted_keys_in_the_spec_decide_who_may_sign(
    project: Project,
    version: ModelVersion,
    keys: KeyPair,
    other_keys: KeyPair,
) -> None:
    (project.root / "keys").mkdir()
    (project.root / "keys" / "team.pub").write_bytes(keys.public_path.read_bytes())
    project.spec_path.write_text(
        "name: demo\n"
        "models:\n"
        "  churn:\n"
        "    require_signature: true\n"
        "    trusted_keys: [keys/team.pub]\n"
    )
    fresh = Project(project.root)
    try:
        with pytest.raises(SignatureError, match="not signed"):
            load_model("churn@1", project=fresh)  # required by the spec, not by the call

        sign_version(fresh, "churn@1", other_keys.private_path)
        check = check_version(fresh, "churn@1")
        assert not check.ok and "trusted key keys/team.pub" in check.problems[0]
        assert check.hint and "trusted_keys" in check.hint
        with pytest.raises(SignatureError, match=r"is not signed with trusted key keys/team\.pub"):
            load_model("churn@1", project=fresh)

        sign_version(fresh, "churn@1", keys.private_path)
        check = verify_version(fresh, "churn@1")
        assert check.ok and check.trusted and check.key_source == "trusted key keys/team.pub"
        assert hasattr(load_model("churn@1", project=fresh), "predict")

        # A trusted key that is missing on disk is a configuration error, said as such.
        (project.root / "keys" / "team.pub").unlink()
        with pytest.raises(InputError, match=r"models.churn.trusted_keys in seaway.yaml"):
            check_version(fresh, "churn@1")
    finally:
        fresh.close()


def test_sign_refuses_a_missing_key_before_any_work(
    project: Project, version: ModelVersion, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="does not exist"):
        sign_version(project, "churn@1", tmp_path / "missing.key")
    assert not signature_status(project, version)


def test_a_second_version_needs_its_own_signature(
    project: Project, signed: ModelVersion, keys: KeyPair, frame: Any, tmp_path: Path
) -> None:
    from tests.registry.conftest import fit_pipeline

    other = save_skops(fit_pipeline(frame, C=0.05), tmp_path / "v2" / "model.skops")
    v2 = register_model(project, "churn", other).version
    assert v2.number == 2
    assert not check_version(project, v2).signed
    assert verify_version(project, "churn@1").ok
