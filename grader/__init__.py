"""The nbgrader course of the Face Recognition assignment, and the tools to grade it.

grader/nbgrader_config.py   nbgrader's settings for this course (stock commands and ours)
grader/source/              the instructor's notebook: solutions, visible and hidden tests
grader/pipeline.py          grading as named steps on nbgrader's Python API
grader/grade.py             `python -m grader.grade`: grade a folder or an LMS's zip, write grades.csv + feedback
grader/lms.py               LMS downloads (Canvas, Moodle, Blackboard names, latest attempt) and grade exports
grader/feedback_files.py    the feedback files of --out: test cells named by exercise, compact CSS
grader/parallel.py          N worker processes, progress line, resuming a stopped run
grader/preflight.py         reading a submitted file: a notebook to grade, or what it is instead
grader/sandbox.py           nbgrader's execution step in the sandbox; hidden tests run here, outside it
grader/zygote.py            one process per run with TensorFlow imported, forking an isolated kernel per submission
grader/isolation.py         Linux namespaces, read-only root, user id, rlimits of a kernel
grader/kernel.py            the kernel: cells in an IPython shell, libraries restored before tests
grader/callee.py            what a hidden test's call does in the student's process
grader/wire.py              messages between grader and kernel (JSON, bounded, no pickle)
grader/release.py           `python -m grader.release`: regenerate the student notebook
grader/make_examples.py     `python -m grader.make_examples`: example submissions and their scores
grader/hostile.py           `python -m grader.hostile`: hostile and broken submissions and their scores
grader/hidden.py            the hidden tests (in the grader's process, or in nbgrader's kernel)
grader/reference.py         the reference answers the hidden tests compare with
"""
