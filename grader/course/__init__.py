"""The course: what is graded and how it is checked.

hidden.py          the hidden tests (in the grader's process, or in nbgrader's kernel)
reference.py       the reference answers the hidden tests compare with
make_examples.py   `python -m grader.course.make_examples`: example submissions and their scores
hostile.py         `python -m grader.course.hostile`: hostile and broken submissions and their scores
release.py         `python -m grader.course.release`: regenerate the student notebook
lab.py             `python -m grader.course.lab`: JupyterLab with the formgrader for this course
"""
