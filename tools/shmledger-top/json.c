/*
 * json.c: `shmledger-top --json`: the segment facts and every operation's
 * snapshot (the library's compact JSON), one operation per line.
 */
#include <stdio.h>
#include <stdlib.h>

#include "top.h"

int
run_json(struct model *m)
{
    int rc = model_refresh(m);
    if (rc) {
        fprintf(stderr, "shmledger-top: %s\n", m->err);
        return shl_tool_exit_for(rc);
    }
    const shl_segment_info *i = &m->info;
    printf("{\"segment\":{\"name\":");
    shl_tool_json_str(stdout, i->shm_name);
    printf(",\"formatMajor\":%u,\"ownerUid\":%u,\"bootId\":", i->format_major,
           i->owner_uid);
    shl_tool_json_str(stdout, i->boot_id);
    printf(",\"createdAtUs\":%lld,\"epoch\":%llu,\"lockRecoveries\":%llu,"
           "\"crashesDetected\":%llu,\"poisoned\":%s,"
           "\"participants\":{\"used\":%u,\"cap\":%u},"
           "\"operations\":{\"used\":%u,\"cap\":%u},"
           "\"frames\":{\"used\":%u,\"cap\":%u},"
           "\"resources\":{\"used\":%u,\"cap\":%u},",
           (long long)i->created_at_us, (unsigned long long)i->epoch,
           (unsigned long long)i->lock_recoveries,
           (unsigned long long)i->crashes_detected,
           i->poisoned ? "true" : "false", i->used_participants,
           i->cap_participants, i->used_operations, i->cap_operations,
           i->used_frames, i->cap_frames, i->used_resources, i->cap_resources);
    printf("\"snapshotter\":{\"held\":%s",
           i->snapshotter_held ? "true" : "false");
    if (i->snapshotter_held && i->snapshotter_slot != UINT32_MAX) {
        printf(",\"participantId\":");
        shl_tool_json_str(stdout, i->snapshotter_id);
        printf(",\"pid\":%d,\"slot\":%u", (int)i->snapshotter_pid,
               i->snapshotter_slot);
    }
    printf("},\"events\":{\"cap\":%u,\"pending\":%llu,\"fallback\":%llu,"
           "\"skipped\":%llu,\"dropped\":%llu,\"fileErrors\":%llu}},"
           "\n\"operations\":[",
           i->cap_events, (unsigned long long)i->events_pending,
           (unsigned long long)i->events_fallback,
           (unsigned long long)i->events_skipped,
           (unsigned long long)i->events_dropped,
           (unsigned long long)i->file_errors);
    const char *sep = "\n";
    for (size_t k = 0; k < m->nrows; k++) {
        shl_snapshot *s;
        if (shl_tool_snapshot(m->r, m->rows[k]->operation_id, &s) != 0)
            continue; /* it ended between the list and the snapshot */
        char *json = NULL;
        rc = shl_snapshot_to_json(s, SHL_JSON_COMPACT, &json);
        shl_snapshot_free(s);
        if (rc) {
            fprintf(stderr, "shmledger-top: cannot serialise %s: %s\n",
                    m->rows[k]->operation_id, shl_strerror(rc));
            return EX_FAIL;
        }
        printf("%s%s", sep, json);
        free(json);
        sep = ",\n";
    }
    printf("\n]}\n");
    return EX_OK;
}
