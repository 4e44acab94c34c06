/*
 * cmd_read.c: the inspecting subcommands: list, check, gc and log.
 *
 * They use the reader API only (shl_reader_*): no participant slot, no lock,
 * no write to the segment; except gc, which joins briefly to reap dead
 * participants (shl_ledger_reap) and, with --unlink, removes the segment.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* ------------------------------------------------------------------------ */
/* list                                                                      */
/* ------------------------------------------------------------------------ */

static const char list_help[] =
    "Usage: shmledger [--base DIR] list\n"
    "\n"
    "Print a table of the live operations of the ledger: id, state, call\n"
    "frames, participants (processes with an open session), abort flag, age\n"
    "and description. Reads the segment without taking part or locking.\n"
    "\n"
    "Exit status: 0 ok, 1 no ledger at DIR, 2 usage, 3 segment problem.\n";

static int
cmp_rows(const void *a, const void *b)
{
    const shl_op_summary *x = a, *y = b;
    if (x->start_time_us != y->start_time_us)
        return x->start_time_us < y->start_time_us ? -1 : 1;
    return strcmp(x->operation_id, y->operation_id);
}

int
cmd_list(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == 'h')
            return cli_help(list_help);
        return cli_bad_opt("list", opt, argv);
    }
    if (optind < argc)
        return cli_usage_err("list", "unexpected argument '%s'", argv[optind]);
    shl_reader *r;
    int ex = cli_open_reader(c, "list", &r);
    if (ex)
        return ex;
    shl_op_summary *rows = NULL;
    size_t n = 0;
    int rc = shl_tool_list(r, &rows, &n);
    if (rc) {
        ex = cli_fail("list", rc, "cannot list operations");
        shl_reader_close(r);
        return ex;
    }
    qsort(rows, n, sizeof(*rows), cmp_rows);
    int w = 2;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(rows[i].operation_id);
        if (l > w)
            w = l;
    }
    printf("%-*s  %-9s %6s %5s %-7s %7s  %s\n", w, "ID", "STATE", "FRAMES",
           "PARTS", "ABORTED", "AGE", "DESCRIPTION");
    int64_t now = shl_tool_now_us();
    for (size_t i = 0; i < n; i++) {
        char age[32], desc[4 * SHL_DESCRIPTION_MAX + 1];
        shl_tool_term_safe(desc, sizeof(desc), rows[i].description);
        printf("%-*s  %-9s %6u %5u %-7s %7s  %.60s\n", w, rows[i].operation_id,
               shl_op_state_name(rows[i].state), rows[i].frame_count,
               rows[i].participant_count, rows[i].aborted ? "yes" : "no",
               shl_tool_fmt_age((now - rows[i].start_time_us) / 1000, age,
                                sizeof(age)),
               desc);
    }
    free(rows);
    shl_reader_close(r);
    return EX_OK;
}

/* ------------------------------------------------------------------------ */
/* check                                                                     */
/* ------------------------------------------------------------------------ */

static const char info_help[] =
    "Usage: shmledger [--base DIR] info\n"
    "\n"
    "Print the segment's facts (shl_reader_info) and every participant slot\n"
    "in use (shl_reader_participants), read-only: capacities and use, who\n"
    "holds the snapshotter role, the event ring's counters, and for each\n"
    "participant its pid, slot and whether the kernel still holds its\n"
    "liveness lock.\n"
    "\n"
    "Exit status: 0 done, 1 no ledger at DIR, 2 usage, 3 the segment cannot\n"
    "be read.\n";

int
cmd_info(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == 'h')
            return cli_help(info_help);
        return cli_bad_opt("info", opt, argv);
    }
    if (optind < argc)
        return cli_usage_err("info", "unexpected argument '%s'", argv[optind]);
    shl_reader *r;
    int ex = cli_open_reader(c, "info", &r);
    if (ex)
        return ex;
    shl_segment_info i;
    int rc = shl_reader_info(r, &i);
    shl_participant_info *parts = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = shl_reader_participants(r, &parts, &n);
    shl_reader_close(r);
    if (rc)
        return cli_fail("info", rc, "cannot read the segment");
    printf("segment          %s (format %u%s)\n", i.shm_name, i.format_major,
           i.poisoned ? ", POISONED" : "");
    printf("participants     %u/%u\n", i.used_participants,
           i.cap_participants);
    printf("operations       %u/%u\n", i.used_operations, i.cap_operations);
    printf("frames           %u/%u\n", i.used_frames, i.cap_frames);
    printf("resources        %u/%u\n", i.used_resources, i.cap_resources);
    if (!i.snapshotter_held)
        printf("snapshotter      none\n");
    else if (i.snapshotter_slot == UINT32_MAX)
        printf("snapshotter      held (holder not known yet)\n");
    else
        printf("snapshotter      %s (pid %d, slot %u)\n", i.snapshotter_id,
               (int)i.snapshotter_pid, i.snapshotter_slot);
    printf("events           pending %llu/%u, fallback %llu, skipped %llu, "
           "dropped %llu, file errors %llu\n",
           (unsigned long long)i.events_pending, i.cap_events,
           (unsigned long long)i.events_fallback,
           (unsigned long long)i.events_skipped,
           (unsigned long long)i.events_dropped,
           (unsigned long long)i.file_errors);
    printf("lock recoveries  %llu, crashes detected %llu, epoch %llu\n",
           (unsigned long long)i.lock_recoveries,
           (unsigned long long)i.crashes_detected,
           (unsigned long long)i.epoch);
    for (size_t k = 0; k < n; k++)
        printf("participant      %s (pid %d, slot %u): %s, heartbeat %lld ms "
               "ago\n",
               parts[k].participant_id, (int)parts[k].pid, parts[k].slot,
               parts[k].alive ? "alive" : "dead",
               (long long)parts[k].heartbeat_age_ms);
    free(parts);
    return EX_OK;
}

static const char check_help[] =
    "Usage: shmledger [--base DIR] check [--quiet]\n"
    "\n"
    "Run the segment's invariant checker (shl_reader_check): indexes in\n"
    "range, references valid, counts and the id index matching the records,\n"
    "no sequence counter left odd, no poisoned flag. A changing segment can\n"
    "show transient violations, so a failing check is retried twice.\n"
    "\n"
    "  -q, --quiet   print nothing when the segment is clean\n"
    "\n"
    "Exit status: 0 clean, 1 no ledger at DIR, 2 usage, 3 violations found\n"
    "(listed one per line) or the segment cannot be read.\n";

int
cmd_check(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    bool quiet = false;
    int opt;
    while ((opt = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == 'h')
            return cli_help(check_help);
        if (opt == 'q') {
            quiet = true;
            continue;
        }
        return cli_bad_opt("check", opt, argv);
    }
    if (optind < argc)
        return cli_usage_err("check", "unexpected argument '%s'", argv[optind]);
    shl_reader *r;
    int ex = cli_open_reader(c, "check", &r);
    if (ex)
        return ex;
    shl_check_report rep;
    int rc = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        memset(&rep, 0, sizeof(rep));
        rc = shl_reader_check(r, &rep);
        if (rc <= 0)
            break;
        cli_sleep_ms(50);
    }
    shl_reader_close(r);
    if (rc < 0)
        return cli_fail("check", rc, "checker failed");
    if (rc == 0) {
        if (!quiet)
            printf("ok: %u records checked, no violations\n",
                   rep.records_checked);
        return EX_OK;
    }
    printf("%u violation(s) in %u records checked:\n", rep.violations,
           rep.records_checked);
    rep.text[sizeof(rep.text) - 1] = 0;
    fputs(rep.text, stdout);
    if (rep.text[0] && rep.text[strlen(rep.text) - 1] != '\n')
        fputc('\n', stdout);
    return EX_SEGMENT;
}

/* ------------------------------------------------------------------------ */
/* gc                                                                        */
/* ------------------------------------------------------------------------ */

static const char gc_help[] =
    "Usage: shmledger [--base DIR] gc [--no-reap] [--unlink [--force]]\n"
    "\n"
    "Reap dead participants: join the ledger briefly and call\n"
    "shl_ledger_reap(), which finds participants whose process is proven\n"
    "dead (their kernel lock is gone), runs the crash protocol for their\n"
    "operations and frees their slots. Then report the participants. With\n"
    "--unlink, remove the segment (shm_unlink) when no participant is alive;\n"
    "processes that still map it keep using their mapping. The base\n"
    "directory (JSON files, logs, backup/) is left alone.\n"
    "\n"
    "  --no-reap  only report (read-only)\n"
    "  --unlink   remove the segment when nobody uses it\n"
    "  --force    with --unlink: remove it even when it cannot be read\n"
    "             (corrupt, poisoned, other version) or someone is alive\n"
    "\n"
    "Exit status: 0 done (also when there is no segment), 1 refused (live\n"
    "participants) or reaping failed, 2 usage, 3 segment unreadable (without\n"
    "--force).\n";

/* Join the ledger briefly and reap dead participants; the count or < 0. */
static int
reap_dead(const char *base)
{
    char id[32];
    snprintf(id, sizeof(id), "gc-%d", (int)getpid());
    shl_ledger *l;
    int rc = shl_ledger_open(&l, base, id, NULL);
    if (rc)
        return rc;
    int n = shl_ledger_reap(l);
    shl_ledger_close(l);
    return n;
}

/* gc --unlink --force on a segment that cannot be used (poisoned,
 * garbled, truncated): remove it anyway, as documented. */
static int
gc_forced_unlink(const char *base, const char *name, int why)
{
    char msg[512];
    shl_tool_one_line(msg, sizeof(msg), shl_errmsg());
    printf("segment %s cannot be used (%s%s%s): removing it (forced)\n", name,
           shl_strerror(why), msg[0] ? ": " : "", msg);
    int rc = shl_segment_unlink_force(base);
    if (rc && rc != -ENOENT)
        return cli_fail("gc", rc, "cannot remove segment %s", name);
    printf("removed unusable segment %s (forced)\n", name);
    return EX_OK;
}

int
cmd_gc(struct cli *c, int argc, char **argv)
{
    enum { OPT_UNLINK = 0x300, OPT_FORCE, OPT_NOREAP };
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"unlink", no_argument, NULL, OPT_UNLINK},
        {"force", no_argument, NULL, OPT_FORCE},
        {"no-reap", no_argument, NULL, OPT_NOREAP},
        {NULL, 0, NULL, 0},
    };
    bool unlink_seg = false, force = false, reap = true;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == 'h')
            return cli_help(gc_help);
        if (opt == OPT_UNLINK) {
            unlink_seg = true;
            continue;
        }
        if (opt == OPT_FORCE) {
            force = true;
            continue;
        }
        if (opt == OPT_NOREAP) {
            reap = false;
            continue;
        }
        return cli_bad_opt("gc", opt, argv);
    }
    if (optind < argc)
        return cli_usage_err("gc", "unexpected argument '%s'", argv[optind]);
    if (force && !unlink_seg)
        return cli_usage_err("gc", "--force only applies with --unlink");
    const char *base = cli_base(c, "gc");
    if (!base)
        return EX_USAGE;
    char name[128];
    if (shl_segment_name(base, name, sizeof(name)) < 0) {
        printf("no segment for %s: nothing to do\n", base);
        return EX_OK;
    }
    shl_reader *r;
    int rc = shl_reader_open(&r, base);
    if (rc == -ENOENT) {
        printf("no segment %s for %s: nothing to do\n", name, base);
        return EX_OK;
    }
    if (rc) {
        if (!(unlink_seg && force))
            return cli_fail("gc", rc, "cannot read segment %s%s", name,
                            unlink_seg ? " (use --force to remove it)" : "");
        rc = shl_segment_unlink_force(base);
        if (rc && rc != -ENOENT)
            return cli_fail("gc", rc, "cannot remove segment %s", name);
        printf("removed unreadable segment %s (forced)\n", name);
        return EX_OK;
    }
    shl_segment_info info;
    if (reap) {
        /* Count freed slots rather than trust the return value: the
         * joining ledger's own monitor may reap before we ask. */
        uint32_t before = 0;
        if (shl_reader_info(r, &info) == 0)
            before = info.used_participants;
        int n = reap_dead(base);
        if (n < 0) {
            shl_reader_close(r);
            if (unlink_seg && force)
                return gc_forced_unlink(base, name, n);
            return cli_fail("gc", n, "cannot reap dead participants%s",
                            unlink_seg ? " (use --force to remove the "
                                         "segment anyway)"
                                       : "");
        }
        uint32_t after = before;
        if (shl_reader_info(r, &info) == 0)
            after = info.used_participants;
        printf("reaped %u dead participant(s)\n",
               before > after ? before - after : 0);
    }
    rc = shl_reader_info(r, &info);
    if (rc) {
        shl_reader_close(r);
        if (unlink_seg && force)
            return gc_forced_unlink(base, name, rc);
        return cli_fail("gc", rc, "cannot read segment %s", name);
    }
    /* Every slot in use, with the kernel's word on its liveness. */
    shl_participant_info *parts = NULL;
    size_t n = 0;
    rc = shl_reader_participants(r, &parts, &n);
    if (rc) {
        shl_reader_close(r);
        if (unlink_seg && force)
            return gc_forced_unlink(base, name, rc);
        return cli_fail("gc", rc, "cannot list participants of %s", name);
    }
    uint32_t alive = 0, dead = 0;
    for (size_t i = 0; i < n; i++) {
        const shl_participant_info *p = &parts[i];
        if (p->alive)
            alive++;
        else
            dead++;
        printf("participant %s (pid %d, slot %u): %s\n", p->participant_id,
               p->pid, p->slot, p->alive ? "alive" : "dead");
    }
    free(parts);
    printf("segment %s: %zu participant slot(s) in use: %u alive, %u dead\n",
           info.shm_name, n, alive, dead);
    shl_reader_close(r);
    if (!unlink_seg)
        return EX_OK;
    if (alive > 0 && !force) {
        cli_err("gc",
                "not removing segment %s: %u participant(s) alive (use "
                "--force to remove it anyway)",
                info.shm_name, alive);
        return EX_FAIL;
    }
    /* with --force, whoever is alive; without, the library checks again
     * (someone may have joined since the listing) */
    rc = force ? shl_segment_unlink_force(base) : shl_segment_unlink(base);
    if (rc && rc != -ENOENT)
        return cli_fail("gc", rc, "cannot remove segment %s", info.shm_name);
    printf("removed segment %s\n", info.shm_name);
    return EX_OK;
}

/* ------------------------------------------------------------------------ */
/* log                                                                       */
/* ------------------------------------------------------------------------ */

static const char log_help[] =
    "Usage: shmledger [--base DIR] log [-f] OP\n"
    "\n"
    "Print the operation log DIR/OP.operation.log (or, once the operation is\n"
    "archived, DIR/backup/OP/operation.log).\n"
    "\n"
    "  -f, --follow   keep printing new lines until the operation is gone\n"
    "                 from the ledger and the file has stopped growing\n"
    "\n"
    "Exit status: 0 ok, 1 no log file, 2 usage.\n";

/* Is the operation still live in the segment? Missing segment = no. */
static bool
op_is_live(const char *base, const char *op_id)
{
    shl_reader *r;
    if (shl_reader_open(&r, base) != 0)
        return false;
    shl_snapshot *s = NULL;
    int rc = shl_reader_snapshot(r, op_id, &s);
    bool live = rc == 0 || rc == -EAGAIN;
    if (rc == 0) {
        live = s->state == SHL_OP_RUNNING || s->state == SHL_OP_CLEANUP;
        shl_snapshot_free(s);
    }
    shl_reader_close(r);
    return live;
}

static int
copy_from(int fd, off_t *pos)
{
    char buf[8192];
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), *pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : 0;
        fwrite(buf, 1, (size_t)n, stdout);
        *pos += n;
    }
}

int
cmd_log(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"follow", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    bool follow = false;
    int opt;
    while ((opt = getopt_long(argc, argv, ":hf", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == 'h')
            return cli_help(log_help);
        if (opt == 'f') {
            follow = true;
            continue;
        }
        return cli_bad_opt("log", opt, argv);
    }
    if (optind + 1 != argc)
        return cli_usage_err("log", optind >= argc ? "missing operation id"
                                                   : "too many arguments");
    const char *op_id = argv[optind];
    int ex = cli_check_op_id("log", op_id);
    if (ex)
        return ex;
    const char *base = cli_base(c, "log");
    if (!base)
        return EX_USAGE;
    char path[4096], archived[4096];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, op_id);
    snprintf(archived, sizeof(archived), "%s/backup/%s/operation.log", base,
             op_id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && !follow)
        fd = open(archived, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && !follow) {
        cli_err("log", "no log file %s (nor %s)", path, archived);
        return EX_FAIL;
    }
    off_t pos = 0;
    if (fd >= 0)
        copy_from(fd, &pos);
    fflush(stdout);
    if (!follow) {
        close(fd);
        return EX_OK;
    }
    /* Follow: poll the file; stop once the operation is gone and two
     * polls in a row found nothing new. */
    int quiet_polls = 0;
    for (;;) {
        cli_sleep_ms(200);
        if (fd < 0) {
            fd = open(path, O_RDONLY | O_CLOEXEC);
            pos = 0;
        }
        off_t before = pos;
        if (fd >= 0) {
            copy_from(fd, &pos);
            fflush(stdout);
            /* The file was archived (renamed away): stop following it. */
            struct stat st;
            if (stat(path, &st) != 0) {
                close(fd);
                fd = -1;
            }
        }
        if (pos != before || op_is_live(base, op_id)) {
            quiet_polls = 0;
            continue;
        }
        if (++quiet_polls >= 2)
            break;
    }
    if (fd >= 0)
        close(fd);
    return EX_OK;
}
