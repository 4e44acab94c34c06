/*
 * json.c: operation snapshot <-> JSON through jansson, timestamp parsing,
 * and the atomic whole-file write used by the snapshotter and the archive.
 *
 * Key order is the original's LedgerData.toJson (reference §1.3):
 * operationId, initiatorId, startTime, operationState, aborted,
 * lastHeartbeat, callFrames, tempResources, detectionTimestamp,
 * removalTimestamp; then our extras description, participants, failure.
 * Frames carry the original's keys in its order, then heartbeatAgeMs and
 * sessionId. jansson keeps insertion order, so building the objects in that
 * order is the whole contract. Null-valued keys are written as null, never
 * omitted (as JsonEncoder does).
 *
 * Reading accepts the original's files: the legacy "stack" key, and its
 * fromJson defaults (initiatorId "unknown", start/lastHeartbeat now,
 * operationState running, aborted false, frame state active, failOnCrash
 * true). Required keys (operationId; a frame's participantId, callId, pid,
 * startTime; a resource's path, owner, registeredAt) missing or of the
 * wrong type are SHL_ECORRUPT with shl_errmsg() naming the key.
 */
#include "files/json.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- timestamps ---- */

static json_t *
iso_or_null(int64_t us)
{
    char buf[48];
    if (us == 0 || shl__format_iso(us, buf, sizeof(buf)) < 0)
        return json_null();
    return json_string(buf);
}

static json_t *
iso(int64_t us)
{
    char buf[48];
    if (shl__format_iso(us, buf, sizeof(buf)) < 0)
        return json_string("1970-01-01T00:00:00.000000+00:00");
    return json_string(buf);
}

static int
digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

int
shl__parse_iso(const char *text, int64_t *out_us)
{
    if (!text || !out_us)
        return -EINVAL;
    const char *p = text;
    int y, mo, d, h, mi, s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
        *p++ != '-' || digits(&p, 2, &d))
        return -EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -EINVAL;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
        *p++ != ':' || digits(&p, 2, &s))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -EINVAL;
    long us = 0;
    if (*p == '.' || *p == ',') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 6)
                us = us * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return -EINVAL;
        for (int i = n; i < 6; i++)
            us *= 10;
    }
    bool zoned = false;
    long off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        zoned = true;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh, om = 0;
        if (digits(&p, 2, &oh))
            return -EINVAL;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p) && digits(&p, 2, &om))
            return -EINVAL;
        if (oh > 23 || om > 59)
            return -EINVAL;
        zoned = true;
        off_s = sign * (oh * 3600L + om * 60L);
    }
    if (*p != 0)
        return -EINVAL;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t secs;
    if (zoned) {
        secs = timegm(&tm) - off_s;
    } else {
        tm.tm_isdst = -1;
        secs = mktime(&tm);
    }
    *out_us = (int64_t)secs * 1000000 + us;
    return 0;
}

/* ---- serialisation ---- */

/* A JSON string of text read from the segment or given by a user. jansson
 * refuses invalid UTF-8; such text is written with every invalid byte
 * replaced by U+FFFD (shl__utf8_fix), rather than failing the document. */
static json_t *
jstr(const char *text)
{
    size_t n = strlen(text);
    if (shl__utf8_valid(text, n))
        return json_stringn(text, n);
    char *tmp = malloc(3 * n + 1);
    if (!tmp)
        return NULL;
    size_t m = shl__utf8_fix(text, n, tmp);
    json_t *v = json_stringn(tmp, m);
    free(tmp);
    return v;
}

/* json_object_set_new that reports failure once, at the end. */
#define SET(obj, key, val)                                                     \
    do {                                                                       \
        if (json_object_set_new((obj), (key), (val)) != 0)                     \
            goto nomem;                                                        \
    } while (0)
#define APPEND(arr, val)                                                       \
    do {                                                                       \
        if (json_array_append_new((arr), (val)) != 0)                          \
            goto nomem;                                                        \
    } while (0)

static json_t *
frame_to_json(const shl_snapshot *s, const shl_call_frame *f)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    SET(o, "participantId", jstr(f->participant_id));
    SET(o, "callId", jstr(f->call_id));
    SET(o, "pid", json_integer(f->pid));
    SET(o, "startTime", iso(f->start_time_us));
    SET(o, "lastHeartbeat", iso(f->last_heartbeat_us));
    SET(o, "state", json_string(shl_frame_state_name(f->state)));
    SET(o, "description",
        f->has_description ? jstr(f->description) : json_null());
    json_t *res = json_array();
    if (!res)
        goto nomem;
    for (size_t i = 0; f->call_id[0] && i < s->resource_count; i++)
        if (!strcmp(s->resources[i].call_id, f->call_id) &&
            json_array_append_new(res, jstr(s->resources[i].path)) != 0) {
            json_decref(res);
            goto nomem;
        }
    SET(o, "resources", res);
    SET(o, "failOnCrash", json_boolean(f->fail_on_crash));
    SET(o, "heartbeatAgeMs", json_integer(f->heartbeat_age_ms));
    SET(o, "sessionId", json_integer((json_int_t)f->session_id));
    return o;
nomem:
    json_decref(o);
    return NULL;
}

static json_t *
participant_to_json(const shl_participant_info *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    SET(o, "participantId", jstr(p->participant_id));
    SET(o, "pid", json_integer(p->pid));
    SET(o, "recordedPid", json_integer(p->recorded_pid));
    SET(o, "slot", json_integer(p->slot));
    SET(o, "generation", json_integer((json_int_t)p->generation));
    SET(o, "heartbeatAgeMs", json_integer(p->heartbeat_age_ms));
    SET(o, "alive", json_boolean(p->alive));
    return o;
nomem:
    json_decref(o);
    return NULL;
}

static bool
has_failure(const shl_snapshot *s)
{
    return s->state == SHL_OP_CLEANUP || s->state == SHL_OP_FAILED ||
           s->failure.failed_at_us != 0 || s->failure.reason[0] != 0 ||
           s->failure.crashed_call_count != 0;
}

static json_t *
failure_to_json(const shl_snapshot *s)
{
    const shl_failed_info *fi = &s->failure;
    json_t *o = json_object();
    json_t *ids = NULL;
    if (!o)
        return NULL;
    SET(o, "reason", jstr(fi->reason));
    SET(o, "failedAt", iso_or_null(fi->failed_at_us));
    ids = json_array();
    if (!ids)
        goto nomem;
    if (s->crashed_call_ids) {
        /* all of them */
        for (size_t i = 0; i < s->crashed_call_id_count; i++)
            APPEND(ids, jstr(s->crashed_call_ids[i]));
    } else {
        uint32_t n = fi->crashed_call_count > SHL_CRASHED_IDS_MAX
                         ? SHL_CRASHED_IDS_MAX
                         : fi->crashed_call_count;
        for (uint32_t i = 0; i < n; i++)
            APPEND(ids, jstr(fi->crashed_call_ids[i]));
    }
    size_t listed = json_array_size(ids);
    SET(o, "crashedCallIds", ids);
    /* counted but not named (beyond the record's room) */
    if (fi->crashed_call_total > listed)
        SET(o, "crashedCallCount", json_integer(fi->crashed_call_total));
    return o;
nomem:
    json_decref(ids);
    json_decref(o);
    return NULL;
}

/* Build the document. NULL on allocation failure (or a string jansson
 * refuses: not UTF-8; we then substitute, see safe_string). */
static json_t *
snapshot_doc(const shl_snapshot *s)
{
    json_t *o = json_object();
    json_t *arr = NULL;
    if (!o)
        return NULL;
    SET(o, "operationId", jstr(s->operation_id));
    SET(o, "initiatorId", jstr(s->initiator_id));
    SET(o, "startTime", iso(s->start_time_us));
    SET(o, "operationState", json_string(shl_op_state_name(s->state)));
    SET(o, "aborted", json_boolean(s->aborted));
    SET(o, "lastHeartbeat", iso(s->last_heartbeat_us));
    arr = json_array();
    if (!arr)
        goto nomem;
    for (size_t i = 0; i < s->frame_count; i++) {
        json_t *f = frame_to_json(s, &s->frames[i]);
        if (!f)
            goto nomem;
        APPEND(arr, f);
    }
    SET(o, "callFrames", arr);
    arr = json_array();
    if (!arr)
        goto nomem;
    for (size_t i = 0; i < s->resource_count; i++) {
        const shl_temp_resource *r = &s->resources[i];
        json_t *x = json_object();
        if (!x)
            goto nomem;
        APPEND(arr, x);
        SET(x, "path", jstr(r->path));
        SET(x, "owner", json_integer(r->owner));
        SET(x, "registeredAt", iso(r->registered_at_us));
        if (r->call_id[0]) /* ours: the call it belongs to */
            SET(x, "callId", jstr(r->call_id));
    }
    SET(o, "tempResources", arr);
    arr = NULL;
    SET(o, "detectionTimestamp", iso_or_null(s->detection_timestamp_us));
    SET(o, "removalTimestamp", iso_or_null(s->removal_timestamp_us));
    SET(o, "description",
        s->has_description ? jstr(s->description) : json_null());
    arr = json_array();
    if (!arr)
        goto nomem;
    for (size_t i = 0; i < s->participant_count; i++) {
        json_t *p = participant_to_json(&s->participants[i]);
        if (!p)
            goto nomem;
        APPEND(arr, p);
    }
    SET(o, "participants", arr);
    arr = NULL;
    if (has_failure(s)) {
        json_t *fj = failure_to_json(s);
        if (!fj)
            goto nomem;
        SET(o, "failure", fj);
    } else {
        SET(o, "failure", json_null());
    }
    return o;
nomem:
    json_decref(arr);
    json_decref(o);
    return NULL;
}

int
shl_snapshot_to_json(const shl_snapshot *s, unsigned flags, char **out)
{
    shl__clear_err();
    if (!s || !out)
        return SHL_SET_ERR(-EINVAL, "shl_snapshot_to_json: NULL argument");
    json_t *doc = snapshot_doc(s);
    if (!doc)
        return SHL_SET_ERR(-ENOMEM,
                           "cannot build the JSON of %s (out of memory, or "
                           "a string is not UTF-8)",
                           s->operation_id);
    size_t jf = (flags & SHL_JSON_COMPACT) ? JSON_COMPACT : JSON_INDENT(2);
    char *text = json_dumps(doc, jf | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text)
        return SHL_SET_ERR(-ENOMEM, "json_dumps failed");
    *out = text;
    return 0;
}

/* ---- parsing ---- */

struct pctx {
    const char *where; /* "operation", "callFrames[3]", ... */
    int idx;
};

static int
bad(const struct pctx *c, const char *key, const char *what)
{
    if (c->idx >= 0)
        return SHL_SET_ERR(SHL_ECORRUPT, "%s[%d].%s: %s", c->where, c->idx,
                           key, what);
    return SHL_SET_ERR(SHL_ECORRUPT, "%s.%s: %s", c->where, key, what);
}

/* Required or optional string into a fixed field. */
static int
get_str(const struct pctx *c, json_t *o, const char *key, bool required,
        char *dst, size_t cap, bool *present)
{
    json_t *v = json_object_get(o, key);
    if (present)
        *present = false;
    if (!v || json_is_null(v)) {
        if (required)
            return bad(c, key, "missing");
        return 0;
    }
    if (!json_is_string(v))
        return bad(c, key, "not a string");
    if (json_string_length(v) >= cap)
        return bad(c, key, "too long");
    if (memchr(json_string_value(v), 0, json_string_length(v)))
        return bad(c, key, "contains NUL");
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    if (present)
        *present = true;
    return 0;
}

/* Timestamp: required, or optional with a default (dflt) used when missing
 * or null. */
static int
get_time(const struct pctx *c, json_t *o, const char *key, bool required,
         int64_t dflt, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required)
            return bad(c, key, "missing");
        *out = dflt;
        return 0;
    }
    if (!json_is_string(v))
        return bad(c, key, "not a string");
    if (shl__parse_iso(json_string_value(v), out) != 0)
        return bad(c, key, "not an ISO 8601 timestamp");
    return 0;
}

static int
get_bool(const struct pctx *c, json_t *o, const char *key, bool dflt,
         bool *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return bad(c, key, "not a boolean");
    *out = json_is_true(v);
    return 0;
}

static int
get_int(const struct pctx *c, json_t *o, const char *key, bool required,
        json_int_t dflt, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required)
            return bad(c, key, "missing");
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return bad(c, key, "not an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return bad(c, key, "out of range");
    *out = x;
    return 0;
}

static int
op_state_from(const char *name, shl_op_state *out)
{
    for (int i = SHL_OP_RUNNING; i <= SHL_OP_COMPLETED; i++)
        if (strcmp(name, shl_op_state_name((shl_op_state)i)) == 0) {
            *out = (shl_op_state)i;
            return 0;
        }
    return -1;
}

static int
frame_state_from(const char *name, shl_frame_state *out)
{
    for (int i = SHL_FRAME_ACTIVE; i <= SHL_FRAME_CLEANED_UP; i++)
        if (strcmp(name, shl_frame_state_name((shl_frame_state)i)) == 0) {
            *out = (shl_frame_state)i;
            return 0;
        }
    return -1;
}

static int
parse_frame(json_t *o, int i, int64_t now, shl_call_frame *f)
{
    struct pctx c = {"callFrames", i};
    int rc;
    json_int_t x;
    bool b = true; /* set by get_bool; initialised for -Wmaybe-uninitialized */
    char st[32];
    bool has_st;
    if (!json_is_object(o))
        return SHL_SET_ERR(SHL_ECORRUPT, "callFrames[%d]: not an object", i);
    memset(f, 0, sizeof(*f));
    if ((rc = get_str(&c, o, "participantId", true, f->participant_id,
                      sizeof(f->participant_id), NULL)) ||
        (rc = get_str(&c, o, "callId", true, f->call_id, sizeof(f->call_id),
                      NULL)) ||
        (rc = get_int(&c, o, "pid", true, 0, INT32_MIN, INT32_MAX, &x)))
        return rc;
    f->pid = (int32_t)x;
    if ((rc = get_time(&c, o, "startTime", true, 0, &f->start_time_us)) ||
        (rc = get_time(&c, o, "lastHeartbeat", false, now,
                       &f->last_heartbeat_us)) ||
        (rc = get_str(&c, o, "state", false, st, sizeof(st), &has_st)))
        return rc;
    f->state = SHL_FRAME_ACTIVE;
    if (has_st && frame_state_from(st, &f->state) != 0)
        return bad(&c, "state", "unknown frame state");
    if ((rc = get_str(&c, o, "description", false, f->description,
                      sizeof(f->description), &f->has_description)))
        return rc;
    json_t *res = json_object_get(o, "resources");
    if (res && !json_is_null(res) && !json_is_array(res))
        return bad(&c, "resources", "not an array");
    if ((rc = get_bool(&c, o, "failOnCrash", true, &b)))
        return rc;
    f->fail_on_crash = b;
    /* our extras; an original file has neither */
    if ((rc = get_int(&c, o, "heartbeatAgeMs", false,
                      (now - f->last_heartbeat_us) / 1000, INT64_MIN,
                      INT64_MAX, &x)))
        return rc;
    f->heartbeat_age_ms = x;
    if ((rc = get_int(&c, o, "sessionId", false, 0, 0, INT64_MAX, &x)))
        return rc;
    f->session_id = (uint64_t)x;
    f->participant_slot = UINT32_MAX;
    return 0;
}

static int
parse_resource(json_t *o, int i, shl_temp_resource *r)
{
    struct pctx c = {"tempResources", i};
    int rc;
    json_int_t x;
    if (!json_is_object(o))
        return SHL_SET_ERR(SHL_ECORRUPT, "tempResources[%d]: not an object",
                           i);
    memset(r, 0, sizeof(*r));
    if ((rc = get_str(&c, o, "path", true, r->path, sizeof(r->path), NULL)) ||
        (rc = get_int(&c, o, "owner", true, 0, INT32_MIN, INT32_MAX, &x)))
        return rc;
    r->owner = (int32_t)x;
    if ((rc = get_str(&c, o, "callId", false, r->call_id, sizeof(r->call_id),
                      NULL)))
        return rc;
    return get_time(&c, o, "registeredAt", true, 0, &r->registered_at_us);
}

static int
parse_participant(json_t *o, int i, shl_participant_info *p)
{
    struct pctx c = {"participants", i};
    int rc;
    json_int_t x;
    if (!json_is_object(o))
        return SHL_SET_ERR(SHL_ECORRUPT, "participants[%d]: not an object",
                           i);
    memset(p, 0, sizeof(*p));
    if ((rc = get_str(&c, o, "participantId", true, p->participant_id,
                      sizeof(p->participant_id), NULL)) ||
        (rc = get_int(&c, o, "pid", false, 0, INT32_MIN, INT32_MAX, &x)))
        return rc;
    p->pid = (int32_t)x;
    if ((rc = get_int(&c, o, "recordedPid", false, p->pid, INT32_MIN,
                      INT32_MAX, &x)))
        return rc;
    p->recorded_pid = (int32_t)x;
    if ((rc = get_int(&c, o, "slot", false, UINT32_MAX, 0, UINT32_MAX, &x)))
        return rc;
    p->slot = (uint32_t)x;
    if ((rc = get_int(&c, o, "generation", false, 0, 0, INT64_MAX, &x)))
        return rc;
    p->generation = (uint64_t)x;
    if ((rc = get_int(&c, o, "heartbeatAgeMs", false, -1, INT64_MIN,
                      INT64_MAX, &x)))
        return rc;
    p->heartbeat_age_ms = x;
    return get_bool(&c, o, "alive", false, &p->alive);
}

static int
parse_failure(json_t *o, shl_snapshot *s)
{
    struct pctx c = {"failure", -1};
    int rc;
    if (!json_is_object(o))
        return SHL_SET_ERR(SHL_ECORRUPT, "failure: not an object");
    shl_failed_info *fi = &s->failure;
    if ((rc = get_str(&c, o, "reason", false, fi->reason, sizeof(fi->reason),
                      NULL)) ||
        (rc = get_time(&c, o, "failedAt", false, 0, &fi->failed_at_us)))
        return rc;
    json_t *ids = json_object_get(o, "crashedCallIds");
    if (ids && !json_is_null(ids)) {
        if (!json_is_array(ids))
            return bad(&c, "crashedCallIds", "not an array");
        size_t n = json_array_size(ids);
        if (n) {
            s->crashed_call_ids = calloc(n, sizeof(*s->crashed_call_ids));
            if (!s->crashed_call_ids)
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(ids, i);
            if (!json_is_string(v) ||
                json_string_length(v) > SHL_CALL_ID_MAX)
                return bad(&c, "crashedCallIds", "bad call id");
            memcpy(s->crashed_call_ids[i], json_string_value(v),
                   json_string_length(v) + 1);
            s->crashed_call_id_count++;
            if (i < SHL_CRASHED_IDS_MAX) {
                memcpy(fi->crashed_call_ids[i], json_string_value(v),
                       json_string_length(v) + 1);
                fi->crashed_call_count++;
            }
        }
        fi->crashed_call_total = (uint32_t)n;
    }
    json_t *cnt = json_object_get(o, "crashedCallCount");
    if (json_is_integer(cnt) && json_integer_value(cnt) > 0 &&
        json_integer_value(cnt) <= UINT32_MAX &&
        (uint32_t)json_integer_value(cnt) > fi->crashed_call_total)
        fi->crashed_call_total = (uint32_t)json_integer_value(cnt);
    return 0;
}

/* The three arrays of an operation (frames, resources, participants) are
 * parsed alike: absent or null means none, anything but an array is an
 * error, each element through its own parser. */
typedef int (*parse_one_fn)(json_t *o, int i, void *elem, void *ctx);

static int
one_frame(json_t *o, int i, void *elem, void *ctx)
{
    return parse_frame(o, i, *(int64_t *)ctx, elem);
}

static int
one_resource(json_t *o, int i, void *elem, void *ctx)
{
    (void)ctx;
    return parse_resource(o, i, elem);
}

static int
one_participant(json_t *o, int i, void *elem, void *ctx)
{
    (void)ctx;
    return parse_participant(o, i, elem);
}

static int
parse_array(const struct pctx *c, json_t *arr, const char *key, size_t elem,
            void **out, size_t *count, parse_one_fn one, void *ctx)
{
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return bad(c, key, "not an array");
    size_t n = json_array_size(arr);
    if (n && !(*out = calloc(n, elem)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = one(json_array_get(arr, i), (int)i, (char *)*out + i * elem,
                     ctx);
        if (rc)
            return rc;
        (*count)++;
    }
    return 0;
}

static int
parse_doc(json_t *root, shl_snapshot *s)
{
    struct pctx c = {"operation", -1};
    int64_t now = shl__wall_us();
    int rc;
    char st[32];
    bool has_st;
    if (!json_is_object(root))
        return SHL_SET_ERR(SHL_ECORRUPT, "operation JSON is not an object");
    if ((rc = get_str(&c, root, "operationId", true, s->operation_id,
                      sizeof(s->operation_id), NULL)))
        return rc;
    bool has_init;
    if ((rc = get_str(&c, root, "initiatorId", false, s->initiator_id,
                      sizeof(s->initiator_id), &has_init)))
        return rc;
    if (!has_init)
        memcpy(s->initiator_id, "unknown", sizeof("unknown"));
    if ((rc = get_time(&c, root, "startTime", false, now,
                       &s->start_time_us)) ||
        (rc = get_str(&c, root, "operationState", false, st, sizeof(st),
                      &has_st)))
        return rc;
    s->state = SHL_OP_RUNNING;
    if (has_st && op_state_from(st, &s->state) != 0)
        return bad(&c, "operationState", "unknown operation state");
    if ((rc = get_bool(&c, root, "aborted", false, &s->aborted)) ||
        (rc = get_time(&c, root, "lastHeartbeat", false, now,
                       &s->last_heartbeat_us)) ||
        (rc = get_time(&c, root, "detectionTimestamp", false, 0,
                       &s->detection_timestamp_us)) ||
        (rc = get_time(&c, root, "removalTimestamp", false, 0,
                       &s->removal_timestamp_us)) ||
        (rc = get_str(&c, root, "description", false, s->description,
                      sizeof(s->description), &s->has_description)))
        return rc;
    memcpy(s->failure.operation_id, s->operation_id,
           sizeof(s->operation_id));

    /* callFrames ?? stack (the original's fallback) */
    json_t *frames = json_object_get(root, "callFrames");
    const char *fkey = "callFrames";
    if (!frames || json_is_null(frames)) {
        frames = json_object_get(root, "stack");
        fkey = "stack";
    }
    if ((rc = parse_array(&c, frames, fkey, sizeof(*s->frames),
                          (void **)&s->frames, &s->frame_count, one_frame,
                          &now)) ||
        (rc = parse_array(&c, json_object_get(root, "tempResources"),
                          "tempResources", sizeof(*s->resources),
                          (void **)&s->resources, &s->resource_count,
                          one_resource, NULL)) ||
        (rc = parse_array(&c, json_object_get(root, "participants"),
                          "participants", sizeof(*s->participants),
                          (void **)&s->participants, &s->participant_count,
                          one_participant, NULL)))
        return rc;
    /* CallFrame.resources: each path names a temp resource of the call
     * (tempResources carries the callId in our files; an original file's
     * lists are empty) */
    for (size_t i = 0; json_is_array(frames) && i < s->frame_count; i++) {
        json_t *res = json_object_get(json_array_get(frames, i), "resources");
        shl_call_frame *f = &s->frames[i];
        for (size_t k = 0; json_is_array(res) && k < json_array_size(res);
             k++) {
            const char *p = json_string_value(json_array_get(res, k));
            if (!p)
                return bad(&c, "resources", "not a string");
            for (size_t r = 0; r < s->resource_count; r++) {
                shl_temp_resource *t = &s->resources[r];
                if (strcmp(t->path, p) != 0 ||
                    (t->call_id[0] && strcmp(t->call_id, f->call_id) != 0))
                    continue;
                memcpy(t->call_id, f->call_id, sizeof(t->call_id));
                break;
            }
        }
        f->resource_count =
            (uint32_t)shl_call_frame_resources(s, f, NULL, 0);
    }
    json_t *fail = json_object_get(root, "failure");
    if (fail && !json_is_null(fail) && (rc = parse_failure(fail, s)))
        return rc;
    return 0;
}

int
shl_snapshot_from_json(const char *text, shl_snapshot **out)
{
    shl__clear_err();
    if (!text || !out)
        return SHL_SET_ERR(-EINVAL, "shl_snapshot_from_json: NULL argument");
    json_error_t err;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return SHL_SET_ERR(SHL_ECORRUPT, "not JSON: %s (line %d, column %d)",
                           err.text, err.line, err.column);
    shl_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        json_decref(root);
        return -ENOMEM;
    }
    int rc = parse_doc(root, s);
    json_decref(root);
    if (rc) {
        shl_snapshot_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- files ---- */

/* The write() the library's file writers go through: a seam so tests can
 * simulate a full disk (ENOSPC) without a small filesystem. */
ssize_t (*_Atomic shl__sys_write)(int fd, const void *buf,
                                  size_t len) = write;

int
shl__write_all(int fd, const char *data, size_t len)
{
    ssize_t (*wr)(int, const void *, size_t) = atomic_load_explicit(
        &shl__sys_write, memory_order_relaxed);
    while (len > 0) {
        ssize_t n = wr(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int (*_Atomic shl__sys_fsync)(int fd) = fsync;

int
shl__fsync_fd(int fd)
{
    int (*fs)(int) =
        atomic_load_explicit(&shl__sys_fsync, memory_order_relaxed);
    while (fs(fd) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

int
shl__fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC |
                            O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    int rc = shl__fsync_fd(fd);
    close(fd);
    return rc;
}

int
shl__write_file_atomic(const char *path, const char *data, size_t len)
{
    return shl__write_file_atomic_ex(path, data, len, false);
}

int
shl__write_file_atomic_ex(const char *path, const char *data, size_t len,
                          bool durable)
{
    static _Atomic uint32_t counter;
    char tmp[4096 + 64];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%u", path, (int)getpid(),
                     (unsigned)atomic_fetch_add(&counter, 1));
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = shl__write_all(fd, data, len);
    if (rc == 0 && durable)
        rc = shl__fsync_fd(fd);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}
