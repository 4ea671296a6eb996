"""`python -m bench.study create|serve|results|removal`: the paper's user study and object removal.

create RUN --methods a,b,… --images 30 --out STUDY    a study from a run saved with --save-outputs
serve STUDY [--host 127.0.0.1] [--port 8000]          the voting pages (admin token printed)
results STUDY                                         win rates, agreement, position bias, CSVs, report
removal --methods a,b,… [--masks FILE] --out DIR      object removal with contour / bbox masks
"""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import sys
from pathlib import Path

from bench.core.errors import EXIT_BAD_INPUT, BadInput
from bench.study.design import MODES


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def interface_warning(host: str, port: int) -> str | None:
    """The warning printed when the study is served on an interface other machines can reach."""
    if is_loopback(host):
        return None
    return (
        f"warning: serving on {host}, not the loopback address: anyone who can reach this "
        f"machine on port {port} can open the study and vote"
    )


def method_list(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def add_create(commands) -> None:
    parser = commands.add_parser("create", help="a study folder from a run saved with --save-outputs")
    parser.add_argument("run", type=Path, help="run folder (python -m bench.run ... --save-outputs)")
    parser.add_argument("--methods", type=method_list, required=True, help="comma-separated, as in the run")
    parser.add_argument("--images", type=int, default=30, help="test pairs shown (the paper: 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the choice of pairs")
    parser.add_argument("--mode", choices=MODES, default="best-of-n", help="best-of-n (the paper's) or pairs")
    parser.add_argument("--trials-per-voter", type=int, default=None)
    parser.add_argument("--title", default="Which result looks most plausible?")
    parser.add_argument("--out", type=Path, required=True, help="new study folder")


def add_serve(commands) -> None:
    parser = commands.add_parser("serve", help="serve the voting pages (waitress)")
    parser.add_argument("study", type=Path)
    parser.add_argument("--host", default="127.0.0.1", help="interface (default loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--threads", type=int, default=8)


def add_results(commands) -> None:
    parser = commands.add_parser("results", help="summarise the votes; CSVs and report.html")
    parser.add_argument("study", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")


def create(args: argparse.Namespace) -> int:
    from bench.study.create import CreateConfig, create_study

    config = CreateConfig(
        args.run, args.out, args.methods, args.images, args.seed, args.mode, args.trials_per_voter, args.title
    )
    print(f"study: {create_study(config)}")
    return 0


def serve(args: argparse.Namespace) -> int:
    import waitress

    from bench.study.app import create_app
    from bench.study.design import load_study

    study = load_study(args.study)
    token = secrets.token_urlsafe(24)
    app = create_app(study, token)
    server = waitress.create_server(app, host=args.host, port=args.port, threads=args.threads)
    port = server.effective_port
    shown = f"[{args.host}]" if ":" in args.host else args.host
    warning = interface_warning(args.host, port)
    if warning:
        print(warning, flush=True)
    print(f"serving {study.folder} on http://{shown}:{port}/", flush=True)
    print(f"admin: http://{shown}:{port}/admin?token={token}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def results(args: argparse.Namespace) -> int:
    from bench.reports.study import render_study_report
    from bench.study.design import load_study
    from bench.study.results import compute_results

    study = load_study(args.study)
    summary = compute_results(study, args.seed)
    print_results(study.folder)
    agreement = summary["agreement"]
    print(f"agreement: Fleiss' kappa {agreement['kappa']:.3f} over {agreement['trials']} trials")
    print(f"position bias: chi-square p = {summary['position_p_value']:.3f}")
    print(f"report: {render_study_report(study.folder)}")
    return 0


def print_results(folder: Path) -> None:
    import pandas as pd

    rates = pd.read_csv(folder / "results" / "win_rates.csv")
    votes = pd.read_csv(folder / "results" / "votes.csv")
    print(f"{len(votes)} votes from {votes.voter_id.nunique()} voters")
    print(f"{'method':>14} {'won':>5} {'shown':>6} {'win rate':>9} {'95 % interval':>17} {'paper':>7}")
    for row in rates.itertuples():
        paper = "" if pd.isna(row.paper_win_rate) else f"{100 * row.paper_win_rate:.1f} %"
        print(
            f"{row.method:>14} {row.votes_won:>5} {row.shown:>6} {100 * row.win_rate:>7.1f} % "
            f"{100 * row.ci_low:>7.1f} – {100 * row.ci_high:>5.1f} % {paper:>7}"
        )


def main(argv: list[str] | None = None) -> int:
    from bench.study.removal import add_removal, removal

    parser = argparse.ArgumentParser(
        prog="python -m bench.study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (add_create, add_serve, add_results, add_removal):
        add(commands)
    args = parser.parse_args(argv)
    run = {"create": create, "serve": serve, "results": results, "removal": removal}[args.command]
    try:
        return run(args)
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"error: {error.strerror or error} ({error.filename})", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
