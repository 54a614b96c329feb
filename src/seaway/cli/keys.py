"""`seaway keys generate`, `seaway sign` and `seaway verify`: thin commands over
`seaway.registry.keys` and `seaway.registry.signing`.

Exit codes: 0 done / the signature is valid; 1 the version is unsigned or its signature
does not verify; 2 bad input (a missing or unreadable key file, an unknown version, a key
file that already exists).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.registry.signing import SignatureCheck

keys_app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys", help="Signing keys for model versions: generate.")
    app.command("sign")(sign_cmd)
    app.command("verify")(verify_cmd)


@keys_app.command("generate")
def generate_cmd(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write seaway-signing.key and seaway-signing.pub into, created "
            "if missing (default: the current folder).",
            metavar="DIR",
        ),
    ] = None,
    private: Annotated[
        Path | None,
        typer.Option("--private", help="Where to write the private key.", metavar="PATH"),
    ] = None,
    public: Annotated[
        Path | None,
        typer.Option(
            "--public",
            help="Where to write the public key (default: next to --private, as NAME.pub).",
            metavar="PATH",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace key files that already exist.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an ECDSA P-256 key pair for `seaway sign` (private key with mode 0600)."""
    from seaway.cli.output import line, print_json
    from seaway.errors import UsageError
    from seaway.registry.keys import (
        DEFAULT_KEY_NAME,
        PRIVATE_SUFFIX,
        PUBLIC_SUFFIX,
        generate_keys,
        git_ignored,
    )

    if out is not None and (private is not None or public is not None):
        raise UsageError(
            "--out cannot be combined with --private/--public",
            hint="give a folder with --out, or the two file paths",
        )
    if private is None and public is not None:
        raise UsageError("--public needs --private", hint="name both files, or use --out DIR")
    if private is None:
        folder = out if out is not None else Path()
        if out is not None:
            try:
                # Only its owner needs to read a folder of private keys.
                out.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise UsageError(f"--out {out}: cannot create it: {exc.strerror or exc}") from exc
        private = folder / f"{DEFAULT_KEY_NAME}{PRIVATE_SUFFIX}"
        public = folder / f"{DEFAULT_KEY_NAME}{PUBLIC_SUFFIX}"
    pair = generate_keys(private, public, overwrite=force)
    if as_json:
        print_json(pair.to_dict())
        return
    line(f"private key: {pair.private_path}  (mode 0600; keep it secret)")
    line(f"public key:  {pair.public_path}")
    line(f"key id:      {pair.key_id}")
    if git_ignored(pair.private_path) is False:
        import sys

        sys.stderr.write(
            f"warning: {pair.private_path} is inside a git work tree and not ignored; "
            "add it to .gitignore so it is never committed\n"
        )
    line(
        f"sign with `seaway sign NAME@V --key {pair.private_path}`; commit the public key and "
        "list it under models.NAME.trusted_keys in seaway.yaml"
    )


def sign_cmd(
    ref: Annotated[str, typer.Argument(help="The version to sign: NAME@V, NAME@ALIAS or NAME.")],
    key: Annotated[
        Path,
        typer.Option("--key", "-k", help="The private key (PEM).", metavar="PRIVATE"),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Sign a model version's files with a private key (OpenSSF model-signing)."""
    from seaway.cli.output import line, print_json
    from seaway.registry.signing import sign_version

    project = STATE.project()
    try:
        record = sign_version(project, ref, key)
    finally:
        project.close()
    if as_json:
        print_json(record.to_dict())
        return
    if record.created:
        line(f"signed {record.ref} with key {record.key_id[:12]} as {record.signer}")
    else:
        line(f"{record.ref} was already signed with key {record.key_id[:12]} by {record.signer}")
    line(f"verify with `seaway verify {record.ref} --key PUBLIC.pub`")


def verify_cmd(
    ref: Annotated[str, typer.Argument(help="The version to verify: NAME@V, NAME@ALIAS or NAME.")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            "-k",
            help="The public key to trust (default: the model's trusted_keys in seaway.yaml, "
            "else the key stored at signing, which proves integrity only).",
            metavar="PUBLIC",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check that a version's files are exactly the signed ones; exit 1 when they are not."""
    from seaway.cli.output import print_json
    from seaway.registry.signing import check_version

    project = STATE.project()
    try:
        check = check_version(project, ref, key=key, check_store=True)
    finally:
        project.close()
    if as_json:
        print_json(check.to_dict())
    else:
        _print_check(check)
    if not check.ok:
        raise typer.Exit(1)


def _print_check(check: SignatureCheck) -> None:
    import sys

    from seaway.cli.output import line

    if check.ok:
        line(f"OK  {check.note}")
        if not check.trusted:
            line(
                "    to check who signed, pass --key PUBLIC.pub or list the key under "
                f"models.{check.ref.partition('@')[0]}.trusted_keys in seaway.yaml"
            )
        return
    # A refusal goes to stderr like other errors, so `seaway verify X && deploy` reads right
    # in logs too; stdout stays for the verdict line.
    line(f"FAIL  {check.note}")
    for problem in check.problems:
        sys.stderr.write(f"  - {problem}\n")
    if check.hint:
        sys.stderr.write(f"  hint: {check.hint}\n")
