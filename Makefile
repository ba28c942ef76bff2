# The two commands (see README.md):
#   make grade   set everything up, then grade the example submissions (the main job)
#   make test    set everything up, then run the tests (what CI runs)
# Every target sets up first; set-up is quick when nothing changed.
PY := .venv/bin/python
# A folder or an LMS's zip; quoted below, so a path with spaces works. GRADE_ARGS: more options
# of grader.grade, e.g. GRADE_ARGS="--export canvas --lms canvas".
SUBMISSIONS ?=
GRADE_ARGS ?=
# Test files run on this many processes (pytest-xdist); TEST_WORKERS=0 runs them in this one.
TEST_WORKERS ?= 2

.PHONY: grade test setup bench bench-lfw bench-grading lab
grade: setup
	$(PY) -m grader.grade $(if $(SUBMISSIONS),"$(SUBMISSIONS)") $(GRADE_ARGS)

test: setup
	@bash scripts/system-deps.sh
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

setup:
	@bash scripts/setup.sh

lab: setup
	$(PY) -m grader.course.lab $(LAB_ARGS)

bench: setup
	$(PY) bench/encode_speed.py
	$(PY) bench/match_speed.py

bench-lfw: setup
	$(PY) bench/lfw_benchmark.py

bench-grading: setup
	$(PY) bench/grading_speed.py
