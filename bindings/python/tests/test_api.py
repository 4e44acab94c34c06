import gc
import os
import threading
import time
import unittest
import warnings

import shmledger
from .support import temp_base, until

def _read(path):
    with open(path) as f:
        return f.read()


OPTS = dict(heartbeat_interval_ms=1000, stale_threshold_ms=5000, max_backups=5)


class LifecycleTest(unittest.TestCase):
    def test_create_call_log_temp_complete(self):
        base = temp_base(self)
        with shmledger.Ledger(base, "script", **OPTS) as ledger:
            op = ledger.create_operation("summarise")
            self.assertTrue(op.is_initiator)
            self.assertEqual(op.participant_id, "script")
            self.assertRegex(op.id, r"^\d{8}T[\d:.]+-script-[0-9a-f]{8}$")
            self.assertEqual(op.state, "running")
            call = op.start_call("read files")
            self.assertRegex(call.id, r"^call_script_1_[0-9a-f]{4}$")
            self.assertEqual(op.pending_call_count, 1)
            op.log("reading", "info")
            op.log("detail", shmledger.LOG_DEBUG)
            path = os.path.join(base, "scratch.tmp")
            op.register_temp_resource(path)
            self.assertEqual(op.unregister_temp_resource(path), 1)
            call.end()
            self.assertTrue(call.is_completed)
            self.assertFalse(op.check_abort())
            self.assertIsNone(op.failure_info())
            log = os.path.join(base, f"{op.id}.operation.log")
            until(lambda: os.path.exists(log) and "[INFO] reading" in _read(log),
                  5, "log line")
            op.complete()
            self.assertFalse(op.is_open)
        self.assertTrue(ledger.closed)

    def test_context_managers(self):
        base = temp_base(self)
        with shmledger.Ledger(base, "script", **OPTS) as ledger:
            with ledger.create_operation() as op:
                with op.start_call("ok") as call:
                    pass
                self.assertTrue(call.is_completed)
                self.assertIsNone(op.failure_info())
                with self.assertRaises(KeyError):
                    with op.start_call("doomed") as bad:
                        raise KeyError("missing input")
                info = op.wait_failure(5)
                self.assertIsNotNone(info)
                self.assertEqual(info.operation_id, op.id)
                self.assertEqual(info.crashed_call_ids, [bad.id])
                self.assertIn("KeyError", info.reason)
                self.assertIn("missing input", info.reason)
                self.assertEqual(op.state, "failed")
            self.assertFalse(op.is_open)  # left on exit
            # a session with a pending call is left with it cancelled
            with ledger.create_operation() as op2:
                pending = op2.start_call()
            self.assertFalse(op2.is_open)
            with self.assertRaises(shmledger.Error) as cm:
                pending.end()
            self.assertEqual(cm.exception.code, shmledger.ESTATE)

    def test_abort_across_sessions_and_waits(self):
        base = temp_base(self)
        with shmledger.Ledger(base, "a", **OPTS) as a, \
                shmledger.Ledger(base, "b", **OPTS) as b:
            op = a.create_operation()
            joined = b.join_operation(op.id)
            self.assertFalse(joined.is_initiator)
            t0 = time.monotonic()
            self.assertFalse(joined.wait_abort(0.05))
            self.assertGreaterEqual(time.monotonic() - t0, 0.04)
            self.assertIsNone(joined.wait_failure(0))
            # a waiter in another thread wakes when the flag is set
            got = {}
            th = threading.Thread(target=lambda: got.setdefault("r", joined.wait_abort(10)))
            th.start()
            op.set_abort_flag(True)
            th.join(10)
            self.assertFalse(th.is_alive())
            self.assertTrue(got["r"])
            self.assertTrue(joined.check_abort())
            self.assertTrue(joined.is_aborted)
            # the event fd is readable now
            import select
            r, _, _ = select.select([joined.event_fd()], [], [], 5)
            self.assertEqual(r, [joined.event_fd()])
            joined.leave()
            op.complete()

    def test_leave_from_another_thread_while_waiting(self):
        base = temp_base(self)
        with shmledger.Ledger(base, "a", **OPTS) as ledger:
            op = ledger.create_operation()
            errors = []

            def waiter():
                try:
                    op.wait_failure(None)
                except shmledger.Error as e:
                    errors.append(e)
            th = threading.Thread(target=waiter)
            th.start()
            time.sleep(0.02)  # let it enter the wait (either order is fine)
            op.leave()
            th.join(5)
            self.assertFalse(th.is_alive())
            self.assertEqual(len(errors), 1)
            self.assertEqual(errors[0].code, shmledger.ESTATE)


class ErrorTest(unittest.TestCase):
    def test_bad_arguments(self):
        base = temp_base(self)
        with self.assertRaises(shmledger.Error) as cm:
            shmledger.Ledger(base, "bad id/x")
        self.assertEqual(cm.exception.code, shmledger.EBADID)
        self.assertIn("malformed id", str(cm.exception))
        with self.assertRaises(TypeError):
            shmledger.Ledger(base, None)
        with self.assertRaises(ValueError):
            shmledger.Ledger(base, "x", heartbeat_interval_ms=-1)
        with shmledger.Ledger(base, "script", **OPTS) as ledger:
            with self.assertRaises(shmledger.Error) as cm:
                ledger.join_operation("20260101T00:00:00.000-nobody-00000000")
            e = cm.exception
            self.assertEqual(e.code, shmledger.ENOTFOUND)
            self.assertEqual(e.name, "no such operation")
            self.assertTrue(str(e).startswith("join_operation: no such operation"))
            with self.assertRaises(shmledger.Error) as cm:
                ledger.join_operation("../etc")
            self.assertEqual(cm.exception.code, shmledger.EBADID)
            with self.assertRaises(TypeError):
                ledger.join_operation(42)
            op = ledger.create_operation()
            with self.assertRaises(shmledger.Error) as cm:
                op.register_temp_resource("relative/path")
            self.assertEqual(cm.exception.code, -22)
            with self.assertRaises(shmledger.Error):
                op.register_temp_resource("/tmp/with\0nul")
            with self.assertRaises(ValueError):
                op.log("x", "loud")
            call = op.start_call()
            with self.assertRaises(shmledger.Error) as cm:
                op.leave()
            self.assertEqual(cm.exception.code, shmledger.ESTATE)
            call.end()
            with self.assertRaises(shmledger.Error) as cm:
                call.end()
            self.assertEqual(cm.exception.code, shmledger.ESTATE)
            op.complete()
            with self.assertRaises(shmledger.Error) as cm:
                op.start_call()
            self.assertEqual(cm.exception.code, shmledger.ESTATE)
        with self.assertRaises(shmledger.Error) as cm:
            ledger.create_operation()
        self.assertEqual(cm.exception.code, shmledger.ESTATE)
        ledger.close()  # idempotent

    def test_unclosed_ledger_warns(self):
        base = temp_base(self)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            ledger = shmledger.Ledger(base, "leaky", **OPTS)
            del ledger
            gc.collect()
        self.assertTrue(any(issubclass(x.category, ResourceWarning) for x in w))

    def test_forked_child_cannot_use_parent_handles(self):
        base = temp_base(self)
        with shmledger.Ledger(base, "parent", **OPTS) as ledger:
            op = ledger.create_operation()
            r, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: only raise-and-report, then _exit
                code = 1
                try:
                    op.start_call()
                except shmledger.Error as e:
                    code = 0 if e.code == shmledger.ESTATE else 2
                except BaseException:
                    code = 3
                ledger.close()  # abandons, never closes the parent's
                os.write(wfd, bytes([code]))
                os._exit(0)
            os.close(wfd)
            got = os.read(r, 1)
            os.close(r)
            os.waitpid(pid, 0)
            self.assertEqual(got, b"\0")
            # the parent's handles still work
            op.start_call().end()
            op.complete()


if __name__ == "__main__":
    unittest.main()
