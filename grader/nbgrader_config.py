"""nbgrader settings of the Face Recognition course.

Read by every `nbgrader ...` command run in this folder and by `python -m grader.grade`, so the
stock nbgrader flow and our one-command grading behave the same way. What differs from nbgrader's
defaults, and why:

- Before a submission runs, its folder gets links to the course files (photos, model, helpers,
  this package); after it runs they are removed again. Students' notebooks open
  `images/...` and `keras-facenet-h5/...` from their own folder, and the hidden tests import
  `grader.hidden`, so the grading folder has to look like the student's folder.
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

`python -m grader.grade` reads this file too, and replaces three of these steps with one
(grader.pipeline.sandboxed): LinkCourseFiles, Execute and UnlinkCourseFiles become
grader.sandbox.SandboxExecute, which runs the notebook in the grader's sandbox with the course
files read-only. The stock commands run exactly what is written here.
"""
import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when it reads this file)

COURSE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(COURSE)
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)  # so that nbgrader can import grader.pipeline below

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
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "grader.pipeline.OverwriteCells",  # nbgrader's, minus a crash on unknown cells
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "grader.pipeline.DropUngradedTail",  # the ungraded "Going further" section is not run
    "grader.pipeline.LinkCourseFiles",
    "nbgrader.preprocessors.Execute",
    "grader.pipeline.UnlinkCourseFiles",
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
    "grader.pipeline.SanitizeFeedback",  # students' outputs made inert (no scripts, frames, forms)
]
# Markdown cells are the student's to edit: rendered, then sanitized like the outputs.
c.HTMLExporter.filters = {"markdown2html": "grader.pipeline.safe_markdown2html"}
