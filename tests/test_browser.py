"""The JupyterLab experience, in a real browser: the nbgrader round trip of a hub's class.

Two JupyterLab servers (the README's launcher, `python -m grader.course.lab`), as two users of
one hub sharing one exchange, all in temporary folders:

    lab/course/                              the instructor's: an nbgrader course of its own (gradebook)
    lab/course/source/Face_Recognition/      the instructor's solved notebook, with links to the course files
    home/ana/                                the student's (`--student ana`): what they fetch goes here
    srv/facerec/                             the hub's shared course files (grader.course.hub, hard links)
    exchange/                                nbgrader's exchange

Headless Chromium (Debian's, driven by Playwright; no browser download) goes through the steps
below in order, the way a person would: menus, toolbar buttons, dialogs; the instructor in one
tab, the student in another. Every step saves a screenshot in test-output/screenshots/
(git-ignored); a failing test also leaves FAILED-<test>.png and FAILED-<test>.txt (the page's
text) there, and the servers' logs are jupyterlab.log and jupyterlab-student.log. Nothing in the
repository is written.

The README's screenshots come from this test's own run:

    FACEREC_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser.py

copies those it shows into docs/screenshots/ (see DOC_SCREENSHOTS).

What takes time (each runs the network): the solved notebook's Run All, grading two example
submissions, two validations (up to the Going-further cells, which Validate skips), the student's
Run All (it stops at the first unanswered function) and one Autograde from the formgrader (which
starts the sandbox). Alone on the 2-core machine: 248 s (2026-11-30).
"""
from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from grader.course.make_examples import EXAMPLES, build, solutions
from grader.grading.pipeline import ASSIGNMENT, COURSE_FILES, NOTEBOOK, REPOSITORY, SOURCE_NOTEBOOK, STUDENT_NOTEBOOK

SHOTS = REPOSITORY / "test-output" / "screenshots"
DOCS_SHOTS = REPOSITORY / "docs" / "screenshots"
# screenshot of this run -> file under docs/screenshots/, copied when FACEREC_UPDATE_SCREENSHOTS=1
DOC_SCREENSHOTS = {
    "04-student-validate-success.png": "student-validate.png",
    "06-formgrader-submissions.png": "instructor-formgrader.png",
    "09-student-fetched.png": "student-fetch.png",
    "14-formgrader-graded-with-name.png": "instructor-autograde.png",
    "18-student-feedback.png": "student-feedback.png",
}
DOC_SCREENSHOT_MAX_BYTES = 300_000

CHROMIUM = os.environ.get("FACEREC_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google's services, which on a
# closed network means a flood of refused connections.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}

# The ungraded "Going further" section of the notebook reads LFW photos from data/.
LINKED = (*COURSE_FILES, "data")
# Two example submissions to grade: full marks and partial credit.
GRADED_EXAMPLES = ("solution", "alpha_forgotten")
HIDDEN_TEXT = ("STRANGERS_TO_BENOIT", "CAMERA_IMPOSTOR", "reference.verify", "def _verify_checks",
               "triplet_loss_gradient(", "SEED = 20260611")  # as in tests/test_grader_hostile.py
EXERCISE_POINTS = {"triplet_loss": 8, "verify": 6, "who_is_it": 6}
STUDENT = "ana"  # the student of the round trip, on the roster as Ana Smith
ROSTER = f"id,first_name,last_name,email\n{STUDENT},Ana,Smith,ana@example.edu\n"

SERVER_START = 120  # seconds, bounds for the slow steps (2 CPU cores, a busy machine)
RUN_ALL = 420
VALIDATE = 420
GRADING = 600
TRIPLET_LOSS_OUTPUT = "loss = tf.Tensor(527.2598, shape=(), dtype=float32)"
HEATMAP_CODE = 'cmap="magma"'  # the heat-map cell of section 11

CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the visible tab


# ---------------------------------------------------------------- helpers


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def link_course_files(folder: Path, names) -> None:
    for name in names:
        if (REPOSITORY / name).exists():
            (folder / name).symlink_to(REPOSITORY / name, target_is_directory=(REPOSITORY / name).is_dir())


def shot(page, name: str, **options) -> Path:
    path = SHOTS / name
    page.screenshot(path=str(path), **options)
    return path


def open_notebook(page, lab, relative: str):
    """Open a notebook in a fresh JupyterLab workspace; return its (visible) panel."""
    page.goto(f"{lab.base}/lab/tree/{relative}?reset&token={lab.token}")
    panel = page.locator(CURRENT)
    panel.wait_for(timeout=60_000)
    # the kernel has started when the toolbar's kernel status says idle
    panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=120_000)
    return panel


def open_from_nbgrader_menu(page, item: str) -> None:
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def validate(page, panel) -> tuple[str, str]:
    """Click the notebook toolbar's Validate; return the result's class and the dialog's text."""
    panel.locator(".validate-button").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=VALIDATE * 1000)
    assert dialog.locator(".jp-Dialog-header").inner_text().strip() == "Validation Results"
    message = dialog.locator("#validation-message")
    return message.get_attribute("class") or "", message.inner_text()


def close_dialog(page) -> None:
    page.locator(".jp-Dialog").get_by_role("button", name="Ok").click()
    page.locator(".jp-Dialog").wait_for(state="detached", timeout=10_000)


def listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a socket listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.append(address)
    return found


def running_kernels(kernel_ids) -> set[str]:
    """The kernels among these with a process running (its command line names the kernel's
    connection file)."""
    running = set()
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        running.update(kernel for kernel in kernel_ids if f"kernel-{kernel}.json" in command)
    return running


def prompts(page) -> list[str]:
    return page.eval_on_selector_all(f"{CURRENT} .jp-CodeCell .jp-InputPrompt",
                                     "nodes => nodes.map(n => n.textContent.trim())")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def workspace():
    """The folder JupyterLab serves (see the module's docstring), with the example submissions
    to grade beside it. A folder of its own rather than pytest's tmp_path: pytest sessions
    started meanwhile on a shared machine prune pytest's older temporary folders."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*"):
        if old.is_file():
            old.unlink()
    with tempfile.TemporaryDirectory(prefix="fr-browser-") as folder:
        root = Path(folder) / "lab"
        source = root / "course" / "source" / ASSIGNMENT
        source.mkdir(parents=True)
        home, exchange = Path(folder) / "home" / STUDENT, Path(folder) / "exchange"
        home.mkdir(parents=True)
        exchange.mkdir()
        shutil.copyfile(SOURCE_NOTEBOOK, source / NOTEBOOK)
        link_course_files(source, LINKED)  # the solved notebook's hidden tests import grader

        submissions = Path(folder) / "submissions"
        student_notebook = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
        solved = solutions()
        for example in EXAMPLES:
            if example.student in GRADED_EXAMPLES:
                (submissions / example.student).mkdir(parents=True)
                nbformat.write(build(example, student_notebook, solved),
                               submissions / example.student / NOTEBOOK)
        # the hub's shared course files (hard links to this clone's), as grader.course.hub installs them
        from grader.course.hub import install

        shared = Path(folder) / "srv" / "facerec"
        install(shared, hook=False, hardlink=True)
        yield type("Workspace", (), dict(
            root=root, student=home / ASSIGNMENT / NOTEBOOK, home=home, exchange=exchange, shared=shared,
            solved=source / NOTEBOOK, course=root / "course",
            submissions=submissions, out=Path(folder) / "grades", tmp=Path(folder)))


def launch(options: list[str], settings: Path, log_name: str, env: dict | None = None):
    """JupyterLab started by the launcher (stderr to test-output/screenshots/<log_name>), stopped at the end."""
    command = [sys.executable, "-m", "grader.course.lab", *options, "--",
               f"--LabApp.user_settings_dir={settings / 'user-settings'}",
               f"--LabApp.workspaces_dir={settings / 'workspaces'}"]
    log = open(SHOTS / log_name, "w")
    launcher = subprocess.Popen(command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=log, text=True,
                                env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in launcher.stdout], daemon=True).start()
    url, printed, deadline = None, [], time.monotonic() + SERVER_START
    while url is None and time.monotonic() < deadline and launcher.poll() is None:
        try:
            printed.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        found = re.search(r"JupyterLab is ready: (http://127\.0\.0\.1:(\d+)/lab\?token=(\w+))", printed[-1])
        url = found and found.groups()
    try:
        assert url, f"the launcher printed no URL within {SERVER_START} s:\n{''.join(printed)}" \
                    f"\n(see {SHOTS / log_name})"
        yield type("Lab", (), dict(url=url[0], port=int(url[1]), token=url[2],
                                   base=f"http://127.0.0.1:{url[1]}", launcher=launcher))
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait(10)
        log.close()


@pytest.fixture(scope="module")
def lab(workspace):
    """The instructor's JupyterLab: the course, its formgrader, the exchange."""
    yield from launch(["--root", str(workspace.root), "--course", str(workspace.course),
                       "--exchange", str(workspace.exchange)], workspace.tmp / "jupyterlab", "jupyterlab.log")


@pytest.fixture(scope="module")
def student_lab(workspace, lab):
    """The student's JupyterLab, a second server in the student's home on the same exchange; its
    kernels find the course files in the shared folder (what the hub's path hook does)."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(PYTHONPATH=str(workspace.shared), FACEREC_COURSE_FILES=str(workspace.shared),
                       HOME=str(workspace.home))
    yield from launch(["--student", STUDENT, "--root", str(workspace.home), "--exchange", str(workspace.exchange)],
                      workspace.tmp / "jupyterlab-student", "jupyterlab-student.log", environment)


@pytest.fixture(scope="module")
def page(lab, workspace):
    """One headless Chromium page, 1280x800, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (scripts/system-deps.sh installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(workspace.tmp / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport=VIEWPORT, timeout=60_000)
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def student_page(page, student_lab):
    """The student's tab, in the same browser (another server: another origin)."""
    tab = page.context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    tab.close()


@pytest.fixture(autouse=True)
def diagnose_failure(request):
    """When a test of this module fails, keep a screenshot and the page's text."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before and "page" in request.fixturenames:
        page = request.getfixturevalue("student_page" if "student_page" in request.fixturenames else "page")
        name = re.sub(r"\W+", "_", request.node.name)
        try:
            page.screenshot(path=str(SHOTS / f"FAILED-{name}.png"))
            (SHOTS / f"FAILED-{name}.txt").write_text(
                page.locator("body").inner_text(timeout=10_000), encoding="utf-8")
        except Exception as error:  # diagnosis must not hide the failure itself
            print(f"could not save the page of {name}: {error}")


@pytest.fixture(scope="module")
def graded(workspace):
    """The example submissions graded with the README's command into the temporary course."""
    done = subprocess.run(
        [sys.executable, "-m", "grader.grade", str(workspace.submissions),
         "--course", str(workspace.course), "--out", str(workspace.out)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=GRADING,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {example.student: example.expected_total for example in EXAMPLES
            if example.student in GRADED_EXAMPLES}


# ---------------------------------------------------------------- the tests, in order


def test_launcher_serves_jupyterlab_with_nbgrader_on_localhost_behind_a_token(lab, page):
    assert listening(lab.port) == ["0100007F"], "not on 127.0.0.1 only"  # 127.0.0.1, little-endian
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{lab.base}/api/status", timeout=10)
    assert refused.value.code == 403, "the server answers without its token"
    page.goto(lab.url)
    page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    items = page.locator(".lm-Menu:visible .lm-Menu-itemLabel").all_inner_texts()
    assert {"Assignment List", "Course List", "Formgrader"} <= set(items), items
    page.keyboard.press("Escape")
    # no "Would you like to get notified about official Jupyter news?" over the notebook
    notification = "@jupyterlab/apputils-extension:notification"
    request = urllib.request.Request(f"{lab.base}/lab/api/settings/{notification}",
                                     headers={"Authorization": f"token {lab.token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        # the launcher's overrides become the schema's defaults
        assert json.load(answer)["schema"]["properties"]["fetchNews"]["default"] == "false"
    assert page.get_by_text("official Jupyter news").count() == 0
    shot(page, "00-jupyterlab.png")


def test_launcher_gives_nbgrader_the_course_settings(workspace, tmp_path):
    """The nbgrader_config.py the launcher writes: the course's own settings (the 5-minute cell
    timeout that Validate needs too; nbgrader's default is 30 s), then this course and exchange,
    and Validate skipping the Going-further cells."""
    from traitlets.config.loader import PyFileConfigLoader

    from grader.course.lab import nbgrader_config

    (tmp_path / "nbgrader_config.py").write_text(nbgrader_config(workspace.course, tmp_path / "exchange"))
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert config.CourseDirectory.root == str(workspace.course)
    assert config.CourseDirectory.course_id == "face_recognition"
    assert config.Exchange.root == str(tmp_path / "exchange")
    assert config.Execute.timeout == 300
    assert config.Execute.skip_cells_with_tag == "going-further"  # Validate skips the ungraded cells


def test_launcher_refuses_a_course_outside_the_folder_it_serves(workspace):
    done = subprocess.run([sys.executable, "-m", "grader.course.lab", "--root", str(workspace.home),
                           "--course", str(workspace.course)],
                          cwd=REPOSITORY, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "is not inside" in done.stderr and "formgrader" in done.stderr


def test_solved_notebook_runs_all_cells_with_outputs_and_plots(lab, page, workspace):
    notebook = nbformat.read(workspace.solved, as_version=4)
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    title = next(line[2:].strip() for line in notebook.cells[0].source.splitlines() if line.startswith("# "))
    heatmap = next(i for i, cell in enumerate(notebook.cells) if HEATMAP_CODE in cell.source)
    plots = sum("plt.show()" in notebook.cells[i].source for i in code_cells)

    panel = open_notebook(page, lab, "course/source/Face_Recognition/Face_Recognition.ipynb")
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    assert tab.inner_text() == NOTEBOOK
    assert title in panel.locator(".jp-MarkdownOutput h1").first.inner_text()
    shot(page, "01-solved-notebook-opened.png")

    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li[data-command='runmenu:run-all']").click()
    started = time.monotonic()
    # every code cell is queued ([*]) at once; wait until none is left running or queued
    page.wait_for_function(
        """selector => [...document.querySelectorAll(selector)].some(p => p.textContent.includes('*'))""",
        arg=f"{CURRENT} .jp-CodeCell .jp-InputPrompt", timeout=30_000, polling=200)
    page.wait_for_function(
        """selector => ![...document.querySelectorAll(selector)].some(p => p.textContent.includes('*'))""",
        arg=f"{CURRENT} .jp-CodeCell .jp-InputPrompt", timeout=RUN_ALL * 1000, polling=1000)
    print(f"Run All: {time.monotonic() - started:.0f} s")

    counts = prompts(page)
    assert len(counts) == len(code_cells)
    not_run = [i for i, text in zip(code_cells, counts) if not re.fullmatch(r"\[\d+\]:", text)]
    assert not not_run, f"code cells without an execution count (Run All stopped?): {not_run}"

    outputs = panel.locator(".jp-OutputArea-output")
    # textContent, not innerText: cells out of view are not rendered (content-visibility), so
    # their innerText is empty
    text = "\n".join(outputs.all_text_contents())
    stderr = panel.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    tracebacks = [text for text in stderr.all_text_contents()
                  if re.search(r"Traceback|^\w*(Error|Exception)\b", text, re.M)]
    assert not tracebacks, f"error outputs: {tracebacks[:3]}"
    assert TRIPLET_LOSS_OUTPUT in text
    assert "\u2718" not in text, "a check failed in the solved notebook"  # fr_checks' FAIL mark
    summaries = re.findall(r"(\d+) of (\d+) checks passed", text)
    assert len(summaries) >= 4 and all(passed == total for passed, total in summaries), summaries

    # JupyterLab renders cells out of view lazily (when the page is idle, or when they are
    # scrolled to): on a busy machine some plots are not in the page yet when the kernel is done.
    # Scroll to each plotting cell, as a reader would, and wait for the plots; then count them.
    code = panel.locator(".jp-CodeCell")
    for position, index in enumerate(code_cells):
        if "plt.show()" in notebook.cells[index].source:
            code.nth(position).scroll_into_view_if_needed()
    try:
        page.wait_for_function("""([selector, wanted]) => document.querySelectorAll(selector).length >= wanted""",
                               arg=[f"{CURRENT} .jp-OutputArea-output img", plots], timeout=90_000, polling=1000)
    except Exception:  # the assertion below says how many there are
        pass
    images = panel.locator(".jp-OutputArea-output img").evaluate_all(
        "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(images) >= plots, f"{len(images)} images for {plots} plt.show() cells"
    assert all(complete and width > 100 and height > 100 for complete, width, height in images), images

    cell = panel.locator(".jp-Notebook-cell").nth(heatmap)
    cell.scroll_into_view_if_needed()
    image = cell.locator(".jp-OutputArea-output img")
    assert image.count() == 1, "no heat-map image under the heat-map cell"
    width, height, colours = image.evaluate("""img => {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < pixels.length; i += 4 * 97)
            seen.add(pixels[i] << 16 | pixels[i + 1] << 8 | pixels[i + 2]);
        return [img.naturalWidth, img.naturalHeight, seen.size];
    }""")
    assert width >= 400 and height >= 400 and colours >= 50, (width, height, colours)
    cell.screenshot(path=str(SHOTS / "02-heatmap-cell.png"))
    shot(page, "02-solved-notebook-heatmap.png")

    # What the kernel produced, as saved: no error output at all, every cell run
    page.get_by_role("menuitem", name="File", exact=True).click()
    page.locator("li[data-command='docmanager:save']").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            saved = nbformat.read(workspace.solved, as_version=4)
        except nbformat.reader.NotJSONError:  # caught mid-save: Jupyter writes the file in place
            saved = None
        if saved is not None and all(saved.cells[i].get("execution_count") for i in code_cells):
            break
        time.sleep(1)
    else:
        pytest.fail("the notebook was not saved with its outputs within 30 s")
    errors = [(i, output.ename, output.evalue) for i in code_cells
              for output in saved.cells[i].outputs if output.output_type == "error"]
    assert not errors
    saved_images = sum("image/png" in o.get("data", {}) for i in code_cells for o in saved.cells[i].outputs)
    assert saved_images == len(images)


def open_formgrader(page, lab):
    """A fresh JupyterLab page with the formgrader open, and the formgrader's row of the assignment."""
    page.goto(f"{lab.base}/lab?reset&token={lab.token}")
    page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
    page.keyboard.press("Control+b")  # hide the file browser: a wider formgrader
    open_from_nbgrader_menu(page, "Formgrader")
    formgrader = page.frame_locator("#formgrader-iframe iframe")
    row = formgrader.locator("#main-table tr", has_text=ASSIGNMENT)
    row.wait_for(timeout=30_000)
    return formgrader, row


def test_formgrader_shows_the_assignment_and_graded_submissions(lab, page, workspace, graded):
    formgrader, row = open_formgrader(page, lab)
    assert row.locator("td.name").inner_text().strip() == ASSIGNMENT
    assert row.locator("td.num-submissions").inner_text().strip() == str(len(graded))
    row.scroll_into_view_if_needed()
    shot(page, "05-formgrader-assignments.png")

    row.locator("td.num-submissions a").click()
    formgrader.get_by_role("heading", name="Manage Submissions").wait_for()
    shown = {}
    for student in graded:  # columns: name, id, timestamp, status, score, buttons
        student_id = formgrader.locator("td", has_text=re.compile(f"^{student}$"))
        row = formgrader.locator("#main-table tr", has=student_id)
        row.wait_for(timeout=30_000)
        cells = [text.strip() for text in row.locator("td").all_inner_texts()]
        shown[cells[1]] = (cells[3], cells[4])
    assert shown == {student: ("graded", f"{total:g} / 20") for student, total in graded.items()}
    assert formgrader.locator("#main-table tr").count() == len(graded), "students of another course?"
    formgrader.locator("#main-table").scroll_into_view_if_needed()
    shot(page, "06-formgrader-submissions.png")


def test_release_from_formgrader_shows_in_the_assignment_list(lab, page, workspace, graded):
    formgrader = page.frame_locator("#formgrader-iframe iframe")
    formgrader.get_by_role("link", name="Manage Assignments").first.click()
    row = formgrader.locator("#main-table tr", has_text=ASSIGNMENT)
    row.locator("td.release a").click()
    modal = formgrader.locator(".modal-dialog")
    modal.get_by_text(f"Successfully released '{ASSIGNMENT}'.").wait_for(timeout=60_000)
    page.wait_for_timeout(500)  # the modal's fade-in
    shot(page, "07-formgrader-released.png")
    modal.get_by_role("button", name="OK").click()
    modal.wait_for(state="detached", timeout=10_000)
    assert row.locator("td.status").inner_text().strip() == "released"

    open_from_nbgrader_menu(page, "Assignment List")
    released = page.locator("#released_assignments_list")
    item = released.locator(".list_item", has_text=ASSIGNMENT)
    item.wait_for(timeout=30_000)
    assert "face_recognition" in item.inner_text()
    assert item.get_by_role("button", name="Fetch").is_visible()
    shot(page, "08-assignment-list.png")


# ---------------------------------------------------------------- the round trip, two users

def formgrader_action(page, link, success: str, name: str, timeout: float = 60) -> str:
    """Click a formgrader button (`link`), wait for its success dialog, screenshot, close it."""
    formgrader = page.frame_locator("#formgrader-iframe iframe")
    link.click()
    modal = formgrader.locator(".modal-dialog")
    modal.locator(".modal-title").wait_for(timeout=timeout * 1000)
    text = modal.inner_text()
    assert success in text, text[-3000:]
    page.wait_for_timeout(500)  # the modal's fade-in
    shot(page, name)
    modal.get_by_role("button", name="OK").click()
    modal.wait_for(state="detached", timeout=10_000)
    return text


def student_assignment_list(page, lab):
    page.goto(f"{lab.base}/lab?reset&token={lab.token}")
    page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
    open_from_nbgrader_menu(page, "Assignment List")


def test_student_fetches_the_assignment_from_their_own_server(student_lab, student_page, workspace):
    page = student_page
    student_assignment_list(page, student_lab)
    released = page.locator("#released_assignments_list .list_item:not(.nested_list_item)", has_text=ASSIGNMENT)
    released.wait_for(timeout=30_000)
    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list .list_item:not(.nested_list_item)", has_text=ASSIGNMENT)
    fetched.wait_for(timeout=60_000)
    shot(page, "09-student-fetched.png")
    # what the student's home got: the notebook and its two helpers, nothing of the course's 256 MB
    assert sorted(p.name for p in workspace.student.parent.iterdir()) == sorted([NOTEBOOK, "fr_checks.py", "fr_utils.py"])


def test_student_validates_the_unanswered_notebook(student_lab, student_page, workspace):
    page = student_page
    notebook = nbformat.read(workspace.student, as_version=4)
    # the graded test cells students can see: they call the three functions, which only raise
    # NotImplementedError yet (the hidden ones are empty in the student version and pass)
    visible_tests = [cell.source for cell in notebook.cells
                     if cell.metadata.get("nbgrader", {}).get("grade") and "Checks(" in cell.source]
    assert len(visible_tests) == 4

    panel = open_notebook(page, student_lab, f"{ASSIGNMENT}/{NOTEBOOK}")
    started = time.monotonic()
    result, message = validate(page, panel)
    print(f"Validate (unanswered): {time.monotonic() - started:.0f} s")
    shot(page, "03-student-validate-unanswered.png")
    assert "validation-failed" in result, message
    failed = page.locator("#validation-message > div.jp-RenderedText pre")
    sources, errors = failed.all_inner_texts()[0::2], failed.all_inner_texts()[1::2]
    assert message.count("The following cell failed:") == len(visible_tests)
    assert [s.strip() for s in sources] == [s.strip() for s in visible_tests]
    # fr_checks turns each failed check into a score, so nbgrader reports partial credit
    # (its wording, also for 0 points), not a traceback
    assert set(errors) == {"Partial credit; passed some but not all of the tests"}, errors
    close_dialog(page)


def test_student_runs_all_cells_of_the_fetched_copy(student_lab, student_page, workspace):
    """Run All on the unanswered notebook: the walkthrough runs from the shared course files and
    stops at the first call of an unanswered function."""
    page = student_page
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li[data-command='runmenu:run-all']").click()
    started = time.monotonic()
    page.wait_for_function(
        """selector => ![...document.querySelectorAll(selector)].some(p => p.textContent.includes('*'))""",
        arg=f"{CURRENT} .jp-CodeCell .jp-InputPrompt", timeout=RUN_ALL * 1000, polling=1000)
    print(f"Run All (student, unanswered): {time.monotonic() - started:.0f} s")
    shot(page, "10-student-run-all.png")
    counts = prompts(page)
    ran = [text for text in counts if re.fullmatch(r"\[\d+\]:", text)]
    assert len(ran) >= 10, counts
    text = "\n".join(page.locator(f"{CURRENT} .jp-OutputArea-output").all_text_contents())
    assert "NotImplementedError" in text
    # fr_utils linked the course folders from the shared one (on Validate, the first run here)
    for name in ("images", "keras-facenet-h5"):
        assert (workspace.home / ASSIGNMENT / name).resolve() == (workspace.shared / name).resolve()


def test_student_writes_the_answers_and_validates(student_lab, student_page, workspace):
    page = student_page
    notebook = nbformat.read(workspace.student, as_version=4)
    answers = solutions()
    index = {grade_id(cell): i for i, cell in enumerate(notebook.cells)}
    panel = page.locator(CURRENT)  # the student notebook, still open
    for name, answer in answers.items():
        cell = panel.locator(".jp-Notebook-cell").nth(index[name])
        cell.scroll_into_view_if_needed()
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(answer)  # as typed: no auto-indent, no closed brackets
        page.keyboard.press("Escape")
    # back to the top, so that the screenshot shows the notebook's title rather than a solution
    panel.locator(".jp-Notebook-cell").first.click()
    panel.locator(".jp-Notebook-cell").first.scroll_into_view_if_needed()
    started = time.monotonic()
    result, message = validate(page, panel)  # saves the notebook first
    print(f"Validate (answered): {time.monotonic() - started:.0f} s")
    shot(page, "04-student-validate-success.png")
    assert "validation-success" in result, message
    assert message.strip() == "Success! Your notebook passes all the tests."
    close_dialog(page)
    saved = nbformat.read(workspace.student, as_version=4)
    assert {name: saved.cells[index[name]].source for name in answers} == answers


def test_student_submits(student_lab, student_page, workspace):
    page = student_page
    student_assignment_list(page, student_lab)
    fetched = page.locator("#fetched_assignments_list .list_item:not(.nested_list_item)", has_text=ASSIGNMENT)
    fetched.get_by_role("button", name="Submit").click()
    submitted = page.locator("#submitted_assignments_list .list_item:not(.nested_list_item)", has_text=ASSIGNMENT)
    submitted.wait_for(timeout=60_000)
    shot(page, "11-student-submitted.png")
    inbound = list((workspace.exchange / "face_recognition" / "inbound").glob(f"{STUDENT}+{ASSIGNMENT}+*"))
    assert len(inbound) == 1


def test_instructor_collects_and_autogrades_in_the_formgrader(lab, page, workspace, graded):
    from grader.grading import roster

    (workspace.tmp / "roster.csv").write_text(ROSTER)
    roster.import_roster(workspace.tmp / "roster.csv", workspace.course)  # the README's roster step
    formgrader, row = open_formgrader(page, lab)
    formgrader_action(page, row.locator("td.collect a"), f"Successfully collected submissions of '{ASSIGNMENT}'.",
                      "12-formgrader-collected.png")
    row.locator("td.num-submissions a").click()
    formgrader.get_by_role("heading", name="Manage Submissions").wait_for()
    student = formgrader.locator("#main-table tr", has=formgrader.locator("td", has_text=re.compile(f"^{STUDENT}$")))
    student.wait_for(timeout=30_000)
    started = time.monotonic()
    text = formgrader_action(page, student.locator("td.autograde a"),
                             f"Successfully autograded '{ASSIGNMENT}' for student '{STUDENT}'.",
                             "13-formgrader-autograded.png", timeout=GRADING)
    print(f"Autograde from the formgrader: {time.monotonic() - started:.0f} s")
    assert "python -m grader.grade" in text and "Sandbox ready" in text  # the grader's sandbox
    student.locator("td.score").filter(has_text="/").wait_for(timeout=30_000)
    cells = [value.strip() for value in student.locator("td").all_inner_texts()]
    assert (cells[0], cells[1], cells[3], cells[4]) == ("Smith, Ana", STUDENT, "graded", "20 / 20"), cells
    student.scroll_into_view_if_needed()
    shot(page, "14-formgrader-graded-with-name.png")


def test_instructor_generates_and_releases_the_feedback(lab, page, workspace):
    formgrader = page.frame_locator("#formgrader-iframe iframe")
    student = formgrader.locator("#main-table tr", has=formgrader.locator("td", has_text=re.compile(f"^{STUDENT}$")))
    formgrader_action(page, student.locator("td.generate-feedback a"),
                      f"Successfully generated feedback for '{ASSIGNMENT}' for student '{STUDENT}'.",
                      "15-formgrader-feedback-generated.png")
    student.locator("td.release-feedback a").wait_for()
    formgrader_action(page, student.locator("td.release-feedback a"),
                      f"Successfully released feedback for '{ASSIGNMENT}' for student '{STUDENT}'.",
                      "16-formgrader-feedback-released.png")


def test_student_fetches_the_feedback_and_sees_each_exercises_points(student_lab, student_page, workspace):
    import urllib.parse

    page = student_page
    student_assignment_list(page, student_lab)
    submitted = page.locator("#submitted_assignments_list .list_item:not(.nested_list_item)", has_text=ASSIGNMENT)
    submitted.get_by_role("button", name="Fetch Feedback").click()
    submitted.get_by_text("(view feedback)").wait_for(timeout=60_000)
    shot(page, "17-student-feedback-fetched.png")
    files = list((workspace.home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
    assert len(files) == 1
    html = files[0].read_text(encoding="utf-8")
    for secret in HIDDEN_TEXT:
        assert secret not in html, secret
    relative = urllib.parse.quote(str(files[0].relative_to(workspace.home)))
    page.goto(f"{student_lab.base}/files/{relative}?token={student_lab.token}")
    text = page.locator("body").inner_text()
    assert re.search(r"Face_Recognition \(Score: 20\.0 / 20\.0\)", text), text[:2000]
    shown = re.findall(r"Grade cell:\s*(\w+)\s*Score:\s*([\d.]+)\s*/\s*([\d.]+)", text)
    for exercise, points in EXERCISE_POINTS.items():
        cells = [(float(s), float(m)) for name, s, m in shown if name.startswith(exercise + "_")]
        assert cells and sum(s for s, _ in cells) == sum(m for _, m in cells) == points, (exercise, cells)
    page.get_by_text("Grade cell: verify_test_visible").first.scroll_into_view_if_needed()
    shot(page, "18-student-feedback.png")


def test_readme_screenshots_come_from_this_run():
    """The screenshots the README shows were taken by the steps above, at 1280x800 and small
    enough for the repository; FACEREC_UPDATE_SCREENSHOTS=1 copies them into docs/screenshots/."""
    from PIL import Image

    for taken, kept in DOC_SCREENSHOTS.items():
        assert (SHOTS / taken).is_file(), f"{taken} was not taken"
        with Image.open(SHOTS / taken) as image:
            assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
        assert (SHOTS / taken).stat().st_size < DOC_SCREENSHOT_MAX_BYTES
        if os.environ.get("FACEREC_UPDATE_SCREENSHOTS") == "1":
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SHOTS / taken, DOCS_SHOTS / kept)


def test_stopping_the_launcher_stops_jupyterlab_and_its_kernels(lab):
    """SIGTERM (what Ctrl-C does too) to the launcher: the server and every kernel it started end."""
    def kernels_api(method: str = "GET"):
        request = urllib.request.Request(f"{lab.base}/api/kernels", method=method,
                                         data=b"{}" if method == "POST" else None,
                                         headers={"Authorization": f"token {lab.token}"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)

    kernels_api("POST")  # one more kernel, besides those of the notebooks opened above
    kernels = {kernel["id"] for kernel in kernels_api()}
    deadline = time.monotonic() + 60
    while running_kernels(kernels) != kernels and time.monotonic() < deadline:
        time.sleep(1)
    assert running_kernels(kernels) == kernels, "a kernel without its process"
    lab.launcher.send_signal(signal.SIGTERM)
    assert lab.launcher.wait(60) == 0
    assert not listening(lab.port), "JupyterLab still listens"
    deadline = time.monotonic() + 30
    while (left := running_kernels(kernels)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, f"kernel processes left running: {left}"
