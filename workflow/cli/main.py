"""Entry point of `esms`: runs the typer app and turns every error into one line and an exit code.

Exit codes: 0 done; 1 refused by a programme rule; 2 bad input; 3 conflict with another process (retry);
4 database or server unavailable; 70 internal error. Set ESMS_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import os
import sys

INTERNAL_ERROR = 70


def main(argv: list[str] | None = None) -> int:
    """Run `esms` with `argv` (default: the process arguments) and return the exit code."""
    import typer

    from states.errors import EsmsError, InvalidFieldError
    from workflow.cli.app import app

    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="esms", standalone_mode=False)
    except InvalidFieldError as error:
        # The engine names the field; on the command line it is the option of the same name.
        return _fail(error.phrase("--" + error.field.replace("_", "-")), error.exit_code)
    except EsmsError as error:
        return _fail(str(error), error.exit_code)
    except (typer.Exit, typer.Abort) as stop:
        return getattr(stop, "exit_code", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:
        # typer's vendored click raises UsageError & co. with `exit_code` and `format_message`.
        if hasattr(error, "exit_code") and hasattr(error, "format_message"):
            return _fail(" ".join(error.format_message().split()), int(error.exit_code))
        if os.environ.get("ESMS_DEBUG"):
            raise
        return _fail(f"internal error: {type(error).__name__}: {' '.join(str(error).split())}", INTERNAL_ERROR)
    return result if isinstance(result, int) else 0


def _fail(message: str, code: int) -> int:
    from workflow.tomlfile import printable

    # Whatever a message quotes from the input, it stays one line.
    print(f"esms: {printable(' '.join(message.split()))}", file=sys.stderr)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
