"""nbgrader settings of the Face Recognition course.

Read by every `nbgrader ...` command run in this folder and by `python -m grader.grade`, so the
stock nbgrader flow and our one-command grading behave the same way. What differs from nbgrader's
defaults, and why:

- Before a submission runs, its folder gets links to the course files (photos, model, helpers,
  this package); after it runs they are removed again. Students' notebooks open
  `images/...` and `keras-facenet-h5/...` from their own folder, and the hidden tests import
  `grader.course.hidden`, so the grading folder has to look like the student's folder.
- Anything written to stderr is dropped from the executed notebook. nbgrader gives 0 points to a
  test cell with stderr output, and TensorFlow writes log lines there that have nothing to do
  with the answer. Our test cells report failures as errors or as partial scores, never on stderr.
- A test cell that a student deleted is put back (with a note) instead of being lost, and a cell
  with nbgrader metadata the gradebook does not know (pasted from another assignment, kept from
  an older release) no longer stops the whole submission from being graded.
- Feedback shows what every hidden test checked and whether it passed, but not its code.
- Cells after the last graded cell (the ungraded "Going further" section, which reads LFW photos
  for half a minute) and cells tagged `going-further` are dropped before the notebook runs.
- Cells may run for up to 5 minutes (the first cells load TensorFlow and the network).
- nbgrader finds the tools of the Python environment it runs from, activated or not.
- A submitted file that is not a notebook (a PDF, a zip, an empty file) is graded as the released
  notebook, 0 points, with its reason in autograde's log, instead of stopping autograde with a
  traceback (grader.grading.preflight.ReadableNotebookExporter).
- `nbgrader zip_collect` is set up at the end of this file for the LMS downloads (commented out:
  choose your LMS).

`python -m grader.grade` reads this file too, and replaces three of these steps with one
(grader.grading.pipeline.sandboxed): LinkCourseFiles, Execute and UnlinkCourseFiles become
grader.sandbox.execute.SandboxExecute, which runs the notebook in the grader's sandbox with the course
files read-only. The stock commands run exactly what is written here.
"""
import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when it reads this file)

COURSE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(COURSE)
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)  # so that nbgrader can import grader.grading.pipeline below

# Kernels inherit this process's environment: keep TensorFlow's C++ logging quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# nbgrader runs the `alembic` command of its own environment to set up the gradebook; find it
# even when the environment is not activated (`.venv/bin/nbgrader ...`, `.venv/bin/python -m ...`).
BIN = os.path.dirname(sys.executable)
if BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = BIN + os.pathsep + os.environ.get("PATH", "")

c.CourseDirectory.course_id = "face_recognition"
c.CourseDirectory.root = COURSE

c.Execute.timeout = 300
c.Autograde.exporter_class = "grader.grading.preflight.ReadableNotebookExporter"
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "grader.grading.pipeline.OverwriteCells",  # nbgrader's, minus a crash on unknown cells
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "grader.grading.pipeline.DropUngradedTail",  # the ungraded "Going further" section is not run
    "grader.grading.pipeline.LinkCourseFiles",
    "nbgrader.preprocessors.Execute",
    "grader.grading.pipeline.UnlinkCourseFiles",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.IgnorePattern.enabled = True  # off by default in nbgrader
c.IgnorePattern.pattern = r"[\s\S]"  # every non-empty stderr output
c.OverwriteCells.add_missing_cells = True

c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "grader.grading.pipeline.SanitizeFeedback",  # students' outputs made inert (no scripts, frames, forms)
]
# Markdown cells are the student's to edit: rendered, then sanitized like the outputs.
c.HTMLExporter.filters = {"markdown2html": "grader.grading.pipeline.safe_markdown2html"}

# ---- nbgrader zip_collect: an LMS's download of Face_Recognition.ipynb files
# Put the zip (or its files) in downloaded/Face_Recognition/archive/, then run
# `nbgrader zip_collect Face_Recognition`. nbgrader matches `named_regexp` against each file's
# WHOLE PATH (downloaded/Face_Recognition/extracted/...), from its start, hence the leading `.*/`.
# One pattern per LMS, tested by tests/test_lms.py (they are grader.grading.lms.RULES[...].stock_pattern):
#
# Canvas, `smith_10001_50001_Face_Recognition.ipynb` (late: `smith_LATE_10001_...`):
#   c.FileNameCollectorPlugin.named_regexp = r".*/[^_/]+(?:_(?:LATE|late))?_(?P<student_id>\d+)_\d+_(?P<file_id>Face_Recognition)(?:-\d+)?\.ipynb$"
# Moodle, `Ana Smith_10001_assignsubmission_file_Face_Recognition.ipynb` (or in a folder of that name):
#   c.FileNameCollectorPlugin.named_regexp = r".*/[^/]+_(?P<student_id>\d+)_assignsubmission_file(?:_|_?/(?:.*/)?)(?P<file_id>Face_Recognition)\.ipynb$"
# Blackboard, `Face Recognition_asmith_attempt_2026-11-20-14-03-55_Face_Recognition.ipynb`:
#   c.FileNameCollectorPlugin.named_regexp = r".*/[^/]+?_(?P<student_id>[^/]+?)_attempt_\d{4}(?:-\d\d){5}_(?P<file_id>Face_Recognition)\.ipynb$"
#
# These suit one notebook per student. With several (Canvas's re-uploads `Face_Recognition-1.ipynb`,
# Blackboard's attempts), nbgrader stops with "Duplicate submission file. No timestamps for
# comparison"; and a `timestamp` group does not help Blackboard: nbgrader 0.9.6's parse_utc
# fails on its dates ("2026-11-20-14-03-55" reads as a time zone offset). Then use our collector,
# which reads the names as `python -m grader.grade` does and collects each student's latest
# notebook only:
#   c.ZipCollectApp.collector_plugin = "grader.grading.lms.LatestAttemptCollector"
#   c.LatestAttemptCollector.lms = "canvas"   # or "moodle", "blackboard"
