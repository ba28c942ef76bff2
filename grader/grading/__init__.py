"""Grading a class: nbgrader's autograde as named steps, run as one job per submission.

pipeline.py        grading as named steps on nbgrader's Python API; the gradebook; results
preflight.py       reading a submitted file: a notebook to grade, or what it is instead
parallel.py        the run loop (results recorded here, once per student), progress line, resuming
jobs.py            one submission as a job: what goes to a worker and back, the Runner interface,
                   grading in a worker's own throw-away course, recording in the grading command
local.py           a Runner of N local worker processes sharing one sandbox (--jobs N)
cluster.py         a Runner on a Dask cluster (--scheduler tcp://...): one task per submission,
                   one sandbox per Dask worker process; a local test cluster
lms.py             LMS downloads (Canvas, Moodle, Blackboard names, latest attempt) and grade exports
feedback_files.py  the feedback files of --out: test cells named by exercise, compact CSS
"""
