"""nox sessions: tests, lint, reproduce_table1, reproduce_table2, report."""

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
    session.run("ruff", "format", "--check", ".")


@nox.session
def reproduce_table1(session: nox.Session) -> None:
    """Table 1 on the demo data with the shipped CPU-scale LBAM and PConv weights (labelled so in
    the report; `-- --retrain` trains them anew with the cpu profile), or the paper protocol:
    `nox -s reproduce_table1 -- --dataset places --data-root /data --checkpoint lbam=LBAM_G.pth
    --checkpoint pconv=pconv.pth --masks folder:/data/masks`."""
    session.install("-e", ".")
    if "--retrain" in session.posargs and "--profile" not in session.posargs:
        session.run("python", "-m", "bench.corpus", "fetch")
    session.run("python", "-m", "bench.reproduce", "table1", *session.posargs)


@nox.session
def reproduce_table2(session: nox.Session) -> None:
    """Every Table 2 variant trained (the cpu profile on the fetched corpus, 300 steps each; or
    `-- --profile mini` on the demo photos, `-- --profile paper --data-root …` on Paris), evaluated
    side by side, and the Table 2 mirror rendered."""
    session.install("-e", ".")
    if "--profile" not in session.posargs:
        session.run("python", "-m", "bench.corpus", "fetch")
    session.run("python", "-m", "bench.reproduce", "table2", *session.posargs)


@nox.session
def report(session: nox.Session) -> None:
    """Re-render reports/index.html from stored records: `nox -s report -- runs/<id>`."""
    session.install("-e", ".")
    session.run("python", "-m", "bench.report", *session.posargs)


@nox.session
def perf(session: nox.Session) -> None:
    """Speed figures on this machine: `python -m bench.perf` (table and perf.json)."""
    session.install("-e", ".")
    session.run("python", "-m", "bench.perf", *session.posargs)
