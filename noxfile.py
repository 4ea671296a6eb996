"""nox sessions: tests, lint, reproduce_table1."""

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def reproduce_table1(session: nox.Session) -> None:
    """The demo benchmark of every available method, then reports/index.html.

    Pass bench.run options after `--`, e.g. `nox -s reproduce_table1 -- --dataset places
    --data-root /data --masks folder:/data/nvidia_masks/test --masks-per-bucket 100`."""
    session.install("-e", ".")
    session.run("python", "-m", "bench.run", "--methods", "all", *session.posargs)
