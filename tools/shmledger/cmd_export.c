/*
 * cmd_export.c: `shmledger export --trace OP`, Chrome trace-event JSON.
 *
 * Source of truth, in order: the operation's trail ({base}/{OP}_trail.jsonl
 * while it is live, backup/{OP}/trail.jsonl once archived), which has every
 * call's start and end; then the live snapshot, for calls still in flight
 * (their duration runs to the moment of the export). The trail is flat JSON,
 * one object per line, read with a small scanner (the tools use libc and
 * the public header only).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char export_help[] =
    "Usage: shmledger [--base DIR] export --trace OP\n"
    "\n"
    "Print the operation's calls as Chrome trace-event JSON (load it in\n"
    "https://ui.perfetto.dev or chrome://tracing):\n"
    "  - one complete event ('X') per call, ts/dur in microseconds from the\n"
    "    operation's start, pid = the participant's process, tid = its\n"
    "    participant slot (when the live segment knows it; else a number per\n"
    "    participant); args: callId, participant, outcome (ended, failed,\n"
    "    crashed, active), error;\n"
    "  - an instant event ('i') per other trail event (state changes, crash\n"
    "    detection, log lines);\n"
    "  - metadata events naming each process after its participant.\n"
    "Calls come from the trail (DIR/OP_trail.jsonl, or\n"
    "DIR/backup/OP/trail.jsonl once archived) and, for calls in flight, from\n"
    "a live snapshot.\n"
    "\n"
    "Exit status: 0 ok, 1 no such operation (neither live nor a trail), 2\n"
    "usage, 3 segment problem.\n";

/* ---- a scanner for flat JSON objects (one trail line) ---- */

struct field {
    char key[32];
    char val[512]; /* decoded string, or the literal text of a number */
};

struct rec {
    struct field f[16];
    int n;
};

static const char *
skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* Parse a JSON string at p (at the quote) into out; returns the position
 * after the closing quote or NULL. \u escapes keep ASCII only. */
static const char *
scan_string(const char *p, char *out, size_t cap)
{
    if (*p != '"')
        return NULL;
    p++;
    size_t n = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
            case 'f':
                c = ' ';
                break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *p++;
                    v <<= 4;
                    if (h >= '0' && h <= '9')
                        v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f')
                        v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F')
                        v |= (unsigned)(h - 'A' + 10);
                    else
                        return NULL;
                }
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            case 0:
                return NULL;
            default:
                break; /* \" \\ \/ */
            }
        }
        if (n + 1 < cap)
            out[n++] = c;
    }
    if (*p != '"')
        return NULL;
    out[n] = 0;
    return p + 1;
}

/* Parse one flat object; nested values are skipped. 0 on success. */
static int
scan_object(const char *line, struct rec *r)
{
    r->n = 0;
    const char *p = skip_ws(line);
    if (*p++ != '{')
        return -1;
    for (;;) {
        p = skip_ws(p);
        if (*p == '}')
            return 0;
        struct field tmp, *f = r->n < 16 ? &r->f[r->n] : &tmp;
        p = scan_string(p, f->key, sizeof(f->key));
        if (!p)
            return -1;
        p = skip_ws(p);
        if (*p++ != ':')
            return -1;
        p = skip_ws(p);
        if (*p == '"') {
            p = scan_string(p, f->val, sizeof(f->val));
            if (!p)
                return -1;
        } else if (*p == '{' || *p == '[') {
            int depth = 0; /* skip a nested value (not expected) */
            do {
                if (*p == '{' || *p == '[')
                    depth++;
                else if (*p == '}' || *p == ']')
                    depth--;
                else if (*p == 0)
                    return -1;
                p++;
            } while (depth > 0);
            f->val[0] = 0;
        } else {
            size_t n = 0;
            while (*p && *p != ',' && *p != '}' && n + 1 < sizeof(f->val))
                f->val[n++] = *p++;
            while (n && (f->val[n - 1] == ' ' || f->val[n - 1] == '\t'))
                n--;
            f->val[n] = 0;
        }
        if (f != &tmp)
            r->n++;
        p = skip_ws(p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
}

static const char *
get(const struct rec *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->f[i].key, key) == 0)
            return r->f[i].val;
    return NULL;
}

/* "2026-11-30T11:36:12.290727+00:00" -> microseconds since the epoch. */
static int
parse_iso_us(const char *s, int64_t *out)
{
    int Y, M, D, h, m, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec,
                     &n) != 6)
        return -1;
    const char *p = s + n;
    int64_t frac = 0, scale = 1000000;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
            p++;
        }
    }
    int off = 0;
    if (*p == '+' || *p == '-') {
        int oh = 0, om = 0;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) < 1)
            return -1;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z' && *p != 0) {
        return -1;
    }
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    *out = ((int64_t)t - off) * 1000000 + frac;
    return 0;
}

/* ---- the model: calls and instants ---- */

struct call {
    char id[SHL_CALL_ID_MAX + 1];
    char participant[SHL_PARTICIPANT_ID_MAX + 1];
    char error[256];
    const char *outcome; /* static string */
    int pid;
    int64_t start_us, end_us; /* end 0: still open */
};

struct instant {
    char name[64];
    char detail[256];
    int pid;
    int64_t ts_us;
};

struct trace {
    struct call *calls;
    size_t ncalls, capcalls;
    struct instant *inst;
    size_t ninst, capinst;
    char parts[64][SHL_PARTICIPANT_ID_MAX + 1]; /* participant -> tid */
    int part_pid[64];
    int part_slot[64]; /* -1: unknown */
    size_t nparts;
    int64_t first_us, last_us;
};

static void *
grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return arr;
    size_t nc = *cap ? *cap * 2 : 32;
    while (nc < need)
        nc *= 2;
    void *p = realloc(arr, nc * elem);
    if (p)
        *cap = nc;
    return p;
}

static struct call *
find_call(struct trace *t, const char *id)
{
    for (size_t i = t->ncalls; i-- > 0;)
        if (strcmp(t->calls[i].id, id) == 0)
            return &t->calls[i];
    return NULL;
}

static struct call *
add_call(struct trace *t, const char *id)
{
    struct call *c = grow(t->calls, &t->capcalls, t->ncalls + 1, sizeof(*c));
    if (!c)
        return NULL;
    t->calls = c;
    c = &t->calls[t->ncalls++];
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->outcome = "active";
    return c;
}

static int
part_index(struct trace *t, const char *participant, int pid, int slot)
{
    for (size_t i = 0; i < t->nparts; i++)
        if (strcmp(t->parts[i], participant) == 0) {
            if (slot >= 0)
                t->part_slot[i] = slot;
            if (pid > 0)
                t->part_pid[i] = pid;
            return (int)i;
        }
    if (t->nparts == 64)
        return -1;
    snprintf(t->parts[t->nparts], sizeof(t->parts[0]), "%s", participant);
    t->part_pid[t->nparts] = pid;
    t->part_slot[t->nparts] = slot;
    return (int)t->nparts++;
}

static void
note_time(struct trace *t, int64_t us)
{
    if (!t->first_us || us < t->first_us)
        t->first_us = us;
    if (us > t->last_us)
        t->last_us = us;
}

/* Read the trail; returns 0, or -ENOENT when there is none. */
static int
read_trail(struct trace *t, const char *base, const char *op_id)
{
    char path[2][4096];
    snprintf(path[0], sizeof(path[0]), "%s/%s_trail.jsonl", base, op_id);
    snprintf(path[1], sizeof(path[1]), "%s/backup/%s/trail.jsonl", base, op_id);
    FILE *f = fopen(path[0], "re");
    if (!f)
        f = fopen(path[1], "re");
    if (!f)
        return -ENOENT;
    char *line = NULL;
    size_t cap = 0;
    struct rec r;
    while (getline(&line, &cap, f) > 0) {
        int64_t ts;
        if (scan_object(line, &r) != 0 || parse_iso_us(get(&r, "ts"), &ts))
            continue; /* a torn or foreign line */
        note_time(t, ts);
        const char *ev = get(&r, "event");
        const char *id = get(&r, "callId");
        const char *pid_s = get(&r, "pid");
        int pid = pid_s ? atoi(pid_s) : 0;
        if (!ev)
            continue;
        if (strcmp(ev, "CALL_STARTED") == 0 && id) {
            struct call *c = add_call(t, id);
            if (!c)
                break;
            const char *p = get(&r, "participantId");
            snprintf(c->participant, sizeof(c->participant), "%s", p ? p : "?");
            c->pid = pid;
            c->start_us = ts;
            part_index(t, c->participant, pid, -1);
        } else if ((strcmp(ev, "CALL_ENDED") == 0 ||
                    strcmp(ev, "CALL_FAILED") == 0) &&
                   id) {
            struct call *c = find_call(t, id);
            const char *d = get(&r, "durationMs");
            int64_t dur = d ? atoll(d) * 1000 : 0;
            if (!c) { /* started before the trail began */
                c = add_call(t, id);
                if (!c)
                    break;
                snprintf(c->participant, sizeof(c->participant), "?");
                c->pid = pid;
                c->start_us = ts - dur;
            }
            c->end_us = ts;
            bool failed = ev[5] == 'F';
            c->outcome = failed ? "failed" : "ended";
            const char *e = get(&r, "error");
            if (failed && e)
                snprintf(c->error, sizeof(c->error), "%s", e);
        } else {
            if (strcmp(ev, "CRASH_DETECTED") == 0 && id) {
                struct call *c = find_call(t, id);
                if (c && !c->end_us) {
                    c->end_us = ts;
                    c->outcome = "crashed";
                }
            }
            struct instant *in =
                grow(t->inst, &t->capinst, t->ninst + 1, sizeof(*in));
            if (!in)
                break;
            t->inst = in;
            in = &t->inst[t->ninst++];
            snprintf(in->name, sizeof(in->name), "%s", ev);
            const char *m = get(&r, "message");
            snprintf(in->detail, sizeof(in->detail), "%s", m ? m : ev);
            in->pid = pid;
            in->ts_us = ts;
        }
    }
    free(line);
    fclose(f);
    return 0;
}

/* Merge the live snapshot: calls in flight, participant slots. */
static void
merge_snapshot(struct trace *t, const shl_snapshot *s)
{
    for (size_t i = 0; i < s->participant_count; i++)
        part_index(t, s->participants[i].participant_id, s->participants[i].pid,
                   (int)s->participants[i].slot);
    for (size_t i = 0; i < s->frame_count; i++) {
        const shl_call_frame *f = &s->frames[i];
        struct call *c = find_call(t, f->call_id);
        if (!c) {
            c = add_call(t, f->call_id);
            if (!c)
                return;
            c->start_us = f->start_time_us;
        }
        snprintf(c->participant, sizeof(c->participant), "%s",
                 f->participant_id);
        c->pid = f->pid;
        c->end_us = 0;
        c->outcome = f->state == SHL_FRAME_ACTIVE
                         ? "active"
                         : shl_frame_state_name(f->state);
        part_index(t, f->participant_id, f->pid, (int)f->participant_slot);
        note_time(t, f->start_time_us);
    }
}

static int
tid_of(struct trace *t, const char *participant)
{
    for (size_t i = 0; i < t->nparts; i++)
        if (strcmp(t->parts[i], participant) == 0)
            return t->part_slot[i] >= 0 ? t->part_slot[i] : 1000 + (int)i;
    return 0;
}

static void
print_trace(struct trace *t, const char *op_id, const char *state, bool aborted,
            int64_t t0, int64_t now)
{
    printf("{\"displayTimeUnit\":\"ms\",\"otherData\":{\"operationId\":");
    shl_tool_json_str(stdout, op_id);
    printf(",\"state\":");
    shl_tool_json_str(stdout, state);
    printf(",\"aborted\":%s},\n\"traceEvents\":[", aborted ? "true" : "false");
    const char *sep = "\n";
    for (size_t i = 0; i < t->nparts; i++) {
        char label[128];
        snprintf(label, sizeof(label), "%s (pid %d)", t->parts[i],
                 t->part_pid[i]);
        printf("%s{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,"
               "\"tid\":%d,\"args\":{\"name\":",
               sep, t->part_pid[i], tid_of(t, t->parts[i]));
        shl_tool_json_str(stdout, label);
        printf("}}");
        sep = ",\n";
    }
    for (size_t i = 0; i < t->ncalls; i++) {
        const struct call *c = &t->calls[i];
        int64_t end = c->end_us                           ? c->end_us
                      : strcmp(c->outcome, "active") == 0 ? now
                                                          : t->last_us;
        int64_t ts = c->start_us - t0, dur = end - c->start_us;
        printf("%s{\"ph\":\"X\",\"cat\":\"call\",\"name\":", sep);
        shl_tool_json_str(stdout, c->id);
        printf(",\"ts\":%lld,\"dur\":%lld,\"pid\":%d,\"tid\":%d,"
               "\"args\":{\"callId\":",
               (long long)(ts < 0 ? 0 : ts), (long long)(dur < 0 ? 0 : dur),
               c->pid, tid_of(t, c->participant));
        shl_tool_json_str(stdout, c->id);
        printf(",\"participant\":");
        shl_tool_json_str(stdout, c->participant);
        printf(",\"outcome\":");
        shl_tool_json_str(stdout, c->outcome);
        if (c->error[0]) {
            printf(",\"error\":");
            shl_tool_json_str(stdout, c->error);
        }
        printf("}}");
        sep = ",\n";
    }
    for (size_t i = 0; i < t->ninst; i++) {
        const struct instant *in = &t->inst[i];
        int64_t ts = in->ts_us - t0;
        printf("%s{\"ph\":\"i\",\"s\":\"g\",\"cat\":\"event\",\"name\":", sep);
        shl_tool_json_str(stdout, in->name);
        printf(",\"ts\":%lld,\"pid\":%d,\"tid\":0,\"args\":{\"message\":",
               (long long)(ts < 0 ? 0 : ts), in->pid);
        shl_tool_json_str(stdout, in->detail);
        printf("}}");
        sep = ",\n";
    }
    printf("\n]}\n");
}

int
cmd_export(struct cli *c, int argc, char **argv)
{
    enum { OPT_TRACE = 0x300 };
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"trace", no_argument, NULL, OPT_TRACE},
        {NULL, 0, NULL, 0},
    };
    bool trace = false;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == 'h')
            return cli_help(export_help);
        if (opt == OPT_TRACE) {
            trace = true;
            continue;
        }
        return cli_bad_opt("export", opt, argv);
    }
    if (!trace)
        return cli_usage_err("export", "give a format: --trace");
    if (optind + 1 != argc)
        return cli_usage_err("export", optind >= argc ? "missing operation id"
                                                      : "too many arguments");
    const char *op_id = argv[optind];
    int ex = cli_check_op_id("export", op_id);
    if (ex)
        return ex;
    const char *base = cli_base(c, "export");
    if (!base)
        return EX_USAGE;

    /* The live snapshot, if the operation is still in the segment. */
    shl_reader *r = NULL;
    shl_snapshot *s = NULL;
    int rc = shl_reader_open(&r, base);
    if (rc == 0) {
        rc = shl_tool_snapshot(r, op_id, &s);
        shl_reader_close(r);
    }
    if (rc && rc != -ENOENT && rc != SHL_ENOTFOUND)
        return cli_fail("export", rc, "cannot read operation %s", op_id);

    /* A finished operation: its JSON file gives state and start. */
    bool live = s != NULL;
    char where[4096];
    if (!s &&
        cli_snapshot_from_files(base, op_id, &s, where, sizeof(where)) != 0)
        s = NULL;
    struct trace t;
    memset(&t, 0, sizeof(t));
    int trc = read_trail(&t, base, op_id);
    if (!s && trc != 0) {
        cli_err("export",
                "no operation %s: not in the ledger of %s and no "
                "trail file",
                op_id, base);
        return EX_FAIL;
    }
    const char *state = "unknown";
    bool aborted = false;
    int64_t t0 = 0;
    if (s) {
        if (live)
            merge_snapshot(&t, s);
        state = shl_op_state_name(s->state);
        aborted = s->aborted;
        t0 = s->start_time_us;
    }
    if (!t0)
        t0 = t.first_us;
    print_trace(&t, op_id, state, aborted, t0, shl_tool_now_us());
    shl_snapshot_free(s);
    free(t.calls);
    free(t.inst);
    return EX_OK;
}
