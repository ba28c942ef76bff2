"""Submissions as an LMS hands them over, and grades back in the form its import accepts.

    download = read_download(Path("submissions.zip"), workdir, lms=None, id_pattern=None)
    download.files        # {student id as the LMS wrote it: the file to grade}
    download.notes        # {student id: notes for the feedback (other attempts, ...)}
    write_export("canvas", results, download, out, points=20)

An LMS download is a zip (or the folder it unzips to) of files named by the LMS's own rules
(`RULES`): the student's LMS id, an attempt or a copy number, the name the student gave the
file. `--lms` picks the rules; without it they are detected when exactly one LMS's names match;
`--id-pattern` is a regular expression of one's own with a named group `student_id`. A folder
whose names match no LMS is a plain folder of submissions (grader.grading.pipeline.find_submissions).

Each format's source, also in grader/README.md ("LMS downloads"):

- Canvas, "Download all submissions": `<name>[_LATE|_late]_<user id>_<submission id>_<file>`;
  Canvas renames a re-uploaded file `<stem>-1.ipynb`, `<stem>-2.ipynb`. Grades import
  (Canvas Instructor Guide, "How do I import grades in the Gradebook?"): columns `Student`, `ID`,
  `SIS User ID`, `SIS Login ID`, `Section`, then one column per assignment; a `Points Possible`
  row may follow the header; students are matched by `ID`.
- Moodle, assignment "Download all submissions": `<Full name>_<participant id>_assignsubmission_file_<file>`
  (or a folder `<Full name>_<participant id>_assignsubmission_file/` holding the file). Grades
  import: the assignment's "Upload grading worksheet" (assignfeedback_offline), which finds the
  columns `Identifier` (`Participant <id>`) and `Grade` by name; `Full name`, `Maximum Grade`
  and `Feedback comments` are columns of the worksheet Moodle itself writes.
- Blackboard Learn, Grade Center "Download assignment": `<assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>`
  plus one `<assignment>_<username>_attempt_<date>.txt` receipt per attempt. Grades upload
  (Blackboard Help, "Upload grades from external sources"): a header row, the `Username`
  column identifies the student, a grade column whose header ends in `|<column id>` updates
  that Grade Center column (without it Blackboard adds a text column); every value quoted.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from traitlets import Unicode

from grader.grading.pipeline import ASSIGNMENT, NOTEBOOK, STUDENT_ID, GradingError, find_submissions

# A whole class as a zip: refuse archives that would unpack to more than this (a zip bomb).
MAX_UNZIPPED = 4 * 1024**3
# Files an LMS or an operating system adds to a download that are never submissions.
IGNORED = re.compile(r"(^|/)(__MACOSX|\.DS_Store|Thumbs\.db|desktop\.ini|\.ipynb_checkpoints)(/|$)")


@dataclass(frozen=True)
class Rules:
    """How one LMS names a submitted file. `pattern` is matched against the file's name (or, when
    the LMS puts each student in a folder, `<folder>_<name>`); its named groups are
    `student_id`, `name` (the student's name as the LMS wrote it), `attempt` (larger is later),
    `original` (the name the student gave the file)."""

    lms: str
    pattern: str
    example: str
    # The pattern for nbgrader's stock FileNameCollectorPlugin (matched against the whole path).
    stock_pattern: str

    def match(self, relative: str):
        return _match(re.compile(self.pattern), relative)


RULES = {
    "canvas": Rules(
        "canvas",
        r"^(?P<name>[^_/]+)(?:_(?:LATE|late))?_(?P<student_id>\d+)_(?P<submission>\d+)_(?P<original>.+)$",
        "smith_10001_50001_Face_Recognition.ipynb",
        r".*/[^_/]+(?:_(?:LATE|late))?_(?P<student_id>\d+)_\d+_(?P<file_id>Face_Recognition)(?:-\d+)?\.ipynb$"),
    "moodle": Rules(
        "moodle",
        r"^(?P<name>.+?)_(?P<student_id>\d+)_assignsubmission_file_+(?P<original>[^_].*)$",
        "Ana Smith_10001_assignsubmission_file_Face_Recognition.ipynb",
        r".*/[^/]+_(?P<student_id>\d+)_assignsubmission_file(?:_|_?/(?:.*/)?)(?P<file_id>Face_Recognition)\.ipynb$"),
    "blackboard": Rules(
        "blackboard",
        r"^(?P<assignment>.+?)_(?P<student_id>[^/]+?)_attempt_"
        r"(?P<attempt>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)(?:_(?P<original>.+))?$",
        "Face Recognition_asmith_attempt_2026-11-20-14-03-55_Face_Recognition.ipynb",
        r".*/[^/]+?_(?P<student_id>[^/]+?)_attempt_\d{4}(?:-\d\d){5}_(?P<file_id>Face_Recognition)\.ipynb$"),
}


def _match(regex: re.Pattern, relative: str):
    """Match the file's name, then `<folder>_<name>` for each folder it is in, innermost first
    (Moodle's "in folders" download puts a student's files, and their folders, in one folder)."""
    parts = relative.split("/")
    for candidate in [parts[-1], *(f"{folder}_{parts[-1]}" for folder in reversed(parts[:-1]))]:
        found = regex.match(candidate)
        if found:
            return found
    return None


@dataclass
class Download:
    """The submissions found in a download."""

    folder: Path                                      # where its files are (unzipped)
    lms: str | None                                   # canvas, moodle, blackboard, "pattern", or None (plain)
    files: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # student id -> name as the LMS wrote it
    skipped: list[str] = field(default_factory=list)  # files that name no student

    def describe(self, source: Path | None = None) -> str:
        how = {None: "one folder or notebook per student", "pattern": "names read with --id-pattern"}.get(
            self.lms, f"{(self.lms or '').capitalize()}'s file names")
        several = sum(1 for notes in self.notes.values() if notes)
        return (f"{len(self.files)} student(s) in {source or self.folder} ({how})"
                + (f"; {several} handed in several files, the latest is graded" if several else "")
                + (f"; {len(self.skipped)} file(s) name no student and were skipped: "
                   f"{', '.join(self.skipped[:5])}{' ...' if len(self.skipped) > 5 else ''}" if self.skipped else ""))


def unzip(archive: Path, into: Path) -> Path:
    """Unpack `archive` into `into` (emptied first), refusing paths that leave it and zip bombs."""
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise GradingError(f"{archive} is not a zip file that can be read (it may be incomplete: download it "
                           "again), and not a folder of submissions.") from None
    with bundle:
        entries = bundle.infolist()
        if sum(entry.file_size for entry in entries) > MAX_UNZIPPED:
            raise GradingError(f"{archive} would unpack to more than {MAX_UNZIPPED / 1024**3:.0f} GB; unzip it "
                               "yourself and pass the folder.")
        if into.exists():
            shutil.rmtree(into)
        into.mkdir(parents=True)
        root = into.resolve()
        for entry in entries:
            name = entry.filename.replace("\\", "/")
            target = (into / name).resolve()
            if not str(target).startswith(str(root) + os.sep):
                raise GradingError(f"{archive}: the entry {entry.filename!r} would be written outside the "
                                   "folder it is unpacked to; this zip was not made by an LMS.")
            if stat.S_ISLNK(entry.external_attr >> 16):
                continue  # a symbolic link is never a submission, and could point anywhere
            if entry.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(entry) as source, open(target, "wb") as dest:
                shutil.copyfileobj(source, dest)
            stamp = datetime(*entry.date_time).timestamp()
            os.utime(target, (stamp, stamp))  # file times decide the latest attempt when names do not
    return into


def read_download(source: Path, workdir: Path, lms: str | None = None,
                  id_pattern: str | None = None) -> Download:
    """The submissions of a zip or folder; a zip is unpacked into `workdir` first."""
    source = Path(source)
    if source.is_file() and (source.suffix.lower() == ".zip" or zipfile.is_zipfile(source)):
        folder = unzip(source, workdir)
    elif source.is_dir():
        folder = source
    elif source.exists():
        raise GradingError(f"{source} is neither a folder nor a zip file. Pass the zip the LMS gave you (as "
                           "it is, or unzipped into a folder), or a folder with one sub-folder per student.")
    else:
        raise GradingError(f"{source} does not exist.")
    files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                   if path.is_file() and not IGNORED.search(path.relative_to(folder).as_posix()))
    if id_pattern:
        regex = compile_id_pattern(id_pattern)
        return _group(folder, "pattern", files, lambda relative: _match(regex, relative))
    if lms:
        if lms not in RULES:
            raise GradingError(f"--lms {lms}: unknown; use one of {', '.join(RULES)}, or --id-pattern.")
        return _group(folder, lms, files, RULES[lms].match)
    matching = {name: sum(1 for f in files if rules.match(f)) for name, rules in RULES.items()}
    best = max(matching.values())
    if best == 0:
        return Download(folder, None, files=find_submissions(folder))
    winners = [name for name, count in matching.items() if count == best]
    if len(winners) > 1:
        raise GradingError(f"The file names in {source} follow the rules of {' and '.join(winners)} equally: "
                           "say which with --lms.")
    return _group(folder, winners[0], files, RULES[winners[0]].match)


def compile_id_pattern(pattern: str) -> re.Pattern:
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise GradingError(f"--id-pattern {pattern!r} is not a regular expression: {error}.") from None
    if "student_id" not in regex.groupindex:
        raise GradingError(f"--id-pattern {pattern!r} has no group named student_id: write the part of the file "
                           r"name that is the student's id as (?P<student_id>...), e.g. "
                           r"'^(?P<student_id>[a-z0-9]+)_week5\.ipynb$'.")
    return regex


def _group(folder: Path, lms: str, files: list[str], match) -> Download:
    """One file per student: the latest notebook (or the latest file when none is a notebook)."""
    download = Download(folder, lms)
    by_student: dict[str, list[tuple[tuple, str, dict]]] = {}
    for relative in files:
        found = match(relative)
        groups = found.groupdict() if found else {}
        if not groups.get("student_id") or (lms == "blackboard" and not groups.get("original")):
            download.skipped.append(relative)  # Blackboard's receipts (.txt) have no original file name
            continue
        student = groups["student_id"]
        if not STUDENT_ID.match(student):
            raise GradingError(f"{relative}: the student id read from its name, {student!r}, cannot be an "
                               "nbgrader student id (letters, digits and _ . @ - only). Check --lms or --id-pattern.")
        by_student.setdefault(student, []).append((_order(folder / relative, groups), relative, groups))
    if not by_student:
        rules = RULES.get(lms)
        raise GradingError(f"No file in {folder} is named the way "
                           f"{'--id-pattern says' if lms == 'pattern' else lms + ' names submissions'}"
                           + (f" (e.g. {rules.example})" if rules else "") + ": check --lms or --id-pattern.")
    for student in sorted(by_student):
        attempts = sorted(by_student[student])
        notebooks = [a for a in attempts if a[1].lower().endswith(".ipynb")]
        chosen = (notebooks or attempts)[-1]
        download.files[student] = folder / chosen[1]
        name = chosen[2].get("name")
        if name:
            download.names[student] = name
        others = [a[1] for a in attempts if a is not chosen]
        download.notes[student] = [
            f"You handed in {len(attempts)} files; the latest{' notebook' if notebooks and len(notebooks) < len(attempts) else ''}, "
            f"{chosen[1]}, was graded, not: {', '.join(others)}."] if others else []
    return download


def _order(path: Path, groups: dict) -> tuple:
    """Sort key of one attempt: the LMS's attempt (a date or a number), the copy suffix it gave a
    re-uploaded file (`-1`, `-2`), its submission number, then the file's time."""
    original = groups.get("original") or ""
    suffix = re.search(r"-(\d+)\.[^.]+$", original)
    return (groups.get("attempt") or "", int(suffix.group(1)) if suffix else 0,
            int(groups.get("submission") or 0), path.stat().st_mtime)


# ---------------------------------------------------------------- grades back into the LMS

EXPORT_FILES = {"canvas": "grades-canvas.csv", "moodle": "grades-moodle.csv", "blackboard": "grades-blackboard.csv"}


def write_export(lms: str, results, download: Download | None, out: Path, points: float,
                 column: str | None = None) -> Path:
    """Write the grades file `lms`'s import accepts; return its path.

    A student whose file could not be graded at all (the grader failed) gets an empty grade,
    which every one of these imports leaves alone; an unreadable file gets its 0.
    """
    names = download.names if download else {}
    path = Path(out) / EXPORT_FILES[lms]
    rows = [(r.student, names.get(r.student, ""), f"{r.score:g}" if r.graded or r.status == "unreadable" else "",
             r) for r in results]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        if lms == "canvas":
            writer = csv.writer(handle)
            header = column or ASSIGNMENT.replace("_", " ")
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", header])
            writer.writerow(["Points Possible", "", "", "", "", f"{points:g}"])
            for student, name, score, _ in rows:
                writer.writerow([name, student, "", "", "", score])
        elif lms == "moodle":
            writer = csv.writer(handle)
            writer.writerow(["Identifier", "Full name", "Grade", "Maximum Grade", "Feedback comments"])
            for student, name, score, result in rows:
                writer.writerow([f"Participant {student}", name, score, f"{points:g}",
                                 " ".join(result.notes[:1])[:500]])
        elif lms == "blackboard":
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
            header = column or f"{ASSIGNMENT.replace('_', ' ')} [Total Pts: {points:g} Score]"
            writer.writerow(["Username", header])
            for student, _, score, _ in rows:
                writer.writerow([student, score])
        else:
            raise GradingError(f"--export {lms}: unknown; use one of {', '.join(EXPORT_FILES)}.")
    return path


# ---------------------------------------------------------------- the stock nbgrader zip_collect


try:
    from nbgrader.plugins.zipcollect import FileNameCollectorPlugin
except ImportError:  # nbgrader is in requirements.txt; this keeps the module importable without it
    FileNameCollectorPlugin = object


class LatestAttemptCollector(FileNameCollectorPlugin):
    """A collector for `nbgrader zip_collect` that reads an LMS's file names with RULES and
    collects each student's latest notebook only (nbgrader's own plugin cannot choose between
    Canvas's `Face_Recognition.ipynb` and `Face_Recognition-1.ipynb`, which carry no time).

        c.ZipCollectApp.collector_plugin = "grader.grading.lms.LatestAttemptCollector"
        c.LatestAttemptCollector.lms = "canvas"          # or moodle, blackboard
    """

    lms = Unicode("", help="canvas, moodle or blackboard; empty: detected from the file names").tag(config=True)

    def collect(self, submitted_file: str):
        if not submitted_file.endswith(".ipynb"):
            return None
        app = self.parent  # nbgrader's ZipCollectApp: the folder it unpacked the download into
        folder = Path(app._format_collect_path(app.extracted_directory) if hasattr(app, "_format_collect_path")
                      else Path(submitted_file).parent)
        if getattr(self, "_download", None) is None or self._download.folder != folder:
            self._download = read_download(folder, folder, lms=self.lms or None)
        for student, path in self._download.files.items():
            if Path(path) == Path(submitted_file):
                return {"student_id": student, "file_id": NOTEBOOK}
        return None
