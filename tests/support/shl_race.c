/* shl_race.c: see shl_race.h. */
#include "shl_race.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shl_test.h"

#include "objects.h"

void
shl_test_race_init(struct shl_test_race *r)
{
    memset(r, 0, sizeof(*r));
#ifdef M_PERTURB
    mallopt(M_PERTURB, 0xa5);
#endif
}

void
shl_test_race_hold(const char *name, void *arg)
{
    struct shl_test_race *r = arg;
    atomic_fetch_add(&r->hooked, 1);
    atomic_store(&r->go, 1);
    if (!SHL_WAIT_FOR(atomic_load(&r->done), 10000))
        fprintf(stderr, "%s: the other thread never released\n", name);
}

/* Fill this thread's tcache bin of call-sized blocks, so that its next
 * free of one takes glibc's slow path, where M_PERTURB overwrites it. */
static void
fill_tcache(void)
{
    void *p[8];
    for (int i = 0; i < 8; i++)
        p[i] = malloc(sizeof(struct shl_call));
    for (int i = 0; i < 8; i++)
        free(p[i]);
}

void *
shl_test_race_release(void *arg)
{
    struct shl_test_race *r = arg;
    if (!SHL_WAIT_FOR(atomic_load(&r->go), 10000))
        return NULL;
    fill_tcache();
    atomic_store(&r->end_rc, shl_call_end(r->victim, NULL));
    atomic_store(&r->release_rc, shl_call_release(r->victim));
    atomic_store(&r->done, 1);
    return NULL;
}

void
shl_test_race_fired(struct shl_test_race *r, shl_call *call)
{
    atomic_fetch_add(&r->fired, 1);
    if (call != r->victim || strcmp(shl_call_id(call), r->victim_id) != 0)
        atomic_fetch_add(&r->bad_handle, 1);
}
