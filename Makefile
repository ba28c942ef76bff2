# The two commands (see README.md):
#   make grade   set everything up, then grade the example submissions (the main job)
#   make test    set everything up, then run the tests (what CI runs)
# Every target sets up first; set-up is quick when nothing changed.
PY := .venv/bin/python
SUBMISSIONS ?=

.PHONY: grade test setup bench lab
grade: setup
	$(PY) -m grader.grade $(SUBMISSIONS)

test: setup
	@bash scripts/system-deps.sh
	$(PY) -m pytest

setup:
	@bash scripts/setup.sh

lab: setup
	$(PY) -m grader.lab $(LAB_ARGS)

bench: setup
	$(PY) bench/encode_speed.py
