"""The registry core: register, resolve, aliases and their history, load, refusals."""

from __future__ import annotations

import json
import os
import pickle
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seaway.errors import IntegrityError, NotFound, UsageError
from seaway.project import Project
from seaway.registry import (
    alias_history,
    get_version,
    list_models,
    list_versions,
    load_model,
    materialize,
    register_model,
    set_alias,
)
from seaway.registry.register import UnsafeModelFile
from tests.registry.conftest import CATEGORICAL, NUMERIC, fit_pipeline, save_skops


def _events(project: Project, kind: str) -> list[Any]:
    from seaway.audit.log import list_events

    return [e for e in list_events(project, kind=kind, limit=None)]


def test_register_creates_a_content_addressed_version(
    project: Project, skops_model: tuple[Path, Any], frame: Any
) -> None:
    path, _ = skops_model
    sample = frame[NUMERIC + CATEGORICAL].head(20)
    first = register_model(project, "churn", path, metrics={"auc": 0.81}, sample=sample)
    assert first.created and first.version.number == 1
    v = first.version
    assert v.flavor == "sklearn" and v.scan_verdict == "safe"
    assert v.metrics == {"auc": 0.81}
    assert v.size == path.stat().st_size and v.n_files == 1
    assert v.io_schema is not None
    inputs = {c["name"]: c["type"] for c in v.io_schema["inputs"]}
    assert inputs == {"tenure": "float", "charges": "float", "region": "string"}

    # The same bytes again: the same version, nothing new.
    again = register_model(project, "churn", path)
    assert not again.created and again.version.number == 1

    # New content: the next number; NAME alone is the newest.
    other = save_skops(fit_pipeline(frame, C=0.01), path.parent / "other.skops")
    second = register_model(project, "churn", other)
    assert second.created and second.version.number == 2
    assert get_version(project, "churn").number == 2
    assert get_version(project, "churn@1").digest == v.digest
    assert [x.number for x in list_versions(project, "churn")] == [2, 1]
    (summary,) = list_models(project)
    assert (summary.name, summary.versions, summary.latest) == ("churn", 2, 2)

    registered = _events(project, "model.registered")
    assert [e.subject for e in registered] == ["model:churn@2", "model:churn@1"]
    assert registered[-1].data["digest"] == v.digest


def test_load_model_predicts_like_the_estimator(
    project: Project, skops_model: tuple[Path, Any], frame: Any
) -> None:
    path, estimator = skops_model
    register_model(project, "churn", path)
    model = load_model("churn@1", project=project)
    rows = frame[NUMERIC + CATEGORICAL].head(50)
    assert np.array_equal(model.predict(rows), estimator.predict(rows))
    assert np.allclose(model.predict_proba(rows), estimator.predict_proba(rows))
    # A wider table is fine: the model takes the columns it was trained on.
    assert np.array_equal(model.predict(frame.head(50)), estimator.predict(rows))


def test_unknown_names_say_what_exists(project: Project, skops_model: tuple[Path, Any]) -> None:
    register_model(project, "churn", skops_model[0])
    with pytest.raises(NotFound) as err:
        get_version(project, "nope")
    assert "churn" in (err.value.hint or "")
    with pytest.raises(NotFound) as err:
        get_version(project, "churn@7")
    assert "1 to 1" in (err.value.hint or "")
    with pytest.raises(NotFound) as err:
        get_version(project, "churn@champion")
    assert "seaway models alias churn@N champion" in (err.value.hint or "")
    with pytest.raises(UsageError):
        get_version(project, "churn@Bad!")


def test_aliases_move_and_keep_their_history(
    project: Project, skops_model: tuple[Path, Any], frame: Any
) -> None:
    path, _ = skops_model
    register_model(project, "churn", path)
    register_model(
        project, "churn", save_skops(fit_pipeline(frame, C=0.1), path.parent / "b.skops")
    )

    first = set_alias(project, "churn@1", "champion")
    assert (first.number, first.previous) == (1, None)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    moved = set_alias(project, "churn@2", "champion")
    assert (moved.number, moved.previous) == (2, 1)

    assert get_version(project, "churn@champion").number == 2
    assert get_version(project, "churn@2").aliases == ["champion"]
    assert [m.number for m in alias_history(project, "churn@champion")] == [1, 2]
    (then,) = alias_history(project, "churn@champion", at=between)
    assert then.number == 1
    before = datetime(2000, 1, 1, tzinfo=UTC)
    assert alias_history(project, "churn@champion", at=before) == []

    moves = _events(project, "model.alias")
    assert moves[0].data == {"alias": "champion", "version": 2, "previous": 1}
    with pytest.raises(UsageError):
        set_alias(project, "churn@1", "latest")


def test_a_malicious_pickle_is_refused_and_never_run(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps(Evil()))
    blobs_before = set(project.blobs.iter_digests())
    with pytest.raises(UnsafeModelFile) as err:
        register_model(project, "churn", bad, flavor="sklearn", trust_pickle=True)
    assert "os.system" in str(err.value) or "posix.system" in str(err.value)
    assert not marker.exists()
    assert list_models(project) == []
    assert set(project.blobs.iter_digests()) == blobs_before


def test_materialized_copy_is_checked_and_blob_damage_refused(
    project: Project, skops_model: tuple[Path, Any]
) -> None:
    version = register_model(project, "churn", skops_model[0]).version
    directory = materialize(project, version)
    file = directory / "model.skops"
    os.chmod(file, 0o644)
    data = bytearray(file.read_bytes())
    data[100] ^= 0xFF
    file.write_bytes(bytes(data))
    # The edited copy is noticed and rebuilt from the blob store.
    rebuilt = materialize(project, version)
    assert (rebuilt / "model.skops").read_bytes() != bytes(data)

    # A damaged blob cannot be loaded at all.
    import shutil

    shutil.rmtree(rebuilt.parent, ignore_errors=True)
    (entry,) = version.files(project)
    blob = project.blobs.path(entry.digest)  # type: ignore[attr-defined]
    os.chmod(blob, 0o644)
    raw = bytearray(Path(blob).read_bytes())
    raw[100] ^= 0xFF
    Path(blob).write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        load_model("churn@1", project=project)


def test_cli_register_show_alias_history(
    project: Project, skops_model: tuple[Path, Any], cli: Any
) -> None:
    path, _ = skops_model
    out = cli("register", "churn", str(path), "--metric", "auc=0.9")
    assert out.exit_code == 0, out.stderr
    assert "churn@1" in out.stdout
    out = cli("register", "churn", str(path))
    assert out.exit_code == 0 and "already registered as churn@1" in out.stdout

    out = cli("models", "--json")
    assert json.loads(out.stdout)[0]["latest"] == 1
    out = cli("models", "show", "churn@1", "--json")
    shown = json.loads(out.stdout)
    assert shown["metrics"] == {"auc": 0.9} and shown["flavor"] == "sklearn"
    assert cli("models", "alias", "churn@1", "champion").exit_code == 0
    out = cli("models", "history", "churn@champion", "--json")
    assert [m["version"] for m in json.loads(out.stdout)] == [1]

    missing = cli("models", "show", "churn@9")
    assert missing.exit_code == 2 and "no version 9" in missing.stderr
    assert cli("register", "churn", str(path.parent / "missing.skops")).exit_code == 2


def test_an_onnx_version_predicts_like_scikit_learn(project: Project, tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    clf = LogisticRegression().fit(x, y)
    onx = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
    path = tmp_path / "model.onnx"
    path.write_bytes(onx.SerializeToString())

    version = register_model(project, "scorer", path).version
    assert version.flavor == "onnx" and version.scan_verdict == "safe"
    model = load_model("scorer", project=project)
    assert np.array_equal(model.predict(x[:50]), clf.predict(x[:50]))
    assert np.allclose(model.predict_proba(x[:50]), clf.predict_proba(x[:50]), atol=1e-5)
