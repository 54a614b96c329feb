"""Entry point of the `seaway` console script.

This is the one place where exceptions become exit codes: 0 ok, 1 a check failed, 2 bad
usage or bad input. Tracebacks are shown only with -v. `seaway --version` answers before
anything heavy is imported, so it stays well under 150 ms.
"""

from __future__ import annotations

import contextlib
import os
import sys


def _verbose(argv: list[str]) -> bool:
    return "-v" in argv or "--verbose" in argv or bool(os.environ.get("SEAWAY_DEBUG"))


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from seaway import __version__

        sys.stdout.write(f"seaway {__version__}\n")
        return
    sys.exit(run(args))


def run(args: list[str]) -> int:
    """Run the CLI with `args`; return the exit code instead of exiting."""
    import gc

    from seaway.errors import SeawayError

    # A command is short-lived and builds large lists of small objects (one per file);
    # the default thresholds run full collections over them many times for nothing.
    gc.set_threshold(100_000, 50, 100)
    verbose = _verbose(args)
    try:
        from seaway.cli.app import app_for

        app = app_for(args)
        # Without standalone mode, click returns the code of a `typer.Exit` instead of exiting.
        code = app(args=args, prog_name="seaway", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except SeawayError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        from seaway.cli.output import print_error

        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`seaway … | head`); nothing more to say.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except Exception as exc:
        code = _click_exit(exc)
        if code is not None:
            return code
        if verbose:
            import traceback

            traceback.print_exc()
        sys.stderr.write(
            f"error: internal error: {type(exc).__name__}: {exc}\n"
            "  hint: run again with -v for the traceback, and report it\n"
        )
        return 2


def _click_exit(exc: Exception) -> int | None:
    """Usage errors and explicit exits raised by Typer/click, which it did not handle."""
    import typer

    if isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    if isinstance(exc, typer.Abort):
        sys.stderr.write("aborted\n")
        return 1
    show = getattr(exc, "show", None)
    exit_code = getattr(exc, "exit_code", None)
    if callable(show) and isinstance(exit_code, int):
        show()
        return 2 if exit_code == 2 else exit_code
    return None


if __name__ == "__main__":  # pragma: no cover
    main()
