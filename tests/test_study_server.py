"""The voting server under load, a kill -9, forged requests, and a voter's-eye blinding check; the
server is the real command (`python -m bench.study serve`) on 127.0.0.1."""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from study_fixtures import METHODS, Server, Voter, make_study, saved_run

from bench.core.files import safe_name
from bench.study.design import load_study


@pytest.fixture
def run(tmp_path_factory):
    return saved_run(tmp_path_factory)


def stored_votes(study) -> list[tuple]:
    with sqlite3.connect(study / "votes.sqlite3") as connection:
        return connection.execute("SELECT * FROM votes ORDER BY vote_id").fetchall()


def vote_through(voter: Voter, count: int) -> list[str]:
    """Answer `count` trials (bounded loop), returning the acknowledged vote ids."""
    acknowledged = []
    voter.start()
    for _ in range(count):
        trial = voter.trial()
        assert trial is not None
        vote_id = str(uuid.uuid4())
        status, answer = voter.vote(trial, trial["choices"][0], vote_id)
        assert status == 200, answer
        acknowledged.append(vote_id)
    return acknowledged


def test_50_concurrent_voters_30_votes_each_are_all_stored_once(run, tmp_path, capsys):
    study = make_study(run, tmp_path / "study", images=10, mode="two-alternative", trials_per_voter=30)
    with Server(study, "--threads", "8") as server:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(lambda _: vote_through(Voter(server), 30), range(50)))
        seconds = time.perf_counter() - start
        acknowledged = [vote_id for voter in results for vote_id in voter]
        assert all(Voter(server).request("GET", "/")[0] == 200 for _ in range(2))
    rows = stored_votes(study)
    with capsys.disabled():  # the figures, shown in every test run
        rate = len(rows) / seconds
        print(f"\n50 voters × 30 votes: {len(rows)} stored in {seconds:.1f} s ({rate:.0f} votes/s)")
    assert len(acknowledged) == 50 * 30
    assert sorted(r[0] for r in rows) == sorted(acknowledged)
    assert len({(r[1], r[3]) for r in rows}) == 50 * 30  # one vote per voter and trial
    assert {r[2] for r in rows} == set(range(30))  # every step of every plan


def test_kill_9_mid_voting_keeps_every_acknowledged_vote_once(run, tmp_path):
    study = make_study(run, tmp_path / "study", images=6)
    server = Server(study)
    voters = [Voter(server) for _ in range(8)]
    for voter in voters:
        voter.start()
    acknowledged, unanswered, lock = {}, {}, threading.Lock()

    def keep_voting(voter: Voter) -> None:
        for _ in range(6):  # bounded: a plan has 6 trials
            try:
                trial = voter.trial()
                if trial is None:
                    return
                vote_id = str(uuid.uuid4())
                with lock:
                    unanswered[vote_id] = (voter, trial)
                status, _ = voter.vote(trial, trial["choices"][-1], vote_id)
            except OSError:
                return  # the server is gone
            with lock:
                if status == 200:
                    acknowledged[vote_id] = unanswered.pop(vote_id)

    threads = [threading.Thread(target=keep_voting, args=(v,)) for v in voters]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 12 and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill9()
    for thread in threads:
        thread.join(timeout=30)
    assert 12 <= len(acknowledged) < 8 * 6
    with Server(study) as again:
        for vote_id, (voter, trial) in [*acknowledged.items(), *unanswered.items()]:
            voter.port = again.port  # the same browser (cookie) resends the same vote id
            status, answer = voter.vote(trial, trial["choices"][-1], vote_id)
            assert status == 200, answer
        assert voters[0].trial() is None or voters[0].trial()["trial"] not in {
            t["trial"] for v, t in acknowledged.values() if v is voters[0]
        }
    stored = {row[0]: row for row in stored_votes(study)}
    assert set(acknowledged) <= set(stored)
    assert len(stored) == len(acknowledged) + len(unanswered)


def test_closing_the_tab_and_coming_back_later_resumes_where_the_voter_left(run, tmp_path):
    study = make_study(run, tmp_path / "study", images=4)
    with Server(study) as server:
        printed = "".join(server.lines)
        assert "http://127.0.0.1:" in printed and "warning" not in printed  # loopback by default
        voter = Voter(server)
        voter.start()
        first = voter.trial()
        assert voter.trial()["choices"] == first["choices"]  # a reload: same trial, same arrangement
        assert voter.vote(first, first["choices"][1])[0] == 200
        second = voter.trial()
        assert second["trial"] != first["trial"]
    with Server(study) as again:  # the tab closed, the server restarted, the browser back later
        voter.port = again.port
        assert "Continue (1 of 4 done)" in voter.request("GET", "/")[2].decode()
        voter.start()  # Continue keeps the voter's id and plan
        resumed = voter.trial()
        assert (resumed["voter"], resumed["trial"]) == (second["voter"], second["trial"])
        assert resumed["choices"] == second["choices"]
        assert 'value="1" max="4"' in resumed["page"] and "2 / 4" in resumed["page"]
    with sqlite3.connect(study / "votes.sqlite3") as connection:
        assert connection.execute("SELECT COUNT(*) FROM voters").fetchone()[0] == 1


def test_forged_and_replayed_requests_are_refused_and_change_nothing(run, tmp_path):
    study = make_study(run, tmp_path / "study", images=4)
    other_trial_asset = None
    with Server(study) as server:
        voter, other = Voter(server), Voter(server)
        voter.start()
        other.start()
        trial, other_trial = voter.trial(), other.trial()
        vote_id = str(uuid.uuid4())
        assert voter.vote(trial, trial["choices"][0], vote_id)[0] == 200
        before = stored_votes(study)
        trial = voter.trial()
        every = load_study(study).trials
        other_trial_asset = next(a for t in every.values() if t.id != trial["trial"] for a in t.options)
        refused = {
            "replayed id, other choice": voter.vote(trial, trial["choices"][1], vote_id),
            "unknown trial": voter.vote(trial, trial["choices"][0], trial="0" * 16),
            "image not in the trial": voter.vote(trial, other_trial_asset),
            "another voter's id": voter.vote({**trial, "voter": other_trial["voter"]}, trial["choices"][0]),
            "no session": Voter(server).vote(trial, trial["choices"][0]),
            "script in a field": voter.vote(trial, "<script>alert(1)</script>"),
            "script in the vote id": voter.vote(
                trial, trial["choices"][0], vote_id="<img src=x onerror=alert(1)>"
            ),
            "extra field": voter.vote(trial, trial["choices"][0], note="<b>hi</b>"),
            "negative time": voter.vote(trial, trial["choices"][0], ms=-5),
            "boolean time": voter.vote(trial, trial["choices"][0], ms=True),
            "malformed JSON": voter.post_json(None, raw=b'{"vote_id": '),
            "JSON list": voter.post_json([1, 2, 3]),
            "not JSON": voter.post_json(
                None, raw=b"vote_id=1", content_type="application/x-www-form-urlencoded"
            ),
            "oversized body": voter.post_json(None, raw=b'{"x": "' + b"a" * 100_000 + b'"}'),
        }
        for name, (status, answer) in refused.items():
            assert 400 <= status < 500, (name, status, answer)
            assert b"<script" not in answer and b"<img" not in answer, name
        assert refused["oversized body"][0] == 413
        assert refused["another voter's id"][0] == 403
        for path in ("/study.json", "/votes.sqlite3", "/server/secret_key", "/a/..%2Fstudy.json", "/a/x.png"):
            assert voter.request("GET", path)[0] == 404, path
        assert voter.request("GET", "/vote")[0] == 405
        assert voter.request("GET", "/admin")[0] == 403
        assert voter.request("GET", "/admin?token=wrong")[0] == 403
        assert stored_votes(study) == before
        assert voter.vote(trial, trial["choices"][1])[0] == 200  # a proper vote still goes through
        second = voter.vote(trial, trial["choices"][0])  # the same trial again with a new vote id
        assert second[0] == 409
    assert len(stored_votes(study)) == len(before) + 1


def test_pages_escape_what_they_show(run, tmp_path):
    title = '<script>alert("x")</script> & "quotes"'
    study = make_study(run, tmp_path / "study", images=2, title=title)
    with Server(study) as server:
        voter = Voter(server)
        voter.start()
        pages = [voter.request("GET", "/")[2], voter.trial()["page"].encode()]
        pages.append(voter.request("GET", f"/admin?token={server.token}")[2])
        pages.append(voter.request("GET", "/a/%3Cscript%3E.png")[2])
        for page in pages:
            assert b"<script>alert" not in page
        assert b"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;" in pages[0]
        assert b"Content-Security-Policy" not in pages[0]  # sanity: a header, not in the body


def png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        assert (
            zlib.crc32(kind + body)
            == struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])[0]
        )
        chunks.append(kind.decode())
        offset += 12 + length
    return chunks


def crawl(voter: Voter) -> tuple[dict[str, tuple[dict, bytes]], list[list[str]]]:
    """Every page and asset a voter can reach, and the arrangement of every trial shown."""
    seen, arrangements = {"/": voter.request("GET", "/")[1:]}, []
    voter.start()
    for _ in range(100):  # bounded
        trial = voter.trial()
        if trial is None:
            break
        seen[f"/trial#{trial['trial']}"] = ({}, trial["page"].encode())
        arrangements.append((trial["trial"], trial["choices"]))
        for link in re.findall(r'(?:src|href)="([^"]+)"', trial["page"]):
            seen[link] = voter.request("GET", link)[1:]
        assert voter.vote(trial, trial["choices"][0])[0] == 200
    seen["/thanks"] = voter.request("GET", "/thanks")[1:]
    return seen, arrangements


def test_blinding_nothing_a_voter_can_reach_names_a_method(run, tmp_path):
    study = make_study(run, tmp_path / "study", images=6)
    names = [*METHODS, *(safe_name(m) for m in METHODS), "outputs/"]
    with Server(study) as server:
        (first, first_order), (_, second_order) = crawl(Voter(server)), crawl(Voter(server))
    assets = [path for path in first if path.startswith("/a/")]
    assert len(assets) == 6 * (1 + len(METHODS))
    for path, (headers, body) in first.items():
        text = json.dumps(headers) + path
        if path.startswith("/a/"):
            assert png_chunks(body) in (["IHDR", "IDAT", "IEND"], ["IHDR", *["IDAT"] * 2, "IEND"])
            assert "Last-Modified" not in headers and "ETag" not in headers
            assert re.fullmatch(r"/a/[0-9a-f]{32}\.png", path)
        else:
            text += body.decode()
        for name in names:
            assert not re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", text, re.I), (
                name,
                path,
            )
    first_arrangements, second_arrangements = dict(first_order), dict(second_order)
    assert [t for t, _ in first_order] != [t for t, _ in second_order]  # the trial order differs
    assert any(first_arrangements[t] != second_arrangements[t] for t in first_arrangements)
    assert all(sorted(first_arrangements[t]) == sorted(second_arrangements[t]) for t in first_arrangements)
