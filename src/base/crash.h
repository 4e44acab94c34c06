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
enum shl__crash_mode { SHL__CRASH_SIGKILL = 0, SHL__CRASH_EXIT = 1 };
extern _Atomic(const char *) shl__crash_armed;
void shl__crash_arm(const char *name, enum shl__crash_mode mode);
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
