"""Running a student's notebook: isolated, limited, with hidden tests kept outside it.

execute.py     nbgrader's execution step in the sandbox (SandboxExecute); hidden tests run here, outside it
zygote.py      one process per run with TensorFlow imported, forking an isolated kernel per submission
isolation.py   Linux namespaces, read-only root, user id, rlimits of a kernel
kernel.py      the kernel: cells in an IPython shell, libraries restored before tests
callee.py      what a hidden test's call does in the student's process
wire.py        messages between grader and kernel (JSON, bounded, no pickle)

The kernel side (kernel.py, callee.py, wire.py) never sees the gradebook or its URL.
"""
