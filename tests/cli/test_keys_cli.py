"""`seaway keys generate`, `seaway sign`, `seaway verify`: output and exit codes.

The commands run in-process on a real project (a git repository with SQLite metadata and a
local blob store) holding a real scikit-learn model version.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from seaway.project import Project
from tests.conftest import CliResult
from tests.registry.conftest import customer_frame, fit_pipeline, save_skops

Cli = Callable[..., CliResult]


@pytest.fixture
def registered(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with churn@1 registered; returns the project root."""
    from seaway.registry import register_model

    monkeypatch.setenv("SEAWAY_ACTOR", "alice")
    model = save_skops(fit_pipeline(customer_frame(rows=200)), tmp_path / "m" / "model.skops")
    project = Project(project_dir)
    try:
        register_model(project, "churn", model, flavor="sklearn")
    finally:
        project.close()
    return project_dir


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    """Keys live outside the project, where they belong."""
    folder = tmp_path / "keys"
    folder.mkdir()
    return folder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_generate_writes_a_pair_and_refuses_to_overwrite(cli: Cli, keydir: Path) -> None:
    result = cli("keys", "generate", "--out", keydir)
    assert result.exit_code == 0, result.stderr
    private, public = keydir / "seaway-signing.key", keydir / "seaway-signing.pub"
    assert _mode(private) == 0o600 and public.is_file()
    assert "key id:" in result.stdout and "seaway sign NAME@V --key" in result.stdout
    before = private.read_bytes()

    again = cli("keys", "generate", "--out", keydir)
    assert again.exit_code == 2
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert private.read_bytes() == before

    forced = cli("keys", "generate", "--out", keydir, "--force", "--json")
    assert forced.exit_code == 0
    doc = json.loads(forced.stdout)
    assert doc["private_key"].endswith("seaway-signing.key") and len(doc["key_id"]) == 64
    assert private.read_bytes() != before


def test_keys_generate_with_explicit_paths_and_bad_combinations(cli: Cli, keydir: Path) -> None:
    ok = cli("keys", "generate", "--private", keydir / "a.pem", "--public", keydir / "a-pub.pem")
    assert ok.exit_code == 0, ok.stderr
    assert (keydir / "a.pem").is_file() and (keydir / "a-pub.pem").is_file()
    both = cli("keys", "generate", "--out", keydir, "--private", keydir / "b.pem")
    assert both.exit_code == 2 and "--out cannot be combined" in both.stderr
    lone = cli("keys", "generate", "--public", keydir / "c.pub")
    assert lone.exit_code == 2 and "--public needs --private" in lone.stderr
    made = cli("keys", "generate", "--out", keydir / "new" / "folder")
    assert made.exit_code == 0 and (keydir / "new" / "folder" / "seaway-signing.key").is_file()
    missing = cli("keys", "generate", "--private", keydir / "no" / "such.key")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_keys_generate_warns_when_git_would_commit_the_private_key(
    cli: Cli, project_dir: Path
) -> None:
    result = cli("keys", "generate")
    assert result.exit_code == 0
    assert "not ignored" in result.stderr and ".gitignore" in result.stderr
    (project_dir / ".gitignore").write_text("*.key\n")
    quiet = cli("keys", "generate", "--private", "second.key")
    assert quiet.exit_code == 0 and "not ignored" not in quiet.stderr


def test_sign_then_verify(cli: Cli, registered: Path, keydir: Path) -> None:
    assert cli("keys", "generate", "--out", keydir).exit_code == 0
    private, public = keydir / "seaway-signing.key", keydir / "seaway-signing.pub"

    unsigned = cli("verify", "churn@1")
    assert unsigned.exit_code == 1
    assert "churn@1 is not signed" in unsigned.stdout
    assert "seaway sign churn@1 --key" in unsigned.stderr

    signed = cli("sign", "churn@1", "--key", private)
    assert signed.exit_code == 0, signed.stderr
    assert "signed churn@1 with key" in signed.stdout and "alice" in signed.stdout
    assert "already signed" in cli("sign", "churn@1", "--key", private).stdout

    stored = cli("verify", "churn@1")
    assert stored.exit_code == 0, stored.stderr
    assert stored.stdout.startswith("OK")
    assert "proves integrity, not who signed" in stored.stdout

    trusted = cli("verify", "churn@1", "--key", public, "--json")
    assert trusted.exit_code == 0
    doc = json.loads(trusted.stdout)
    assert doc["ok"] and doc["trusted"] and doc["signer"] == "alice" and doc["problems"] == []


def test_verify_fails_with_exit_1_on_a_wrong_key_or_changed_files(
    cli: Cli, registered: Path, keydir: Path
) -> None:
    from seaway.data.tree import FileEntry, encode_manifest, tree_hash
    from seaway.registry import get_version
    from seaway.store.schema import model_versions

    assert cli("keys", "generate", "--out", keydir).exit_code == 0
    assert cli("keys", "generate", "--private", keydir / "other.key").exit_code == 0
    assert cli("sign", "churn@1", "--key", keydir / "seaway-signing.key").exit_code == 0

    wrong = cli("verify", "churn@1", "--key", keydir / "other.pub", "--json")
    assert wrong.exit_code == 1
    doc = json.loads(wrong.stdout)
    assert not doc["ok"] and "not signed with" in doc["problems"][0]

    # Swap the model file for one with a flipped byte, keeping every content address valid.
    project = Project(registered)
    try:
        version = get_version(project, "churn@1")
        (entry,) = version.files(project)
        data = bytearray(project.blobs.get_bytes(entry.digest))
        data[len(data) // 2] ^= 0x01
        changed = FileEntry(entry.path, project.blobs.put_bytes(bytes(data)), len(data))
        with project.metadata.write() as conn:
            conn.execute(
                model_versions.update()
                .where(model_versions.c.model_id == version.model_id)
                .values(
                    manifest_hash=project.blobs.put_bytes(encode_manifest([changed])),
                    digest=tree_hash([changed]),
                )
            )
    finally:
        project.close()
    tampered = cli("verify", "churn@1")
    assert tampered.exit_code == 1
    assert f"file {entry.path} changed: expected blake3 {entry.digest}" in tampered.stderr
    assert f"actual blake3 {changed.digest}" in tampered.stderr


def test_bad_input_is_exit_2(cli: Cli, registered: Path, keydir: Path) -> None:
    missing_key = cli("sign", "churn@1", "--key", keydir / "nope.key")
    assert missing_key.exit_code == 2 and "does not exist" in missing_key.stderr
    assert "seaway keys generate" in missing_key.stderr
    assert cli("keys", "generate", "--out", keydir).exit_code == 0
    public_for_signing = cli("sign", "churn@1", "--key", keydir / "seaway-signing.pub")
    assert public_for_signing.exit_code == 2 and "is a public key" in public_for_signing.stderr
    unknown = cli("verify", "churn@9")
    assert unknown.exit_code == 2 and "no version 9" in unknown.stderr
    no_model = cli("sign", "nosuch@1", "--key", keydir / "seaway-signing.key")
    assert no_model.exit_code == 2 and "no model named" in no_model.stderr
    missing_pub = cli("verify", "churn@1", "--key", keydir / "nope.pub")
    assert missing_pub.exit_code == 2


def test_a_missing_signing_extra_says_how_to_install_it(
    cli: Cli, keydir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    # A None entry makes `import model_signing` raise ImportError, as when it is absent.
    monkeypatch.setitem(sys.modules, "model_signing", None)
    result = cli("keys", "generate", "--out", keydir)
    assert result.exit_code == 2
    assert "pip install 'seaway[signing]'" in result.stderr
    assert not any(os.scandir(keydir))
