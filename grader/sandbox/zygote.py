"""The zygote: one process per grading run that has imported TensorFlow, Keras, IPython, matplotlib
and the course helpers once, and forks a fresh, isolated kernel for every submission.

    python -m grader.sandbox.zygote --dir DIR [--hidden PATH ...]

started by grader.sandbox.execute.Zygote, never by hand. It prints one JSON line when ready (what the
machine allows for isolation, where the course photos' encodings are: computed once, then kept in
data/cache/course-encodings/ for later runs) and then serves fork
requests on DIR/zygote.sock. For each request (a notebook and two file descriptors: the socket
the grader will talk to the kernel over, and the write end of a pipe the grader drains into the
student's log: the kernel's stdout and stderr) it forks:

    sandbox  (this machine's PID namespace; root)  unshares the namespaces, builds the kernel's
    |                                              read-only root, reports `started`, waits
    +-- init (PID 1 of a new PID namespace)        mounts /proc, forwards the grader's interrupts
        |                                          (SIGUSR1) to the kernel as SIGINT, reports the
        |                                          kernel's exit status; when it ends, every
        |                                          process of the namespace ends with it
        +-- kernel (PID 2)                         drops privileges, sets rlimits, runs cells
                                                   (grader/sandbox/kernel.py)

Why a fork and not a new process: starting Python and importing TensorFlow and Keras takes
about 4 s of CPU, every time. A fork shares the imported modules (copy-on-write) and starts in
milliseconds. TensorFlow is imported here but its runtime is never started (no tensor, no
model): its thread pools do not survive a fork, so each kernel starts its own, as a new process
would. What a fork changes for isolation is in grader/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
# What a kernel's environment holds: nothing of the grader's (database URLs, tokens).
KERNEL_ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/home", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
    "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": "/tmp/home/.matplotlib",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline", "KERAS_HOME": "/tmp/home/.keras",
}
# The course files a notebook opens from its folder (grader.grading.pipeline.COURSE_FILES without the
# grader itself: hidden tests never run in a kernel).
KERNEL_COURSE_FILES = ("images", "keras-facenet-h5", "facerec", "fr_utils.py", "fr_checks.py")
UID_BASE = 1_000_000  # kernels run as UID_BASE + the sandbox process's PID: a user id of their own


def _import_everything():
    """What kernels use, imported once (and warmed up where that needs no TensorFlow runtime)."""
    import numpy  # noqa: F401
    import tensorflow  # noqa: F401
    import keras  # noqa: F401
    import mtcnn  # noqa: F401
    import PIL.Image  # noqa: F401
    import matplotlib
    import matplotlib.pyplot as plt
    import matplotlib_inline.backend_inline  # noqa: F401
    import IPython.core.interactiveshell  # noqa: F401
    import IPython.core.pylabtools  # noqa: F401
    import pandas  # noqa: F401
    import tqdm  # noqa: F401

    sys.path.insert(0, str(REPOSITORY))
    import fr_utils  # noqa: F401  (imports facerec.encode, .align, .images, .errors)
    import fr_checks  # noqa: F401
    import facerec.original_model  # noqa: F401
    import grader.sandbox.callee  # noqa: F401
    import grader.sandbox.kernel  # noqa: F401
    import io

    # The first figure of a process loads fonts and builds caches: do it once, here.
    figure, axes = plt.subplots(1, 2, figsize=(3, 2))
    axes[0].imshow(numpy.zeros((8, 8, 3), numpy.uint8))
    axes[1].hist([0.1, 0.2, 0.2])
    axes[1].set_title("warm-up $x^2$")
    figure.savefig(io.BytesIO(), format="png")
    plt.close(figure)
    matplotlib.rcdefaults()


# The course photos' encodings, kept from one run to the next (set-up's data/ folder, never committed).
ENCODINGS_CACHE = REPOSITORY / "data" / "cache" / "course-encodings"


def _encodings_key() -> str:
    """What the course photos' encodings depend on: the course model's two files, the photos, the
    code that reads and encodes them, and the versions of the libraries that run it."""
    import hashlib

    import jpeglib
    import keras
    import numpy
    import PIL
    import tensorflow

    from facerec.assets import sha256_file
    from grader.sandbox import callee

    digest = hashlib.sha256(b"course-encodings v1")
    files = [REPOSITORY / "keras-facenet-h5" / "model.json", REPOSITORY / "keras-facenet-h5" / "model.h5",
             *(REPOSITORY / callee.PHOTO_FOLDER / file for file in callee.PHOTO_FILES),
             REPOSITORY / "fr_utils.py", Path(callee.__file__), *sorted((REPOSITORY / "facerec").glob("*.py"))]
    for path in files:
        digest.update(f"{path.parent.name}/{path.name} {sha256_file(path)}\0".encode())
    for module in (tensorflow, keras, numpy, PIL, jpeglib):
        digest.update(f"{module.__name__} {getattr(module, '__version__', '?')}\0".encode())
    return digest.hexdigest()[:32]


def _course_encodings(path: Path, cache_folder: Path = ENCODINGS_CACHE) -> tuple[dict, bool]:
    """The course photos' encodings by the course model, saved to `path`, and whether they came
    from the cache.

    Taken from `cache_folder` when an earlier run computed them from the same files, code and
    libraries (`_encodings_key`); otherwise computed in a child process (TensorFlow's runtime must
    not start in the zygote) and kept there for the next run. That saves each run (and each press of
    the formgrader's Autograde button, each Dask worker) about 4 s of CPU. Whoever can write the
    cache could change grades, as whoever can write the model's files could: it sits in the
    course's own data/ folder, which kernels never see."""
    import shutil

    import numpy as np

    cached = None
    try:
        cached = Path(cache_folder) / f"{_encodings_key()}.npz"
        with np.load(cached) as data:
            found = {key: data[key] for key in data.files}
        from grader.sandbox import callee

        if set(found) == set(callee.PHOTO_FILES):
            shutil.copyfile(cached, path)
            return found, True
    except Exception:  # not cached yet, unreadable or damaged, or a file is missing: compute them
        pass
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(REPOSITORY)
            import fr_utils
            from grader.sandbox import callee

            model = fr_utils.load_model(str(REPOSITORY / "keras-facenet-h5"))
            encodings = callee.encode_course_photos(model, str(REPOSITORY / callee.PHOTO_FOLDER))
            np.savez(path, **encodings)
            code = 0
        except BaseException as error:  # reported by the parent
            print(f"zygote: encoding the course photos failed: {type(error).__name__}: {error}", file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("zygote: could not encode the course photos (see above)")
    with np.load(path) as data:
        found = {key: data[key] for key in data.files}
    if cached is not None:
        try:  # for the next run; another process reading it never sees half a file
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f"{cached.stem}.{os.getpid()}.partial")
            shutil.copyfile(path, partial)
            os.replace(partial, cached)
        except OSError:  # a read-only course folder: computed again next time
            pass
    return found, False


class Zygote:
    def __init__(self, folder: Path, hidden: list[Path]):
        from grader.sandbox import isolation

        self.folder = folder
        self.support = isolation.probe()
        self.plan = isolation.Plan.for_course(REPOSITORY, list(KERNEL_COURSE_FILES), hidden + [folder])
        self.new_root = folder / "root"
        self.new_root.mkdir(mode=0o700, exist_ok=True)
        self.fr_checks_code = compile((REPOSITORY / "fr_checks.py").read_text(encoding="utf-8"),
                                      str(REPOSITORY / "fr_checks.py"), "exec")

    def serve(self, listener: socket.socket):
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sandbox processes are reaped automatically
        while True:
            connection, _ = listener.accept()
            try:
                connection.settimeout(30)
                _, fds, _, _ = socket.recv_fds(connection, 1, 2)
                from grader.sandbox import wire

                request = wire.receive(connection, time.monotonic() + 30)
                connection.settimeout(None)
            except Exception as error:  # a broken request: drop it
                print(f"zygote: dropped a request ({error})", file=sys.stderr)
                connection.close()
                continue
            if len(fds) != 2:
                connection.close()
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                code = 1
                try:
                    code = self.sandbox(connection, fds[0], fds[1], request)
                finally:
                    os._exit(code)
            connection.close()
            for fd in fds:
                os.close(fd)

    # ---------------------------------------------------------------- in the sandbox process

    def sandbox(self, status: socket.socket, kernel_fd: int, log_fd: int, request: dict) -> int:
        from grader.sandbox import isolation, wire

        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        isolation.die_with_parent()
        uid = UID_BASE + os.getpid() if self.support.own_uid else os.geteuid()
        try:
            if self.support.namespaces:
                flags = (isolation.CLONE_NEWNS | isolation.CLONE_NEWNET | isolation.CLONE_NEWPID
                         | isolation.CLONE_NEWIPC | isolation.CLONE_NEWUTS)
                if self.support.user_namespace:
                    real_uid, real_gid = os.geteuid(), os.getegid()
                    isolation.unshare(flags | isolation.CLONE_NEWUSER)
                    isolation.write_id_maps(real_uid, real_gid)
                else:
                    isolation.unshare(flags)
                isolation.sethostname("grader")
                workdir = isolation.build_root(self.plan, self.new_root, request["notebook_name"],
                                               request["notebook"], uid if self.support.own_uid else 0)
            else:
                workdir = self._unisolated_workdir(request, uid)
        except Exception as error:
            wire.send(status, {"event": "error", "message": f"sandbox set-up failed: {type(error).__name__}: {error}"})
            return 1
        init = os.fork()
        if init == 0:
            code = 1
            try:
                code = self.init(status, kernel_fd, log_fd, request, workdir, uid)
            finally:
                os._exit(code)
        os.close(kernel_fd)
        os.close(log_fd)
        pidfd = os.pidfd_open(init)
        socket.send_fds(status, [json.dumps({"event": "started", "pid": init}).encode()], [pidfd])
        os.close(pidfd)
        status.close()
        os.waitpid(init, 0)
        return 0

    def _unisolated_workdir(self, request: dict, uid: int) -> Path:
        """Without namespaces: a private working folder linked to the course files."""
        import tempfile

        workdir = Path(tempfile.mkdtemp(prefix="kernel-", dir=self.folder)) / "Face_Recognition"
        workdir.mkdir()
        for name in KERNEL_COURSE_FILES:
            if (REPOSITORY / name).exists():
                (workdir / name).symlink_to(REPOSITORY / name)
        (workdir / request["notebook_name"]).write_text(request["notebook"], encoding="utf-8")
        os.chown(workdir.parent, uid, uid)
        os.chown(workdir, uid, uid)
        os.chmod(workdir.parent, 0o700)
        return workdir

    def init(self, status: socket.socket, kernel_fd: int, log_fd: int, request: dict, workdir: Path,
             uid: int) -> int:
        from grader.sandbox import isolation, wire

        isolation.die_with_parent()
        if self.support.namespaces:
            isolation.mount_proc()
        kernel = os.fork()
        if kernel == 0:
            code = 1
            try:
                status.close()
                code = self.kernel(kernel_fd, log_fd, request, workdir, uid)
            except BaseException:  # a failure of the grader's own: say it in the student's log
                import traceback

                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(kernel_fd)
        os.close(log_fd)
        signal.signal(signal.SIGUSR1, lambda *_: os.kill(kernel, signal.SIGINT))
        signal.signal(signal.SIGTERM, lambda *_: os.kill(kernel, signal.SIGKILL))
        while True:  # as PID 1, also reap whatever the kernel started and left behind
            try:
                pid, code = os.waitpid(-1, 0)
            except ChildProcessError:
                return 1
            except InterruptedError:
                continue
            if pid == kernel:
                break
        try:
            wire.send(status, {"event": "exit", "status": code})
        except OSError:
            pass
        if not self.support.namespaces:
            try:
                os.killpg(kernel, signal.SIGKILL)
            except OSError:
                pass
        return 0

    def kernel(self, kernel_fd: int, log_fd: int, request: dict, workdir: Path, uid: int) -> int:
        from grader.sandbox import isolation
        from grader.sandbox.kernel import Kernel

        isolation.die_with_parent()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the grader's interrupt: KeyboardInterrupt
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if not self.support.namespaces:
            os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(devnull)
        os.close(log_fd)
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(KERNEL_ENVIRONMENT)
        if not self.support.namespaces:  # no private /tmp: keep the kernel's files in its own folder
            home = workdir.parent / "home"
            home.mkdir(exist_ok=True)
            os.chown(home, uid, uid)
            os.environ.update(HOME=str(home), TMPDIR=str(workdir.parent), MPLCONFIGDIR=str(home / ".matplotlib"),
                              KERAS_HOME=str(home / ".keras"))
        sys.path[:] = ["", *[p for p in sys.path if p and Path(p).resolve() != REPOSITORY], str(REPOSITORY)]
        sys.argv = ["grader-kernel"]
        if self.support.own_uid or self.support.user_namespace:
            isolation.drop_privileges(uid, uid)
        limits = isolation.Limits(memory_bytes=int(request["memory_bytes"]),
                                  cpu_seconds=int(request["cpu_seconds"]))
        isolation.apply_limits(limits, own_uid=self.support.own_uid)
        isolation.install_seccomp()
        connection = socket.socket(fileno=kernel_fd)
        Kernel(connection, encodings=ENCODINGS, model_folder=str(REPOSITORY / "keras-facenet-h5"),
               fr_checks_code=self.fr_checks_code, threads=int(request["threads"])).serve()
        return 0


ENCODINGS: dict = {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.sandbox.zygote")
    parser.add_argument("--dir", type=Path, required=True, help="a private folder (0700) for the socket and caches")
    parser.add_argument("--hidden", type=Path, action="append", default=[],
                        help="a folder kernels must not see (the course, the submissions, the output)")
    parser.add_argument("--cache", type=Path, default=ENCODINGS_CACHE,
                        help="where the course photos' encodings are kept between runs")
    args = parser.parse_args(argv)
    # Set here, in the zygote's own process, not when the module is imported: a process that only
    # imports a name from this module (a test, the grading command) keeps its environment.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("MPLBACKEND", "Agg")
    started = time.perf_counter()
    from grader.sandbox import isolation

    isolation.die_with_parent(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grading command stops us itself

    def stop(*_):  # the grading command ended (or stopped us): leave nothing behind
        import shutil

        shutil.rmtree(args.dir, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    _import_everything()
    imported = time.perf_counter()
    global ENCODINGS
    ENCODINGS, from_cache = _course_encodings(args.dir / "encodings.npz", args.cache)
    zygote = Zygote(args.dir.resolve(), args.hidden)
    path = args.dir / "zygote.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    print(json.dumps({"ready": True, "socket": str(path), "encodings": str(args.dir / "encodings.npz"),
                      "isolation": zygote.support.describe(), "namespaces": zygote.support.namespaces,
                      "threshold": float(sys.modules["fr_utils"].DISTANCE_THRESHOLD),
                      "import_seconds": round(imported - started, 2),
                      "encode_seconds": round(time.perf_counter() - imported, 2), "encodings_cached": from_cache,
                      "threads": threads}),
          flush=True)
    zygote.serve(listener)
    return 0


if __name__ == "__main__":
    sys.exit(main())
