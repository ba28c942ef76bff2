"""The feedback files a class receives (`--out`/feedback/<student>.html), made easier to read and smaller.

nbgrader's feedback page opens with a list of every graded cell, each called "Test cell", and
carries all of Bootstrap 3 (117 KB of CSS) for a few panels. `tidy` rewrites a copy:

- the list at the top names each test cell by its exercise and kind, with its points
  ("triplet_loss: hidden tests 1.5/4"), under one line of points per exercise;
- Bootstrap is replaced by the few rules the page uses (about 2 KB).

The page stays one self-contained file (a student may receive it alone, as an LMS attachment).
What is left of its size is mostly the notebook's own figures (the course photos and plots the
student's notebook drew, inlined as PNG: about 0.9 MB of the notebook's six figures); they are
the student's outputs and are kept. The course folder's own feedback (what the formgrader shows)
is left as nbgrader wrote it.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from grader.grading.pipeline import EXERCISES

# What the page's classes need, instead of Bootstrap: panels, the layout of cells, prompts.
COMPACT_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;
color:#222;margin:0;padding:1em}
.container{max-width:1100px;margin:0 auto}
.panel{border:1px solid #ddd;border-radius:4px;margin-bottom:1em;background:#fff}
.panel-heading{padding:.4em .6em;background:#f5f5f5;border-bottom:1px solid #ddd}
.panel-primary>.panel-heading{background:#337ab7;color:#fff}
.panel-primary>.panel-heading a{color:#eee}
.panel-body{padding:.4em}
.pull-right{float:right}
h4{margin:.2em 0;font-size:18px}
a{color:#337ab7}
pre{margin:0;white-space:pre-wrap;word-wrap:break-word;font-size:13px}
code{font-size:13px;background:#f7f7f7;padding:0 .2em}
div.cell{display:flex;flex-direction:column;padding:4px 0;margin:0}
div.input,div.output_area{display:flex;flex-direction:row}
div.prompt{min-width:11ex;padding:.4em;text-align:right;color:#888;font-family:monospace;font-size:13px}
div.input_prompt{color:#303f9f}div.output_prompt{color:#d84315}
div.inner_cell,div.output_subarea{flex:1;min-width:0}
div.input_area{border:1px solid #cfcfcf;border-radius:2px;background:#f7f7f7;padding:.3em}
div.output_subarea{padding:.4em}
div.output_stderr,div.output_error{background:#fdd}
div.text_cell_render{padding:.3em .5em}
img{max-width:100%}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px}
span.nbgrader-label{font-weight:bold}
ol.by-exercise{margin:.3em 0}
"""

_TOC_ENTRY = re.compile(r'<li><a href="#(?P<id>[^"]+)">Test cell</a> \(Score: (?P<score>[\d.]+) / (?P<points>[\d.]+)\)</li>')
_BOOTSTRAP = re.compile(r'<style type="text/css">\s*/\*!\s*\* Bootstrap.*?</style>', re.S)


def label(grade_id: str) -> str:
    """`triplet_loss_test_hidden` -> `triplet_loss: hidden tests`; `..._test_cases` -> `visible tests (cases)`."""
    exercise = next((e for e in EXERCISES if grade_id.startswith(e + "_")), None)
    if exercise is None:
        return grade_id
    kind = grade_id[len(exercise) + 1:].removeprefix("test_").removeprefix("test")
    if kind == "hidden":
        return f"{exercise}: hidden tests"
    return f"{exercise}: visible tests" + (f" ({kind.replace('_', ' ')})" if kind not in ("", "visible") else "")


def tidy(page: str) -> str:
    """The feedback page with its list named by exercise and without Bootstrap (see the module)."""
    totals: dict[str, list[float]] = {}

    def entry(found: re.Match) -> str:
        score, points = float(found["score"]), float(found["points"])
        exercise = label(found["id"]).split(":")[0]
        total = totals.setdefault(exercise, [0.0, 0.0])
        total[0] += score
        total[1] += points
        return (f'<li><a href="#{found["id"]}">{html.escape(label(found["id"]))}</a> '
                f"{score:g}/{points:g}</li>")

    page = _TOC_ENTRY.sub(entry, page)
    if totals:
        line = " &middot; ".join(f"{html.escape(e)} {s:g}/{p:g}" for e, (s, p) in totals.items())
        page = page.replace('<div id="toc">', f'<div id="toc"><p class="by-exercise">{line}</p>', 1)
    return _BOOTSTRAP.sub(lambda _: f'<style type="text/css">{COMPACT_CSS}</style>', page, count=1)


def tidy_all(folder: Path) -> None:
    for path in sorted(Path(folder).glob("*.html")):
        text = path.read_text(encoding="utf-8")
        tidied = tidy(text)
        if tidied != text:
            path.write_text(tidied, encoding="utf-8")
