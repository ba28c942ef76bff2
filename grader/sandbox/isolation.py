"""Linux isolation of one sandboxed kernel: namespaces, a minimal read-only root, no privileges,
resource limits. Used by grader/sandbox/zygote.py in the process it forks for each submission.

What a kernel sees, when the machine allows namespaces (root, or unprivileged user namespaces):

- its own mount namespace whose root is a fresh, read-only skeleton holding only what Python and
  the course need, each bound read-only at its usual path: /usr, /etc, /sys, the Python
  installation and virtual environment, and from the repository only the course files
  (images/, keras-facenet-h5/, facerec/, fr_utils.py, fr_checks.py). The grader package (hidden
  tests, reference answers, the source notebook with its solutions), the gradebook, other
  students' submissions, the repository's history and everything else on the machine are absent;
- a private, size-limited /tmp holding its working folder, Face_Recognition/, with a copy of
  the notebook and the course files bound read-only;
- its own network namespace (no interface but a loopback that is down: no network at all),
  PID namespace (it sees and can signal only its own processes), IPC and UTS namespaces;
- a user id of its own (not root, not shared with any other kernel), no way to regain
  privileges (PR_SET_NO_NEW_PRIVS), and resource limits (address space, CPU time, file size,
  processes, open files, no core dumps).

`probe()` says which of this the machine allows; the grader reports it once per run.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}.get(platform.machine())

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

# Devices a Python process expects.
DEVICES = ("null", "zero", "full", "random", "urandom")
# Top-level names that are symbolic links on merged-/usr systems (copied as links when they are).
ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _b(path) -> bytes | None:
    return None if path is None else os.fsencode(str(path))


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source, target, fstype=None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount_detached(target) -> None:
    _check(_libc.umount2(_b(target), MNT_DETACH), f"umount {target}")


def pivot_root(new_root, put_old) -> None:
    if SYS_PIVOT_ROOT is None:
        raise OSError(errno.ENOSYS, f"pivot_root: unknown system call number on {platform.machine()}")
    _check(_libc.syscall(SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def die_with_parent(signal_number: int = 9) -> None:
    """Be killed (SIGKILL) when the parent process ends."""
    prctl(PR_SET_PDEATHSIG, signal_number)


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), "sethostname")


# ---------------------------------------------------------------- what a kernel may see


@dataclass
class Plan:
    """What goes into a kernel's root."""

    readonly: list[tuple[Path, Path]]       # (what, where): bound read-only, usually at its own path
    links: dict[str, str]                   # top-level symbolic links (name -> target)
    workdir_files: dict[str, Path]          # name in the working folder -> course file bound there
    overlays: list[Path] = field(default_factory=list)      # hidden by an empty folder mounted over them
    tmp_size: str = "512m"

    @classmethod
    def for_course(cls, repository: Path, course_files: list[str], hidden: list[Path]) -> "Plan":
        """Python (its installation, the virtual environment, every folder on sys.path outside the
        repository), /usr, /etc, /sys and the course files; never the repository itself.

        A path reached through a symbolic link (a virtual environment linked into a clone, say)
        is bound both where Python knows it and where it really is.
        """
        repository = repository.resolve()
        hidden = [p.resolve() for p in hidden]
        wanted = [Path("/usr"), Path("/etc"), Path("/sys")]
        for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
            wanted.append(Path(os.path.abspath(prefix)))
        environment = Path(sys.prefix).resolve()
        for entry in sys.path:
            path = Path(os.path.abspath(entry or "."))
            real = path.resolve()
            inside_repository = real == repository or repository in real.parents
            if not real.is_dir() or (inside_repository and environment not in [real, *real.parents]):
                continue
            wanted.append(path)
        workdir_files = {}
        for name in [*course_files, "inception_blocks_v2.py"]:  # the latter: for facerec.original_model
            path = repository / name
            if path.exists():
                wanted.append(path)
                if name in course_files:
                    workdir_files[name] = path.resolve()
        pairs = set()
        for path in wanted:
            pairs.add((path.resolve(), path))
            pairs.add((path.resolve(), path.resolve()))
        readonly: list[tuple[Path, Path]] = []
        targets: list[Path] = []
        for source, target in sorted(pairs, key=lambda pair: (len(pair[1].parts), str(pair[1]))):
            if target == Path("/") or target == repository or target in repository.parents:
                continue  # would show the whole repository (the grader, the solutions, .git)
            if target in targets or any(parent in targets for parent in target.parents):
                continue  # already visible through a folder bound above it
            readonly.append((source, target))
            targets.append(target)
        # The course folder, the submissions or the output folder inside something bound (a
        # virtual environment in /tmp next to them, say): an empty folder is mounted over them.
        overlays = [h for h in hidden if any(t == h or t in h.parents for t in targets)]
        links = {name: os.readlink(f"/{name}") for name in ROOT_LINKS if os.path.islink(f"/{name}")}
        return cls(readonly=readonly, links=links, workdir_files=workdir_files, overlays=overlays)


def _mountpoint(root: Path, path: Path, is_dir: bool) -> Path:
    target = root / path.relative_to("/")
    for parent in reversed(target.relative_to(root).parents):
        folder = root / parent
        if not folder.exists():
            folder.mkdir(mode=0o755)
    if is_dir:
        target.mkdir(mode=0o755, exist_ok=True)
    elif not target.exists():
        target.touch(mode=0o644)
    return target


def bind_readonly(source: Path, target: Path) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(plan: Plan, new_root: Path, notebook_name: str, notebook_text: str, uid: int,
               workdir_name: str = "Face_Recognition") -> Path:
    """In a new mount namespace (the caller unshared it): make `new_root` the kernel's root and
    return its working folder (as seen from the new root)."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here propagates to the machine
    mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    # /tmp first: a clone or a virtual environment under /tmp is bound inside it, not hidden by it.
    tmp = _mountpoint(new_root, Path("/tmp"), True)
    mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, f"size={plan.tmp_size},mode=1777")
    for source, target in plan.readonly:
        bind_readonly(source, _mountpoint(new_root, target, source.is_dir()))
    for path in plan.overlays:
        target = new_root / path.relative_to("/")
        if target.is_dir():
            mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
    for name, target in plan.links.items():
        os.symlink(target, new_root / name)
    dev = _mountpoint(new_root, Path("/dev"), True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for name in DEVICES:
        (dev / name).touch()
        mount(f"/dev/{name}", dev / name, None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, dev / name)
    (dev / "shm").mkdir()
    mount("tmpfs", dev / "shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    _mountpoint(new_root, Path("/proc"), True)
    workdir = tmp / workdir_name
    workdir.mkdir()
    for name, source in plan.workdir_files.items():
        bind_readonly(source, _mountpoint(new_root, Path("/tmp") / workdir_name / name, source.is_dir()))
    (workdir / notebook_name).write_text(notebook_text, encoding="utf-8")
    home = tmp / "home"
    home.mkdir()
    for folder in (workdir, home):
        os.chown(folder, uid, uid)
    os.chown(workdir / notebook_name, uid, uid)
    old = new_root / ".old"
    old.mkdir()
    pivot_root(new_root, old)
    os.chdir("/")
    umount_detached("/.old")
    os.rmdir("/.old")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return Path("/tmp") / workdir_name


def mount_proc() -> None:
    """In the first process of a new PID namespace: a /proc that shows only that namespace."""
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def write_id_maps(uid: int, gid: int) -> None:
    """In a new user namespace: be root inside it, mapped to `uid`/`gid` outside."""
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


def drop_privileges(uid: int, gid: int) -> None:
    """Become `uid`/`gid` for good (when root), or leave the namespace's root behind by entering a
    nested user namespace (when not): either way the mounts above can no longer be undone."""
    if os.geteuid() == 0 and not _in_user_namespace():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    elif _in_user_namespace():
        outer = os.geteuid()
        unshare(CLONE_NEWUSER)
        Path("/proc/self/uid_map").write_text(f"1000 {outer} 1")
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def _in_user_namespace() -> bool:
    try:
        return Path("/proc/self/uid_map").read_text().split()[:3] != ["0", "0", "4294967295"]
    except OSError:
        return False


# ---------------------------------------------------------------- a seccomp filter

# System calls a kernel may not make, and the error it gets instead. fallocate() reserves disk
# without writing (RLIMIT_FSIZE does not count it): EOPNOTSUPP makes glibc's posix_fallocate fall
# back to writing, which the file-size limit and the tmpfs sizes bound. io_uring can do the same
# (and more) outside seccomp's view; memfd_create makes memory files that RLIMIT_AS does not count.
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "arm64": 0xC00000B7}.get(platform.machine())
FILTERED_SYSCALLS = {
    "x86_64": {285: errno.EOPNOTSUPP, 319: errno.ENOSYS, 425: errno.ENOSYS, 426: errno.ENOSYS, 427: errno.ENOSYS},
    "aarch64": {47: errno.EOPNOTSUPP, 279: errno.ENOSYS, 425: errno.ENOSYS, 426: errno.ENOSYS, 427: errno.ENOSYS},
}
FILTERED_SYSCALLS["arm64"] = FILTERED_SYSCALLS["aarch64"]
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
X32_SYSCALL_BIT = 0x40000000


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(arch: int, denied: dict[int, int]) -> list[tuple[int, int, int, int]]:
    """A classic BPF program: another architecture's calls (and x32's) fail with ENOSYS, each
    call of `denied` fails with its errno, everything else is allowed."""
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    enosys = SECCOMP_RET_ERRNO | errno.ENOSYS
    program = [(load, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, enosys),   # seccomp_data.arch
               (load, 0, 0, 0), (jge, 0, 1, X32_SYSCALL_BIT), (ret, 0, 0, enosys)]   # seccomp_data.nr
    for number, error in sorted(denied.items()):
        program += [(jeq, 0, 1, number), (ret, 0, 0, SECCOMP_RET_ERRNO | error)]
    return program + [(ret, 0, 0, SECCOMP_RET_ALLOW)]


def install_seccomp() -> bool:
    """Install the filter on this process (and what it starts); False where it is unknown."""
    machine = platform.machine()
    if AUDIT_ARCH is None or machine not in FILTERED_SYSCALLS:
        return False
    program = seccomp_program(AUDIT_ARCH, FILTERED_SYSCALLS[machine])
    instructions = (_SockFilter * len(program))(*[_SockFilter(*row) for row in program])
    fprog = _SockFprog(len(program), instructions)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0), "seccomp")
    return True


@dataclass
class Limits:
    memory_bytes: int = 6 << 30          # address space
    cpu_seconds: int = 900
    file_bytes: int = 256 << 20
    processes: int = 64
    open_files: int = 1024


def apply_limits(limits: Limits, own_uid: bool) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    if own_uid:  # counted per user: only safe with a user id no one else has
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


# ---------------------------------------------------------------- what this machine allows


@dataclass
class Support:
    namespaces: bool
    user_namespace: bool   # namespaces through an unprivileged user namespace (not root)
    own_uid: bool          # kernels run under a user id of their own (needs root)
    reason: str = ""

    def describe(self) -> str:
        if self.namespaces:
            how = "as root" if not self.user_namespace else "in an unprivileged user namespace"
            return (f"isolated ({how}): own mount, network, PID, IPC and UTS namespaces, a read-only "
                    f"minimal root, {'an unshared user id' if self.own_uid else 'no capabilities'}, rlimits")
        return (f"NOT isolated from the file system and network ({self.reason}); "
                f"{'an unshared user id and ' if self.own_uid else ''}rlimits only")


def probe() -> Support:
    """Try, in a short-lived child process, the namespaces a kernel would use."""
    if not sys.platform.startswith("linux"):
        return Support(False, False, False, f"{sys.platform} has no Linux namespaces")
    root = os.geteuid() == 0
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = 0
        try:
            if root:
                unshare(flags)
            else:
                uid, gid = os.geteuid(), os.getegid()
                unshare(flags | CLONE_NEWUSER)
                write_id_maps(uid, gid)
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m")
        except OSError as error:
            os.write(write, str(error).encode()[:500])
            code = 1
        os._exit(code)
    os.close(write)
    message = b""
    while chunk := os.read(read, 1000):
        message += chunk
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return Support(True, not root, root)
    return Support(False, False, root, message.decode(errors="replace") or "unshare failed")
