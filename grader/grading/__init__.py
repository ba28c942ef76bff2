"""Grading a class: nbgrader's autograde as named steps, run as one job per submission.

pipeline.py        grading as named steps on nbgrader's Python API; the gradebook; results
preflight.py       reading a submitted file: a notebook to grade, or what it is instead
parallel.py        N local worker processes, progress line, resuming a stopped run
lms.py             LMS downloads (Canvas, Moodle, Blackboard names, latest attempt) and grade exports
feedback_files.py  the feedback files of --out: test cells named by exercise, compact CSS
"""
