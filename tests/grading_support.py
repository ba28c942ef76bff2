"""What the grading tests share: one grading sandbox (zygote) for the whole session, a folder for
their courses, and a real PostgreSQL server started on a free local port.

Imported by tests/test_grader_*.py (not a conftest: these are used by the grading tests only).
Everything is started on first use and stopped when the test session ends.
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# Test courses, submissions and outputs live here: the sandbox hides this folder from kernels.
ROOT = Path(tempfile.mkdtemp(prefix="fr-grader-tests-"))
atexit.register(shutil.rmtree, ROOT, ignore_errors=True)
# Time limits of the tests: legitimate cells take a few seconds; the corpus's endless loops
# should not cost two minutes each.
CELL_TIMEOUT = 15.0
NOTEBOOK_TIMEOUT = 300.0

_zygote = None


def zygote():
    """The session's grading sandbox, started on first use."""
    global _zygote
    if _zygote is None:
        from grader.sandbox.execute import Zygote

        _zygote = Zygote([ROOT], ROOT / "zygote.log")
        atexit.register(_zygote.close)
    return _zygote


def folder(name: str) -> Path:
    path = ROOT / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def grade(submissions: Path, out: Path, course: Path, **options):
    """grader.grade.grade with the session's sandbox and the tests' time limits."""
    from grader.grade import grade as run

    options.setdefault("cell_timeout", CELL_TIMEOUT)
    options.setdefault("notebook_timeout", NOTEBOOK_TIMEOUT)
    messages: list[str] = []
    results = run(submissions, out, course, progress=messages.append, zygote=zygote(),
                  progress_stream=open(os.devnull, "w"), **options)
    return results, messages


# ---------------------------------------------------------------- PostgreSQL


class PostgreSQL:
    """A throw-away PostgreSQL server: initdb in a temporary folder, on a free port of 127.0.0.1,
    trust authentication, run as `nobody` when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = binaries[-1] if binaries else shutil.which("initdb")
        if not initdb:
            raise RuntimeError("PostgreSQL's server is not installed: run `make test` (scripts/system-deps.sh "
                               "installs Debian's postgresql package) or `apt-get install postgresql`.")
        self.bin = Path(initdb).parent
        self.folder = Path(tempfile.mkdtemp(prefix="fr-postgres-"))
        self.user = None
        if os.geteuid() == 0:
            self.user = "nobody"
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.data = self.folder / "data"
        self.port = _free_port()
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "grader", "--auth=trust",
                   "--encoding=UTF8", "--no-sync"])
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w",
                   "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                         "-c max_connections=100", "start"])
        atexit.register(self.stop)
        self.url_base = f"postgresql://grader@127.0.0.1:{self.port}"

    def _run(self, command):
        done = subprocess.run(command, user=self.user, capture_output=True, text=True, timeout=120,
                              cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:2])} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def database(self, name: str) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        import psycopg2

        connection = psycopg2.connect(self.url_base + "/postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return f"{self.url_base}/{name}"

    def stop(self):
        if self.data.exists():
            subprocess.run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                           user=self.user, capture_output=True, timeout=60, cwd=self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)


_postgres = None


def postgres() -> PostgreSQL:
    global _postgres
    if _postgres is None:
        _postgres = PostgreSQL()
    return _postgres


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, seconds: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


# ---------------------------------------------------------------- a Dask cluster


_cluster = None


def cluster(workers: int = 2):
    """A Dask scheduler and `workers` one-thread `dask worker` processes on 127.0.0.1, started on
    first use (their logs in ROOT/dask-logs/) and stopped when the test session ends."""
    global _cluster
    if _cluster is None:
        from grader.grading.cluster import LocalCluster

        logs = ROOT / "dask-logs"
        logs.mkdir(exist_ok=True)
        _cluster = LocalCluster(workers, log_folder=logs)
        atexit.register(_cluster.stop)
        _cluster.wait(workers)
        # Each worker starts its sandbox now, while the tests do something else.
        from distributed import Client

        from grader.grading.cluster import warm_up

        client = Client(_cluster.address, timeout=30, set_as_default=False)
        atexit.register(client.close)
        _cluster.warming = [client.submit(warm_up, workers=[address], pure=False, key=f"warm-up-{address}")
                            for address in client.scheduler_info()["workers"]]
    return _cluster


# ---------------------------------------------------------------- small mixed batches


def mixed_batch(name: str, examples: tuple[str, ...], hostile: tuple[str, ...]) -> Path:
    """A submissions folder of these example and hostile submissions (regenerated from the source)."""
    from grader.course.hostile import write_corpus
    from grader.course.make_examples import write_examples

    root = folder(name)
    submissions = root / "submissions"
    write_corpus(submissions, list(hostile))
    write_examples(root / "examples")
    for student in examples:
        shutil.copytree(root / "examples" / student, submissions / student)
    return submissions


def grades(course, results) -> dict:
    """Per student: status, the score of every graded cell (from the gradebook) and the notes."""
    return {r.student: (r.status, course.scores(r.student), tuple(r.notes)) for r in results}
