"""The engine's parts on their own: DAG, params, code scanning, keys, work cache, worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.errors import NotFound, UsageError
from seaway.pipeline.dag import build_dag
from seaway.pipeline.keys import KeyContext, canonical_json
from seaway.pipeline.params import parse_assignments, read_params_file
from seaway.pipeline.plan import PipelinePlan, StepPlan, load_pipeline, load_pipelines
from seaway.pipeline.sources import SourceScanner
from seaway.pipeline.worker import StepFailure, render_command
from seaway.project import Project


def _plan(steps: dict[str, dict[str, object]]) -> PipelinePlan:
    return PipelinePlan(
        name="p",
        steps={n: StepPlan(name=n, **s) for n, s in steps.items()},  # type: ignore[arg-type]
        defaults={},
        declared=[],
        required=[],
    )


def test_dag_order_parents_and_descendants() -> None:
    plan = _plan(
        {
            "evaluate": {"run": "m:f", "inputs": {"m": "fit.model", "f": "feat.x"}},
            "fit": {"run": "m:f", "inputs": {"x": "feat.x"}, "outputs": ["model"]},
            "feat": {"run": "m:f", "inputs": {"raw": "dataset:d"}, "outputs": ["x"]},
            "notify": {"cmd": "true", "needs": ["evaluate"]},
            "lonely": {"cmd": "true"},
        }
    )
    dag = build_dag(plan)
    assert dag.order == ["feat", "fit", "evaluate", "notify", "lonely"]
    assert dag.parents["evaluate"] == ["fit", "feat"]
    assert dag.descendants("fit") == ["evaluate", "notify"]
    assert dag.descendants("feat") == ["fit", "evaluate", "notify"]
    assert dag.descendants("lonely") == []


def test_parse_assignments_reads_yaml_scalars() -> None:
    assert parse_assignments(["a=1", "b=1.5", "c=true", "d=abc", "e=", "f=[1, 2]", "g=a=b"]) == {
        "a": 1,
        "b": 1.5,
        "c": True,
        "d": "abc",
        "e": "",
        "f": [1, 2],
        "g": "a=b",
    }
    with pytest.raises(UsageError):
        parse_assignments(["=1"])


def test_params_file_must_be_a_mapping(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("- 1\n")
    with pytest.raises(UsageError, match="must hold a mapping"):
        read_params_file(f)
    with pytest.raises(Exception, match="does not exist"):
        read_params_file(tmp_path / "nope.yaml")


def test_render_command_quotes_and_checks_placeholders() -> None:
    cmd = render_command(
        "run {inputs.a} {outputs.b} {params.p} {params.flag} ${HOME} {x}",
        {"a": "/in dir/a"},
        {"b": "/out/b"},
        {"p": "it's", "flag": True},
    )
    assert cmd == "run '/in dir/a' /out/b 'it'\"'\"'s' true ${HOME} {x}"
    with pytest.raises(StepFailure, match=r"uses \{params.q\}"):
        render_command("{params.q}", {}, {}, {"p": 1})


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_source_scanner_follows_project_imports_only(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/__init__.py", "")
    _write(tmp_path, "pkg/steps.py", "import os\nfrom . import helper\nfrom .sub import deep\n")
    _write(tmp_path, "pkg/helper.py", "import json\ndef f():\n    import lib.extra\n")
    _write(tmp_path, "pkg/sub/__init__.py", "")
    _write(tmp_path, "pkg/sub/deep.py", "from ..helper import f\n")
    _write(tmp_path, "pkg/unused.py", "")
    _write(tmp_path, "src/lib/__init__.py", "")
    _write(tmp_path, "src/lib/extra.py", "import numpy\n")
    found = SourceScanner(tmp_path).module_closure("pkg.steps")
    assert sorted(found) == [
        "pkg/__init__.py",
        "pkg/helper.py",
        "pkg/steps.py",
        "pkg/sub/__init__.py",
        "pkg/sub/deep.py",
        "src/lib/__init__.py",
        "src/lib/extra.py",
    ]
    assert all(len(v) == 64 for v in found.values())


def test_source_scanner_for_commands(tmp_path: Path) -> None:
    _write(tmp_path, "scripts/train.py", "import helper\nimport pkg.mod\n")
    _write(tmp_path, "scripts/helper.py", "")
    _write(tmp_path, "pkg/__init__.py", "")
    _write(tmp_path, "pkg/mod.py", "")
    _write(tmp_path, "conf.yaml", "a: 1")
    scanner = SourceScanner(tmp_path)
    found = scanner.command_closure("python scripts/train.py --config=conf.yaml {inputs.x} -v")
    assert sorted(found) == [
        "conf.yaml",
        "pkg/__init__.py",
        "pkg/mod.py",
        "scripts/helper.py",
        "scripts/train.py",
    ]
    assert sorted(scanner.command_closure("python -m pkg.mod 'unbalanced")) == [
        "pkg/__init__.py",
        "pkg/mod.py",
    ]
    assert scanner.command_closure("cat /etc/hostname ../outside") == {}


def test_key_changes_with_what_matters(tmp_path: Path) -> None:
    _write(tmp_path, "m.py", "def f(): pass\n")
    _write(tmp_path, "uv.lock", "v1")
    step = StepPlan(name="s", run="m:f", params=["a"], outputs=["o"], env=["uv.lock", "blake3"])
    ctx = KeyContext(tmp_path)
    key, doc = ctx.key(step, {"a": 1, "b": 2}, {"x": "h1"})
    assert doc["params"] == {"a": 1}
    assert doc["env"]["uv.lock"].startswith("blake3:")
    from importlib.metadata import version

    assert doc["env"]["blake3"] == version("blake3")
    assert ctx.key(step, {"a": 1, "b": 3}, {"x": "h1"})[0] == key  # b is not listed
    assert ctx.key(step, {"a": 2, "b": 2}, {"x": "h1"})[0] != key
    assert ctx.key(step, {"a": 1, "b": 2}, {"x": "h2"})[0] != key
    renamed = StepPlan(
        name="other", run="m:f", params=["a"], outputs=["o"], env=["uv.lock", "blake3"]
    )
    assert ctx.key(renamed, {"a": 1}, {"x": "h1"})[0] == key  # names do not count
    _write(tmp_path, "uv.lock", "v2")
    assert KeyContext(tmp_path).key(step, {"a": 1}, {"x": "h1"})[0] != key
    _write(tmp_path, "m.py", "def f(): return 1\n")
    assert KeyContext(tmp_path).key(step, {"a": 1}, {"x": "h1"})[0] != key
    missing = StepPlan(name="s", run="m:f", env=["no-such-dist-xyz"])
    assert KeyContext(tmp_path).key(missing, {}, {})[1]["env"] == {"no-such-dist-xyz": None}
    assert canonical_json({"b": 1, "a": [1.0]}) == b'{"a":[1.0],"b":1}'


def test_plan_cache_skips_validation_until_the_spec_changes(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project_dir / "seaway.yaml").write_text(
        "name: demo\npipelines:\n  p:\n    params: {a: 1}\n    steps:\n      s: {cmd: 'true'}\n"
    )
    project = Project(project_dir)
    assert list(load_pipelines(project)) == ["p"]
    assert (project.state_dir / "pipelines.json").is_file()

    fresh = Project(project_dir)
    monkeypatch.setattr(type(fresh), "spec", property(lambda self: pytest.fail("validated")))
    plan = load_pipeline(fresh, "p")
    assert plan.defaults == {"a": 1} and list(plan.steps) == ["s"]
    with pytest.raises(NotFound, match="no pipeline 'q'"):
        load_pipeline(fresh, "q")
    monkeypatch.undo()
    (project_dir / "seaway.yaml").write_text(
        "name: demo\npipelines:\n  p2:\n    steps:\n      s: {cmd: 'true'}\n"
    )
    assert list(load_pipelines(Project(project_dir))) == ["p2"]


def test_required_param_must_be_given(project_dir: Path) -> None:
    (project_dir / "seaway.yaml").write_text(
        "name: demo\npipelines:\n  p:\n    params: {n: {type: int, min: 1}}\n"
        "    steps:\n      s: {cmd: 'true', params: [n]}\n"
    )
    from seaway.pipeline.params import resolve_params

    project = Project(project_dir)
    plan = load_pipeline(project, "p")
    with pytest.raises(UsageError, match="needs a value for param 'n'"):
        resolve_params(project, plan, {})
    with pytest.raises(UsageError, match=r"expects int >= 1\.0; 0 is below min 1\.0"):
        resolve_params(project, plan, {"n": 0})
    assert resolve_params(project, plan, {"n": 3}) == {"n": 3}


def test_execute_step_materialises_inputs_from_blobs(project_dir: Path) -> None:
    """What a remote worker does: only the stores and the task, no local copy of inputs."""
    from seaway.data.datasets import add
    from seaway.pipeline.inputs import resolve_dataset
    from seaway.pipeline.task import StepTask
    from seaway.pipeline.worker import execute_step

    project = Project(project_dir)
    (project_dir / "d").mkdir()
    (project_dir / "d" / "a.txt").write_text("hello\n")
    add(project, "d", [project_dir / "d"])
    (project_dir / "one.txt").write_text("single\n")
    add(project, "one", [project_dir / "one.txt"])
    folder = resolve_dataset(project, "d", None, None)
    single = resolve_dataset(project, "one", "1", None)
    assert (folder.kind, single.kind, single.file_name) == ("dir", "file", "one.txt")
    work = project_dir / ".seaway" / "workcache"
    task = StepTask(
        project_root=str(project.root),
        metadata_url=project.metadata_url,
        artifacts_url=project.artifacts_url,
        work_dir=str(work),
        run_id="r1",
        pipeline="p",
        step="s",
        spec={"cmd": "cat {inputs.folder}/a.txt {inputs.single} > {outputs.out}"},
        inputs={"folder": folder.as_input("dataset:d"), "single": single.as_input("dataset:one")},
        params={},
        outputs=["out"],
        cache_key="k",
    )
    outcome = execute_step(task)
    project.close()
    assert outcome.status == "ran", outcome.error
    out = outcome.outputs["out"]
    assert out.kind == "file" and out.size == len("hello\nsingle\n")
    assert Path(out.path or "").read_text() == "hello\nsingle\n"
    assert (work / folder.tree_hash / "a.txt").is_file()
    assert (work / folder.tree_hash / "a.txt").stat().st_mode & 0o222 == 0  # read-only
    assert list((work / "tmp").iterdir()) == []


def test_interrupted_materialisation_is_not_taken_as_complete(tmp_path: Path) -> None:
    from seaway.data.tree import FileEntry, encode_manifest, tree_hash
    from seaway.pipeline.task import InputSpec
    from seaway.pipeline.workcache import ensure_local
    from seaway.store.blobs import open_blob_store

    blobs = open_blob_store(str(tmp_path / "objects"))
    digest = blobs.put_bytes(b"data")
    entries = [FileEntry("f.bin", digest, 4)]
    th = tree_hash(entries)
    mh = blobs.put_bytes(encode_manifest(entries))
    work = tmp_path / "workcache"
    (work / ".tmp-leftover").mkdir(parents=True)  # what a killed materialisation leaves
    path = ensure_local(blobs, work, InputSpec("dataset:x", th, mh, "file", "f.bin"))
    assert path == work / th / "f.bin" and path.read_bytes() == b"data"
    # A second request reuses the complete entry.
    assert ensure_local(blobs, work, InputSpec("dataset:x", th, mh, "dir")) == work / th


def test_metrics_must_be_named_numbers() -> None:
    from seaway.pipeline.worker import _metrics_from

    assert _metrics_from({"a": 1, "b": True, "c": 2.5}, "f() returned") == {
        "a": 1.0,
        "b": 1.0,
        "c": 2.5,
    }
    assert _metrics_from(None, "x") == {}
    for bad, message in (
        ({"a": "high"}, "not a number"),
        ({"a": float("nan")}, "NaN"),
        ({"": 1}, "names are strings"),
        ({1: 1}, "names are strings"),
        ([1], "return a dict of metrics"),
    ):
        with pytest.raises(StepFailure, match=message):
            _metrics_from(bad, "f() returned")


def test_execute_step_leaves_the_environment_as_it_found_it(project_dir: Path) -> None:
    """A warm worker runs many steps: one step's run id and store settings must not leak
    into the next step, or into the caller when the step runs in-process."""
    import os

    before = dict(os.environ)
    test_execute_step_materialises_inputs_from_blobs(project_dir)
    assert dict(os.environ) == before
