"""The voting pages: a small Flask app over bench.study.db, served by waitress (a pure-Python WSGI
server with a thread pool, so voters are answered concurrently).

What a voter's browser gets names no method: pages show opaque asset and trial ids, options in
the voter's own random arrangement (the DOM order is the screen order), assets are bare PNGs
served without file times or ETags, and the page reveals a trial's images together once all
have loaded. Votes are JSON posts checked against the voter's stored plan (signed session
cookie, SameSite=Strict); anything else gets a 4xx and changes nothing. Jinja2 autoescapes every
page. The admin pages need the token printed when the server starts.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request, session, url_for

from bench.study import db
from bench.study.design import ASSET_ID, CRITERIA, TRIAL_ID, Study, voter_plan

MAX_BODY = 1024  # bytes: a vote is about 200
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def secret_key(folder: Path) -> bytes:
    """The session-signing key, kept (owner-only) in the study folder so sessions survive a restart."""
    path = folder / "server" / "secret_key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", opener=lambda p, f: os.open(p, f, 0o600)) as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def create_app(study: Study, admin_token: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key(study.folder),
        MAX_CONTENT_LENGTH=MAX_BODY,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=timedelta(days=60),
    )
    app.jinja_env.autoescape = True
    database = study.folder / db.DATABASE
    db.initialise(database)
    assets = study.assets

    def connection() -> sqlite3.Connection:
        if "db" not in g:
            g.db = db.connect(database)
        return g.db

    @app.teardown_appcontext
    def close(_error: BaseException | None) -> None:
        found = g.pop("db", None)
        if found is not None:
            found.close()

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if response.mimetype != "image/png" and not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def current_voter() -> tuple[str, list[dict[str, Any]]] | None:
        voter = session.get("voter")
        if not isinstance(voter, str) or not db.VOTER_ID.match(voter):
            return None
        plan = db.voter_plan(connection(), voter)
        return None if plan is None else (voter, plan)

    @app.get("/")
    def index() -> str:
        found = current_voter()
        done = len(db.voted_trials(connection(), found[0])) if found else 0
        total = len(found[1]) if found else study.trials_per_voter
        return render_template(
            "index.html.j2", study=study, criteria=CRITERIA, started=found is not None, done=done, total=total
        )

    @app.post("/start")
    def start() -> Response:
        if current_voter() is None:
            voter = secrets.token_hex(16)
            db.add_voter(connection(), voter, voter_plan(study, voter))
            session.permanent = True
            session["voter"] = voter
        return redirect(url_for("trial"), 303)

    @app.get("/trial")
    def trial() -> Response | str:
        found = current_voter()
        if found is None:
            return redirect(url_for("index"), 303)
        voter, plan = found
        voted = db.voted_trials(connection(), voter)
        todo = [entry for entry in plan if entry["trial"] not in voted]
        if not todo:
            return redirect(url_for("thanks"), 303)
        entry = todo[0]
        db.mark_shown(connection(), voter, entry["trial"])
        return render_template(
            "trial.html.j2",
            study=study,
            voter=voter,
            trial_id=entry["trial"],
            input_asset=study.trials[entry["trial"]].input_asset,
            arrangement=entry["arrangement"],
            done=len(plan) - len(todo),
            total=len(plan),
            pairs=study.mode == "two-alternative",
        )

    @app.post("/vote")
    def vote() -> tuple[Response, int]:
        found = current_voter()
        if found is None:
            return jsonify(error="no voter session; open the study's first page"), 403
        try:
            stored = db.record_vote(connection(), parse_vote(found[0]))
        except db.VoteRefused as refused:
            return jsonify(error=str(refused)), refused.status
        return jsonify(ok=True, stored=stored, next=url_for("trial")), 200

    @app.get("/thanks")
    def thanks() -> str:
        found = current_voter()
        done = len(db.voted_trials(connection(), found[0])) if found else 0
        return render_template("thanks.html.j2", study=study, done=done)

    @app.get("/a/<name>")
    def asset(name: str) -> Response:
        asset_id = name.removesuffix(".png")
        if not name.endswith(".png") or not ASSET_ID.match(asset_id) or asset_id not in assets:
            abort(404)
        response = Response(study.asset_path(asset_id).read_bytes(), mimetype="image/png")
        response.headers["Cache-Control"] = "private, max-age=86400"
        return response

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)

    add_admin_routes(app, study, admin_token, database)
    add_error_pages(app)
    return app


def parse_vote(voter: str) -> db.Vote:
    """The vote in the request body; VoteRefused (4xx) when it is malformed or names another voter."""
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict) or set(body) != {"vote_id", "voter", "trial", "choice", "ms"}:
        raise db.VoteRefused(400, "a vote is a JSON object with exactly vote_id, voter, trial, choice, ms")
    fields = (body["vote_id"], body["voter"], body["trial"], body["choice"])
    if not all(isinstance(f, str) for f in fields):
        raise db.VoteRefused(400, "vote_id, voter, trial and choice are strings")
    vote_id, claimed, trial_id, choice = fields
    if not db.VOTE_ID.match(vote_id) or not TRIAL_ID.match(trial_id) or not ASSET_ID.match(choice):
        raise db.VoteRefused(400, "malformed vote_id, trial or choice")
    if not hmac.compare_digest(claimed.encode(), voter.encode()):
        raise db.VoteRefused(403, "the vote names another voter")
    ms = body["ms"]
    if ms is not None and (type(ms) is not int or not 0 <= ms <= db.MAX_CLIENT_MS):
        raise db.VoteRefused(400, "ms is a whole number of milliseconds or null")
    return db.Vote(vote_id, voter, trial_id, choice, ms)


def add_admin_routes(app: Flask, study: Study, admin_token: str, database: Path) -> None:
    def check_token() -> None:
        given = request.args.get("token", "")
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            abort(403)

    @app.get("/admin")
    def admin() -> str:
        check_token()
        from bench.study.results import summary_for_admin  # pandas and scipy: loaded when first asked

        return render_template("admin.html.j2", study=study, summary=summary_for_admin(study, database))

    @app.get("/admin/votes.csv")
    def admin_votes() -> Response:
        check_token()
        from bench.study.results import votes_table

        table = votes_table(study, database)
        return Response(table.to_csv(index=False), mimetype="text/csv")


def add_error_pages(app: Flask) -> None:
    for status in (400, 403, 404, 405, 413, 500):

        @app.errorhandler(status)
        def error(problem, status=status) -> tuple[Response | str, int]:
            message = getattr(problem, "description", "error")
            if request.path == "/vote" or request.is_json:
                return Response(json.dumps({"error": message}), mimetype="application/json"), status
            return render_template("error.html.j2", status=status, message=message), status
