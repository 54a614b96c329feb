"""The run store's write statements, built once per dialect.

Values travel as execute() parameters rather than in `.values(...)`: SQLAlchemy then
compiles each statement once and reuses it, where a statement rebuilt with inline values
costs a fresh compile (about a millisecond for an upsert) on every run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Statements:
    insert_run: Any
    insert_params: Any
    insert_metrics: Any
    upsert_latest: Any  # rows: run_id, key, value, step, ts
    finish: Any  # params: b_id, b_status, b_ended_at, b_duration_s, b_error
    set_tags: Any  # params: b_id, b_tags
    upsert_artifact: Any  # rows: run_id, name, digest, size, kind
    upsert_step: Any  # rows: every run_steps column


@functools.cache
def statements(dialect: str) -> Statements:
    from sqlalchemy import and_, bindparam, insert, or_, update

    from seaway.store.schema import (
        run_artifacts,
        run_latest_metrics,
        run_metrics,
        run_params,
        run_steps,
        runs,
    )

    # Both dialects spell an upsert the same way (ON CONFLICT … DO UPDATE … WHERE).
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]

    rlm = run_latest_metrics
    latest = upsert(rlm)
    ex = latest.excluded
    upsert_latest = latest.on_conflict_do_update(
        index_elements=[rlm.c.run_id, rlm.c.key],
        set_={"value": ex.value, "step": ex.step, "ts": ex.ts},
        # The highest step wins; on a tie, the later timestamp (or the later write).
        where=or_(ex.step > rlm.c.step, and_(ex.step == rlm.c.step, ex.ts >= rlm.c.ts)),
    )

    artifact = upsert(run_artifacts)
    upsert_artifact = artifact.on_conflict_do_update(
        index_elements=[run_artifacts.c.run_id, run_artifacts.c.name],
        set_={
            "digest": artifact.excluded.digest,
            "size": artifact.excluded.size,
            "kind": artifact.excluded.kind,
        },
    )

    step = upsert(run_steps)
    step_columns = [
        "status",
        "cache_key",
        "started_at",
        "duration_s",
        "error",
        "log_digest",
        "outputs",
        "metrics",
    ]
    upsert_step = step.on_conflict_do_update(
        index_elements=[run_steps.c.run_id, run_steps.c.step],
        set_={c: getattr(step.excluded, c) for c in step_columns},
    )

    finish = (
        update(runs)
        .where(runs.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            ended_at=bindparam("b_ended_at"),
            duration_s=bindparam("b_duration_s"),
            error=bindparam("b_error"),
        )
    )
    set_tags = update(runs).where(runs.c.id == bindparam("b_id")).values(tags=bindparam("b_tags"))
    return Statements(
        insert_run=insert(runs),
        insert_params=insert(run_params),
        insert_metrics=insert(run_metrics),
        upsert_latest=upsert_latest,
        finish=finish,
        set_tags=set_tags,
        upsert_artifact=upsert_artifact,
        upsert_step=upsert_step,
    )
