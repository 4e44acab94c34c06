/*
 * fuzz_json.c: the operation-JSON reader (shl_snapshot_from_json) on
 * arbitrary text. Invariant: a snapshot it accepts serialises
 * (shl_snapshot_to_json) into JSON it accepts again, with the same id,
 * state and counts.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "shmledger/shmledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    shl_snapshot *s = NULL;
    if (shl_snapshot_from_json(text, &s) == 0) {
        (void)shl_snapshot_is_empty(s);
        char *out = NULL;
        int rc = shl_snapshot_to_json(s, 0, &out);
        FUZZ_CHECK(rc == 0, "to_json -> %d", rc);
        if (rc == 0) {
            shl_snapshot *t = NULL;
            int rc2 = shl_snapshot_from_json(out, &t);
            FUZZ_CHECK(rc2 == 0, "our own JSON does not read back (%d): %s",
                       rc2, shl_errmsg());
            if (rc2 == 0) {
                FUZZ_CHECK(strcmp(s->operation_id, t->operation_id) == 0,
                           "id %s -> %s", s->operation_id, t->operation_id);
                FUZZ_CHECK(s->state == t->state, "state %d -> %d",
                           (int)s->state, (int)t->state);
                FUZZ_CHECK(s->frame_count == t->frame_count &&
                               s->resource_count == t->resource_count,
                           "counts %zu/%zu -> %zu/%zu", s->frame_count,
                           s->resource_count, t->frame_count,
                           t->resource_count);
            }
            shl_snapshot_free(t);
            free(out);
        }
        char *compact = NULL;
        if (shl_snapshot_to_json(s, SHL_JSON_COMPACT, &compact) == 0) {
            FUZZ_CHECK(strchr(compact, '\n') == NULL,
                       "compact JSON has a newline");
            free(compact);
        }
    }
    shl_snapshot_free(s);
    free(text);
    return 0;
}
