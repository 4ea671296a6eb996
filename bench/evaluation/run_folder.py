"""The run folder's safety: one process at a time (an OS lock), a writable place, the most recent
run for --resume, a readable run.json, and resumption only with the same method identities."""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO, Any

from bench.core.errors import BadInput
from bench.core.run_json import RESUME_REQUIRED, RunJsonError, read_run_json
from bench.core.vocabulary import method_of
from bench.evaluation.config import RunConfig

LOCK_FILE = ".lock"


class RunFolderError(BadInput):
    """A run folder that cannot be used as asked; the message says why."""


def writable_folder(folder: Path, flag: str) -> None:
    """Create `folder` if needed; refuse a file or a folder this process cannot write in."""
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{flag} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"{flag} {folder}: cannot create it ({error.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunFolderError(f"{flag} {folder}: this user cannot write in it (read-only)")


HELD_LOCKS: list[IO[str]] = []  # the run-folder locks this process took


def release_inherited_locks() -> None:
    """In a forked worker: close its copies of the parent's lock files. A flock lasts while any
    copy is open, so otherwise the workers would hold the run folder after a kill -9 of the parent."""
    for handle in HELD_LOCKS:
        handle.close()


def lock_run_folder(run_dir: Path) -> IO[str]:
    """An exclusive flock on run_dir/.lock, held while the returned file is open (the kernel drops
    it when the process dies, even by kill -9). A second process is refused, naming the holder."""
    writable_folder(run_dir, "--out")
    handle = open(run_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunFolderError(
            f"{run_dir} is in use by {holder}; wait for it to finish or choose another --out"
        ) from None
    handle.seek(0)
    handle.truncate()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
    handle.flush()
    HELD_LOCKS.append(handle)
    return handle


def most_recent_run(runs: Path) -> Path | None:
    """The run folder under `runs` whose run.json was written last (not the greatest name)."""
    found = [p for p in runs.glob("*") if (p / "run.json").is_file()]
    return max(found, key=lambda p: (p / "run.json").stat().st_mtime_ns, default=None)


def read_stored_run(run_dir: Path) -> dict[str, Any] | None:
    """run.json of an earlier run in run_dir, None when there is none; a damaged one is refused."""
    path = run_dir / "run.json"
    if not path.is_file():
        return None
    try:
        return read_run_json(path, RESUME_REQUIRED)
    except RunJsonError as error:
        raise RunFolderError(
            f"{error}; the scores beside it are kept, but this folder cannot be resumed: choose a new --out"
        ) from None


def check_method_identity(
    stored: dict[str, Any], described: dict[str, dict[str, Any]], checkpoint_sha256: dict[str, str]
) -> None:
    """Refuse to resume a method whose options or checkpoint differ from the stored run's: its old
    scores would be kept under the new description."""
    old_methods = stored.get("methods") or {}
    old_sha = stored.get("checkpoints_sha256") or {}
    for name, description in described.items():
        if name not in old_methods:
            continue
        old = old_methods[name].get("options") or {}
        new = description.get("options") or {}
        changed = [
            f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in sorted({*old, *new}) if old.get(k) != new.get(k)
        ]
        if changed:
            raise RunFolderError(
                f"{name} was scored in this run folder with other options ({'; '.join(changed)}); give "
                f"this instance its own label (--methods {method_of(name)}@NEW) or choose a new --out"
            )
        if old_sha.get(name) != checkpoint_sha256.get(name):
            raise RunFolderError(
                f"{name} was scored in this run folder with another checkpoint (sha256 "
                f"{str(old_sha.get(name))[:12]} then, {str(checkpoint_sha256.get(name))[:12]} now); give it "
                f"its own label (--methods {method_of(name)}@NEW) or choose a new --out"
            )


def overlaps(a: Path, b: Path) -> bool:
    """Whether one of two paths is the other or lies inside it, after resolving links and `..`."""
    a, b = a.expanduser().resolve(), b.expanduser().resolve()
    return a == b or a in b.parents or b in a.parents


def check_reads_and_writes(config: RunConfig, run_dir: Path, report: str) -> None:
    """Refuse a run whose outputs (the run folder, with outputs/ and samples/; the report page and
    its assets/ and runs/) overlap a folder it reads (predictions, a test image or mask folder): it would
    overwrite what it scores, or read its own files back as input on the next resume."""
    reads = {f"--predictions {name}={folder}": Path(folder) for name, folder in config.predictions.items()}
    for flag, spec in (("--dataset", config.dataset), ("--masks", config.masks)):
        if spec.startswith("folder:"):
            reads[f"{flag} {spec}"] = Path(spec.removeprefix("folder:"))
    writes = {f"the run folder {run_dir}": run_dir}
    if report:  # the page, and the folders beside it that render_report writes
        page = Path(report)
        writes.update(
            {
                f"the report {target}": target
                for target in (page, page.parent / "assets", page.parent / "runs")
            }
        )
    for read_label, read in reads.items():
        for write_label, written in writes.items():
            if overlaps(read, written):
                raise RunFolderError(
                    f"{read_label} overlaps {write_label}: a run never writes where it reads; "
                    "choose another --out (or --report) outside it"
                )
