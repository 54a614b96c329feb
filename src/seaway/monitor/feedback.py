"""True labels posted after the fact, joined to the predictions they judge.

A model's answers are only judged when the truth arrives: a customer churns or stays, a
transaction turns out to be fraud. Post it to the gateway (`POST /v1/feedback`), or from a
file with `seaway feedback FILE`, naming the request by the id the gateway answered with
(`x-request-id`, or the v2 request's `id`) or by the key it was routed with
(`x-seaway-key`, for example a customer id):

    {"model": "churn-classifier",
     "feedback": [{"id": "req-1", "label": 1},
                  {"id": "req-2", "labels": [0, 1]},
                  {"key": "cust-42", "label": 0}]}

`model` is optional (a bare list of items works too); with it, ids and keys are looked up
in that model's requests only. An item holds one label per row of the request (`label` for
a one-row request, `labels` for several). Labels are numbers, strings or booleans, compared
with the answer as text when their types differ, so 1, "1" and true are one class.

Labels join the gateway's request log (`seaway.serving.telemetry`), so only logged
requests can be judged: the log is a sample (`seaway serve --sample-rate`), and an id
that was not sampled is reported as unknown, never an error. A key names the newest logged
request with that key. A label judges every version that answered the request: the primary
and, when the request was mirrored, its shadows, one `feedback` row each, so shadow and
canary versions get live quality too (a shadow's answer is logged once it completes, so a
label posted within moments of the answer may judge the primary alone). Posting a label
again for the same logged answer is counted as a duplicate and changes nothing, so a file
can be posted twice safely; posting it again later adds the answers that were missing.

Each item gets one outcome: accepted, unknown (no logged request with that id or key),
rejected (the number of labels differs from the request's rows, or the request failed and
has no answer to judge) or duplicate. `seaway.monitor.quality` turns the stored labels into
accuracy, AUC and MAE per version.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seaway._util import utcnow
from seaway.errors import InputError
from seaway.monitor.logread import prediction_columns

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project

__all__ = [
    "MAX_ITEMS",
    "FeedbackItem",
    "FeedbackResult",
    "answer_rows",
    "parse_feedback",
    "parse_item",
    "read_feedback",
    "record_feedback",
]

MAX_ITEMS = 10_000
"""Items one call may carry (the gateway's limit; the CLI posts larger files in parts)."""

MAX_LISTED = 100
"""Unknown ids and rejected items listed in a result; the counts are always complete."""

_CHUNK = 500  # ids per IN (...) query: well under every database's parameter limit
_ITEM_FIELDS = frozenset({"id", "key", "label", "labels"})
_HINT = (
    'post {"feedback": [{"id": REQUEST_ID, "label": VALUE}, ...]}, naming each request by '
    'its x-request-id ("id") or its x-seaway-key ("key")'
)


@dataclass(frozen=True)
class FeedbackItem:
    """The true labels of one logged request, named by its id or its routing key."""

    request_id: str | None
    key: str | None
    labels: list[Any]

    @property
    def ref(self) -> str:
        """How the item names its request, for messages."""
        return self.request_id if self.request_id is not None else f"key:{self.key}"


@dataclass
class FeedbackResult:
    """What happened to each posted item (every item has exactly one outcome)."""

    accepted: int = 0
    unknown: list[str] = field(default_factory=list)
    """Ids (and `key:KEY`s) with no logged request, the first `MAX_LISTED` of them."""
    unknown_count: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """`{"index", "reason"}` for the first `MAX_LISTED` rejected items."""
    rejected_count: int = 0
    duplicates: int = 0
    rows: int = 0
    """Feedback rows stored: one per version that answered an accepted request."""
    models: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per model, how many items had each outcome (unknown ones under the posted model)."""

    @property
    def ok(self) -> bool:
        """True when nothing was unknown or rejected (duplicates are fine: a re-post)."""
        return not self.unknown_count and not self.rejected_count

    def _count(self, model: str, outcome: str) -> None:
        per = self.models.setdefault(model, {})
        per[outcome] = per.get(outcome, 0) + 1

    def merge(self, other: FeedbackResult, offset: int) -> None:
        """Add the result of the items that followed (the first at index `offset`)."""
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rows += other.rows
        self.unknown_count += other.unknown_count
        self.unknown.extend(other.unknown[: max(0, MAX_LISTED - len(self.unknown))])
        self.rejected_count += other.rejected_count
        room = max(0, MAX_LISTED - len(self.rejected))
        self.rejected.extend({**r, "index": r["index"] + offset} for r in other.rejected[:room])
        for model, counts in other.models.items():
            for outcome, n in counts.items():
                per = self.models.setdefault(model, {})
                per[outcome] = per.get(outcome, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "unknown": list(self.unknown),
            "unknown_count": self.unknown_count,
            "rejected": [dict(r) for r in self.rejected],
            "rejected_count": self.rejected_count,
            "duplicates": self.duplicates,
            "rows": self.rows,
            "models": {m: dict(c) for m, c in self.models.items()},
        }


# -- parsing ------------------------------------------------------------------------------


def _label(value: Any, where: str) -> Any:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{where}: a label must be a finite number, got {value}", hint=_HINT)
        return value
    got = "null" if value is None else type(value).__name__
    raise InputError(f"{where}: expected a number, string or boolean, got {got}", hint=_HINT)


def _ref(value: Any, where: str, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"{where}.{name}: expected a string, got {type(value).__name__}")
    text = str(value).strip()
    limit = 64 if name == "id" else 200
    if not text:
        raise InputError(f"{where}.{name}: is empty", hint=_HINT)
    if len(text) > limit:
        raise InputError(f"{where}.{name}: longer than {limit} characters, so never logged")
    return text


def parse_item(raw: Any, where: str) -> FeedbackItem:
    """One item (`{"id"|"key", "label"|"labels"}`); InputError names `where` and the field."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected an object, got {type(raw).__name__}", hint=_HINT)
    extra = sorted(str(k) for k in raw if k not in _ITEM_FIELDS)
    if extra:
        raise InputError(
            f'{where}: unknown field "{extra[0]}"',
            hint='an item has "id" or "key", and "label" or "labels"',
        )
    has_id, has_key = raw.get("id") is not None, raw.get("key") is not None
    if has_id == has_key:
        what = 'needs "id" or "key"' if not has_id else 'has both "id" and "key"; give one'
        raise InputError(f"{where}: {what}", hint=_HINT)
    request_id = _ref(raw["id"], where, "id") if has_id else None
    key = _ref(raw["key"], where, "key") if has_key else None
    if ("label" in raw) == ("labels" in raw):
        what = (
            'has both "label" and "labels"; give one'
            if "label" in raw
            else 'needs "label" or "labels"'
        )
        raise InputError(f"{where}: {what}", hint=_HINT)
    if "label" in raw:
        labels = [_label(raw["label"], f"{where}.label")]
    else:
        values = raw["labels"]
        if not isinstance(values, list) or not values:
            raise InputError(
                f"{where}.labels: expected a non-empty list, one label per row of the request"
            )
        labels = [_label(v, f"{where}.labels[{i}]") for i, v in enumerate(values)]
    return FeedbackItem(request_id, key, labels)


def parse_feedback(
    payload: Any, *, limit: int | None = MAX_ITEMS
) -> tuple[str | None, list[FeedbackItem]]:
    """The model named (or None) and the items of a feedback body: `{"model"?, "feedback":
    [...]}` or a bare list, of at most `limit` items. InputError names the first bad item
    and field."""
    model: str | None = None
    if isinstance(payload, Mapping):
        extra = sorted(str(k) for k in payload if k not in ("model", "feedback"))
        if extra:
            raise InputError(f'unknown field "{extra[0]}" in the feedback body', hint=_HINT)
        if "feedback" not in payload:
            raise InputError('the feedback body needs a "feedback" list', hint=_HINT)
        raw_model = payload.get("model")
        if raw_model is not None:
            if not isinstance(raw_model, str) or not raw_model.strip():
                raise InputError('"model": expected a model name', hint=_HINT)
            model = raw_model.strip()
        items = payload["feedback"]
    else:
        items = payload
    if not isinstance(items, list):
        raise InputError(
            f'"feedback": expected a list of items, got {type(items).__name__}', hint=_HINT
        )
    if limit is not None and len(items) > limit:
        raise InputError(
            f"{len(items)} feedback items in one body; at most {limit}",
            hint="post them in several parts",
        )
    return model, [parse_item(raw, f"feedback[{i}]") for i, raw in enumerate(items)]


def _csv_value(text: str) -> Any:
    """A CSV cell as the label it stands for: a number when it reads as one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _read_csv(text: str, source: str) -> list[FeedbackItem]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "label" not in fields or not ({"id", "key"} & set(fields)):
        raise InputError(
            f"{source}: a CSV file needs a column `id` or `key` and a column `label`, "
            f"found {', '.join(fields) or 'no header'}",
            hint="write a header line such as: id,label",
        )
    items: list[FeedbackItem] = []
    for row in reader:
        raw: dict[str, Any] = {}
        for name, value in row.items():
            name = (name or "").strip()
            if name in ("id", "key") and value and value.strip():
                raw[name] = value.strip()
            elif name == "label" and value is not None and value.strip():
                raw["label"] = _csv_value(value.strip())
        if not raw:
            continue
        if "label" not in raw:
            raw["label"] = None  # reported as a missing label, with the line
        items.append(parse_item(raw, f"{source}:{reader.line_num}"))
    return items


def _read_lines(text: str, source: str) -> list[FeedbackItem]:
    import json

    items: list[FeedbackItem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{source}:{number}: not JSON: {exc.msg}",
                hint='write one item per line, such as {"id": "req-1", "label": 1}',
            ) from None
        items.append(parse_item(raw, f"{source}:{number}"))
    return items


def read_feedback(text: str, source: str = "-") -> tuple[str | None, list[FeedbackItem]]:
    """Items from a file's text: JSON lines (one item a line), one JSON document (a list of
    items, or `{"model", "feedback"}`), or CSV with columns `id` or `key`, and `label`.
    `source` (the file name) picks CSV by its `.csv` ending and is named in errors."""
    import json

    if source.lower().endswith(".csv"):
        return None, _read_csv(text, source)
    start = text.lstrip()[:1]
    if start not in ("{", "["):
        if source.lower().endswith((".json", ".jsonl")) or not start:
            return None, _read_lines(text, source)
        return None, _read_csv(text, source)
    if not source.lower().endswith(".jsonl"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None  # more than one document: JSON lines
        if isinstance(document, list) or (isinstance(document, Mapping) and "feedback" in document):
            return parse_feedback(document, limit=None)
    return None, _read_lines(text, source)


# -- joining ------------------------------------------------------------------------------


def answer_rows(outputs: Any) -> int | None:
    """Rows of a logged answer (of its first output); None when it cannot be read."""
    cols = prediction_columns(outputs)
    if not cols:
        return None
    return len(next(iter(cols.values())))


@dataclass(frozen=True)
class _LogRow:
    id: int
    request_id: str
    model: str
    number: int
    route: str
    key: str | None
    status: int
    outputs: Any


_LOG_COLUMNS = ("id", "request_id", "model", "number", "route", "key", "status", "outputs")


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def _by_request_id(
    conn: Connection, request_ids: Sequence[str], model: str | None
) -> dict[str, list[_LogRow]]:
    from sqlalchemy import select

    from seaway.store.schema import request_log as t

    cols = [t.c[c] for c in _LOG_COLUMNS]
    found: dict[str, list[_LogRow]] = {}
    for part in _chunks(list(dict.fromkeys(request_ids))):
        query = select(*cols).where(t.c.request_id.in_(part))
        if model is not None:
            query = query.where(t.c.model == model)
        for r in conn.execute(query.order_by(t.c.id)):
            found.setdefault(r.request_id, []).append(_LogRow(*r))
    return found


def _newest_by_key(
    conn: Connection, keys: Sequence[str], model: str | None
) -> dict[str, tuple[str, str]]:
    """key -> (request_id, model) of the newest logged primary answer with that key."""
    from sqlalchemy import func, select

    from seaway.store.schema import request_log as t

    out: dict[str, tuple[str, str]] = {}
    for part in _chunks(list(dict.fromkeys(keys))):
        newest = select(func.max(t.c.id)).where(t.c.key.in_(part), t.c.route == "primary")
        if model is not None:
            newest = newest.where(t.c.model == model)
        newest = newest.group_by(t.c.key)
        rows = conn.execute(
            select(t.c.key, t.c.request_id, t.c.model).where(t.c.id.in_(newest.scalar_subquery()))
        )
        for r in rows:
            out[r.key] = (r.request_id, r.model)
    return out


def _join(
    conn: Connection, items: Sequence[FeedbackItem], model: str | None
) -> list[list[_LogRow]]:
    """The logged rows (primary and shadows) each item names; [] when none."""
    keyed = _newest_by_key(conn, [i.key for i in items if i.key is not None], model)
    wanted: list[str] = []
    for item in items:
        if item.request_id is not None:
            wanted.append(item.request_id)
        elif item.key in keyed:
            wanted.append(keyed[item.key][0])
    logged = _by_request_id(conn, wanted, model)
    out: list[list[_LogRow]] = []
    for item in items:
        if item.request_id is not None:
            rows = logged.get(item.request_id, [])
        elif item.key in keyed:
            request_id, of_model = keyed[item.key]
            rows = [r for r in logged.get(request_id, []) if r.model == of_model]
        else:
            rows = []
        out.append(_latest_per_version(rows))
    return out


def _latest_per_version(rows: list[_LogRow]) -> list[_LogRow]:
    # A client may reuse a request id; the newest answer of each version is the one judged.
    latest: dict[tuple[str, int, str], _LogRow] = {}
    for r in rows:
        latest[(r.model, r.number, r.route)] = r
    return sorted(latest.values(), key=lambda r: (r.route != "primary", r.id))


def _judgeable(item: FeedbackItem, rows: list[_LogRow]) -> tuple[list[_LogRow], str | None]:
    """The rows the item's labels can judge, or the reason they cannot."""
    answered = [r for r in rows if r.status < 400]
    if not answered:
        return [], f"request {item.ref} failed (status {rows[0].status}): no answer to judge"
    usable: list[_LogRow] = []
    for r in answered:
        n = answer_rows(r.outputs)
        if n is None:
            continue  # an answer too large to log: nothing to compare the labels with
        if n != len(item.labels):
            return [], (
                f"{len(item.labels)} label(s) for request {item.ref}, which had {n} row(s): "
                "give one label per row"
            )
        usable.append(r)
    if not usable:
        return [], f"the logged answer to request {item.ref} was too large to keep"
    return usable, None


def record_feedback(
    project: Project,
    items: Sequence[FeedbackItem],
    *,
    model: str | None = None,
    actor: str | None = None,
    pending: Callable[[], object] | None = None,
) -> FeedbackResult:
    """Store the items' labels against the requests they name (see the module docstring).

    `model` restricts the lookup to that model's requests (NotFound when it is not
    registered). `pending` is called once, before a second lookup, when some items named
    no logged request: a gateway passes its telemetry's flush, so a label posted right
    after its answer still finds it. Flushing beats looking into the unflushed samples,
    because a stored label points at its logged row (`feedback.log_id`), which does not
    exist before the flush; and it costs nothing while every item is found.
    """
    from seaway._util import actor as default_actor

    who = actor or default_actor()
    if model is not None:
        from seaway.registry.versions import model_row

        with project.metadata.read() as conn:
            model_row(conn, model)
    items = list(items)
    with project.metadata.read() as conn:
        matched = _join(conn, items, model)
    missing = [i for i, rows in enumerate(matched) if not rows]
    if missing and pending is not None:
        pending()
        with project.metadata.read() as conn:
            again = _join(conn, [items[i] for i in missing], model)
        for i, rows in zip(missing, again, strict=True):
            matched[i] = rows
    return project.metadata.run_write(lambda conn: _store(conn, items, matched, model, who))


def _store(
    conn: Connection,
    items: list[FeedbackItem],
    matched: list[list[_LogRow]],
    model: str | None,
    actor: str,
) -> FeedbackResult:
    from sqlalchemy import select

    from seaway.store.schema import feedback as t

    result = FeedbackResult()
    log_ids = [r.id for rows in matched for r in rows]
    labelled: set[int] = set()
    for i in range(0, len(log_ids), _CHUNK):
        part = log_ids[i : i + _CHUNK]
        labelled.update(conn.execute(select(t.c.log_id).where(t.c.log_id.in_(part))).scalars())
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    for index, (item, rows) in enumerate(zip(items, matched, strict=True)):
        if not rows:
            result.unknown_count += 1
            if len(result.unknown) < MAX_LISTED:
                result.unknown.append(item.ref)
            result._count(model or "", "unknown")
            continue
        of_model = rows[0].model
        usable, reason = _judgeable(item, rows)
        if reason is not None:
            result.rejected_count += 1
            if len(result.rejected) < MAX_LISTED:
                result.rejected.append({"index": index, "reason": reason})
            result._count(of_model, "rejected")
            continue
        fresh = [r for r in usable if r.id not in labelled]
        if not fresh:
            result.duplicates += 1
            result._count(of_model, "duplicate")
            continue
        for r in fresh:
            labelled.add(r.id)
            inserts.append(
                {
                    "ts": now,
                    "model": r.model,
                    "number": r.number,
                    "route": r.route,
                    "request_id": r.request_id,
                    "log_id": r.id,
                    "key": r.key,
                    "labels": list(item.labels),
                    "actor": actor[:200],
                }
            )
        result.accepted += 1
        result._count(of_model, "accepted")
    if inserts:
        conn.execute(t.insert(), inserts)
    result.rows = len(inserts)
    return result
