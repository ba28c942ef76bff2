"""Start JupyterLab on this folder, with nbgrader's JupyterLab tools set up for the course.

    python -m grader.course.lab [--root DIR] [--course DIR] [--exchange DIR] [--port N] [-- LAB OPTIONS]
    python -m grader.course.lab --student ID --root HOME --exchange DIR [--port N] [-- LAB OPTIONS]

It serves on 127.0.0.1 only, on a free port (or --port), behind a fresh random token, and prints
the address to open once the server answers. Ctrl-C (or SIGTERM) stops it and its kernels.

--root DIR      the folder JupyterLab shows (default: the repository, where students find
                Face_Recognition.ipynb)
--course DIR    the nbgrader course the formgrader shows (default: grader/). It must be inside
                --root: nbgrader's formgrader refuses a course outside the server's folder.
--exchange DIR  nbgrader's exchange, where released assignments wait for students in the
                "Assignments" tab (default: <course>/.work/exchange, ignored by git)
--port N        default: a free port chosen at random
--student ID    a student's server instead (a hub's student, on one machine): no course and no
                formgrader; the Assignment List fetches from and submits to --exchange as student
                ID (nbgrader's student id, whatever the account's user name is)

nbgrader's extensions read their settings from `nbgrader_config.py` files on Jupyter's config
path, not from the server's command line. So this writes one into a temporary folder, puts that
folder first on JUPYTER_CONFIG_PATH for the server only, and removes it when the server stops.
The formgrader's Autograde button grades in the grader's sandbox (grader/course/formgrader.py,
a server extension this enables). That file loads the course's own nbgrader_config.py (grader/'s when the course has none), then
sets the course folder and the exchange. The same folder holds two JupyterLab defaults for this
server (no news feed, no update check: nothing is fetched from the internet, and no question
pops up over the notebook). The stock `nbgrader` commands, `python -m grader.grade` and the
course's nbgrader_config.py are unchanged.

Anything after `--` goes to `jupyter lab` as it is (`-- --LabApp.user_settings_dir=/tmp/x`).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from grader.course.hub import COURSE_ID
from grader.course.hub import student_config as hub_student_config
from grader.grading.pipeline import GOING_FURTHER_TAG, GRADER, REPOSITORY

# nbgrader's server extensions: the assignment list ("Assignments" tab), the notebook toolbar's
# Validate button, the formgrader and the course list. Enabled explicitly, whatever the
# environment's own `jupyter server extension` settings say.
NBGRADER_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)
# Ours: the formgrader's Autograde button runs `python -m grader.grade` (the grader's sandbox)
# instead of stock nbgrader's unsandboxed kernel (grader/course/formgrader.py).
COURSE_SERVER_EXTENSIONS = ("grader.course.formgrader",)
# JupyterLab defaults for this server (a user's own settings still win): never ask about, nor
# fetch, Jupyter's news feed; the question would sit over the notebook on first start.
LAB_SETTING_DEFAULTS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
READY_TIMEOUT = 120  # seconds for the server to answer; JupyterLab starts in 3 to 10 s


class LabError(Exception):
    """The server could not be started; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def student_config(student: str, exchange: Path) -> str:
    """The nbgrader_config.py of a student's server: the hub's students' settings, and who submits."""
    return "# Written by grader/course/lab.py for one student's JupyterLab server; removed when it stops.\n" + \
        hub_student_config(exchange, student)


def nbgrader_config(course: Path, exchange: Path) -> str:
    """The text of the nbgrader_config.py that nbgrader's extensions read."""
    own = course / "nbgrader_config.py"
    settings = own if own.is_file() else GRADER / "nbgrader_config.py"
    return "\n".join([
        "# Written by grader/course/lab.py for one JupyterLab server; removed when it stops.",
        "c = get_config()  # noqa: F821",
        f"load_subconfig({str(settings)!r})  # noqa: F821 (the course's settings)",
        f"c.CourseDirectory.root = {str(course)!r}",
        "if not c.CourseDirectory.get('course_id'):",
        f"    c.CourseDirectory.course_id = {COURSE_ID!r}",
        f"c.Exchange.root = {str(exchange)!r}",
        "# Validate skips the ungraded Going-further cells, as on a hub (grader.course.hub.student_config)",
        f"c.Execute.skip_cells_with_tag = {GOING_FURTHER_TAG!r}",
        "",
    ])


def lab_command(root: Path, port: int, token: str, extra: list[str], student: str | None = None) -> list[str]:
    names = ([name for name in NBGRADER_SERVER_EXTENSIONS if not name.endswith(".formgrader")] if student
             else [*NBGRADER_SERVER_EXTENSIONS, *COURSE_SERVER_EXTENSIONS])
    extensions = "{" + ", ".join(f"'{name}': True" for name in names) + "}"
    # `python -m jupyterlab`, with the repository importable by the server (for our extension)
    # and not by its kernels (the hidden tests live in grader/)
    start = f"import sys; sys.path.insert(0, {str(REPOSITORY)!r}); from jupyterlab.labapp import main; sys.exit(main())"
    return [
        sys.executable, "-c", start,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.jpserver_extensions={extensions}",
        # nothing fetched from the internet: no news feed, no update check
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # containers and CI machines often run as root, which JupyterLab refuses unless told
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        *extra,
    ]


def _die_with_parent() -> None:
    """In the server process (Linux): get SIGTERM if the launcher dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def wait_until_ready(server: subprocess.Popen, port: int, token: str, timeout: float = READY_TIMEOUT) -> None:
    """Return once the server answers /api/status; raise LabError if it exits or never answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                     headers={"Authorization": f"token {token}"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise LabError(f"JupyterLab stopped at start-up (exit status {server.returncode}); "
                           "its messages are above.")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise LabError(f"JupyterLab did not answer on port {port} within {timeout:.0f} s.")


def stop(server: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM (the server shuts its kernels down), then SIGKILL after `grace` seconds."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(grace)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="python -m grader.course.lab",
        description="Start JupyterLab on 127.0.0.1 with nbgrader's assignment list, Validate button "
                    "and formgrader set up for the course; print the address to open.",
        epilog="Anything after -- is passed to `jupyter lab`.")
    parser.add_argument("--root", type=Path, default=REPOSITORY,
                        help="folder JupyterLab shows (default: the repository)")
    parser.add_argument("--course", type=Path, default=GRADER,
                        help="nbgrader course folder, inside --root (default: grader/)")
    parser.add_argument("--exchange", type=Path, default=None,
                        help="nbgrader exchange folder (default: <course>/.work/exchange)")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--student", metavar="ID", default=None,
                        help="a student's server: no course, no formgrader; submits as ID to --exchange")
    args = parser.parse_args(argv)
    if args.student and not args.exchange:
        parser.error("--student needs --exchange (the instructor's)")

    root, course = args.root.resolve(), args.course.resolve()
    exchange = (args.exchange or course / ".work" / "exchange").resolve()
    if not root.is_dir():
        parser.error(f"--root {root} is not a folder")
    if not course.is_dir():
        parser.error(f"--course {course} is not a folder")
    if not course.is_relative_to(root) and not args.student:
        parser.error(f"the course {course} is not inside {root}: nbgrader's formgrader only "
                     "works with a course inside the folder JupyterLab shows")
    exchange.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    token = secrets.token_hex(24)

    config_dir = Path(tempfile.mkdtemp(prefix="fr-lab-config-"))
    (config_dir / "nbgrader_config.py").write_text(
        student_config(args.student, exchange) if args.student else nbgrader_config(course, exchange), encoding="utf-8")
    (config_dir / "labconfig").mkdir()
    (config_dir / "labconfig" / "default_setting_overrides.json").write_text(
        json.dumps(LAB_SETTING_DEFAULTS, indent=2), encoding="utf-8")
    env = dict(os.environ)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(config_dir), *filter(None, env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep))])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # kernels inherit it: fewer TensorFlow log lines

    # Ctrl-C and SIGTERM: the server and its kernels are stopped, the config removed. (SIGINT is
    # set too, since a shell starting us in the background would have it ignored.)
    handlers = {number: signal.signal(number, _interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        # A session of its own: Ctrl-C reaches the launcher only, which stops the server without
        # JupyterLab's "Shutdown this Jupyter server (y/[n])?" question.
        server = subprocess.Popen(lab_command(root, port, token, extra, args.student), cwd=root, env=env,
                                  start_new_session=True, preexec_fn=_die_with_parent)
        wait_until_ready(server, port, token)
        print(f"\nJupyterLab is ready: http://127.0.0.1:{port}/lab?token={token}\n"
              f"  folder    {root}\n"
              + (f"  student   {args.student} (no course, no formgrader)\n" if args.student else
                 f"  course    {course} (menu Nbgrader > Formgrader)\n")
              + f"  exchange  {exchange} (menu Nbgrader > Assignment List)\n"
              "Stop it with Ctrl-C.\n", flush=True)
        server.wait()
        return server.returncode or 0
    except KeyboardInterrupt:
        print("\nStopping JupyterLab...", flush=True)
        return 0
    except LabError as error:
        print(f"grader.course.lab: {error}", file=sys.stderr)
        return 1
    finally:
        for stop_signal in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C: cleanup goes on
            signal.signal(stop_signal, signal.SIG_IGN)
        if server is not None:
            stop(server)
        shutil.rmtree(config_dir, ignore_errors=True)
        for stop_signal, handler in handlers.items():
            signal.signal(stop_signal, handler)


if __name__ == "__main__":
    sys.exit(main())
