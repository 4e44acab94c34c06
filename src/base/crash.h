/*
 * base/crash.h: named crash points for the torture and repair tests.
 */
#ifndef SHL_BASE_CRASH_H
#define SHL_BASE_CRASH_H

#include <stdatomic.h>

/* Crash-point seam.
 * Named points inside every locked mutation. A test arms one by name (and a
 * mode); when execution reaches it the process dies there (SIGKILL to
 * itself, or _exit). Unarmed cost: one relaxed load and a branch. */
enum shl__crash_mode {
    SHL__CRASH_SIGKILL = 0,
    SHL__CRASH_EXIT = 1,
    SHL__CRASH_HOOK = 2, /* call the hook (shl__crash_arm_hook), go on */
};
extern _Atomic(const char *) shl__crash_armed;
/* Arm `name` (NULL disarms). */
void shl__crash_arm(const char *name, enum shl__crash_mode mode);
/* Arm `name` in SHL__CRASH_HOOK mode: every thread that reaches the point
 * calls hook(name, arg) there and then goes on, until the point is
 * disarmed (shl__crash_arm(NULL, ...)). For the race tests: a hook holds a
 * thread inside a window (no lock is held at the points that allow it)
 * while the test makes another thread act. */
void shl__crash_arm_hook(const char *name,
                         void (*hook)(const char *name, void *arg), void *arg);
void shl__crash_hit(const char *name);
#define SHL_CRASH_POINT(name)                                                  \
    do {                                                                       \
        if (SHL__UNLIKELY(atomic_load_explicit(&shl__crash_armed,             \
                                               memory_order_relaxed) != NULL)) \
            shl__crash_hit(name);                                              \
    } while (0)
/* The list of every crash point, NULL-terminated (for tests). */
extern const char *const shl__crash_points[];

#endif /* SHL_BASE_CRASH_H */
