"""Test fixture: join an operation, start a call, say so, then wait to be
killed.  Usage: participant.py BASE OPERATION_ID PARTICIPANT_ID
Prints "CALL <call id>" (flushed) once the call's frame is in the table."""
import signal
import sys

import shmledger


def main():
    base, op_id, pid = sys.argv[1:4]
    ledger = shmledger.Ledger(base, pid, heartbeat_interval_ms=1000,
                              stale_threshold_ms=5000)
    op = ledger.join_operation(op_id)
    call = op.start_call("python work", fail_on_crash=True)
    print(f"CALL {call.id}", flush=True)
    # Never ends: the test kills this process with SIGKILL.
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
