"""Copying runs to an MLflow tracking server over its REST API (no mlflow package needed).

Per run: find the experiment (create it if missing), find the MLflow run carrying the tag
`seaway.run_id` (create it otherwise), send params, tags and every metric point through
`runs/log-batch` in chunks within MLflow's limits, upload artifacts and step logs through
the server's artifact proxy (`mlflow server --serve-artifacts`), then set status and times
with `runs/update`. Exporting again updates the same MLflow run: params and tags are
rewritten with the same values, metric points MLflow already holds are ignored by it (its
key includes value, timestamp and step), and artifacts are overwritten.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway.errors import SeawayError, UsageError
from seaway.tracking.artifacts import artifact_files

if TYPE_CHECKING:
    import httpx

    from seaway.project import Project
    from seaway.tracking.records import MetricPoint, RunRecord
    from seaway.tracking.store import RunStore

# MLflow's limits for one runs/log-batch request (mlflow.utils.validation, MLflow 3.x).
MAX_METRICS = 1000
MAX_PARAMS = 100
MAX_TAGS = 100
MAX_ENTITIES = 1000
MAX_REQUEST_BYTES = 1_000_000
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
_REQUEST_BUDGET = 900_000  # under MAX_REQUEST_BYTES with room for the envelope

STATUS = {"running": "RUNNING", "succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}
TAG_RUN_ID = "seaway.run_id"
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_\-. /:]")


@dataclass
class ExportResult:
    run_id: str
    seq: int
    mlflow_run_id: str
    experiment_id: str
    action: str  # created | updated
    params: int
    metric_points: int
    tags: int
    artifact_files: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "mlflow_run_id": self.mlflow_run_id,
            "experiment_id": self.experiment_id,
            "action": self.action,
            "params": self.params,
            "metric_points": self.metric_points,
            "tags": self.tags,
            "artifact_files": self.artifact_files,
        }


class MlflowError(SeawayError):
    """The MLflow server refused a request or could not be reached."""

    http_status = 502


def mlflow_name(key: str) -> str:
    """A key MLflow accepts: its allowed characters only, no leading slash or `..`."""
    name = _BAD_NAME_CHARS.sub("_", key).lstrip("/")
    name = name.replace("..", "__")
    return name[:MAX_KEY] or "_"


def _ms(ts: datetime | float | None) -> int | None:
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    return int(ts * 1000)


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:MAX_PARAM_VALUE]


class MlflowClient:
    """The few REST calls the export needs."""

    def __init__(self, tracking_uri: str, *, timeout: float = 60.0) -> None:
        try:
            import httpx
        except ImportError:
            raise UsageError(
                "exporting to MLflow needs httpx", hint="pip install 'seaway[mlflow]'"
            ) from None
        base = tracking_uri.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise UsageError(
                f"--tracking-uri must be an http(s) URL of an MLflow server, got {tracking_uri!r}",
                hint="start one with `mlflow server --serve-artifacts` and pass its URL",
            )
        self.base = base
        auth: httpx.Auth | None = None
        headers = {}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            auth = httpx.BasicAuth(
                os.environ["MLFLOW_TRACKING_USERNAME"],
                os.environ.get("MLFLOW_TRACKING_PASSWORD", ""),
            )
        self._http = httpx.Client(base_url=base, timeout=timeout, headers=headers, auth=auth)

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise MlflowError(
                f"cannot reach the MLflow server at {self.base}: {exc}",
                hint="check --tracking-uri and that `mlflow server` is running",
            ) from exc

    def call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        path = f"/api/2.0/mlflow/{endpoint}"
        if method == "GET":
            response = self._send("GET", path, params=body or {})
        else:
            response = self._send(method, path, json=body or {})
        if response.status_code >= 400:
            raise _refused(f"{method} {path}", response)
        return response.json() if response.content else {}

    def upload(self, artifact_path: str, data: bytes) -> None:
        quoted = "/".join(urllib.parse.quote(part, safe="") for part in artifact_path.split("/"))
        path = f"/api/2.0/mlflow-artifacts/artifacts/{quoted}"
        response = self._send("PUT", path, content=data)
        if response.status_code >= 400:
            raise _refused(f"PUT {path}", response)


def _refused(what: str, response: httpx.Response) -> MlflowError:
    try:
        doc = response.json()
        code, message = doc.get("error_code", ""), doc.get("message") or doc.get("detail", "")
    except ValueError:
        code, message = "", response.text[:300]
    text = f"the MLflow server refused {what}: HTTP {response.status_code} {code} {message}"
    error = MlflowError(text.rstrip())
    error.error_code = code  # type: ignore[attr-defined]
    if response.status_code == 503 and "mlflow-artifacts" in what:
        error.hint = "start the server with --serve-artifacts so that artifacts can be uploaded"
    return error


def _experiment_id(client: MlflowClient, name: str) -> str:
    try:
        found = client.call("GET", "experiments/get-by-name", {"experiment_name": name})
        return str(found["experiment"]["experiment_id"])
    except MlflowError as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise
    try:
        return str(client.call("POST", "experiments/create", {"name": name})["experiment_id"])
    except MlflowError as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
        # Another exporter created it between our two calls.
        found = client.call("GET", "experiments/get-by-name", {"experiment_name": name})
        return str(found["experiment"]["experiment_id"])


def _find_run(client: MlflowClient, experiment_id: str, run_id: str) -> dict[str, Any] | None:
    body = {
        "experiment_ids": [experiment_id],
        "filter": f"tags.`{TAG_RUN_ID}` = '{run_id}'",
        "max_results": 1,
    }
    runs = client.call("POST", "runs/search", body).get("runs") or []
    return runs[0] if runs else None


def _tags(run: RunRecord) -> dict[str, str]:
    tags = {mlflow_name(k): v for k, v in run.tags.items()}
    tags[TAG_RUN_ID] = run.id
    tags["seaway.seq"] = str(run.seq)
    if run.pipeline:
        tags["seaway.pipeline"] = run.pipeline
    if run.name:
        tags["mlflow.runName"] = run.name
    if run.author:
        tags["mlflow.user"] = run.author
    if run.git_commit:
        tags["mlflow.source.git.commit"] = run.git_commit
        tags["seaway.git_dirty"] = str(bool(run.git_dirty)).lower()
    if run.error:
        tags["seaway.error"] = run.error
    if run.lineage:
        tags["seaway.lineage"] = json.dumps(run.lineage, sort_keys=True)
    return {k: str(v)[:MAX_TAG_VALUE] for k, v in tags.items()}


def _batches(
    params: dict[str, str], tags: dict[str, str], points: list[MetricPoint]
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """log-batch bodies within MLflow's count and size limits."""
    batch: dict[str, list[dict[str, Any]]] = {"params": [], "tags": [], "metrics": []}
    size = 0

    def full(kind: str, item_size: int) -> bool:
        counts = {k: len(v) for k, v in batch.items()}
        limit = {"params": MAX_PARAMS, "tags": MAX_TAGS, "metrics": MAX_METRICS}[kind]
        return (
            counts[kind] >= limit
            or sum(counts.values()) >= MAX_ENTITIES
            or size + item_size > _REQUEST_BUDGET
        )

    items: list[tuple[str, dict[str, Any]]] = [
        *(("params", {"key": k, "value": v}) for k, v in params.items()),
        *(("tags", {"key": k, "value": v}) for k, v in tags.items()),
        *(
            (
                "metrics",
                {
                    "key": mlflow_name(p.key),
                    "value": p.value,
                    "timestamp": _ms(p.ts),
                    "step": p.step,
                },
            )
            for p in points
        ),
    ]
    for kind, item in items:
        item_size = len(json.dumps(item)) + 2
        if full(kind, item_size):
            yield batch
            batch, size = {"params": [], "tags": [], "metrics": []}, 0
        batch[kind].append(item)
        size += item_size
    if any(batch.values()):
        yield batch


def _artifact_root(run_info: dict[str, Any]) -> str:
    """The artifact proxy path of a run, from its artifact_uri."""
    uri = str(run_info.get("artifact_uri", ""))
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "mlflow-artifacts":
        return parsed.path.lstrip("/")
    anchor = "/api/2.0/mlflow-artifacts/artifacts/"
    if parsed.scheme in ("http", "https") and anchor in parsed.path:
        return parsed.path.split(anchor, 1)[1].strip("/")
    raise MlflowError(
        f"the MLflow run {run_info.get('run_id')} stores artifacts at {uri}, which this "
        "export cannot upload to",
        hint="start the server with --serve-artifacts (its default in MLflow 2 and 3) so that "
        "artifacts go through its proxy",
    )


def export_run(
    project: Project,
    store: RunStore,
    client: MlflowClient,
    experiment_id: str,
    ref: str,
) -> ExportResult:
    run = store.get(ref)
    points = store.metric_history(run.id)
    existing = _find_run(client, experiment_id, run.id)
    tags = _tags(run)
    if existing is None:
        created = client.call(
            "POST",
            "runs/create",
            {
                "experiment_id": experiment_id,
                "run_name": run.name or f"{run.pipeline or 'run'}-{run.seq}",
                "start_time": _ms(run.started_at),
                "user_id": run.author,
                "tags": [{"key": TAG_RUN_ID, "value": run.id}],
            },
        )
        info = created["run"]["info"]
        action = "created"
    else:
        info = existing["info"]
        action = "updated"
    mlflow_run_id = str(info["run_id"])
    params = {mlflow_name(k): _param_text(v) for k, v in run.params.items()}
    for body in _batches(params, tags, points):
        client.call("POST", "runs/log-batch", {"run_id": mlflow_run_id, **body})

    uploaded = 0
    uploads = [(a.name, a) for a in run.artifacts]
    if uploads or any(s.log_digest for s in run.steps):
        root = _artifact_root(info)
        for name, artifact in uploads:
            for f in artifact_files(project, artifact):
                target = f"{name}/{f.path}" if f.path else name
                client.upload(f"{root}/{target.lstrip('/')}", project.blobs.get_bytes(f.digest))
                uploaded += 1
        for step in run.steps:
            if step.log_digest:
                data = project.blobs.get_bytes(step.log_digest)
                client.upload(f"{root}/seaway-logs/{mlflow_name(step.step)}.log", data)
                uploaded += 1

    update: dict[str, Any] = {"run_id": mlflow_run_id, "status": STATUS.get(run.status, "RUNNING")}
    if run.ended_at is not None:
        update["end_time"] = _ms(run.ended_at)
    client.call("POST", "runs/update", update)
    return ExportResult(
        run_id=run.id,
        seq=run.seq,
        mlflow_run_id=mlflow_run_id,
        experiment_id=experiment_id,
        action=action,
        params=len(params),
        metric_points=len(points),
        tags=len(tags),
        artifact_files=uploaded,
    )


def export_runs(
    project: Project,
    tracking_uri: str,
    refs: list[str] | None = None,
    *,
    experiment: str | None = None,
) -> list[ExportResult]:
    """Export the runs named by `refs` (default: every run, oldest first) to the MLflow
    server at `tracking_uri`, into `experiment` (default: the project's name)."""
    from seaway.tracking.search import search_runs
    from seaway.tracking.store import RunStore

    store = RunStore(project)
    if refs is None:
        summaries = search_runs(project, sort="started", limit=None)
        refs = [s.id for s in summaries]
    else:
        refs = [store.resolve(r) for r in refs]  # fail on a bad name before sending anything
    name = experiment or _project_name(project)
    client = MlflowClient(tracking_uri)
    try:
        experiment_id = _experiment_id(client, name)
        return [export_run(project, store, client, experiment_id, ref) for ref in refs]
    finally:
        client.close()
        store.close()


def _project_name(project: Project) -> str:
    try:
        return project.settings.name or project.root.name
    except SeawayError:
        return project.root.name
