/*
 * fuzz_segment.c: an arbitrary segment image, opened and read as the tools
 * do. Shared memory is untrusted input: nothing may crash or read out of
 * bounds, whatever the bytes.
 *
 * The input is written to a memfd and mapped read-only (so any write by a
 * reader is a crash too). The fields that depend on the machine rather than
 * the image (owner uid, PID namespace, layout signature of this build) are
 * set to this process's, so a corpus stays valid on another machine or
 * build; everything else is as fuzzed. shl__seg_validate decides; an image
 * it accepts goes through every read-only API: info, participants, list,
 * a snapshot of each listed operation (and to JSON), and the checker.
 *
 * Seeds: SHL_FUZZ_MAKE_SEED=<file> ./fuzz_segment writes the image of a
 * small live segment (4 participants, 4 operations, 16 frames, 8
 * resources, a 16-record ring; an operation with calls, a temp resource
 * and log lines) to <file> and exits (tools/dev/fuzz.sh uses it when the
 * corpus has no seed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "internal.h"
#include "objects.h"
#include "shm/segment.h"
#include "shm/table.h"
#include "shmledger/shmledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int
make_seed(const char *file)
{
    char base[] = "/tmp/shl-fuzz-seed-XXXXXX";
    if (!mkdtemp(base))
        return 1;
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_participants = 4;
    o.max_operations = 4;
    o.max_frames = 16;
    o.max_resources = 8;
    o.max_events = 16;
    o.snapshotter = false;
    shl_ledger *l;
    if (shl_ledger_open(&l, base, "seed", &o) != 0)
        return 2;
    shl_op *op;
    if (shl_op_create(l, "fuzz seed", NULL, &op) != 0)
        return 3;
    shl_call *c1, *c2;
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = "a call";
    if (shl_call_start(op, &co, &c1) || shl_call_start(op, NULL, &c2))
        return 4;
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s/tmpfile", base);
    (void)shl_op_register_temp_resource(op, tmp);
    (void)shl_op_log(op, SHL_LOG_INFO, "a log line");
    (void)shl_call_end(c2, NULL);
    shl_op *op2;
    if (shl_op_create(l, NULL, NULL, &op2) == 0)
        (void)shl_op_set_abort_flag(op2, true);
    char name[128];
    if (shl_segment_name(base, name, sizeof(name)) < 0)
        return 5;
    int fd = shm_open(name, O_RDONLY, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return 6;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    FILE *f = fopen(file, "wb");
    if (p == MAP_FAILED || !f ||
        fwrite(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        return 7;
    fclose(f);
    fprintf(stderr, "fuzz_segment: wrote a %lld-byte seed to %s\n",
            (long long)st.st_size, file);
    shl_ledger_close(l);
    (void)shl_segment_unlink(base);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : 8;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *seed = getenv("SHL_FUZZ_MAKE_SEED");
    if (seed && *seed)
        exit(make_seed(seed));
    /* an image never changes: a record in mid-write whose lock word names
     * a holder would be waited for 200 ms per call for nothing */
    shl__reader_busy_ns = 0;
    return 0;
}

static int memfd = -1;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < sizeof(struct shl__hdr))
        return 0;
    if (memfd < 0) {
        memfd = memfd_create("shl-fuzz-seg", MFD_CLOEXEC);
        if (memfd < 0)
            abort();
    }
    /* the image, with this machine's owner, namespace and layout */
    uint8_t *img = malloc(size);
    if (!img)
        return 0;
    memcpy(img, data, size);
    struct shl__hdr *h0 = (struct shl__hdr *)img;
    h0->owner_uid = (uint32_t)geteuid();
    h0->pidns_ino = 0;
    h0->format_sig = shl__format_signature();
    if (ftruncate(memfd, 0) != 0 || ftruncate(memfd, (off_t)size) != 0 ||
        pwrite(memfd, img, size, 0) != (ssize_t)size) {
        free(img);
        return 0;
    }
    free(img);
    void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, memfd, 0);
    if (p == MAP_FAILED)
        return 0;
    if (shl__seg_validate((const struct shl__hdr *)p, size, geteuid()) == 0) {
        shl_reader r;
        memset(&r, 0, sizeof(r));
        r.own.fd = memfd;
        r.own.writable = false;
        r.own.base = p;
        r.own.size = size;
        r.own.hdr = (struct shl__hdr *)p;
        snprintf(r.own.name, sizeof(r.own.name), "/fuzz");
        r.seg = &r.own;
        r.owns_seg = false;
        r.own_slot = SHL__NO_SLOT;

        shl_segment_info si;
        (void)shl_reader_info(&r, &si);
        shl_participant_info *parts = NULL;
        size_t np = 0;
        if (shl_reader_participants(&r, &parts, &np) == 0)
            free(parts);
        shl_op_summary *ops = NULL;
        size_t no = 0;
        if (shl_reader_list(&r, &ops, &no) == 0) {
            for (size_t i = 0; i < no && i < 8; i++) {
                shl_snapshot *s = NULL;
                if (shl_reader_snapshot(&r, ops[i].operation_id, &s) == 0) {
                    char *js = NULL;
                    if (shl_snapshot_to_json(s, 0, &js) == 0)
                        free(js);
                }
                shl_snapshot_free(s);
            }
            free(ops);
        }
        shl_check_report rep;
        (void)shl_reader_check(&r, &rep);
    }
    munmap(p, size);
    return 0;
}
