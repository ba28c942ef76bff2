"""Jobs on a Dask cluster: one Dask task per submission, on the workers of a running scheduler.

    python -m grader.grade SUBMISSIONS --scheduler tcp://HOST:8786

The grading command connects to the scheduler as a Dask client and submits one task per
submission (a jobs.Job: the notebook and the limits, never the gradebook's URL). On the worker,
the task hands the job to the worker process's own grading station, started on the first task
and kept for the worker's life: a sandbox (zygote) and as many local grading processes as the
worker has threads (grader/grading/local.py's pool, the same code as `--jobs N`: same limits,
same isolation). The result (files and scores) comes back to the grading command, which alone
records it (grader/grading/parallel.py).

Faults: a worker that dies while grading (killed, out of memory, its machine gone) is noticed by
the scheduler, which runs its tasks again on other workers (up to the scheduler's
`distributed.scheduler.allowed-failures`, 3 by default); the grading command records a student's
first result only. A scheduler that goes away ends the run with ClusterLost: what was recorded is
kept, and the same command resumes. Ctrl-C cancels the tasks not yet finished.

Each worker machine needs the course set up exactly as on the grading machine (the same commit,
`make setup`); a worker whose grader files differ refuses the jobs (jobs.WorkerError).
`python -m grader.grading.cluster --workers 2` starts a scheduler and workers on this machine,
for trying it out (and for the tests and the benchmark: `local_cluster`).
"""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator

from grader.grading.jobs import Job, JobResult
from grader.grading.pipeline import GRADER, REPOSITORY, GradingError

# Attempts of a task that raised (not a lost worker: the scheduler retries those on its own).
RETRIES = 1
CONNECT_SECONDS = 30
WAIT_FOR_WORKERS_SECONDS = 120


class ClusterLost(GradingError):
    """The scheduler went away in the middle of a run."""


# ---------------------------------------------------------------- on a Dask worker


class Station:
    """One per Dask worker process: a zygote and a local pool of `slots` grading processes.

    Both are started, and every job handed to the pool, from one thread of its own that lives as
    long as the process: the sandbox's processes end with the thread that started them, and
    Dask's task threads come and go.
    """

    def __init__(self, slots: int):
        self.slots = max(1, slots)
        self.inbox: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, name="grader-station", daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            import atexit
            import shutil

            from grader.grading.jobs import make_template, scratch_folder
            from grader.grading.local import LocalPool
            from grader.sandbox.execute import Zygote

            # A nanny starts Dask's worker process as a "daemonic" multiprocessing child, and
            # multiprocessing refuses children to those. The grading processes end with this one
            # anyway (they ask the kernel for that: isolation.die_with_parent), so lift the flag.
            import multiprocessing

            multiprocessing.current_process()._config["daemon"] = False
            folder = scratch_folder("fr-dask-worker-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            zygote = Zygote([folder, GRADER], folder / "zygote.log")
            atexit.register(zygote.close)
            pool = LocalPool(zygote, self.slots, make_template(folder))
            atexit.register(pool.close)
        except BaseException as error:  # every task of this worker fails with it
            self.error = error
            self.ready.set()
            return
        self.ready.set()
        while True:
            job, reply = self.inbox.get()
            try:
                pool.submit(job).add_done_callback(lambda done, reply=reply: _pass_on(done, reply))
            except BaseException as error:
                reply.set_exception(error)

    def grade(self, job: Job) -> JobResult:
        self.ready.wait()
        if self.error is not None:
            raise RuntimeError(f"this worker could not start its grading sandbox: "
                               f"{type(self.error).__name__}: {self.error}")
        reply: Future = Future()
        self.inbox.put((job, reply))
        return reply.result()


def _pass_on(done: Future, reply: Future):
    error = done.exception()
    if error is not None:
        reply.set_exception(error)
    else:
        reply.set_result(done.result())


_STATION: Station | None = None
_STATION_LOCK = threading.Lock()


def grade_on_worker(job: Job) -> JobResult:
    """The Dask task: grade `job` in this worker process's station (started on first use)."""
    global _STATION
    with _STATION_LOCK:
        if _STATION is None:
            try:
                from distributed import get_worker

                slots = get_worker().state.nthreads
            except Exception:
                slots = 1
            _STATION = Station(slots)
    return _STATION.grade(job)


def warm_up() -> int:
    """A Dask task that starts this worker process's station now (a cluster's first run then does
    not wait for it); returns the process id."""
    global _STATION
    with _STATION_LOCK:
        if _STATION is None:
            from distributed import get_worker

            _STATION = Station(get_worker().state.nthreads)
    _STATION.ready.wait()
    return os.getpid()


def worker_facts() -> dict:
    """What a worker process holds (for the tests: no database URL anywhere)."""
    return {"environ": dict(os.environ), "argv": list(sys.argv), "pid": os.getpid(),
            "station": _STATION is not None}


# ---------------------------------------------------------------- in the grading command


class DaskRunner:
    """The workers of the Dask scheduler at `address` (jobs.Runner)."""

    def __init__(self, address: str, wait_for_workers: float = WAIT_FOR_WORKERS_SECONDS):
        import logging

        from distributed import Client

        # The client's own log lines (tracebacks while it tries to reconnect to a lost scheduler)
        # would bury the grading command's lines; the run reports a lost scheduler itself.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        self.address = address
        try:
            self.client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            raise GradingError(f"could not reach the Dask scheduler at {address} ({type(error).__name__}: "
                               f"{error}). Is `dask scheduler` running there, and is its port open to this "
                               "machine?") from None
        try:
            self.client.wait_for_workers(1, timeout=wait_for_workers)
        except (TimeoutError, OSError):
            self.client.close()
            raise GradingError(f"the Dask scheduler at {address} has no worker (waited {wait_for_workers:g} s): "
                               "start some with `dask worker " + address + "` (see grader/README.md)") from None
        self.futures: dict = {}

    def workers(self) -> int:
        """Task slots of the workers connected now (threads, one submission each)."""
        try:
            info = self.client.scheduler_info()
        except Exception:
            return 0
        return sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())

    def describe(self) -> str:
        return f"the {self.workers()} worker(s) of the Dask cluster at {self.address}"

    def grade(self, jobs: list[Job]) -> Iterator[tuple[Job, JobResult | BaseException]]:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        for job in jobs:
            future = self.client.submit(grade_on_worker, job, key=f"grade-{job.student}-{run}", pure=False,
                                        retries=RETRIES)
            self.futures[future] = job
        for future in as_completed(list(self.futures), loop=self.client.loop):
            job = self.futures.pop(future)
            if future.status == "cancelled" or self.client.status in ("closing", "closed"):
                raise ClusterLost(f"the Dask scheduler at {self.address} went away; what was graded is recorded: "
                                  "run the same command again to resume")
            try:
                yield job, future.result()
            except Exception as error:  # the task failed on the worker (after its retries)
                if future.status == "cancelled" or self.client.status in ("closing", "closed"):
                    raise ClusterLost(f"the Dask scheduler at {self.address} went away; what was graded is "
                                      "recorded: run the same command again to resume") from None
                yield job, error

    def close(self) -> None:
        try:
            if self.futures and self.client.status == "running":
                self.client.cancel(list(self.futures))
        except Exception:
            pass
        self.futures.clear()
        try:
            self.client.close(timeout=10)
        except Exception:
            pass


# ---------------------------------------------------------------- a cluster on this machine


class LocalCluster:
    """A scheduler and `workers` one-thread `dask worker` processes on 127.0.0.1, started as the
    staff would start them (each worker finds the grader through PYTHONPATH). For trying the
    cluster path out, the tests and the benchmark; stop() ends them."""

    def __init__(self, workers: int = 2, threads: int = 1, log_folder: Path | None = None):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        self.log_folder = Path(log_folder) if log_folder else None
        bin_folder = Path(sys.executable).parent
        self.environment = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
        self.environment.update(PYTHONPATH=str(REPOSITORY), TF_CPP_MIN_LOG_LEVEL="3")
        self.dask = str(bin_folder / "dask")
        self.scheduler = self._start("scheduler", [self.dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                                   "--no-dashboard"])
        self.workers: list[subprocess.Popen] = []
        for number in range(workers):
            self.add_worker(threads, f"worker-{number + 1}")

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        output = open(self.log_folder / f"{name}.log", "ab") if self.log_folder else subprocess.DEVNULL
        return subprocess.Popen(command, cwd=REPOSITORY, env=self.environment, stdout=output, stderr=output,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def add_worker(self, threads: int = 1, name: str | None = None) -> subprocess.Popen:
        name = name or f"worker-{len(self.workers) + 1}"
        process = self._start(name, [self.dask, "worker", self.address, "--nworkers", "1", "--nthreads", str(threads),
                                     "--name", name, "--no-dashboard", "--memory-limit", "0"])
        self.workers.append(process)
        return process

    def wait(self, workers: int, seconds: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout=seconds, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=seconds)

    def kill(self, process: subprocess.Popen, signal_number: int = 9) -> None:
        """Send `signal_number` to a started process and everything of its session (nanny, worker)."""
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        import signal

        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                self.kill(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.kill(process, signal.SIGKILL)
                process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m grader.grading.cluster",
                                     description="Start a Dask scheduler and workers on this machine (127.0.0.1) "
                                                 "for `python -m grader.grade --scheduler ...`; Ctrl-C stops them.")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--threads", type=int, default=1, help="threads (submissions at once) per worker (1)")
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.workers, args.threads)
    try:
        cluster.wait(args.workers)
        print(f"Dask scheduler at {cluster.address} with {args.workers} worker(s); grade with:\n"
              f"  .venv/bin/python -m grader.grade SUBMISSIONS --scheduler {cluster.address}\n"
              "Ctrl-C stops the cluster.", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
