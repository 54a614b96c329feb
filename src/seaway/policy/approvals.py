"""Approvals: a person with an approving role says a model version may go to an environment.

    approve(project, "churn@7", "prod", comment="reviewed the drift report")

An approval is given *in a role*: the policies see `approvals` as a list of
`{actor, role, comment, at}` and decide what counts, e.g. a release manager other than
the version's author:

    approvals.exists(a, a.role == "release-manager" && a.actor != version.author)

So recording an approval checks only that the approver may approve; whether it is enough
(or comes from the wrong person) is the policies' call, which keeps that rule in
seaway.yaml where it can be reviewed and tested.

Rules:

- The approver needs the action `approve` or `approve:ENV` (a role can be allowed to
  approve staging only).
- The role defaults to the one role the approver holds that grants it; with several, pass
  `role=`. A named role must be one the approver holds and one that grants the approval:
  an approval never claims a role its author does not have. A project that declares no
  roles has no access control, so there the role is free text and must be given.
- `environment` is a name; when the project has `environments/*.yaml`, it must be one of
  them, so a typo (`prd`) is caught rather than recorded as an approval nobody reads.
- The same person approving the same version for the same environment in the same role
  twice is refused (UsageError), so the count of approvals means distinct approvals.
- The row in `approvals` and the event `model.approved` (subject `model:NAME@N`, actor the
  approver) are written in one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat, utcnow
from seaway.errors import UsageError
from seaway.policy.errors import PermissionDenied

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from seaway.policy.identity import Identity
    from seaway.policy.request import Approval
    from seaway.project import Project
    from seaway.registry import ModelVersion

_ENV_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class ApprovalRecord:
    """One stored approval."""

    id: int
    model: str
    number: int
    environment: str
    actor: str
    role: str
    comment: str
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    def to_policy(self) -> Approval:
        """The approval as policies see it."""
        from seaway.policy.request import Approval

        return Approval(
            actor=self.actor,
            role=self.role,
            comment=self.comment,
            at=isoformat(self.created_at) or "",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.number,
            "ref": self.ref,
            "environment": self.environment,
            "actor": self.actor,
            "role": self.role,
            "comment": self.comment,
            "created_at": isoformat(self.created_at),
        }


def _record(row: Row[Any], model: str) -> ApprovalRecord:
    created = as_utc(row.created_at)
    return ApprovalRecord(
        id=row.id,
        model=model,
        number=row.number,
        environment=row.environment,
        actor=row.actor,
        role=row.role,
        comment=row.comment or "",
        created_at=created,
    )


def check_environment(project: Project, environment: str) -> str:
    """`environment` when it is a valid name (and a declared one, where any are declared)."""
    if not _ENV_RE.match(environment):
        raise UsageError(
            f"{environment!r} is not an environment name",
            hint="use lower-case letters, digits, '-' and '_' (staging, prod)",
        )
    folder = project.root / "environments"
    declared = (
        sorted(p.stem for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
        if folder.is_dir()
        else []
    )
    if declared and environment not in declared:
        from seaway.spec.crossref import did_you_mean

        raise UsageError(
            f"no environment {environment!r}{did_you_mean(environment, declared)}",
            hint=f"environments (environments/*.yaml): {', '.join(declared)}",
        )
    return environment


def _approving_role(project: Project, who: Identity, environment: str, role: str | None) -> str:
    from seaway.policy.roles import permits

    roles = project.spec.roles
    actions = ("approve", f"approve:{environment}")
    if not roles:
        if role is None:
            raise UsageError(
                "name the role you approve in",
                hint="seaway.yaml declares no roles, so pass --role (e.g. --role "
                "release-manager) to say in which capacity you approve",
            )
        return role
    if role is not None:
        if role not in who.roles:
            raise PermissionDenied(
                f"{who.describe()} does not hold the role {role!r}",
                hint="approve in a role you hold, or leave --role out to use the one that "
                "grants approval",
            )
        if not any(permits(roles, [role], a) for a in actions):
            raise PermissionDenied(
                f"the role {role!r} does not grant approval for {environment}",
                hint=f"roles that do: {', '.join(_granting(project, environment)) or 'none'}",
            )
        return role
    granting = [r for r in who.roles if any(permits(roles, [r], a) for a in actions)]
    if len(granting) == 1:
        return granting[0]
    if not granting:
        # authorize() passed, so only an owner of a project whose roles cannot approve
        # gets here: say which role would be needed.
        raise PermissionDenied(
            f"no role of {who.describe()} grants approval for {environment}",
            hint=f"roles that do: {', '.join(_granting(project, environment)) or 'none'}; "
            "add `approve` to a role under `roles:` in seaway.yaml",
        )
    raise UsageError(
        f"{who.name} holds several roles that may approve: {', '.join(granting)}",
        hint="pass --role to say in which one you approve",
    )


def _granting(project: Project, environment: str) -> list[str]:
    from seaway.policy.roles import roles_granting

    roles = project.spec.roles
    found = roles_granting(roles, "approve") + roles_granting(roles, f"approve:{environment}")
    return list(dict.fromkeys(found))


def approve(
    project: Project,
    ref: str,
    environment: str,
    *,
    comment: str = "",
    role: str | None = None,
    identity: Identity | None = None,
) -> ApprovalRecord:
    """Record that `identity` (default: the current identity) approves `ref` for
    `environment`, in `role`; see the module docstring for the rules."""
    from seaway.policy.identity import authorize
    from seaway.registry import get_version

    check_environment(project, environment)
    who = authorize(project, "approve", f"approve:{environment}", identity=identity)
    chosen = _approving_role(project, who, environment, role)
    version = get_version(project, ref)
    text = comment.strip()

    def write(conn: Connection) -> ApprovalRecord:
        from sqlalchemy import select

        from seaway.store.events import record_event
        from seaway.store.schema import approvals

        t = approvals.c
        earlier = conn.execute(
            select(approvals).where(
                t.model_id == version.model_id,
                t.number == version.number,
                t.environment == environment,
                t.actor == who.name,
                t.role == chosen,
            )
        ).first()
        if earlier is not None:
            raise UsageError(
                f"{who.name} already approved {version.ref} for {environment} as {chosen} "
                f"(at {isoformat(_record(earlier, version.model).created_at)})",
                hint=f"see `seaway approvals {version.ref} --env {environment}`",
            )
        now = utcnow()
        result = conn.execute(
            approvals.insert().values(
                model_id=version.model_id,
                number=version.number,
                environment=environment,
                actor=who.name,
                role=chosen,
                comment=text or None,
                created_at=now,
            )
        )
        pk = result.inserted_primary_key
        approval_id = int(pk[0]) if pk else 0
        record_event(
            conn,
            "model.approved",
            f"model:{version.ref}",
            {
                "environment": environment,
                "role": chosen,
                "comment": text,
                "approval": approval_id,
                "via": who.via,
            },
            actor=who.name,
        )
        return ApprovalRecord(
            approval_id, version.model, version.number, environment, who.name, chosen, text, now
        )

    return project.metadata.run_write(write)


def list_approvals(
    project: Project, version: ModelVersion | str, environment: str | None = None
) -> list[ApprovalRecord]:
    """The approvals of a version (a ModelVersion or a reference), oldest first; only
    those for `environment` when it is given."""
    from sqlalchemy import select

    from seaway.store.schema import approvals

    if isinstance(version, str):
        from seaway.registry import get_version

        version = get_version(project, version)
    t = approvals.c
    query = select(approvals).where(t.model_id == version.model_id, t.number == version.number)
    if environment is not None:
        query = query.where(t.environment == environment)
    with project.metadata.read() as conn:
        rows = conn.execute(query.order_by(t.created_at, t.id)).all()
    return [_record(r, version.model) for r in rows]
