"""The nbgrader course of the Face Recognition assignment, and the tools to grade it.

grader/nbgrader_config.py   nbgrader's settings for this course (stock commands and ours)
grader/source/              the instructor's notebook: solutions, visible and hidden tests
grader/pipeline.py          grading as named steps on nbgrader's Python API
grader/grade.py             `python -m grader.grade`: grade a folder, write grades.csv + feedback
grader/release.py           `python -m grader.release`: regenerate the student notebook
grader/make_examples.py     `python -m grader.make_examples`: example submissions and their scores
grader/hidden.py            the hidden tests (imported by the notebook's hidden test cells)
grader/reference.py         the reference answers the hidden tests compare with
"""
