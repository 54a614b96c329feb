"""Signature valid: the version carries a signature that verifies over its files.

Verification is `seaway.registry.signing.check_version`, which returns a verdict instead of
raising for a failed check. The key is the gate's `key` when given, else the model's
`trusted_keys`, else the public key stored at signing. The last proves only that the files
are unchanged since signing, not who signed: the gate still passes (the signature is valid),
but says so, and `trusted` in its figures is false, so a policy can ask for more.

An unsigned version fails with the command that signs it; a signature that does not verify
fails with each problem found (a changed file, with the signed and the actual digest).
Keyless signing (`identity`, `issuer`) needs a network seaway does not use, so such a gate
reports `error`, as does a missing signing extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.gates.base import DataUnavailable, GateResult, GateStatus, outcome

if TYPE_CHECKING:
    from seaway.gates.context import GateContext
    from seaway.spec.gates import SignatureGate

KIND = "signature"


def label(gate: SignatureGate) -> str:
    return "signature"


def evaluate(gate: SignatureGate, ctx: GateContext) -> GateResult:
    from seaway.registry.signing import check_version

    version = ctx.version
    project = ctx.project
    if project is None:
        raise DataUnavailable("no project to read the signatures from")
    spec = gate.signature
    if spec.identity or spec.issuer:
        raise DataUnavailable(
            "keyless signature verification (identity, issuer) is not supported",
            hint="sign with a key (`seaway sign --key`) and give its public key as "
            "`signature: {key: PATH}`",
        )
    key: Path | None = None
    if spec.key:
        key = Path(spec.key) if Path(spec.key).is_absolute() else project.root / spec.key
        if not key.is_file():
            raise DataUnavailable(
                f"the signature gate's key {spec.key} does not exist",
                hint="point `signature: {key: PATH}` at a public key file in the project",
            )
    check = check_version(project, version, key=key)
    figures: dict[str, Any] = {
        "signed": check.signed,
        "signatures": check.signatures,
        "trusted": check.trusted,
        "key_id": check.key_id,
        "key_source": check.key_source,
        "signer": check.signer,
    }
    if not check.signed:
        message = f"{version.ref} is not signed"
        hint = check.hint or f"sign it: seaway sign {version.ref} --key PRIVATE.key"
        return outcome(KIND, "signature", gate, GateStatus.FAILED, message, figures, hint=hint)
    if not check.ok:
        figures["problems"] = list(check.problems)
        message = "; ".join(check.problems) or f"{version.ref} failed signature verification"
        return outcome(
            KIND, "signature", gate, GateStatus.FAILED, message, figures, hint=check.hint
        )
    return outcome(KIND, "signature", gate, GateStatus.PASSED, check.note, figures)
