#!/usr/bin/env bash
# Command-line tests of `shmledger` and `shmledger-top` (ctest label cli).
#
#   bash tests/cli/run.sh <path-to-shmledger> [<path-to-shmledger-top>]
#
# Every case gets its own base directory (so its own segment) under
# $SHL_TEST_TMPDIR (or a mktemp dir), checks exit statuses and stdout/stderr
# against glob patterns (golden output with wildcards for ids, pids and
# times), and ends with `shmledger gc --unlink`. Every command under test is
# prefixed with $SHL_EXEC_PREFIX (e.g. "valgrind -q --error-exitcode=99").
# Prints one line per case and a last line "N passed, M failed"; exits
# non-zero when a case failed.
set -u

if [[ $# -lt 1 ]]; then
    echo "usage: $0 <shmledger> [<shmledger-top>]" >&2
    exit 2
fi
SHL=$(realpath "$1")
TOP=${2:+$(realpath "$2")}
PREFIX=${SHL_EXEC_PREFIX:-}
MULT=${SHL_TEST_TIMEOUT_MULTIPLIER:-1}
[[ -n $PREFIX && $MULT -lt 5 ]] && MULT=5 # valgrind is slow

ROOT=${SHL_TEST_TMPDIR:-${TMPDIR:-/tmp}}
mkdir -p "$ROOT"
WORK=$(mktemp -d "$ROOT/cli.XXXXXX")

PASSED=0
FAILED=0
BG=()       # background pids of the current case
ERRS=()     # failures noted in the current case
CASE=""
B=""        # the current case's base directory

cleanup_all() {
    for p in "${BG[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup_all EXIT

# The command under test, with the exec prefix.
shl() { $PREFIX "$SHL" "$@"; }
top() { $PREFIX "$TOP" "$@"; }

# cap CMD...: run, capture stdout in OUT, stderr in ERR, status in RC.
cap() {
    OUT=$("$@" 2>"$WORK/stderr")
    RC=$?
    # valgrind's own notes ("--pid-- WARNING: unhandled syscall") are not
    # the command's output; its error reports (==pid==) stay.
    ERR=$(grep -v '^--[0-9]*-- ' "$WORK/stderr")
}

note() { ERRS+=("$*"); }

# want_rc N: the last cap's status must be N.
want_rc() {
    [[ $RC == "$1" ]] || note "exit $RC, want $1 (stderr: ${ERR:0:300})"
}
# want_out GLOB / want_err GLOB: the last cap's stdout / stderr match.
want_out() {
    # shellcheck disable=SC2053
    [[ $OUT == $1 ]] || note "stdout does not match '$1': ${OUT:0:400}"
}
want_err() {
    # shellcheck disable=SC2053
    [[ $ERR == $1 ]] || note "stderr does not match '$1': ${ERR:0:400}"
}
# expect RC OUTGLOB CMD...: cap + want_rc + want_out.
expect() {
    local rc=$1 glob=$2
    shift 2
    cap "$@"
    want_rc "$rc"
    want_out "$glob"
}
# expect_sq RC OUTGLOB CMD...: as expect, with runs of spaces in stdout
# squeezed to one (for tables).
expect_sq() {
    local rc=$1 glob=$2
    shift 2
    cap "$@"
    OUT=$(printf '%s' "$OUT" | tr -s ' ')
    want_rc "$rc"
    want_out "$glob"
}
# The stderr must be exactly one line (one-line errors).
one_line_err() {
    [[ $(printf '%s\n' "$ERR" | grep -c .) == 1 ]] ||
        note "stderr is not one line: $ERR"
}

# wait_until SECONDS CMD...: poll CMD until it succeeds (deadline scaled).
wait_until() {
    local limit=$(($1 * MULT * 10)) i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        ((i++ >= limit)) && return 1
        sleep 0.1
    done
    return 0
}

json_ok() {
    command -v python3 >/dev/null || return 0
    printf '%s' "$1" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null
}

begin() {
    CASE=$1
    ERRS=()
    BG=()
    B="$WORK/$CASE"
}

end() {
    for p in "${BG[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    BG=()
    if [[ -d $B ]]; then
        shl --base "$B" gc --unlink >/dev/null 2>&1 ||
            shl --base "$B" gc --unlink --force >/dev/null 2>&1
        rm -rf "$B"
    fi
    if [[ ${#ERRS[@]} -eq 0 ]]; then
        PASSED=$((PASSED + 1))
        echo "ok   $CASE${1:+ ($1)}"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL $CASE"
        for e in "${ERRS[@]}"; do echo "     - $e"; done
    fi
}

# A long-running participant that keeps OP in the ledger (a failed operation
# is reclaimed once nobody takes part): `run` with no reaction to failure.
start_holder() {
    # A simple command (not the shl function): $! is the process itself.
    $PREFIX "$SHL" --base "$B" run --op "$1" --participant holder \
        --abort-signal 0 -- sleep 600 >/dev/null 2>&1 &
    BG+=($!)
    wait_until 20 frames_of "$1" holder || note "holder's frame never showed"
}
# frames_of OP PARTICIPANT: succeeds when a frame of PARTICIPANT is listed.
frames_of() {
    shl --base "$B" show --compact "$1" 2>/dev/null |
        grep -q "\"participantId\":\"$2\",\"callId\""
}

ID_GLOB='[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]-cli-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'

# --------------------------------------------------------------------------
# Cases

begin help
expect 0 "Usage: shmledger *Exit status:*" shl --help
for c in list show create run abort complete log check info gc export demo; do
    expect 0 "Usage: shmledger *$c*Exit status:*" shl "$c" --help
    expect 0 "Usage: shmledger *$c*" shl help "$c"
done
expect 0 "shmledger [0-9]*.[0-9]*.[0-9]*" shl --version
end

begin usage
expect 2 "" shl
expect 2 "" shl --base "$B" frob
want_err "shmledger: unknown command 'frob'*"
one_line_err
expect 2 "" shl --frob
want_err "shmledger: unknown option '--frob'*"
expect 2 "" shl --base "$B" list --frob
want_err "shmledger list: unknown option '--frob'*"
one_line_err
expect 2 "" shl --base "$B" list extra
expect 2 "" shl --base "$B" show
want_err "shmledger show: missing operation id*"
expect 2 "" shl --base "$B" show 'bad id'
want_err "shmledger show: malformed operation id 'bad id'*"
one_line_err
expect 2 "" shl --base "$B" run --op x
want_err "*missing command*"
expect 2 "" shl --base "$B" run -- true
want_err "*missing --op OP*"
expect 2 "" shl --base "$B" run --op x --abort-signal nope -- true
expect 2 "" shl --base "$B" create --participant 'no/slash'
expect 2 "" shl --base "$B" export x
want_err "*--trace*"
expect 2 "" shl --base "$B" log
expect 2 "" env -u SHMLEDGER_BASE "$SHL" list
want_err "*no base path*"
end

begin no_ledger
expect 1 "" shl --base "$B" list
want_err "shmledger list: no ledger at $B*"
one_line_err
expect 1 "" shl --base "$B" show 20250101T00:00:00.000-x-00000000
one_line_err
expect 1 "" shl --base "$B" check
expect 1 "" shl --base "$B" abort 20250101T00:00:00.000-x-00000000
[[ -e $B ]] && note "abort created $B"
expect 0 "no segment*nothing to do" shl --base "$B" gc --unlink
end

begin create_list
cap shl --base "$B" create --description "first op"
want_rc 0
want_out "$ID_GLOB"
OP=$OUT
expect_sq 0 "ID STATE FRAMES PARTS ABORTED AGE DESCRIPTION
$OP running 0 0 no * first op" shl --base "$B" list
# SHMLEDGER_BASE works as --base
cap env SHMLEDGER_BASE="$B" $PREFIX "$SHL" list
want_rc 0
want_out "*$OP*"
cap shl --base "$B" create -p other
want_rc 0
want_out "*-other-*"
expect 0 "*$OP*running*-other-*running*" shl --base "$B" list
end

begin show
OP=$(shl --base "$B" create -d "shown")
expect 0 "{*\"operationId\": \"$OP\"*\"initiatorId\": \"cli\"*\"operationState\": \"running\"*\"aborted\": false*\"callFrames\": \[\]*\"description\": \"shown\"*}" \
    shl --base "$B" show "$OP"
json_ok "$OUT" || note "show: not valid JSON"
expect 0 "{\"operationId\":\"$OP\",*}" shl --base "$B" show --compact "$OP"
expect 1 "" shl --base "$B" show 20250101T00:00:00.000-x-00000000
want_err "shmledger show: no operation 20250101T00:00:00.000-x-00000000*"
one_line_err
end

begin run_exit0
OP=$(shl --base "$B" create)
start_holder "$OP"
expect 0 "$OP call_w0_1_*
$B" shl --base "$B" run --op "$OP" -p w0 -- \
    sh -c 'echo "$SHMLEDGER_OP $SHMLEDGER_CALL"; echo "$SHMLEDGER_BASE"'
cap shl --base "$B" show --compact "$OP"
want_out "*\"operationState\":\"running\"*"
[[ $OUT == *call_w0_* ]] && note "the ended call's frame is still there"
expect_sq 0 "*$OP running 1 1 no *" shl --base "$B" list
end

begin run_exit3
OP=$(shl --base "$B" create)
start_holder "$OP"
# failOnCrash false: the call fails, the operation keeps running
expect 3 "" shl --base "$B" run --op "$OP" -p soft --no-fail-on-crash \
    -- sh -c 'exit 3'
expect 0 "*\"operationState\":\"running\"*" shl --base "$B" show -c "$OP"
# default: the failed call fails the operation
expect 3 "" shl --base "$B" run --op "$OP" -p hard -- sh -c 'exit 3'
expect 0 "*\"operationState\":\"failed\"*\"reason\":\"Call call_hard_1_* failed: exit status 3\"*\"crashedCallIds\":\[\"call_hard_1_*\"\]*" \
    shl --base "$B" show -c "$OP"
expect_sq 0 "*$OP failed 1 1 no *" shl --base "$B" list
# a failed operation cannot be joined
expect 1 "" shl --base "$B" run --op "$OP" -- true
want_err "*already completed or failed*"
end

begin run_killed
OP=$(shl --base "$B" create)
start_holder "$OP"
expect 137 "" shl --base "$B" run --op "$OP" -p victim -- sh -c 'kill -9 $$'
expect 0 "*\"operationState\":\"failed\"*\"reason\":\"Call call_victim_1_* failed: killed by signal 9\"*call_victim_1_*" \
    shl --base "$B" show -c "$OP"
end

begin run_signal_forwarded
OP=$(shl --base "$B" create)
start_holder "$OP"
$PREFIX "$SHL" --base "$B" run --op "$OP" -p fwd --no-fail-on-crash \
    -- sleep 600 >/dev/null 2>&1 &
pid=$!
wait_until 20 frames_of "$OP" fwd || note "fwd's frame never showed"
kill -TERM "$pid"
wait "$pid"
RC=$?
ERR=""
want_rc 143
cap shl --base "$B" show -c "$OP"
[[ $OUT == *call_fwd_* ]] && note "the killed call's frame is still there"
want_out "*\"operationState\":\"running\"*"
end

begin run_exec_failure
OP=$(shl --base "$B" create)
expect 127 "" shl --base "$B" run --op "$OP" --no-fail-on-crash \
    -- /nonexistent/command
want_err "*cannot execute /nonexistent/command*"
expect 1 "" shl --base "$B" run --op 20250101T00:00:00.000-x-00000000 -- true
want_err "shmledger run: no operation 20250101T00:00:00.000-x-00000000*"
end

begin abort
OP=$(shl --base "$B" create)
expect 0 "aborted $OP" shl --base "$B" abort "$OP"
expect_sq 0 "*$OP running 0 0 yes *" shl --base "$B" list
expect 0 "*\"aborted\":true*" shl --base "$B" show -c "$OP"
expect 0 "cleared abort flag of $OP" shl --base "$B" abort --clear "$OP"
expect_sq 0 "*$OP running 0 0 no *" shl --base "$B" list
expect 1 "" shl --base "$B" abort 20250101T00:00:00.000-x-00000000
one_line_err
# run reacts to the abort flag with its --abort-signal
$PREFIX "$SHL" --base "$B" run --op "$OP" -p w --no-fail-on-crash \
    -- sleep 600 >/dev/null 2>&1 &
pid=$!
wait_until 20 frames_of "$OP" w || note "w's frame never showed"
shl --base "$B" abort "$OP" >/dev/null 2>&1
timeout $((20 * MULT)) tail --pid="$pid" -f /dev/null
wait "$pid"
RC=$?
want_rc 143
end

begin complete
# `complete` joins under the initiatorId, taking the role back from the
# `create` that has exited
OP=$(shl --base "$B" create -d "to complete")
start_holder "$OP"
expect 0 "completed $OP" shl --base "$B" complete "$OP"
expect_sq 0 "ID STATE FRAMES PARTS ABORTED AGE DESCRIPTION" shl --base "$B" list
[[ -f $B/backup/$OP/operation.json ]] || note "not archived in backup/$OP"
expect 0 "*\"operationState\":\"completed\"*" shl --base "$B" show -c "$OP"
expect 1 "" shl --base "$B" complete "$OP"
want_err "shmledger complete: no operation $OP in the ledger"
one_line_err
# a failed operation cannot be completed
OP=$(shl --base "$B" create)
start_holder "$OP"
shl --base "$B" run --op "$OP" -- false 2>/dev/null
expect 1 "" shl --base "$B" complete "$OP"
want_err "shmledger complete: operation $OP has already completed or failed"
expect 2 "" shl --base "$B" complete
end

begin check
OP=$(shl --base "$B" create)
expect 0 "ok: * records checked, no violations" shl --base "$B" check
expect 0 "" shl --base "$B" check --quiet
end

begin garbled_segment
OP=$(shl --base "$B" create)
seg=$(shl --base "$B" gc | sed -n 's/^segment \/\([^:]*\):.*/\1/p')
if [[ -z $seg || ! -e /dev/shm/$seg ]]; then
    note "cannot find the segment file (/dev/shm/$seg)"
else
    printf 'this is not a shmledger segment at all' |
        dd of="/dev/shm/$seg" conv=notrunc status=none
    for c in list check "show $OP" "export --trace $OP" "abort $OP"; do
        # shellcheck disable=SC2086
        expect 3 "" shl --base "$B" $c
        want_err "shmledger ${c%% *}: *segment*"
        one_line_err
    done
    expect 3 "" shl --base "$B" gc --unlink
    want_err "*--force*"
    expect 0 "removed unreadable segment*" shl --base "$B" gc --unlink --force
    [[ -e /dev/shm/$seg ]] && note "segment still there"
    # a truncated segment
    OP=$(shl --base "$B" create)
    truncate -s 64 "/dev/shm/$seg"
    expect 3 "" shl --base "$B" list
    one_line_err
fi
end

begin unsafe_segment
# issue 12 item 7: a world-writable segment is refused, never used
OP=$(shl --base "$B" create)
seg=$(shl --base "$B" gc | sed -n 's/^segment \/\([^:]*\):.*/\1/p')
if [[ -z $seg || ! -e /dev/shm/$seg ]]; then
    note "cannot find the segment file (/dev/shm/$seg)"
else
    chmod 0666 "/dev/shm/$seg"
    for c in list check info "show $OP" create; do
        # shellcheck disable=SC2086
        expect 3 "" shl --base "$B" $c
        want_err "shmledger ${c%% *}: *permissions are unsafe*world-writable*"
        one_line_err
    done
    expect 0 "removed unreadable segment*" shl --base "$B" gc --unlink --force
    [[ -e /dev/shm/$seg ]] && note "segment still there"
fi
end

begin garbled_mutex
# issue 12 item 10: a garbled structure mutex is corruption (exit 3), check
# reports it, gc --unlink --force removes the segment
OP=$(shl --base "$B" create)
seg=$(shl --base "$B" gc | sed -n 's/^segment \/\([^:]*\):.*/\1/p')
garbled=no
if command -v python3 >/dev/null && [[ -e /dev/shm/$seg ]]; then
    # the mutex is the only 40-byte glibc robust shared mutex in the header:
    # __lock 0 (free), __count 0 or 1, __owner and __nusers 0, then __kind =
    # 144 (PTHREAD_MUTEX_ROBUST_NORMAL_NP | PTHREAD_MUTEX_PSHARED_BIT)
    garbled=$(python3 - "/dev/shm/$seg" <<'PY'
import mmap, struct, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 65536)
    hits = [i for i in range(0, 65536 - 40, 8)
            if struct.unpack_from("<iiiii", m, i)[0:5] in ((0, 0, 0, 0, 144), (0, 1, 0, 0, 144))]
    if len(hits) == 1:
        m[hits[0] + 16:hits[0] + 20] = struct.pack("<i", 0x5a5a5a5a)
        print("yes")
    else:
        print("no")
PY
)
fi
if [[ $garbled != yes ]]; then
    end "skipped: no python3, or the mutex was not found"
else
    expect 3 "*structure mutex garbled*" shl --base "$B" check
    expect 3 "" shl --base "$B" create
    want_err "shmledger create: *segment is truncated or corrupt*mutex garbled*"
    one_line_err
    expect 0 "*removed unusable segment /shmledger.* ?forced?" \
        shl --base "$B" gc --unlink --force
    [[ -e /dev/shm/$seg ]] && note "segment still there"
    end
fi

begin escapes
# issue 12 item 9: participant text never reaches the terminal raw
shl --base "$B" create -d $'evil \e[2J\e]0;title\a\x9b\xff end' >/dev/null
expect 0 "*evil \\?\\[2J\\?\\]0;title\\?\\?\\? end*" shl --base "$B" list
[[ $OUT == *$'\e'* || $OUT == *$'\a'* ]] && note "list printed a control byte"
end

begin unwritable_base
# issue 12 item 5: nothing written, nothing claimed: create / run /
# complete report the failed writes and exit 4 (needs root to mount)
mkdir -p "$B/mnt"
if ! mount -t tmpfs -o size=64k tmpfs "$B/mnt" 2>/dev/null; then
    end "skipped: cannot mount a tmpfs (needs root)"
else
    FB="$B/mnt/base"
    OP=$(shl --base "$FB" create)
    dd if=/dev/zero of="$B/mnt/fill" bs=4k count=64 status=none 2>/dev/null
    expect 4 "" shl --base "$FB" run --op "$OP" -- true
    want_err "*shmledger run: *failed: No space left on device*file write(s) failed*"
    expect 4 "" shl --base "$FB" complete "$OP"
    want_err "*shmledger complete: completed $OP, but its archive is incomplete*"
    rm -f "$B/mnt/fill"
    shl --base "$FB" gc --unlink --force >/dev/null 2>&1
    mkdir -p "$FB"
    mount -o remount,ro "$B/mnt"
    expect 4 "" shl --base "$FB" create
    want_err "*Read-only file system*cannot create an operation: files could not be written whole*"
    expect_sq 0 "ID STATE FRAMES PARTS ABORTED AGE DESCRIPTION" shl --base "$FB" list
    shl --base "$FB" gc --unlink --force >/dev/null 2>&1
    umount "$B/mnt"
    end
fi

begin gc
OP=$(shl --base "$B" create)
start_holder "$OP"
expect 0 "reaped 0 dead participant(s)
participant holder (pid *, slot *): alive
segment /shmledger.*: 1 participant slot(s) in use: 1 alive, 0 dead*" \
    shl --base "$B" gc
expect 0 "participant holder (pid *, slot *): alive
segment /shmledger.*: 1 participant slot(s) in use: 1 alive, 0 dead" \
    shl --base "$B" gc --no-reap
expect 1 "*1 alive*" shl --base "$B" gc --unlink
want_err "shmledger gc: not removing segment*"
kill -TERM "${BG[@]}"
wait "${BG[@]}" 2>/dev/null
BG=()
expect 0 "*0 alive*removed segment /shmledger.*" shl --base "$B" gc --unlink
expect 0 "no segment*nothing to do" shl --base "$B" gc --unlink
expect 1 "" shl --base "$B" list
end

begin info
expect 1 "" shl --base "$B" info
want_err "shmledger info: no ledger at $B*"
OP=$(shl --base "$B" create)
start_holder "$OP"
expect_sq 0 "segment /shmledger.* (format 1)
participants 1/*
operations 1/*
frames 1/*
resources 0/*
snapshotter *
events pending */*, fallback *, skipped *, dropped *, file errors *
lock recoveries *, crashes detected *, epoch *
participant holder (pid ${BG[0]}, slot *): alive, heartbeat * ms ago" \
    shl --base "$B" info
# the holder's snapshotter thread takes the role at its first pass
info_names_holder() {
    shl --base "$B" info 2>/dev/null |
        grep -q "^snapshotter *holder (pid ${BG[0]}, slot "
}
wait_until 20 info_names_holder || note "info never named the snapshotter"
expect 2 "" shl --base "$B" info extra
want_err "shmledger info: unexpected argument 'extra'*"
end

begin gc_reap
# A participant SIGKILLed while no other process takes part: nobody's
# monitor notices; gc reaps it and runs the crash protocol.
OP=$(shl --base "$B" create)
$PREFIX "$SHL" --base "$B" run --op "$OP" -p victim -- sleep 600 \
    >/dev/null 2>&1 &
victim=$!
wait_until 20 frames_of "$OP" victim || note "victim's frame never showed"
kill -KILL "$victim"
wait "$victim" 2>/dev/null
expect 0 "*victim (pid $victim, slot *): dead*" shl --base "$B" gc --no-reap
expect 0 "reaped 1 dead participant(s)
*0 alive*" shl --base "$B" gc
expect 0 "*\"reason\":\"Participant victim (pid $victim) crashed\"*" \
    shl --base "$B" show -c "$OP"
[[ $OUT == *'"operationState":"cleanup"'* ||
    $OUT == *'"operationState":"failed"'* ]] ||
    note "operation neither cleaning up nor failed after the reap"
end

begin log
OP=$(shl --base "$B" create)
rm -f "$B/$OP.operation.log"
expect 1 "" shl --base "$B" log "$OP"
want_err "shmledger log: no log file*"
printf 'line one\nline two\n' >"$B/$OP.operation.log"
expect 0 "line one
line two" shl --base "$B" log "$OP"
# -f ends once the operation is gone and the file stopped growing
gone=20250101T00:00:00.000-x-00000000
printf 'old line\n' >"$B/$gone.operation.log"
cap timeout $((20 * MULT)) $PREFIX "$SHL" --base "$B" log -f "$gone"
want_rc 0
want_out "old line"
end

begin export_trace
OP=$(shl --base "$B" create)
start_holder "$OP"
expect 0 "{\"displayTimeUnit\":\"ms\"*\"traceEvents\":\[*\"ph\":\"M\",\"name\":\"process_name\"*holder*\"ph\":\"X\",\"cat\":\"call\",\"name\":\"call_holder_1_*\",\"ts\":*,\"dur\":*\"callId\":\"call_holder_1_*\",\"participant\":\"holder\",\"outcome\":\"active\"*]}" \
    shl --base "$B" export --trace "$OP"
json_ok "$OUT" || note "export: not valid JSON"
# finished calls come from the trail (written by the snapshotter)
shl --base "$B" run --op "$OP" -p ok -- true
shl --base "$B" run --op "$OP" -p bad --no-fail-on-crash -- false
trail_has() {
    shl --base "$B" export --trace "$OP" 2>/dev/null |
        grep -q '"participant":"bad","outcome":"failed"'
}
if wait_until 20 trail_has; then
    expect 0 "*\"name\":\"call_ok_1_*\"participant\":\"ok\",\"outcome\":\"ended\"*\"name\":\"call_bad_1_*\"participant\":\"bad\",\"outcome\":\"failed\",\"error\":\"exit status 1\"*" \
        shl --base "$B" export --trace "$OP"
    json_ok "$OUT" || note "export (trail): not valid JSON"
else
    note "the finished calls never showed in the export (no trail?)"
fi
expect 1 "" shl --base "$B" export --trace 20250101T00:00:00.000-x-00000000
want_err "shmledger export: no operation 20250101T00:00:00.000-x-00000000*"
end

begin demo
cap shl --base "$B" demo --wait $((3000 * MULT)) --timeout $((10000 * MULT))
want_rc 0
want_out "shmledger demo:*\[1\]*-demo-*\[2\]*worker-? *active*worker-? *active*exited with status 0*\[3\]*kill -9 *killed by signal 9*\[4\]*worker-3*\[5\]*\[6\] Where to look:*base directory  $B*segment         /dev/shm/shmledger.*"
[[ $OUT == *"[4]"*"crashed call: call_worker-3_1_"*"[5]"* ]] ||
    note "demo: no failure with the crashed call id"
[[ $OUT == *"CRASH_DETECTED callId=call_worker-3_1_"* ]] ||
    note "demo: the operation log does not show the crash"
# The archive of a failed operation is written by the library in the
# background; the demo waits until it is whole before printing its paths
# (it used to print them while the files were still being moved), so it
# is required.
[[ $OUT == *"Archived in $B/backup/"* ]] || note "demo: no archive"
[[ $OUT == *"[4]"*"[5]"*"[6]"* ]] || note "demo steps out of order"
# the reclaimed operation is still shown, from its archive
op=$(printf '%s\n' "$OUT" | grep -o '[0-9T:.]*-demo-[0-9a-f]*' | head -1)
expect 0 "{*\"operationState\": \"failed\"*call_worker-3_1_*}" \
    shl --base "$B" show "$op"
want_err "*is not in the segment; read from $B/backup/$op/operation.json"
end

begin cli_usage_papercuts
expect 2 "" shl --base
want_err "*option '--base' needs an argument*"
expect 0 "Usage: shmledger *" shl help --help
expect 2 "" shl --base "$B" gc --force
want_err "*--force only applies with --unlink*"
end

begin demo_cleanup_keeps_user_dir
# --cleanup on a directory the user named removes nothing of it (it used to
# delete the whole directory, other operations' files included)
D="$B/demo-user-dir"
mkdir -p "$D"
echo keep >"$D/precious.txt"
cap shl --base "$D" demo --cleanup --wait $((3000 * MULT)) --timeout $((10000 * MULT))
[[ -f $D/precious.txt ]] || note "demo --cleanup deleted a file of the user's directory"
want_out "*is yours, not the demo's: left in place*"
shl --base "$D" gc --unlink >/dev/null 2>&1 || true
end

# --------------------------------------------------------------------------
# shmledger-top (when built)

if [[ -n $TOP ]]; then

begin top_basics
expect 0 "Usage: shmledger-top *Keys:*Exit status:*" top --help
expect 2 "" top --base "$B" --frob
want_err "shmledger-top: unknown option '--frob'*"
expect 2 "" top --base "$B" --interval 0 --once
expect 2 "" env -u SHMLEDGER_BASE "$TOP" --once
# a missing segment: said on screen, non-zero exit in one-shot mode
expect 1 "shmledger-top *segment: no ledger at $B*" top --base "$B" --once
want_err "shmledger-top: no ledger at $B*"
OP=$(shl --base "$B" create -d "viewed")
start_holder "$OP"
expect_sq 0 "shmledger-top * $B *
segment /shmledger.* epoch * lock_recoveries * crashes_detected *
participants 1/* operations 1/* frames 1/* resources 0/*
snapshotter * events pending */* fallback * skipped * dropped * file_errors *
*OPERATION STATE AGE FRAMES PARTS ABORT DESCRIPTION
> $OP running * 1 1 no viewed
*Frames of $OP (running), stale after 15000 ms
 PARTICIPANT PID CALL ID STATE AGE HB AGE FLAGS DESCRIPTION
 holder * call_holder_1_* active * sleep 600*" top --base "$B" --once
# recent events: the tail of the operation log (written in the background)
top_has_events() {
    top --base "$B" --once 2>/dev/null |
        grep -q "INFO *CALL_STARTED callId=call_holder_1_"
}
wait_until 20 top_has_events || note "no recent events in --once"
expect 0 "{\"segment\":{\"name\":\"/shmledger.*\"snapshotter\":{\"held\":*},\"events\":{\"cap\":*}},
\"operations\":\[
{\"operationId\":\"$OP\"*\"callId\":\"call_holder_1_*}
]}" top --base "$B" --json
json_ok "$OUT" || note "--json: not valid JSON"
# a stale heartbeat (the holder is stopped) is flagged
kill -STOP "${BG[0]}"
sleep 1.5
expect 0 "*call_holder_1_* active *STALE*" top --base "$B" --once --stale 1000
kill -CONT "${BG[0]}"
# a garbled segment: one-line error, exit 3
seg=$(shl --base "$B" gc | sed -n 's/^segment \/\([^:]*\):.*/\1/p')
if [[ -n $seg && -e /dev/shm/$seg ]]; then
    printf 'garbage garbage garbage garbage' |
        dd of="/dev/shm/$seg" conv=notrunc status=none
    expect 3 "*segment: *segment*" top --base "$B" --once
    one_line_err
    expect 3 "" top --base "$B" --json
fi
end

if command -v tmux >/dev/null; then
    TMUX_SOCK="$WORK/tmux.sock"
    tm() { tmux -S "$TMUX_SOCK" "$@"; }
    pane() { tm capture-pane -p -t shltop; }
    pane_has() { pane | grep -q -- "$1"; }

    begin top_tmux
    OP=$(shl --base "$B" create -d "live view")
    start_holder "$OP"
    tm new-session -d -s shltop -x 150 -y 35 \
        "$PREFIX $TOP --base $B --interval 200 --stale 2500"
    wait_until 20 pane_has "call_holder_1_" ||
        note "the frame never showed on screen: $(pane)"
    pane_has "> $OP" || note "the operation is not selected: $(pane)"
    # a stale participant shows up highlighted as STALE
    kill -STOP "${BG[0]}"
    wait_until 20 pane_has "STALE" || note "no STALE frame on screen: $(pane)"
    kill -CONT "${BG[0]}"
    wait_until 20 eval '! pane_has STALE' || note "STALE never cleared"
    # Enter shows the details (participants)
    tm send-keys -t shltop Enter
    wait_until 20 pane_has "Details of $OP" || note "no details: $(pane)"
    tm send-keys -t shltop Enter
    # resize: the screen is redrawn at the new size
    tm resize-window -t shltop -x 100 -y 20
    wait_until 20 pane_has "call_holder_1_" || note "lost after resize"
    [[ $(pane | wc -l) -le 20 ]] || note "pane not resized"
    # filter that matches nothing, then clear it
    tm send-keys -t shltop / nomatch Enter
    wait_until 20 pane_has "no operations matching 'nomatch'" ||
        note "filter not applied: $(pane)"
    tm send-keys -t shltop / BSpace BSpace BSpace BSpace BSpace BSpace \
        BSpace Enter
    wait_until 20 pane_has "> $OP" || note "filter not cleared: $(pane)"
    # abort from the viewer, confirmed with y
    tm send-keys -t shltop a
    wait_until 20 pane_has "Abort operation $OP? (y/n)" ||
        note "no confirmation prompt: $(pane)"
    tm send-keys -t shltop y
    wait_until 20 pane_has "abort flag set on" ||
        note "abort not reported: $(pane)"
    expect_sq 0 "*$OP running 1 1 yes * live view" shl --base "$B" list
    tm send-keys -t shltop q
    wait_until 20 eval '! tm has-session -t shltop' ||
        note "q did not quit"
    tm kill-server 2>/dev/null
    end
else
    echo "skip top_tmux (no tmux)"
fi

fi # TOP

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
