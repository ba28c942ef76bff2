"""Reading a submitted file before nbgrader sees it: anything that is not a readable notebook is
turned into a clear reason, never into a crash of the grading run.

`prepare(student, path, released)` returns what to grade:

- a notebook that reads fine: itself, outputs cleared (the grader runs it anyway) and the grading
  metadata of every cell put back as released, so that no edited metadata (more points, a test
  cell no longer marked as graded, an id from another assignment) can change a grade or stop
  nbgrader;
- a notebook in the old format 3, or a file that is not UTF-8, or one with huge stored outputs:
  graded, with a note saying what was done;
- a file that is not a notebook at all (truncated, not JSON, far too large, an unknown format):
  rejected with the reason, which names what the file is when that is recognisable (a PDF, a
  zip, a web page, Python code, an image, an empty file; `what_is`); the grading command gives
  it the status `unreadable`, and it is graded as the released, empty notebook, so the student
  gets 0 points and feedback that says why.

`ReadableNotebookExporter` brings the same rule to the stock `nbgrader autograde` (see
nbgrader_config.py): an unreadable file is logged with its reason and graded as the released
notebook, instead of stopping autograde with a traceback.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MAX_BYTES = 256 * 1024 * 1024
BIG_OUTPUTS = 5 * 1024 * 1024
HOW_TO_FIX = ("Open it in Jupyter to check, save it (File > Save), and hand in the .ipynb file "
              "itself, as downloaded from Jupyter.")


@dataclass
class Prepared:
    student: str
    source: Path
    sha256: str
    text: str                    # the notebook to grade (nbformat 4)
    notes: list[str] = field(default_factory=list)
    rejected: str | None = None  # why it gets 0 without running
    what: str = ""               # for the summary: what an unreadable file is, in a few words


def _reject(student, path, digest, released: str, reason: str, what: str) -> Prepared:
    return Prepared(student, path, digest, released, rejected=f"{reason} {HOW_TO_FIX} It was graded as the "
                    "empty notebook: 0 points.", what=what)


# Leading bytes of the files students hand in by mistake, and what to call them.
_SIGNATURES = [
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (a zipped folder, or a Word, Excel or PowerPoint file)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"{\\rtf", "an RTF document"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
]


def what_is(data: bytes, name: str = "") -> str | None:
    """What a file that is not a notebook is, in a few words, when that is recognisable."""
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return None  # JSON: a notebook, or the reason it is not one comes from reading it
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            return what
    head = data[:4096].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]:
        return "a web page (HTML: a notebook exported or saved from the browser)"
    if name.lower().endswith(".py") or head.startswith((b"import ", b"from ", b"#!", b"def ", b"# %%")):
        return "Python code (a .py script, not the notebook)"
    return None


def prepare(student: str, path: Path, released: str) -> Prepared:
    """What to grade for `student`'s file `path`; `released` is the student notebook's text."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        return _reject(student, path, f"size:{size}", released,
                       f"Your file is {size / 2**20:.0f} MB, more than the {MAX_BYTES / 2**20:.0f} MB a "
                       "notebook may be (clear its outputs: Kernel > Restart Kernel and Clear All Outputs).",
                       f"{size / 2**20:.0f} MB, too large")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    notes = []
    if not data.strip():
        return _reject(student, path, digest, released, "Your file is empty.", "an empty file")
    kind = what_is(data, path.name)
    if kind:
        return _reject(student, path, digest, released,
                       f"Your file ({path.name}) is {kind}, not a Jupyter notebook.", kind.split(" (")[0])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        text = data.decode("cp1252", errors="replace")
        notes.append(f"Your file is not UTF-8 text (byte {error.start} is not valid UTF-8), as Jupyter "
                     "always writes it; it was read as Windows-1252, so a few characters may differ.")
    try:
        raw = json.loads(text)
    except ValueError as error:
        at = f" at line {error.lineno}, column {error.colno}" if hasattr(error, "lineno") else ""
        cut = text.lstrip().startswith("{") and not text.rstrip().endswith("}")
        ending = " (it ends too early: the file was cut off, by an interrupted download or save)" if cut else ""
        return _reject(student, path, digest, released,
                       f"Your file is not a complete notebook: it is not valid JSON{at}{ending}.",
                       "a notebook cut off" if cut else "not JSON, not a notebook")
    if not isinstance(raw, dict) or not ("cells" in raw or "worksheets" in raw):
        return _reject(student, path, digest, released, "Your file is JSON but not a Jupyter notebook (it has no cells).",
                       "JSON without cells")
    version = raw.get("nbformat")
    if version not in (3, 4):
        return _reject(student, path, digest, released,
                       f"Your notebook is in format {version!r}, which this grader cannot read (it reads 3 and 4).",
                       f"notebook format {version!r}")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat's errors vary by version
        return _reject(student, path, digest, released,
                       f"Your notebook could not be read ({type(error).__name__}: {str(error)[:200]}).",
                       "a notebook that cannot be read")
    if version == 3:
        notes.append("Your notebook was saved in the old format 3 (Jupyter before 2015); it was converted "
                     "to format 4 to be graded.")
    if size > BIG_OUTPUTS:
        notes.append(f"Your file is {size / 2**20:.0f} MB, mostly stored outputs; they were cleared (the "
                     "grader runs every cell again).")
    notes += _normalise(nb, nbformat.reads(released, as_version=4))
    return Prepared(student, path, digest, nbformat.writes(nb), notes)


def _normalise(nb, released) -> list[str]:
    """Clear outputs; give every cell the grading metadata it was released with."""
    metadata = {cell.metadata["nbgrader"]["grade_id"]: cell.metadata["nbgrader"]
                for cell in released.cells if "nbgrader" in cell.metadata}
    sources = {cell.metadata["nbgrader"]["grade_id"]: cell.source
               for cell in released.cells if "nbgrader" in cell.metadata}
    notes, changed, unknown, edited, seen = [], set(), 0, set(), {}
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code":
            cell.outputs, cell.execution_count = [], None
        ours = cell.get("metadata", {}).get("nbgrader")
        if ours is None:
            continue
        grade_id = ours.get("grade_id") if isinstance(ours, dict) else None
        if isinstance(grade_id, str) and grade_id in metadata:
            if {k: v for k, v in ours.items() if k != "checksum"} != \
                    {k: v for k, v in metadata[grade_id].items() if k != "checksum"}:
                changed.add(grade_id)
            cell.metadata["nbgrader"] = copy.deepcopy(metadata[grade_id])
            if metadata[grade_id].get("locked") and cell.get("source") != sources[grade_id]:
                edited.add(grade_id)
            seen[grade_id] = seen.get(grade_id, 0) + 1
        else:
            del cell.metadata["nbgrader"]
            unknown += 1
        if not isinstance(cell.get("id"), str):
            cell["id"] = f"cell-{index}"
    if changed:
        notes.append("The grading information of these cells had been edited and was put back as "
                     f"released: {', '.join(sorted(changed))}.")
    if edited:
        notes.append(f"These read-only cells had been edited; they ran as released: {', '.join(sorted(edited))}.")
    duplicated = sorted(name for name, count in seen.items() if count > 1)
    if duplicated:
        notes.append(f"Several cells share the id {', '.join(duplicated)}: only the last of them is graded, "
                     "the others run as ordinary cells.")
    if unknown:
        notes.append(f"{unknown} cell(s) carried grading information of another assignment; they were "
                     "graded as ordinary cells.")
    return notes


try:
    from nbconvert.exporters import NotebookExporter
except ImportError:  # nbconvert comes with nbgrader; this keeps the module importable without it
    NotebookExporter = object


class ReadableNotebookExporter(NotebookExporter):
    """nbgrader's exporter for the stock `nbgrader autograde`, which reads an unreadable file as
    the released notebook (0 points) and logs why, instead of stopping with a traceback."""

    def from_filename(self, filename, resources=None, **kw):
        coursedir = getattr(self.parent, "coursedir", None)
        if coursedir is None:
            return super().from_filename(filename, resources=resources, **kw)
        released = Path(coursedir.format_path(coursedir.release_directory, ".", coursedir.assignment_id),
                        Path(filename).name)
        if not released.exists():
            return super().from_filename(filename, resources=resources, **kw)
        prepared = prepare(Path(filename).parent.parent.name, Path(filename), released.read_text(encoding="utf-8"))
        if not prepared.rejected:
            return super().from_filename(filename, resources=resources, **kw)
        self.log.warning("%s is unreadable (%s): %s", filename, prepared.what, prepared.rejected)
        return self.from_notebook_node(nbformat.reads(prepared.text, as_version=4), resources=resources, **kw)
