/*
 * shl_race.h: the window of a race test (link shl_test_support). A crash
 * point armed with a hook (shl__crash_arm_hook) holds the thread that
 * reaches it while another thread ends and releases a call, the victim;
 * the victim's callback reports whether it still ran, and through which
 * handle. Used by tests/{unit,proc}/test_call_lifetime.c.
 */
#ifndef SHL_RACE_H
#define SHL_RACE_H

#include <stdatomic.h>

#include "shmledger/shmledger.h"

struct shl_test_race {
    shl_call *victim; /* the call the other thread ends and releases */
    char victim_id[SHL_CALL_ID_MAX + 1];
    _Atomic int go;         /* hook -> other thread: act now */
    _Atomic int done;       /* other thread -> hook: released */
    _Atomic int hooked;     /* threads that reached the point */
    _Atomic int end_rc;     /* its shl_call_end */
    _Atomic int release_rc; /* its shl_call_release */
    _Atomic int fired;      /* the victim's callback ran */
    _Atomic int bad_handle; /* ... with a handle that was not the victim */
};

/* Zero r, and (glibc) make freed memory be overwritten (M_PERTURB), so a
 * read of a freed object crashes a plain build too, not only under ASan,
 * TSan or valgrind. */
void shl_test_race_init(struct shl_test_race *r);
/* The hook: shl__crash_arm_hook(point, shl_test_race_hold, r). Tells the
 * other thread to act and waits (10 s, scaled) until it has. */
void shl_test_race_hold(const char *name, void *arg);
/* The other thread (pthread_create(..., shl_test_race_release, r)): waits
 * for the hook, ends and releases r->victim (its tcache bin full first,
 * so that free takes glibc's perturbing path), then tells the hook. */
void *shl_test_race_release(void *arg);
/* From the victim's callback: count it, and check the handle. */
void shl_test_race_fired(struct shl_test_race *r, shl_call *call);

#endif /* SHL_RACE_H */
