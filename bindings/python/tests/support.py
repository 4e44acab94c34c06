"""Test helpers: a private base directory (so a private segment) per test,
removed with its segment; polling with deadlines."""
import os
import shutil
import tempfile
import time

import shmledger

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.environ.get("SHMLEDGER_NODE_BINDING") or os.path.join(
    HERE, "..", "..", "node")


def temp_base(testcase, tag="py"):
    base = tempfile.mkdtemp(prefix=f"shl-{tag}-")

    def cleanup():
        shmledger.unlink_segment(base, force=True) if os.path.isdir(
            base) else None
        shutil.rmtree(base, ignore_errors=True)
    testcase.addCleanup(cleanup)
    return base


def until(cond, timeout, what):
    """Poll cond() every 5 ms until truthy (its value) or raise."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.005)


def read_line(proc, timeout, what):
    """First stdout line of proc within timeout (selectors, no blocking)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        end = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = end - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError(f"{what}: no line within {timeout} s")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"{what}: child exited (rc {proc.wait()}) first")
            buf += chunk
        return buf.split(b"\n", 1)[0].decode()
    finally:
        sel.close()
