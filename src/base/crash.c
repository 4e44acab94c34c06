/*
 * crash.c: the crash-point seam. Tests arm a named point in a forked child;
 * when the child reaches it, it dies there (SIGKILL to itself, or _exit),
 * typically while holding the structure mutex. Unarmed, a point costs one
 * relaxed load. A race test may arm a point with a hook instead: the
 * thread that reaches it runs the hook there and goes on.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

_Atomic(const char *) shl__crash_armed = NULL;
/* Written before the name is stored (seq_cst), read after it is loaded
 * (seq_cst), so a thread that sees the name sees them; atomic because a
 * test may re-arm while another thread is inside shl__crash_hit. */
static _Atomic int crash_mode;
static void (*_Atomic crash_hook)(const char *name, void *arg);
static void *_Atomic crash_hook_arg;

const char *const shl__crash_points[] = {
    "init.truncated",   /* segment creator: after sizing, before filling */
    "init.filled",      /* segment creator: before storing version */
    "lock.acquired",    /* any locked mutation, right after locking */
    "alloc.intent",     /* claim: intent written, record untouched */
    "alloc.claimed",    /* claim: record STARTING, seqlock odd */
    "alloc.filled",     /* claim: fields written, not yet published */
    "alloc.published",  /* claim: ALLOCATED, not yet indexed/counted */
    "alloc.indexed",    /* claim: indexed, not yet counted */
    "free.intent",      /* free: intent written */
    "free.unindexed",   /* free: removed from the index */
    "free.released",    /* free: RECLAIMED, not yet counted */
    "fail.intent",      /* failing an operation: intent written */
    "fail.half",        /* failing: info half written (seqlock odd) */
    NULL,
};

void
shl__crash_arm(const char *name, enum shl__crash_mode mode)
{
    atomic_store_explicit(&crash_mode, (int)mode, memory_order_relaxed);
    atomic_store(&shl__crash_armed, name);
}

void
shl__crash_arm_hook(const char *name, void (*hook)(const char *name, void *arg),
                    void *arg)
{
    atomic_store_explicit(&crash_hook, hook, memory_order_relaxed);
    atomic_store_explicit(&crash_hook_arg, arg, memory_order_relaxed);
    atomic_store_explicit(&crash_mode, SHL__CRASH_HOOK, memory_order_relaxed);
    atomic_store(&shl__crash_armed, name);
}

void
shl__crash_hit(const char *name)
{
    const char *armed = atomic_load(&shl__crash_armed);
    if (!armed || strcmp(armed, name) != 0)
        return;
    int mode = atomic_load_explicit(&crash_mode, memory_order_relaxed);
    if (mode == SHL__CRASH_HOOK) {
        void (*hook)(const char *, void *) =
            atomic_load_explicit(&crash_hook, memory_order_relaxed);
        if (hook)
            hook(name,
                 atomic_load_explicit(&crash_hook_arg, memory_order_relaxed));
        return;
    }
    if (mode == SHL__CRASH_EXIT)
        _exit(99);
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}
