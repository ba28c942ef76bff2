"""The ungraded section "your triplet loss trains a network" (docs/triplet_section.py inserts it).

The section runs with the notebook's reference `triplet_loss`; its training must beat the
untrained encoder clearly, every number its text states must be one its cells printed, and what
the text says about the printed figures must hold. Without a working `triplet_loss` the section
prints one line and does nothing else. About a minute on 2 cores once the features are cached
(`python -m facerec.triplet_features build-cache`; the first run builds the cache otherwise).
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import re
import time

import matplotlib
import nbformat
import numpy as np
import pytest

from conftest import ROOT
from facerec import triplet_training as tt

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def load_section_module():
    spec = importlib.util.spec_from_file_location("triplet_section", ROOT / "docs" / "triplet_section.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


section = load_section_module()


def reference_triplet_loss():
    """The source notebook's solution of Exercise 1, as the notebook defines it."""
    import tensorflow as tf

    notebook = nbformat.read(section.SOURCE_NOTEBOOK, as_version=4)
    cell = next(c for c in notebook.cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "triplet_loss_answer")
    namespace = {"tf": tf}
    exec(compile(cell.source, "<triplet_loss_answer>", "exec"), namespace)
    return namespace["triplet_loss"]


def run_section(namespace: dict) -> tuple[list[str], list]:
    """Run the section's code cells in `namespace` (in the project folder, as the notebook runs);
    returns what each code cell printed and the figures shown."""
    import os

    printed, shown = [], []
    previous_directory, previous_show = os.getcwd(), plt.show
    os.chdir(ROOT)
    plt.show = lambda *args, **kwargs: shown.append(plt.gcf())
    try:
        for kind, source in section.CELLS:
            if kind == "code":
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    exec(compile(source, "<triplet-training cell>", "exec"), namespace)
                printed.append(out.getvalue())
                plt.figure()  # a fresh current figure for the next cell, as a notebook gives
    finally:
        plt.show = previous_show
        os.chdir(previous_directory)
    return printed, shown


@pytest.fixture(scope="module")
def ran():
    started = time.monotonic()
    namespace = {"__name__": "__main__", "triplet_loss": reference_triplet_loss()}
    printed, shown = run_section(namespace)
    namespace["_seconds"] = time.monotonic() - started
    print(f"the section ran in {namespace['_seconds']:.1f} s")
    yield namespace, "".join(printed), shown
    plt.close("all")


def markdown_text() -> str:
    return "\n".join(source for kind, source in section.CELLS if kind == "markdown")


def test_cells_are_well_formed_short_and_tagged():
    assert section.CELLS[0][0] == "markdown" and section.CELLS[0][1].startswith("## Going further")
    for kind, source in section.CELLS:
        assert kind in ("markdown", "code") and source.strip()
        if kind == "code":
            ast.parse(source)
            assert source.startswith(("if ready:", "import ")), "every cell after the check must be skippable"
        assert len(source.splitlines()) <= 30, f"a cell should hold one idea:\n{source[:200]}"
    for cell in section.section_cells():
        assert set(cell.metadata["tags"]) == {"triplet-training", "going-further"}


def test_inserting_twice_changes_nothing_and_lands_after_what_to_remember(tmp_path):
    copy = tmp_path / "notebook.ipynb"
    copy.write_text(section.SOURCE_NOTEBOOK.read_text(encoding="utf-8"), encoding="utf-8")
    section.main([str(copy)])
    once = copy.read_text(encoding="utf-8")
    section.main([str(copy)])
    assert copy.read_text(encoding="utf-8") == once
    cells = nbformat.reads(once, as_version=4).cells
    tagged = [i for i, c in enumerate(cells) if "triplet-training" in c.metadata.get("tags", [])]
    assert len(tagged) == len(section.CELLS) and tagged == list(range(tagged[0], tagged[0] + len(tagged)))
    assert cells[tagged[0] - 1].source.startswith(section.ANCHOR)
    assert [c.source for c in cells if "triplet-training" in c.metadata.get("tags", [])] == [s for _, s in section.CELLS]


def test_without_what_to_remember_the_section_goes_before_the_other_going_further_cells():
    notebook = nbformat.read(section.SOURCE_NOTEBOOK, as_version=4)
    notebook.cells = [c for c in notebook.cells if not c.source.startswith(section.ANCHOR)]
    cells = section.insert_section(notebook).cells
    further = [c for c in cells if "going-further" in c.metadata.get("tags", [])]
    assert [c.source for c in further[: len(section.CELLS)]] == [s for _, s in section.CELLS]


def test_the_source_notebook_holds_the_current_section():
    cells = nbformat.read(section.SOURCE_NOTEBOOK, as_version=4).cells
    tagged = [c.source for c in cells if "triplet-training" in c.metadata.get("tags", [])]
    if not tagged:
        pytest.skip("the section is not inserted yet: run `.venv/bin/python docs/triplet_section.py`")
    assert tagged == [source for _, source in section.CELLS], "run `.venv/bin/python docs/triplet_section.py`"


@pytest.mark.parametrize("answer", ["unanswered", "undefined"])
def test_without_a_triplet_loss_the_section_prints_one_line_and_stops(answer):
    def unanswered(y_true, y_pred, alpha=0.2):
        raise NotImplementedError()

    namespace = {"__name__": "__main__"}
    if answer == "unanswered":
        namespace["triplet_loss"] = unanswered
    printed, shown = run_section(namespace)
    assert "".join(printed).count("\n") == 1 and "skipped" in "".join(printed)
    assert shown == [] and "features" not in namespace
    plt.close("all")


def test_training_with_the_reference_loss_beats_the_untrained_encoder_clearly(ran):
    namespace, _, shown = ran
    plain = namespace["plain"]
    assert plain.final_accuracy >= plain.accuracies[0] + 0.05
    assert len(plain.losses) == namespace["STEPS"] == 600
    assert len(shown) == 3


def test_every_number_in_the_text_is_one_the_cells_printed(ran):
    _, printed, _ = ran
    text = markdown_text()
    text = re.sub(r"\$\$.*?\$\$|\$.*?\$|`[^`]*`", " ", text, flags=re.DOTALL)  # formulas and code names
    text = re.sub(r"\b(Section|Exercise|Experiment) \d+", " ", text)  # references to parts of the notebook
    stated = set(re.findall(r"\d[\d,.]*\d%?|\d%?", text))
    printed_numbers = set(re.findall(r"\d[\d,.]*\d%?|\d%?", printed))
    assert stated <= printed_numbers, f"stated in the text but never printed: {sorted(stated - printed_numbers)}"
    assert {"512", "128", "0"} <= stated  # the check above is not vacuous


def test_what_the_text_says_about_the_printed_figures_holds(ran):
    namespace, printed, _ = ran
    accuracy = namespace["accuracy_of"]
    middle, before, encoding = (accuracy[k] for k in ["Mixed_6a, averaged", "input of the last layer",
                                                      "course network's encoding"])
    # "The input of the last layer already separates these people nearly as well as the encoding";
    # "The Mixed_6a numbers are far behind".
    assert before >= encoding - 0.02 and middle <= encoding - 0.10
    # "The loss falls fast in the first steps, then slowly"; accuracy "rises"; "stays below the
    # course network's encoding".
    plain, no_margin, hardest = namespace["plain"], namespace["no_margin"], namespace["hardest"]
    losses = np.array(plain.losses)
    assert losses[:25].mean() > 3 * losses[100:200].mean() and losses[100:200].mean() > losses[-100:].mean()
    assert plain.final_accuracy < encoding
    # The collapsed encoder: "costs nothing with alpha = 0, and alpha per triplet otherwise".
    assert "alpha = 0.0: loss of 64 triplets all at one point = 0.0" in printed
    assert "alpha = 0.2: loss of 64 triplets all at one point = 12.8" in printed
    # Experiment 1: "more batches cost exactly nothing ... held-out accuracy ended lower".
    assert tt.zero_loss_share(no_margin) > tt.zero_loss_share(plain)
    assert no_margin.final_accuracy < plain.final_accuracy
    # Experiment 2: "ahead at every check, by most early on".
    gaps = np.array(hardest.accuracies[1:]) - np.array(plain.accuracies[1:])
    assert np.all(gaps > 0) and gaps[: len(gaps) // 3].max() > gaps[-1]


def test_training_is_deterministic():
    """Two runs print the same figures: same seeds, same numbers (on one machine)."""
    features = tt.load_features(ROOT / tt.LFW_FOLDER, ROOT / tt.MODEL_FOLDER, ROOT / tt.CACHE_FOLDER)
    pairs, same = tt.held_out_pairs(features)
    loss = reference_triplet_loss()
    for candidates in (1, 16):
        runs = [tt.train(loss, features, pairs, same, steps=20, check_every=10, candidates=candidates)[1]
                for _ in range(2)]
        assert runs[0].losses == runs[1].losses and runs[0].accuracies == runs[1].accuracies
