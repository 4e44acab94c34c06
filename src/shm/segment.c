/*
 * segment.c: create, open, validate and map the shared-memory segment.
 *
 * Creation protocol (race-free, survives a creator killed at any step):
 *  1. shm_open(O_CREAT|O_EXCL) decides who *may* create. Everyone else opens
 *     the existing object.
 *  2. Initialisation is done by whoever holds the OFD lock on byte
 *     SHL__LOCK_INIT *and* sees `version == 0`. The O_EXCL winner tries that
 *     lock first; an opener that finds `version == 0` also tries it. If an
 *     opener gets it, the creator is either dead (the kernel dropped its
 *     lock) or has not locked yet: in both cases the opener initialises and
 *     the late creator, failing the lock or then seeing `version != 0`,
 *     simply opens. Initialisation is therefore idempotent and done once.
 *  3. The initialiser sizes the object, fills the header and every table,
 *     then stores `version` last with release and drops the lock. Openers
 *     wait (bounded) while `version == 0` and the lock is held.
 * Validation refuses: another owner uid or PID namespace (SHL_EOWNER),
 * another major version (SHL_EVERSION), another layout (SHL_EFORMAT), and a
 * truncated or inconsistent header (SHL_ECORRUPT).
 */
#include "shm/segment.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"

/* Segments of this process, for the fork child handler: a fixed lock-free
 * table (the handler must not take locks another thread may have held at
 * fork). A mapping holds a reference to the open file description just as
 * a descriptor does, and the kernel drops an OFD lock only when the last
 * reference goes: so the child must lose both its copies. */
#define FD_TABLE 256
static struct {
    _Atomic int fd;             /* 0 = free entry */
    void *_Atomic base;
    _Atomic size_t size;
} fd_table[FD_TABLE];
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
atfork_child(void)
{
    /* Unmap, and point the descriptors at /dev/null: the open file
     * descriptions (and the OFD liveness locks on them) stay with the
     * parent alone, and the numbers stay occupied so a stray close in the
     * child is harmless. */
    int null = -1;
    for (int i = 0; i < FD_TABLE; i++) {
        int fd = atomic_load_explicit(&fd_table[i].fd, memory_order_relaxed);
        if (fd <= 0)
            continue;
        void *base = atomic_load_explicit(&fd_table[i].base,
                                          memory_order_relaxed);
        size_t size = atomic_load_explicit(&fd_table[i].size,
                                           memory_order_relaxed);
        if (base && size)
            munmap(base, size);
        if (null < 0)
            null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0)
            dup3(null, fd, O_CLOEXEC);
        atomic_store_explicit(&fd_table[i].fd, 0, memory_order_relaxed);
    }
    if (null >= 0)
        close(null);
}

/* Library threads (monitor passes, snapshotter passes) allocate memory
 * while they work. A fork() in another thread at such a moment can leave
 * the child with an allocator lock held by a thread that does not exist
 * there (glibc's malloc guards against it; sanitizer allocators do not).
 * So those threads hold this lock (read) while busy and fork waits for
 * them (write) in its prepare handler: the child then starts with our
 * threads parked outside any allocation. A fork from inside a library
 * thread (a callback) does not wait: it would wait on itself. */
static pthread_rwlock_t fork_lock_first;
static pthread_rwlock_t *fork_lock = &fork_lock_first;
static _Thread_local int busy_depth;
static _Thread_local bool fork_waited;

static void
fork_lock_init(pthread_rwlock_t *l)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* writer preference: a fork is not starved by back-to-back passes */
    pthread_rwlockattr_setkind_np(&a,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(l, &a);
    pthread_rwlockattr_destroy(&a);
}

void
shl__busy_enter(void)
{
    if (busy_depth++ == 0)
        pthread_rwlock_rdlock(fork_lock);
}

void
shl__busy_leave(void)
{
    if (--busy_depth == 0)
        pthread_rwlock_unlock(fork_lock);
}

static void
atfork_prepare(void)
{
    fork_waited = busy_depth == 0;
    if (fork_waited)
        pthread_rwlock_wrlock(fork_lock);
}

static void
atfork_parent(void)
{
    if (fork_waited)
        pthread_rwlock_unlock(fork_lock);
}

static void
atfork_child_all(void)
{
    /* Not an unlock: the lock records the writer's thread id, which is
     * another one in the child. The child has no other threads: start
     * afresh, with a new lock object (re-initialising the held one is
     * undefined, and ThreadSanitizer keeps it write-locked). The old one is
     * left as it is; if the allocation fails, re-initialise in place. */
    pthread_rwlock_t *fresh = malloc(sizeof(*fresh));
    if (fresh) {
        fork_lock_init(fresh);
        fork_lock = fresh;
    } else {
        fork_lock_init(fork_lock);
    }
    busy_depth = 0;
    atfork_child();
}

static void
atfork_install(void)
{
    fork_lock_init(fork_lock);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child_all);
}

void
shl__fork_guard_init(void)
{
    pthread_once(&atfork_once, atfork_install);
}

static void
fd_register(int fd, void *base, size_t size)
{
    pthread_once(&atfork_once, atfork_install);
    for (int i = 0; i < FD_TABLE; i++) {
        int expect = 0;
        if (atomic_load(&fd_table[i].fd) != 0)
            continue;
        atomic_store(&fd_table[i].base, base);
        atomic_store(&fd_table[i].size, size);
        if (atomic_compare_exchange_strong(&fd_table[i].fd, &expect, fd))
            return;
    }
    /* table full: that segment is not dropped in fork children */
}

static void
fd_unregister(int fd)
{
    for (int i = 0; i < FD_TABLE; i++) {
        int expect = fd;
        if (atomic_compare_exchange_strong(&fd_table[i].fd, &expect, 0))
            return;
    }
}

uint64_t
shl__format_signature(void)
{
    /* Everything whose change would make another build misread us. */
    const uint64_t desc[] = {
        sizeof(struct shl__hdr),
        sizeof(struct shl__rec),
        sizeof(struct shl__part),
        sizeof(struct shl__op),
        sizeof(struct shl__frame),
        sizeof(struct shl__res),
        sizeof(struct shl__index_ent),
        sizeof(struct shl__evring),
        sizeof(struct shl__evhdr),
        offsetof(struct shl__hdr, ev_wake),
        offsetof(struct shl__hdr, snap_holder),
        offsetof(struct shl__hdr, ev_journal),
        sizeof(struct shl__ev_jent),
        offsetof(struct shl__evring, tail),
        offsetof(struct shl__evring, room),
        SHL__EV_REC_MAX,
        sizeof(pthread_mutex_t),
        sizeof(pid_t),
        SHL__CACHE_LINE,
        offsetof(struct shl__hdr, mutex),
        offsetof(struct shl__hdr, epoch),
        offsetof(struct shl__hdr, intent),
        offsetof(struct shl__part, heartbeat_ns),
        offsetof(struct shl__part, id),
        offsetof(struct shl__part, bell),
        offsetof(struct shl__op, id),
        offsetof(struct shl__op, crashed),
        offsetof(struct shl__op, archived),
        offsetof(struct shl__frame, call_id),
        offsetof(struct shl__frame, description),
        offsetof(struct shl__res, path),
        SHL_PARTICIPANT_ID_MAX,
        SHL_OPERATION_ID_MAX,
        SHL_CALL_ID_MAX,
        SHL_DESCRIPTION_MAX,
        SHL_PATH_MAX,
        SHL_CRASHED_IDS_MAX,
        SHL__CRASHED_BYTES,
        0x58584833, /* hash variant: XXH3_64, seed 0 */
    };
    return XXH3_64bits(desc, sizeof(desc));
}

int
shl__seg_name(const char *base_path, char *buf, size_t cap)
{
    char real[PATH_MAX];
    if (!base_path || !buf)
        return -EINVAL;
    if (!realpath(base_path, real))
        return SHL_SET_ERR(-errno, "realpath(%s): %s", base_path,
                           strerror(errno));
    uint64_t h = XXH3_64bits(real, strlen(real));
    int n = snprintf(buf, cap, "/shmledger.%u.%016llx", (unsigned)geteuid(),
                     (unsigned long long)h);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

int
shl__ofd_trylock(int fd, uint64_t byte)
{
    struct flock fl = {.l_type = F_WRLCK,
                       .l_whence = SEEK_SET,
                       .l_start = (off_t)byte,
                       .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    if (errno == EAGAIN || errno == EACCES)
        return -EAGAIN;
    return -errno;
}

int
shl__ofd_unlock(int fd, uint64_t byte)
{
    struct flock fl = {.l_type = F_UNLCK,
                       .l_whence = SEEK_SET,
                       .l_start = (off_t)byte,
                       .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

int
shl__ofd_is_locked(int fd, uint64_t byte)
{
    struct flock fl = {.l_type = F_WRLCK,
                       .l_whence = SEEK_SET,
                       .l_start = (off_t)byte,
                       .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

void
shl__epoch_bump(struct shl__seg *s)
{
    /* seq_cst pairs with the waiter's increment of epoch_waiters before it
     * re-reads the epoch in FUTEX_WAIT (Dekker): either we see it waiting,
     * or its FUTEX_WAIT sees the new epoch and returns at once. */
    atomic_fetch_add(&s->hdr->epoch, 1);
    if (atomic_load(&s->hdr->epoch_waiters) == 0)
        return;
    /* Shared futex (no FUTEX_PRIVATE_FLAG): waiters are in other processes. */
    syscall(SYS_futex, (uint32_t *)&s->hdr->epoch, FUTEX_WAKE, INT32_MAX,
            NULL, NULL, 0);
}

void
shl__part_ring(struct shl__seg *s, uint32_t slot)
{
    if (slot >= s->hdr->cap[SHL__T_PART])
        return;
    struct shl__part *p = shl__part_at(s, slot);
    /* the same Dekker pairing as shl__epoch_bump, on the slot's own word:
     * only a futex thread that is asleep costs the ringer a syscall */
    atomic_fetch_add(&p->bell, 1);
    if (atomic_load(&p->bell_waiters) == 0)
        return;
    syscall(SYS_futex, (uint32_t *)&p->bell, FUTEX_WAKE, INT32_MAX, NULL,
            NULL, 0);
}

uint64_t
shl__proc_start_time(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* comm may contain spaces and ')': fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    /* field 3 is state; starttime is field 22 */
    int field = 2;
    while (*p && field < 22) {
        if (*p == ' ')
            field++;
        p++;
    }
    return field == 22 ? strtoull(p, NULL, 10) : 0;
}

static uint64_t
pidns_inode(void)
{
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) != 0)
        return 0;
    return (uint64_t)st.st_ino;
}

static void
read_boot_id(char *out, size_t cap)
{
    out[0] = 0;
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        n = 0;
    out[n] = 0;
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = 0;
}

static uint64_t
align_up(uint64_t v)
{
    return (v + SHL__CACHE_LINE - 1) & ~(uint64_t)(SHL__CACHE_LINE - 1);
}

static uint32_t
next_pow2(uint32_t v)
{
    uint32_t p = 16;
    while (p < v && p < (1u << 30))
        p <<= 1;
    return p;
}

/* The event rings for max_events = ev_cap (a power of two): one ring per
 * 512 records, 1 to SHL__EV_RINGS_MAX of them, each of ev_cap * 128 bytes
 * (at least 4 KiB): one producer alone can hold about max_events call
 * events (~100-130 bytes each) as the one shared ring of 512-byte records
 * did. The segment is sparse: a ring's pages are touched only once a
 * producer uses it (16384: 32 rings of 2 MiB, 64 MiB of address space). */
static void
ev_rings_geometry(uint32_t ev_cap, uint32_t *nrings, uint32_t *ring_bytes)
{
    if (ev_cap == 0) {
        *nrings = 0;
        *ring_bytes = 0;
        return;
    }
    uint32_t n = ev_cap / 512;
    if (n < 1)
        n = 1;
    if (n > SHL__EV_RINGS_MAX)
        n = SHL__EV_RINGS_MAX;
    uint64_t bytes = (uint64_t)ev_cap * 128;
    uint32_t b = 4096;
    while (b < bytes && b < (1u << 28))
        b <<= 1;
    *nrings = n;
    *ring_bytes = b;
}

static uint64_t
ring_stride(uint32_t ring_bytes)
{
    return ring_bytes ? sizeof(struct shl__evring) + (uint64_t)ring_bytes : 0;
}

/* Geometry from capacities; returns the total size. */
static uint64_t
compute_geometry(const uint32_t cap[SHL__NTABLES], uint32_t stride[],
                  uint64_t off[], uint64_t *index_off, uint32_t *index_cap,
                  uint32_t ev_cap, uint64_t *ev_off, uint32_t *nrings,
                  uint32_t *ring_bytes)
{
    stride[SHL__T_PART] = sizeof(struct shl__part);
    stride[SHL__T_OP] = sizeof(struct shl__op);
    stride[SHL__T_FRAME] = sizeof(struct shl__frame);
    stride[SHL__T_RES] = sizeof(struct shl__res);
    uint64_t o = align_up(sizeof(struct shl__hdr));
    for (int t = 0; t < SHL__NTABLES; t++) {
        off[t] = o;
        o = align_up(o + (uint64_t)cap[t] * stride[t]);
    }
    *index_cap = next_pow2(cap[SHL__T_OP] * 2);
    *index_off = o;
    o = align_up(o + (uint64_t)*index_cap * sizeof(struct shl__index_ent));
    *ev_off = o;
    ev_rings_geometry(ev_cap, nrings, ring_bytes);
    o = align_up(o + (uint64_t)*nrings * ring_stride(*ring_bytes));
    return o;
}

int
shl__seg_validate(const struct shl__hdr *h, size_t size, uid_t uid)
{
    if (size < sizeof(struct shl__hdr))
        return SHL_SET_ERR(SHL_ECORRUPT, "segment truncated: %zu bytes",
                           size);
    uint32_t v = atomic_load_explicit(&h->version, memory_order_acquire);
    if (v == 0)
        return SHL_SET_ERR(SHL_ENOTREADY, "segment not initialised");
    if (h->magic != SHL__MAGIC)
        return SHL_SET_ERR(SHL_ECORRUPT, "segment has a bad magic number");
    if (SHL__VERSION_MAJOR(v) != SHL_SEGMENT_MAJOR)
        return SHL_SET_ERR(SHL_EVERSION,
                           "segment format version %u, this library reads %u",
                           (unsigned)SHL__VERSION_MAJOR(v),
                           (unsigned)SHL_SEGMENT_MAJOR);
    if (h->format_sig != shl__format_signature())
        return SHL_SET_ERR(SHL_EFORMAT,
                           "segment layout signature %016llx differs from "
                           "this build's %016llx",
                           (unsigned long long)h->format_sig,
                           (unsigned long long)shl__format_signature());
    if (h->owner_uid != (uint32_t)uid)
        return SHL_SET_ERR(SHL_EOWNER, "segment belongs to uid %u",
                           (unsigned)h->owner_uid);
    if (h->hdr_size != sizeof(struct shl__hdr))
        return SHL_SET_ERR(SHL_ECORRUPT, "segment header size mismatch");
    if (h->total_size > size)
        return SHL_SET_ERR(SHL_ECORRUPT,
                           "segment truncated: %zu of %llu bytes", size,
                           (unsigned long long)h->total_size);
    uint32_t stride[SHL__NTABLES];
    uint64_t off[SHL__NTABLES], ioff;
    uint32_t icap;
    for (int t = 0; t < SHL__NTABLES; t++)
        if (h->cap[t] == 0 || h->cap[t] > (1u << 24))
            return SHL_SET_ERR(SHL_ECORRUPT, "segment capacity out of range");
    if (h->cap[SHL__T_PART] > SHL__MAX_PARTICIPANTS)
        return SHL_SET_ERR(SHL_ECORRUPT,
                           "segment participant capacity %u above %u",
                           h->cap[SHL__T_PART], SHL__MAX_PARTICIPANTS);
    if (h->ev_cap > (1u << 20) || (h->ev_cap & (h->ev_cap - 1)) != 0)
        return SHL_SET_ERR(SHL_ECORRUPT, "segment event ring out of range");
    uint64_t evoff;
    uint32_t nrings, rbytes;
    uint64_t total = compute_geometry(h->cap, stride, off, &ioff, &icap,
                                      h->ev_cap, &evoff, &nrings, &rbytes);
    if (total != h->total_size || ioff != h->index_off ||
        icap != h->index_cap || evoff != h->ev_off ||
        nrings != h->ev_nrings || rbytes != h->ev_ring_bytes ||
        ring_stride(rbytes) != h->ev_ring_stride)
        return SHL_SET_ERR(SHL_ECORRUPT, "segment geometry inconsistent");
    for (int t = 0; t < SHL__NTABLES; t++)
        if (stride[t] != h->stride[t] || off[t] != h->off[t])
            return SHL_SET_ERR(SHL_ECORRUPT, "segment table %d misplaced", t);
    if (h->pidns_ino && pidns_inode() && h->pidns_ino != pidns_inode())
        return SHL_SET_ERR(SHL_EOWNER,
                           "segment was created in another PID namespace");
    return 0;
}

static int
init_segment(struct shl__seg *s, const struct shl__seg_params *p)
{
    uint32_t stride[SHL__NTABLES];
    uint64_t off[SHL__NTABLES], ioff;
    uint32_t icap;
    uint32_t ev_cap = 0;
    if (p->ev_cap) {
        ev_cap = 1;
        while (ev_cap < p->ev_cap && ev_cap < (1u << 20))
            ev_cap <<= 1;
    }
    uint64_t ev_off;
    uint32_t nrings, rbytes;
    uint64_t total = compute_geometry(p->cap, stride, off, &ioff, &icap,
                                      ev_cap, &ev_off, &nrings, &rbytes);

    if (ftruncate(s->fd, 0) != 0 || ftruncate(s->fd, (off_t)total) != 0)
        return SHL_SET_ERR(-errno, "ftruncate(%s, %llu): %s", s->name,
                           (unsigned long long)total, strerror(errno));
    SHL_CRASH_POINT("init.truncated");
    void *base =
        mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (base == MAP_FAILED)
        return SHL_SET_ERR(-errno, "mmap(%s): %s", s->name, strerror(errno));
    struct shl__hdr *h = base;
    /* The object was just truncated to zero and regrown: all zeroes, so
     * every record is FREE with generation 0 and every index entry empty. */
    h->magic = SHL__MAGIC;
    h->hdr_size = sizeof(struct shl__hdr);
    h->format_sig = shl__format_signature();
    h->total_size = total;
    h->owner_uid = (uint32_t)geteuid();
    h->mode = p->mode;
    h->pidns_ino = pidns_inode();
    for (int t = 0; t < SHL__NTABLES; t++) {
        h->cap[t] = p->cap[t];
        h->stride[t] = stride[t];
        h->off[t] = off[t];
    }
    h->index_off = ioff;
    h->index_cap = icap;
    h->ev_off = ev_off;
    h->ev_cap = ev_cap;
    h->ev_nrings = nrings;
    h->ev_ring_bytes = rbytes;
    h->ev_ring_stride = (uint32_t)ring_stride(rbytes);
    h->heartbeat_interval_ms = p->heartbeat_interval_ms;
    h->stale_threshold_ms = p->stale_threshold_ms;
    h->created_wall_us = shl__wall_us();
    h->created_mono_ns = shl__mono_ns();
    read_boot_id(h->boot_id, sizeof(h->boot_id));
    int rc = shl__mutex_init(&h->mutex);
    if (rc != 0) {
        munmap(base, total);
        return SHL_SET_ERR(rc, "pthread_mutex_init: %s", strerror(-rc));
    }
    SHL_CRASH_POINT("init.filled");
    atomic_store_explicit(&h->version,
                          SHL__VERSION_WORD(SHL_SEGMENT_MAJOR,
                                            SHL__FORMAT_MINOR),
                          memory_order_release);
    s->base = base;
    s->size = total;
    s->hdr = h;
    return 0;
}

static int
map_existing(struct shl__seg *s)
{
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        return -errno;
    size_t size = (size_t)st.st_size;
    if (size < sizeof(struct shl__hdr))
        return SHL_SET_ERR(SHL_ECORRUPT, "segment %s truncated (%zu bytes)",
                           s->name, size);
    int prot = PROT_READ | (s->writable ? PROT_WRITE : 0);
    void *base = mmap(NULL, size, prot, MAP_SHARED, s->fd, 0);
    if (base == MAP_FAILED)
        return SHL_SET_ERR(-errno, "mmap(%s): %s", s->name, strerror(errno));
    int rc = shl__seg_validate(base, size, geteuid());
    if (rc != 0) {
        munmap(base, size);
        return SHL_APPEND_ERR(rc, "segment %s", s->name);
    }
    s->base = base;
    s->size = size;
    s->hdr = base;
    return 0;
}

/* Version word of the object without mapping all of it; 0 when not set or
 * the object is shorter than the header. */
static uint32_t
peek_version(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct shl__hdr))
        return 0;
    uint32_t v = 0;
    if (pread(fd, &v, sizeof(v), offsetof(struct shl__hdr, version)) !=
        (ssize_t)sizeof(v))
        return 0;
    return v;
}

static int seg_open_impl(struct shl__seg *s, const char *name, bool writable,
                         const struct shl__seg_params *p);

static bool
in_my_groups(gid_t g)
{
    if (g == getegid())
        return true;
    gid_t list[256];
    int n = getgroups(256, list);
    for (int i = 0; i < n; i++)
        if (list[i] == g)
            return true;
    return false;
}

/* Refuse a segment others could have written: world-writable always; any
 * group access unless the opener asked for group access (a ledger's `mode`
 * with group bits; readers only read and validate, so they accept a group
 * segment) and the group is one of ours. */
static int
check_mode(const struct stat *st, const char *name, bool writable,
           uint32_t want)
{
    mode_t m = st->st_mode & 0777;
    if (m & S_IWOTH)
        return SHL_SET_ERR(SHL_EUNSAFE,
                           "segment %s is world-writable (mode %04o): "
                           "refused; remove it with shmledger gc --unlink "
                           "--force",
                           name, (unsigned)m);
    if (m & 0070) {
        if (writable && !(want & 0070))
            return SHL_SET_ERR(SHL_EUNSAFE,
                               "segment %s grants its group access (mode "
                               "%04o) and this ledger's mode %04o does not: "
                               "refused",
                               name, (unsigned)m, (unsigned)want);
        if (!in_my_groups(st->st_gid))
            return SHL_SET_ERR(SHL_EUNSAFE,
                               "segment %s grants access to group %u, not "
                               "one of this process's groups: refused",
                               name, (unsigned)st->st_gid);
    }
    return 0;
}

int
shl__seg_open(struct shl__seg *s, const char *name, bool writable,
              const struct shl__seg_params *p)
{
    int rc = seg_open_impl(s, name, writable, p);
    if (rc == 0)
        fd_register(s->fd, s->base, s->size);
    return rc;
}

static int
seg_open_impl(struct shl__seg *s, const char *name, bool writable,
              const struct shl__seg_params *p)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->writable = writable;
    if (shl__strlcpy_checked(s->name, sizeof(s->name), name) != 0)
        return -ENAMETOOLONG;
    int64_t deadline = shl__mono_ns() + p->timeout_ms * 1000000;
    int rc;

    for (;;) {
        if (writable) {
            s->fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                             p->mode);
            if (s->fd >= 0) {
                /* mode is filtered by umask: set it exactly */
                (void)fchmod(s->fd, p->mode);
            } else if (errno != EEXIST) {
                return SHL_SET_ERR(-errno, "shm_open(%s): %s", name,
                                   strerror(errno));
            }
        }
        if (s->fd < 0) {
            s->fd = shm_open(name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC,
                             0);
            if (s->fd < 0) {
                if (errno == ENOENT && writable)
                    continue; /* unlinked meanwhile: try to create again */
                if (errno == EACCES)
                    return SHL_SET_ERR(SHL_EOWNER,
                                       "segment %s: permission denied "
                                       "(another owner?)",
                                       name);
                return SHL_SET_ERR(-errno, "shm_open(%s): %s", name,
                                   strerror(errno));
            }
        }
        struct stat st;
        if (fstat(s->fd, &st) != 0) {
            rc = -errno;
            goto fail;
        }
        if (st.st_uid != geteuid()) {
            rc = SHL_SET_ERR(SHL_EOWNER, "segment %s belongs to uid %u", name,
                             (unsigned)st.st_uid);
            goto fail;
        }
        rc = check_mode(&st, name, writable, p->mode);
        if (rc != 0)
            goto fail;
        break;
    }

    for (;;) {
        /* An initialiser only ever sizes the object 0 -> total, so a size
         * between is damage: refuse it rather than re-initialise over it. */
        struct stat st;
        if (fstat(s->fd, &st) == 0 && st.st_size > 0 &&
            (size_t)st.st_size < sizeof(struct shl__hdr)) {
            rc = SHL_SET_ERR(SHL_ECORRUPT, "segment %s truncated (%lld bytes)",
                             name, (long long)st.st_size);
            goto fail;
        }
        if (peek_version(s->fd) != 0) {
            rc = map_existing(s);
            if (rc != 0)
                goto fail;
            return 0;
        }
        if (writable) {
            rc = shl__ofd_trylock(s->fd, SHL__LOCK_INIT);
            if (rc == 0) {
                /* We hold the init lock: initialise unless someone did. */
                if (peek_version(s->fd) == 0) {
                    rc = init_segment(s, p);
                    shl__ofd_unlock(s->fd, SHL__LOCK_INIT);
                    if (rc != 0)
                        goto fail;
                    return 0;
                }
                shl__ofd_unlock(s->fd, SHL__LOCK_INIT);
                continue;
            }
            if (rc != -EAGAIN)
                goto fail;
        }
        if (shl__mono_ns() > deadline) {
            rc = SHL_SET_ERR(SHL_ENOTREADY,
                             "segment %s is still being initialised", name);
            goto fail;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }

fail:
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    return rc;
}

void
shl__seg_close(struct shl__seg *s)
{
    if (!s)
        return;
    if (s->base)
        munmap(s->base, s->size);
    if (s->fd >= 0) {
        fd_unregister(s->fd);
        close(s->fd);
    }
    s->base = NULL;
    s->hdr = NULL;
    s->fd = -1;
}

int
shl_segment_name(const char *base_path, char *buf, size_t cap)
{
    shl__clear_err();
    return shl__seg_name(base_path, buf, cap);
}

int
shl_segment_unlink_force(const char *base_path)
{
    shl__clear_err();
    char name[96];
    int rc = shl__seg_name(base_path, name, sizeof(name));
    if (rc < 0)
        return rc;
    if (shm_unlink(name) != 0)
        return SHL_SET_ERR(-errno, "shm_unlink(%s): %s", name,
                           strerror(errno));
    return 0;
}

int
shl__mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc)
        return -rc;
    /* PTHREAD_MUTEX_ROBUST is an enum in glibc: never #ifdef it. */
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!rc)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!rc)
        rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -rc;
}

static pthread_mutex_t mutex_ref;
static pthread_once_t mutex_ref_once = PTHREAD_ONCE_INIT;

static void
mutex_ref_init(void)
{
    (void)shl__mutex_init(&mutex_ref);
}

int
shl__mutex_check(const pthread_mutex_t *m)
{
    pthread_once(&mutex_ref_once, mutex_ref_init);
    int ref_kind = mutex_ref.__data.__kind;
    int kind = __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
    unsigned count = __atomic_load_n(&m->__data.__count, __ATOMIC_RELAXED);
    unsigned lock =
        (unsigned)__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED);
    if (kind != ref_kind)
        return SHL_SET_ERR(SHL_ECORRUPT,
                           "structure mutex garbled: kind %d, expected %d",
                           kind, ref_kind);
    /* glibc stores 1 while a robust mutex is held, 0 when free */
    if (count > 1)
        return SHL_SET_ERR(SHL_ECORRUPT, "structure mutex garbled: count %u",
                           count);
    /* FUTEX_TID_MASK; the kernel's pid_max is at most 2^22 */
    if ((lock & 0x3fffffffu) > (1u << 22))
        return SHL_SET_ERR(SHL_ECORRUPT,
                           "structure mutex garbled: owner %u out of range",
                           lock & 0x3fffffffu);
    return 0;
}

int
shl__seg_check_size(struct shl__seg *s)
{
    struct stat st;
    if (!s || s->fd < 0)
        return 0;
    if (fstat(s->fd, &st) != 0)
        return 0; /* cannot tell: the mapping stays as it was */
    if ((uint64_t)st.st_size < (uint64_t)s->size)
        return SHL_SET_ERR(SHL_ECORRUPT,
                           "segment %s was truncated to %lld of %zu bytes: "
                           "the segment is gone (remove it with shmledger "
                           "gc --unlink --force)",
                           s->name, (long long)st.st_size, s->size);
    return 0;
}

bool
shl__lock_has_live_holder(const struct shl__seg *s)
{
    int w = __atomic_load_n(&s->hdr->mutex.__data.__lock, __ATOMIC_ACQUIRE);
    return (w & FUTEX_TID_MASK) != 0;
}
