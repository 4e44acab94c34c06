/*
 * test_segment.c: segment creation, validation and naming (DESIGN §3).
 *
 * Every refusal path of shl__seg_open()/shl__seg_validate() is driven through
 * the public openers (shl_ledger_open, shl_reader_open) on a real segment
 * whose header the test patches through its own mapping, plus the creation
 * races: a live creator still initialising (SHL_ENOTREADY) and a creator
 * killed mid-initialisation (re-initialised by the next opener).
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shl_test.h"

#include "internal.h"
#include "layout.h"
#include "shm/segment.h"

/* ---- helpers ---- */

/* /dev/shm/<name without its leading slash> */
static void
shm_path(const char *base, char *buf, size_t cap)
{
    char name[96];
    int n = shl_segment_name(base, name, sizeof(name));
    assert_true(n > 1);
    snprintf(buf, cap, "/dev/shm/%s", name + 1);
}

/* Create the segment of `base` (via a ledger that is closed again). */
static void
create_segment(const char *base, const shl_ledger_opts *o)
{
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "creator", o));
    shl_ledger_close(l);
}

/* Map the whole shm object of `base` read-write (the test's own view). */
static struct shl__hdr *
map_hdr(const char *base, size_t *size)
{
    char p[256];
    shm_path(base, p, sizeof(p));
    int fd = open(p, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true((size_t)st.st_size >= sizeof(struct shl__hdr));
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
    close(fd);
    assert_true(m != MAP_FAILED);
    *size = (size_t)st.st_size;
    return m;
}

static int
open_ledger_rc(const char *base, int64_t timeout_ms)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.timeout_ms = timeout_ms;
    shl_ledger *l = NULL;
    int rc = shl_ledger_open(&l, base, "opener", &o);
    if (rc == 0)
        shl_ledger_close(l);
    return rc;
}

static int
open_reader_rc(const char *base)
{
    shl_reader *r = NULL;
    int rc = shl_reader_open(&r, base);
    if (rc == 0)
        shl_reader_close(r);
    return rc;
}

static void
expect_both(const char *base, int want, const char *what)
{
    int rc = open_ledger_rc(base, 200);
    if (rc != want)
        fail_msg("%s: shl_ledger_open -> %d (%s), want %d (%s): %s", what, rc,
                 shl_strerror(rc), want, shl_strerror(want), shl_errmsg());
    rc = open_reader_rc(base);
    if (rc != want)
        fail_msg("%s: shl_reader_open -> %d (%s), want %d (%s): %s", what, rc,
                 shl_strerror(rc), want, shl_strerror(want), shl_errmsg());
}

/* ---- header patches: one row per refusal ---- */

typedef void (*patch_fn)(struct shl__hdr *h);

static void p_version(struct shl__hdr *h)
{
    atomic_store(&h->version,
                 SHL__VERSION_WORD(SHL_SEGMENT_MAJOR + 1, SHL__FORMAT_MINOR));
}
static void p_format(struct shl__hdr *h) { h->format_sig ^= 0x10; }
static void p_magic(struct shl__hdr *h) { h->magic ^= 0x0100; }
static void p_owner_uid(struct shl__hdr *h) { h->owner_uid = 12345; }
static void p_pidns(struct shl__hdr *h) { h->pidns_ino ^= 0x5a5a; }
static void p_hdr_size(struct shl__hdr *h) { h->hdr_size += 64; }
static void p_total_big(struct shl__hdr *h) { h->total_size += 1u << 20; }
static void p_total_small(struct shl__hdr *h) { h->total_size -= 64; }
static void p_cap_zero(struct shl__hdr *h) { h->cap[SHL__T_FRAME] = 0; }
static void p_cap_huge(struct shl__hdr *h) { h->cap[SHL__T_OP] = 1u << 25; }
static void p_cap_other(struct shl__hdr *h) { h->cap[SHL__T_RES] += 1; }
static void p_stride(struct shl__hdr *h) { h->stride[SHL__T_PART] += 64; }
static void p_off(struct shl__hdr *h) { h->off[SHL__T_FRAME] += 64; }
static void p_index_off(struct shl__hdr *h) { h->index_off += 64; }
static void p_index_cap(struct shl__hdr *h) { h->index_cap *= 2; }

static const struct {
    const char *name;
    patch_fn patch;
    int want;
} patches[] = {
    {"major version + 1", p_version, SHL_EVERSION},
    {"format signature", p_format, SHL_EFORMAT},
    {"magic", p_magic, SHL_ECORRUPT},
    {"owner uid in header", p_owner_uid, SHL_EOWNER},
    {"pid namespace", p_pidns, SHL_EOWNER},
    {"header size", p_hdr_size, SHL_ECORRUPT},
    {"total size beyond the object", p_total_big, SHL_ECORRUPT},
    {"total size smaller than geometry", p_total_small, SHL_ECORRUPT},
    {"capacity 0", p_cap_zero, SHL_ECORRUPT},
    {"capacity out of range", p_cap_huge, SHL_ECORRUPT},
    {"capacity inconsistent with geometry", p_cap_other, SHL_ECORRUPT},
    {"record stride", p_stride, SHL_ECORRUPT},
    {"table offset", p_off, SHL_ECORRUPT},
    {"index offset", p_index_off, SHL_ECORRUPT},
    {"index capacity", p_index_cap, SHL_ECORRUPT},
};

static void
test_segment_refuses_patched_headers(void **state)
{
    (void)state;
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_participants = 8;
    o.max_operations = 8;
    o.max_frames = 64;
    o.max_resources = 16;
    for (size_t i = 0; i < SHL__ARRAY_LEN(patches); i++) {
        char base[512];
        shl_test_base(base, sizeof(base), "seg-patch");
        create_segment(base, &o);
        size_t size;
        struct shl__hdr *h = map_hdr(base, &size);
        /* sanity: unpatched it opens */
        expect_both(base, 0, "unpatched");
        struct shl__hdr saved;
        memcpy(&saved, h, sizeof(saved));
        patches[i].patch(h);
        struct shl__hdr patched;
        memcpy(&patched, h, sizeof(patched));
        expect_both(base, patches[i].want, patches[i].name);
        /* refused means untouched: nobody re-initialised the segment */
        if (memcmp(h, &patched, offsetof(struct shl__hdr, lock_recoveries)))
            fail_msg("%s: the refusing opener changed the header",
                     patches[i].name);
        /* and the error text says what is wrong */
        (void)open_reader_rc(base);
        assert_true(strlen(shl_errmsg()) > 0);
        /* restore: it opens again (the patch was the only cause) */
        memcpy(h, &saved, offsetof(struct shl__hdr, lock_recoveries));
        expect_both(base, 0, "restored");
        munmap(h, size);
        shl_test_cleanup(base);
    }
}

/* ---- owner ---- */

static void
test_segment_foreign_uid_is_refused(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* chown of the object needs root (CI runs as root) */
    char base[512], p[256];
    shl_test_base(base, sizeof(base), "seg-uid");
    create_segment(base, NULL);
    shm_path(base, p, sizeof(p));
    int fd = open(p, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(fchown(fd, 12345, 12345), 0);
    close(fd);
    expect_both(base, SHL_EOWNER, "object owned by uid 12345");
    shl_test_cleanup(base);
}

/* ---- truncation ---- */

static void
truncate_object(const char *base, off_t size)
{
    char p[256];
    shm_path(base, p, sizeof(p));
    int fd = open(p, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static off_t
object_size(const char *base)
{
    char p[256];
    shm_path(base, p, sizeof(p));
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_size;
}

static void
test_segment_truncated_below_total(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "seg-trunc");
    create_segment(base, NULL);
    off_t full = object_size(base);
    truncate_object(base, full - 4096);
    expect_both(base, SHL_ECORRUPT, "truncated below total_size");
    assert_int_equal(object_size(base), full - 4096); /* not re-created */
    shl_test_cleanup(base);
}

static void
test_segment_truncated_below_header(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "seg-trunc-hdr");
    create_segment(base, NULL);
    off_t small = (off_t)sizeof(struct shl__hdr) / 2;
    truncate_object(base, small);
    expect_both(base, SHL_ECORRUPT, "truncated below the header");
    assert_int_equal(object_size(base), small); /* not re-created */
    shl_test_cleanup(base);
}

/* ---- creation races ---- */

/* A live creator that holds the init lock and never finishes. */
static void
test_segment_not_ready_while_creator_lives(void **state)
{
    (void)state;
    char base[512], name[96];
    shl_test_base(base, sizeof(base), "seg-notready");
    assert_int_equal(mkdir(base, 0700), 0);
    assert_true(shl_segment_name(base, name, sizeof(name)) > 0);
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, 2 * sizeof(struct shl__hdr)) != 0 ||
            shl__ofd_trylock(fd, SHL__LOCK_INIT) != 0)
            _exit(2);
        if (write(ready[1], "r", 1) != 1)
            _exit(3);
        char c;
        (void)!read(go[0], &c, 1); /* EOF when the parent says go */
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);

    int64_t t0 = shl_test_now_ms();
    int rc = open_ledger_rc(base, 150);
    int64_t dt = shl_test_now_ms() - t0;
    assert_int_equal(rc, SHL_ENOTREADY);
    assert_true(dt >= 140);                              /* it did wait */
    assert_true(dt < 150 + 2000 * shl_test_multiplier()); /* bounded */
    assert_int_equal(open_reader_rc(base), SHL_ENOTREADY);

    /* the creator goes away (its OFD lock with it): the next opener
     * initialises the segment itself */
    close(go[1]);
    assert_child_exited(pid, 0);
    close(ready[0]);
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "heir", NULL));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.used_participants, 1);
    assert_int_equal(info.cap_operations, 1024);
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
dead_creator(const char *point)
{
    char base[512];
    shl_test_base(base, sizeof(base), "seg-deadcreator");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shl_ledger_opts o;
        shl_ledger_opts_init(&o);
        o.max_operations = 7; /* distinguishable from the heir's */
        shl__crash_arm(point, SHL__CRASH_SIGKILL);
        shl_ledger *l = NULL;
        (void)!shl_ledger_open(&l, base, "doomed", &o);
        _exit(0); /* not reached if the point was passed */
    }
    assert_child_signaled(pid, SIGKILL);
    /* the object exists, version 0, nobody holds the init lock */
    assert_true(object_size(base) >= 0);
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_operations = 9;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "heir", &o));
    shl_reader *r = shl_ledger_reader(l);
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.cap_operations, 9); /* re-initialised by us */
    assert_int_equal(info.used_participants, 1);
    assert_int_equal(info.format_major, SHL_SEGMENT_MAJOR);
    assert_false(info.poisoned);
    assert_segment_clean(r);
    /* and it works */
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_reader *r2 = NULL;
    assert_shl_ok(shl_reader_open(&r2, base));
    assert_segment_clean(r2);
    shl_reader_close(r2);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_segment_dead_creator_after_truncate(void **state)
{
    (void)state;
    dead_creator("init.truncated");
}

static void
test_segment_dead_creator_after_fill(void **state)
{
    (void)state;
    dead_creator("init.filled");
}

/* ---- reader on nothing ---- */

static void
test_segment_reader_missing(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "seg-missing");
    /* no directory at all: realpath fails */
    assert_int_equal(open_reader_rc(base), -ENOENT);
    /* directory, no segment */
    assert_int_equal(mkdir(base, 0700), 0);
    assert_int_equal(open_reader_rc(base), -ENOENT);
    /* and the reader created nothing */
    char p[256];
    shm_path(base, p, sizeof(p));
    assert_int_equal(access(p, F_OK), -1);
    shl_reader *r = (shl_reader *)0x1;
    assert_int_equal(shl_reader_open(&r, NULL), -EINVAL);
    assert_ptr_equal(r, (shl_reader *)0x1); /* out untouched on failure */
    rmdir(base);
}

/* ---- capacities ---- */

static void
test_segment_capacities(void **state)
{
    (void)state;
    char base[512];
    shl_segment_info info;
    shl_test_base(base, sizeof(base), "seg-caps");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_participants = 5;
    o.max_operations = 6;
    o.max_frames = 70;
    o.max_resources = 33;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "a", &o));
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base));
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.cap_participants, 5);
    assert_int_equal(info.cap_operations, 6);
    assert_int_equal(info.cap_frames, 70);
    assert_int_equal(info.cap_resources, 33);
    assert_int_equal(info.used_participants, 1);
    assert_int_equal(info.owner_uid, geteuid());
    assert_int_equal(info.format_major, SHL_SEGMENT_MAJOR);
    assert_true(info.format_signature == shl__format_signature());
    char name[96];
    assert_true(shl_segment_name(base, name, sizeof(name)) > 0);
    assert_string_equal(info.shm_name, name);
    /* a later opener's capacities are ignored: the creator's stand */
    shl_ledger_opts o2;
    shl_ledger_opts_init(&o2);
    shl_ledger *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l2, base, "b", &o2));
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l2), &info));
    assert_int_equal(info.cap_participants, 5);
    assert_int_equal(info.cap_frames, 70);
    assert_int_equal(info.used_participants, 2);
    shl_reader_close(r);
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);

    /* defaults */
    shl_test_base(base, sizeof(base), "seg-defcaps");
    assert_shl_ok(shl_ledger_open(&l, base, "a", NULL));
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.cap_participants, 1024);
    assert_int_equal(info.cap_operations, 1024);
    assert_int_equal(info.cap_frames, 65536);
    assert_int_equal(info.cap_resources, 16384);
    shl_ledger_close(l);
    shl_test_cleanup(base);

    /* options out of range are refused before anything is created */
    shl_test_base(base, sizeof(base), "seg-badcaps");
    o.max_frames = 0;
    assert_int_equal(shl_ledger_open(&l, base, "a", &o), -EINVAL);
    o.max_frames = 70;
    o.max_participants = SHL__MAX_PARTICIPANTS + 1;
    assert_int_equal(shl_ledger_open(&l, base, "a", &o), -EINVAL);
    assert_int_equal(access(base, F_OK), -1);
}

/* ---- mode ---- */

static void
test_segment_mode(void **state)
{
    (void)state;
    char base[512], p[256];
    struct stat st;
    mode_t old = umask(0077); /* the mode must not depend on the umask */
    shl_test_base(base, sizeof(base), "seg-mode");
    create_segment(base, NULL);
    shm_path(base, p, sizeof(p));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    /* the base directory is created 0700 */
    assert_int_equal(stat(base, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    shl_test_cleanup(base);

    /* a group mode only when asked */
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.mode = 0640;
    shl_test_base(base, sizeof(base), "seg-mode-g");
    create_segment(base, &o);
    shm_path(base, p, sizeof(p));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    shl_test_cleanup(base);
    umask(old);
}

/* ---- names ---- */

static void
test_segment_name(void **state)
{
    (void)state;
    char base[512], name[96], other[96];
    shl_test_base(base, sizeof(base), "seg-name");
    assert_int_equal(mkdir(base, 0700), 0);
    int n = shl_segment_name(base, name, sizeof(name));
    assert_int_equal(n, (int)strlen(name));

    char pat[128];
    snprintf(pat, sizeof(pat), "^/shmledger\\.%u\\.[0-9a-f]{16}$",
             (unsigned)geteuid());
    regex_t re;
    assert_int_equal(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, name, 0, NULL, 0) != 0)
        fail_msg("segment name %s does not match %s", name, pat);
    regfree(&re);

    /* other spellings of the same real path */
    char spell[600];
    snprintf(spell, sizeof(spell), "%s/.", base);
    assert_true(shl_segment_name(spell, other, sizeof(other)) > 0);
    assert_string_equal(other, name);
    snprintf(spell, sizeof(spell), "%s/", base);
    assert_true(shl_segment_name(spell, other, sizeof(other)) > 0);
    assert_string_equal(other, name);
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/sub", base);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(spell, sizeof(spell), "%s/sub/..", base);
    assert_true(shl_segment_name(spell, other, sizeof(other)) > 0);
    assert_string_equal(other, name);
    char link[600];
    snprintf(link, sizeof(link), "%s-link", base);
    assert_int_equal(symlink(base, link), 0);
    assert_true(shl_segment_name(link, other, sizeof(other)) > 0);
    assert_string_equal(other, name);

    /* another directory, another name */
    assert_true(shl_segment_name(sub, other, sizeof(other)) > 0);
    assert_string_not_equal(other, name);

    /* the same segment through the symlink */
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, link, "vialink", NULL));
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_participants, 1);
    assert_string_equal(info.shm_name, name);
    shl_reader_close(r);
    shl_ledger_close(l);

    /* errors */
    assert_int_equal(shl_segment_name(base, other, 10), -ENOSPC);
    assert_int_equal(shl_segment_name(NULL, other, sizeof(other)), -EINVAL);
    snprintf(spell, sizeof(spell), "%s/nonexistent", base);
    assert_int_equal(shl_segment_name(spell, other, sizeof(other)), -ENOENT);

    unlink(link);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_refuses_patched_headers),
        cmocka_unit_test(test_segment_foreign_uid_is_refused),
        cmocka_unit_test(test_segment_truncated_below_total),
        cmocka_unit_test(test_segment_truncated_below_header),
        cmocka_unit_test(test_segment_not_ready_while_creator_lives),
        cmocka_unit_test(test_segment_dead_creator_after_truncate),
        cmocka_unit_test(test_segment_dead_creator_after_fill),
        cmocka_unit_test(test_segment_reader_missing),
        cmocka_unit_test(test_segment_capacities),
        cmocka_unit_test(test_segment_mode),
        cmocka_unit_test(test_segment_name),
    };
    return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}
