"""Grading on a Dask cluster (issue 13): a real `dask scheduler` and two one-thread `dask worker`
processes on 127.0.0.1 grade a small batch; the grades are those of a local serial run, into
SQLite and into PostgreSQL; a worker killed with SIGKILL in the middle of the run loses nothing
and no submission is recorded twice; a worker never holds the gradebook's URL.
"""
from __future__ import annotations

import dataclasses
import pickle
import signal
import time

import pytest

import grading_support as support
from grader.course.make_examples import EXAMPLES
from grader.grading.pipeline import ASSIGNMENT, Course

EXAMPLE_NAMES = ("solution",)
HOSTILE_NAMES = ("os_exit", "not_json")


@pytest.fixture(scope="module")
def submissions():
    return support.mixed_batch("cluster", EXAMPLE_NAMES, HOSTILE_NAMES)


grades = support.grades


@pytest.fixture(scope="module")
def dask():
    return support.cluster(2)


@pytest.fixture(scope="module")
def reference(submissions, dask):
    """The batch graded locally, one job at a time, into SQLite."""
    root = support.folder("cluster-serial")
    results, _ = support.grade(submissions, root / "out", root / "course", jobs=1)
    return grades(Course(root / "course"), results)


def test_the_cluster_grades_as_a_local_serial_run_into_sqlite(submissions, dask, reference):
    root = support.folder("cluster-sqlite")
    results, messages = support.grade(submissions, root / "out", root / "course", scheduler=dask.address)
    assert grades(Course(root / "course"), results) == reference
    assert any(f"with the 2 worker(s) of the Dask cluster at {dask.address}" in m for m in messages)
    assert results.workers == 2
    expected = {e.student: e.expected() for e in EXAMPLES if e.student in EXAMPLE_NAMES}
    for student, cells in expected.items():
        assert {c: s for c, (s, _) in reference[student][1].items()} == pytest.approx(cells)
    assert sum(s for s, _ in reference["os_exit"][1].values()) == 8
    assert all((root / "out" / "feedback" / f"{r.student}.html").exists() for r in results)
    assert all((root / "course" / "logs" / f"{r.student}.log").exists() for r in results)


def test_a_worker_killed_mid_run_loses_nothing_and_nothing_is_recorded_twice(submissions, dask, reference):
    """Into PostgreSQL: when the first result arrives, the worker grading another submission is
    killed (SIGKILL, with its nanny); the scheduler hands its task to the other worker."""
    from distributed import Client
    from nbgrader.api import Gradebook

    url = support.postgres().database("cluster")
    root = support.folder("cluster-killed")
    killed = []

    def kill_a_busy_worker():
        with Client(dask.address, timeout=30, set_as_default=False) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                busy = [address for address, keys in client.processing().items() if keys]
                names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
                if busy:
                    name = names[busy[0]]
                    process = next(p for p in dask.workers if p.args[p.args.index("--name") + 1] == name)
                    dask.kill(process, signal.SIGKILL)
                    killed.append(name)
                    return
                time.sleep(0.2)

    messages: list[str] = []

    def progress(message: str):
        messages.append(message)
        if message.startswith("[1/") and not killed:
            kill_a_busy_worker()

    from grader.grade import grade

    results = grade(submissions, root / "out", root / "course", progress=progress, scheduler=dask.address,
                    db_url=url, cell_timeout=support.CELL_TIMEOUT, notebook_timeout=support.NOTEBOOK_TIMEOUT,
                    progress_stream=open("/dev/null", "w"))
    assert killed, "no worker was busy to be killed"
    course = Course(root / "course", db_url=url)
    assert grades(course, results) == reference
    numbered = [m.split()[1].rstrip(":") for m in messages if m.startswith("[")]
    assert sorted(numbered) == sorted(reference)  # each student reported (and recorded) once
    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        submitted = gradebook.assignment_submissions(ASSIGNMENT)
        assert sorted(s.student.id for s in submitted) == sorted(reference)
        assert all(len(s.notebooks[0].grades) == 7 for s in submitted)
    assert len(list((root / "course" / "grading-state").glob("*.json"))) == len(reference)
    assert not (root / "course" / "gradebook.db").exists()


def test_a_worker_holds_no_database_url(dask):
    """Nothing a worker process holds names the gradebook: its environment, its command line;
    and a job has no field for one."""
    from distributed import Client

    from grader.grading.cluster import worker_facts
    from grader.grading.jobs import Job, Limits

    url = support.postgres().url_base
    with Client(dask.address, timeout=30, set_as_default=False) as client:
        facts = client.run(worker_facts)
    assert facts and any(held["station"] for held in facts.values())  # it graded (the PostgreSQL run)
    for address, held in facts.items():
        text = repr(held["environ"]) + repr(held["argv"])
        for secret in (url, "postgresql", "gradebook", "sqlite"):
            assert secret not in text, (address, secret)
    names = {f.name for f in dataclasses.fields(Job)}
    assert names == {"student", "notebook", "limits", "version", "rejected", "notes"}
    job = Job("s1", b"{}", Limits(), "v")
    assert b"postgresql" not in pickle.dumps(job)


def test_the_scheduler_and_workers_run_with_the_grading_settings(dask):
    """Set-up puts grader/grading/dask.yaml where Dask looks (the venv's etc/dask/), so the
    `dask scheduler` and `dask worker` commands pick it up with nothing more on their command line."""
    import sys
    from pathlib import Path

    from dask import config as dask_config
    from distributed import Client

    from grader.grading.pipeline import GRADER

    committed = GRADER / "grading" / "dask.yaml"
    installed = Path(sys.prefix) / "etc" / "dask" / "facerec-grading.yaml"
    assert installed.read_bytes() == committed.read_bytes()
    assert str(installed.parent) in dask_config.paths

    # The file is the only place these can come from: the processes reading them is the proof it is read.
    wanted = {"distributed.admin.tick.interval": "500ms", "distributed.admin.system-monitor.interval": "2s",
              "distributed.worker.profile.enabled": False, "distributed.worker.memory.monitor-interval": "1s"}

    def read(keys=tuple(wanted)):
        from dask import config

        return {key: config.get(key) for key in keys}

    with Client(dask.address, timeout=30, set_as_default=False) as client:
        on_workers = client.run(read)
        on_scheduler = client.run_on_scheduler(read)
    assert on_workers  # one or two: the test above killed one of them
    for address, found in on_workers.items():
        assert found == wanted, address
    assert on_scheduler == wanted
