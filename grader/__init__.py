"""The nbgrader course of the Face Recognition assignment, and the tools to grade it.

Three parts, one folder each:

grader/course/     what the course is: hidden tests, reference answers, example and hostile
                   submissions, the student notebook's release, the instructor's JupyterLab
grader/grading/    grading a class on nbgrader's Python API: named steps, reading submissions,
                   running jobs (local worker processes), resuming, LMS files, feedback files
grader/sandbox/    running one submission's code: a zygote that forks an isolated kernel per
                   submission, the kernel, and the messages between them

and at the top, what nbgrader and the instructor use directly:

grader/grade.py             `python -m grader.grade`: grade a folder or an LMS's zip, write grades.csv + feedback
grader/nbgrader_config.py   nbgrader's settings for this course (stock commands and ours)
grader/source/              the instructor's notebook: solutions, visible and hidden tests
"""
