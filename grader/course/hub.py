"""A JupyterHub's copy of the course files: one shared, read-only folder for every student.

    python -m grader.course.hub install /srv/facerec [--site-packages DIR] [--no-hook] [--hardlink]

What a student fetches from nbgrader's exchange is the notebook, fr_utils.py and fr_checks.py
(about 0.1 MB). What it needs besides (the `facerec` library, the photos, the two models, LFW
and its cached features, about 300 MB) is installed once, here, into a shared folder that the
hub's users can read and not write:

    /srv/facerec/facerec/ fr_utils.py fr_checks.py inception_blocks_v2.py
    /srv/facerec/images/ keras-facenet-h5/ dlib-resnet-h5/ data/lfw/ data/cache/

and the Python environment the hub's kernels run in gets a path hook, `facerec-course.pth` in its
site-packages (default: this Python's), with two lines: the shared folder (so that `import
facerec`, `fr_utils`, `fr_checks` work from any folder) and FACEREC_COURSE_FILES set to it. When a
notebook imports fr_utils, fr_utils links the folders its notebook's folder lacks (images/,
keras-facenet-h5/, dlib-resnet-h5/, data/) from FACEREC_COURSE_FILES: symbolic links, not
copies. Without the hook (`--no-hook`), set PYTHONPATH and FACEREC_COURSE_FILES to the shared
folder in the kernels' environment instead (the command prints both).

Run it from a clone where `make setup` has run (it copies that clone's files); again after a
course update. `--hardlink` links files instead of copying them when the folder is on the same
disk as the clone (then only the folders are made read-only, the files being the clone's own).
"""
from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
import sysconfig
from pathlib import Path

from grader.grading.pipeline import GOING_FURTHER_TAG, REPOSITORY

# What a running notebook needs beside it, as paths in the clone (and in the shared folder).
SHARED = ("facerec", "fr_utils.py", "fr_checks.py", "inception_blocks_v2.py", "images", "keras-facenet-h5",
          "dlib-resnet-h5", "data/lfw", "data/cache")
HOOK_NAME = "facerec-course.pth"
COURSE_ID = "face_recognition"  # grader/nbgrader_config.py's
# What fr_utils links into a student's notebook folder (fr_utils.COURSE_FOLDERS). nbgrader's submit
# copies a folder's links as the files they point to (256 MB): every student's nbgrader settings
# must leave them out, with nbgrader's own default ignores.
LINKED_FOLDERS = ("images", "keras-facenet-h5", "dlib-resnet-h5", "data")
NBGRADER_IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", *LINKED_FOLDERS]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


class HubError(Exception):
    """The shared folder could not be installed; the message says why."""


def hook_text(shared: Path) -> str:
    """The .pth file: a folder line for sys.path, an import line run at every start of Python."""
    return (f"{shared}\n"
            f"import os; os.environ.setdefault('FACEREC_COURSE_FILES', {str(shared)!r})\n")


def install(target: Path, source: Path = REPOSITORY, site_packages: Path | None = None, hook: bool = True,
            hardlink: bool = False) -> Path | None:
    """Fill `target` with SHARED from `source`, read-only; write the path hook (returned) unless not `hook`."""
    target = Path(target).resolve()
    missing = [name for name in SHARED if not (source / name).exists()]
    if missing:
        raise HubError(f"{source} lacks {', '.join(missing)}: run `make setup` there first.")
    if target.exists():
        _writable(target)
    target.mkdir(parents=True, exist_ok=True)
    copy = _link_or_copy if hardlink else shutil.copy2
    for name in SHARED:
        origin, dest = source / name, target / name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, dest, ignore=IGNORED, copy_function=copy)
        else:
            copy(origin, dest)
    _read_only(target, files=not hardlink)
    if not hook:
        return None
    site = Path(site_packages or sysconfig.get_paths()["purelib"])
    site.mkdir(parents=True, exist_ok=True)
    (site / HOOK_NAME).write_text(hook_text(target), encoding="utf-8")
    return site / HOOK_NAME


def _link_or_copy(origin, dest):
    try:
        os.link(origin, dest)
    except OSError:
        shutil.copy2(origin, dest)


def _read_only(root: Path, files: bool) -> None:
    """Everyone may read; nobody writes (the owner, root, can still replace it with `install`)."""
    for folder, _, names in os.walk(root, topdown=False):
        if files:
            for name in names:
                os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)


def _writable(root: Path) -> None:
    for folder, _, _ in os.walk(root):
        os.chmod(folder, os.stat(folder).st_mode | stat.S_IWUSR)


def size(path: Path) -> int:
    """Bytes of the files under `path` (symbolic links count as themselves, not their targets)."""
    return sum(os.lstat(os.path.join(folder, name)).st_size
               for folder, dirs, names in os.walk(path) for name in names + [d for d in dirs
                                                                          if os.path.islink(os.path.join(folder, d))])


def student_config(exchange: Path | str, student: str | None = None) -> str:
    """Every student's nbgrader settings on the hub (/etc/jupyter/nbgrader_config.py): the course's
    id and exchange, Submit leaving out the linked course folders, and Validate skipping the cells
    tagged going-further. `student` is set on a hub by the user's name."""
    return "\n".join([
        "# Students' nbgrader settings for the Face Recognition course (python -m grader.course.hub student-config)",
        "c = get_config()  # noqa: F821",
        f"c.CourseDirectory.course_id = {COURSE_ID!r}",
        *([f"c.CourseDirectory.student_id = {student!r}"] if student else []),
        f"c.Exchange.root = {str(exchange)!r}",
        "c.Execute.timeout = 300  # Validate: the first cells load TensorFlow and the network",
        "# Submit leaves out the links to the shared course files (fr_utils makes them: 256 MB)",
        f"c.CourseDirectory.ignore = {NBGRADER_IGNORE!r}",
        "# Validate does not run the ungraded Going-further cells (about 35 s of LFW photos): they",
        "# cannot change a test's result. (Grading drops them itself and runs every test cell.)",
        f"c.Execute.skip_cells_with_tag = {GOING_FURTHER_TAG!r}",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.course.hub", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("install", help="fill the shared folder and install the path hook")
    setup.add_argument("target", type=Path, help="the shared folder, e.g. /srv/facerec")
    setup.add_argument("--site-packages", type=Path, default=None,
                       help="where the path hook goes (default: this Python's site-packages)")
    setup.add_argument("--no-hook", action="store_true", help="do not write the path hook")
    setup.add_argument("--hardlink", action="store_true", help="link the clone's files instead of copying them")
    settings = commands.add_parser("student-config", help="print every student's nbgrader settings "
                                   "(for /etc/jupyter/nbgrader_config.py)")
    settings.add_argument("exchange", type=Path, help="nbgrader's exchange folder, e.g. /srv/nbgrader/exchange")
    args = parser.parse_args(argv)
    if args.command == "student-config":
        print(student_config(args.exchange), end="")
        return 0
    try:
        hook = install(args.target, site_packages=args.site_packages, hook=not args.no_hook, hardlink=args.hardlink)
    except HubError as error:
        print(f"grader.course.hub: {error}", file=sys.stderr)
        return 1
    target = args.target.resolve()
    print(f"Installed the course files into {target} ({size(target) / 1e6:.0f} MB, read-only).")
    if hook:
        print(f"Path hook: {hook} (kernels of {sys.prefix} find facerec, fr_utils and the course files).")
    else:
        print(f"No path hook: give the kernels PYTHONPATH={target} and FACEREC_COURSE_FILES={target}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
