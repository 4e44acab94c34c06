"""Crash of a participant process (SIGKILL), seen by a Python initiator:
a Python participant always; a Node participant when the Node addon is
built (bindings/node/build/Release/shmledger.node, or
SHMLEDGER_NODE_BINDING naming that package's directory)."""
import os
import shutil
import subprocess
import sys
import time
import unittest

import shmledger
from .support import HERE, NODE_DIR, read_line, temp_base

HB_MS = 1000


class CrashTest(unittest.TestCase):
    def _crash(self, argv, env=None):
        base = temp_base(self, "crash")
        with shmledger.Ledger(base, "initiator", heartbeat_interval_ms=HB_MS,
                              stale_threshold_ms=5000) as ledger:
            op = ledger.create_operation("crash test")
            proc = subprocess.Popen(argv + [base, op.id, "worker"], stdout=subprocess.PIPE,
                                    env=env)
            self.addCleanup(proc.stdout.close)
            self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
            line = read_line(proc, 15, "participant call id")
            self.assertRegex(line, r"^CALL call_worker_1_[0-9a-f]{4}$")
            call_id = line.split()[1]
            self.assertIsNone(op.wait_failure(0))
            t0 = time.monotonic()
            proc.kill()
            info = op.wait_failure(4 * HB_MS / 1000 + 5)
            ms = (time.monotonic() - t0) * 1000
            proc.wait()
            self.assertIsNotNone(info, "no failure after SIGKILL")
            print(f"\n  [{os.path.basename(argv[-1])}] crash noticed after {ms:.1f} ms",
                  file=sys.stderr)
            self.assertEqual(info.operation_id, op.id)
            self.assertIn(call_id, info.crashed_call_ids)
            self.assertIn("worker", info.reason)
            self.assertNotEqual(op.state, "running")
            op.leave(cancel_pending_calls=True)

    def test_python_participant_killed(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.dirname(HERE), env.get("PYTHONPATH")) if p)
        self._crash([sys.executable, os.path.join(HERE, "participant.py")], env)

    def test_node_participant_killed(self):
        node = shutil.which("node")
        addon = os.path.join(NODE_DIR, "build", "Release", "shmledger.node")
        if not node or not os.path.exists(addon):
            self.skipTest("the Node addon is not built")
        self._crash([node, os.path.join(NODE_DIR, "test", "fixtures", "participant.js")])


if __name__ == "__main__":
    unittest.main()
