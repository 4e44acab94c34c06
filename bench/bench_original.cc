// bench_original: the per-change cost of the file-based original (the Dart
// library), modelled in C so the comparison is with its design, not with
// Dart. One "change" is what LocalLedger._modifyOperation does:
//
//   1. open("{opId}.operation.json.lock", O_CREAT|O_EXCL), write the lock
//      JSON {"participantId", "pid", "timestamp"}, close
//   2. check that the operation file exists (access)
//   3. read the whole operation file (~2 KB, pretty-printed JSON)
//   4. parse it (jansson), apply the change, serialise it with two-space
//      indentation (as JsonEncoder.withIndent('  '))
//   5. rewrite the file in place (open O_WRONLY|O_TRUNC, write, close)
//   6. unlink the lock file
//
// It leaves out the original's trail snapshot (a copy of the file before
// every change into {opId}_trail/), its Dart runtime, and every retry or
// stale-lock check: it is a lower bound on the original's cost.
//
//   Original/CallPair/fs:F    startCall (append a frame) + end (remove the
//                             last frame with that callId): 2 changes
//   Original/Heartbeat/fs:F   one heartbeat: lastHeartbeat = now on the
//                             operation and on every own frame: 1 change
// fs:0 = a directory under /tmp (ext4 on a virtio disk on the benchmark
// machine), fs:1 = under /dev/shm (tmpfs); bench.sh records which is which.
#include "common.h"

#include <jansson.h>
#include <sys/stat.h>

namespace {

std::string
iso_now()
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char buf[96];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ld",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
    return buf;
}

json_t *
frame_json(const char *participant, const std::string &call_id, int pid,
           const char *description)
{
    std::string now = iso_now();
    json_t *f = json_object();
    json_object_set_new(f, "participantId", json_string(participant));
    json_object_set_new(f, "callId", json_string(call_id.c_str()));
    json_object_set_new(f, "pid", json_integer(pid));
    json_object_set_new(f, "startTime", json_string(now.c_str()));
    json_object_set_new(f, "lastHeartbeat", json_string(now.c_str()));
    json_object_set_new(f, "state", json_string("active"));
    json_object_set_new(f, "description",
                        description ? json_string(description) : json_null());
    json_object_set_new(f, "resources", json_array());
    json_object_set_new(f, "failOnCrash", json_true());
    return f;
}

const size_t kDumpFlags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;

// One operation file of the original, its lock, and the change protocol.
class OriginalLedger
{
  public:
    OriginalLedger(const std::string &dir, const char *participant)
        : participant_(participant), pid_((int)getpid())
    {
        const std::string op_id =
            "20260122T12:00:00.000-" + participant_ + "-a1b2c3d4";
        file_ = dir + "/" + op_id + ".operation.json";
        lock_ = file_ + ".lock";
        // The file as a running operation with four calls of three
        // participants and two temp resources: about 2 KB.
        json_t *d = json_object();
        std::string now = iso_now();
        json_object_set_new(d, "operationId", json_string(op_id.c_str()));
        json_object_set_new(d, "initiatorId", json_string("orchestrator"));
        json_object_set_new(d, "startTime", json_string(now.c_str()));
        json_object_set_new(d, "operationState", json_string("running"));
        json_object_set_new(d, "aborted", json_false());
        json_object_set_new(d, "lastHeartbeat", json_string(now.c_str()));
        json_t *frames = json_array();
        json_array_append_new(frames,
                              frame_json("orchestrator",
                                         "call_orchestrator_1_3f2a", 4242,
                                         "run the build pipeline"));
        json_array_append_new(frames,
                              frame_json("worker-a", "call_worker-a_1_07c1",
                                         4243, "compile module a"));
        json_array_append_new(frames,
                              frame_json("worker-b", "call_worker-b_1_b9e0",
                                         4244, "compile module b"));
        json_array_append_new(frames,
                              frame_json("worker-b", "call_worker-b_2_51d7",
                                         4244, "link module b"));
        json_object_set_new(d, "callFrames", frames);
        json_t *res = json_array();
        json_t *r = json_object();
        json_object_set_new(r, "path",
                            json_string("/tmp/build-20260122/artifacts"));
        json_object_set_new(r, "owner", json_integer(4242));
        json_object_set_new(r, "registeredAt", json_string(now.c_str()));
        json_array_append_new(res, r);
        r = json_object();
        json_object_set_new(r, "path",
                            json_string("/tmp/build-20260122/objects.cache"));
        json_object_set_new(r, "owner", json_integer(4243));
        json_object_set_new(r, "registeredAt", json_string(now.c_str()));
        json_array_append_new(res, r);
        json_object_set_new(d, "tempResources", res);
        json_object_set_new(d, "detectionTimestamp", json_null());
        json_object_set_new(d, "removalTimestamp", json_null());
        char *text = json_dumps(d, kDumpFlags);
        bytes_ = strlen(text);
        write_file(text, bytes_);
        free(text);
        json_decref(d);
    }

    size_t bytes() const { return bytes_; }

    // One locked read-modify-write (LocalLedger._modifyOperation).
    template <class F> void change(F &&modify)
    {
        lock();
        if (access(file_.c_str(), F_OK) != 0)
            die("operation file missing");
        std::string text = read_file();
        json_error_t err;
        json_t *d = json_loadb(text.data(), text.size(), 0, &err);
        if (!d)
            die(err.text);
        modify(d);
        char *out = json_dumps(d, kDumpFlags);
        json_decref(d);
        write_file(out, strlen(out));
        free(out);
        unlock();
    }

    // startCall: append a frame.
    std::string start_call()
    {
        std::string id = "call_" + participant_ + "_" +
                         std::to_string(++calls_) + "_1a2b";
        change([&](json_t *d) {
            json_array_append_new(json_object_get(d, "callFrames"),
                                  frame_json(participant_.c_str(), id, pid_,
                                             nullptr));
        });
        return id;
    }

    // Call.end: remove the last frame with that callId.
    void end_call(const std::string &id)
    {
        change([&](json_t *d) {
            json_t *frames = json_object_get(d, "callFrames");
            for (size_t i = json_array_size(frames); i-- > 0;) {
                json_t *cid =
                    json_object_get(json_array_get(frames, i), "callId");
                if (cid && id == json_string_value(cid)) {
                    json_array_remove(frames, i);
                    break;
                }
            }
        });
    }

    // heartbeat: lastHeartbeat = now on the operation and own frames.
    void heartbeat()
    {
        change([&](json_t *d) {
            std::string now = iso_now();
            json_object_set_new(d, "lastHeartbeat", json_string(now.c_str()));
            json_t *frames = json_object_get(d, "callFrames");
            for (size_t i = 0; i < json_array_size(frames); i++) {
                json_t *f = json_array_get(frames, i);
                const char *p =
                    json_string_value(json_object_get(f, "participantId"));
                if (p && participant_ == p)
                    json_object_set_new(f, "lastHeartbeat",
                                        json_string(now.c_str()));
            }
        });
    }

  private:
    [[noreturn]] static void die(const char *what)
    {
        std::fprintf(stderr, "original model: %s (%s)\n", what,
                     std::strerror(errno));
        std::abort();
    }

    void lock()
    {
        int fd = open(lock_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
                      0644);
        if (fd < 0)
            die("lock file exists"); // single writer here: never
        std::string j = "{\"participantId\": \"" + participant_ +
                        "\", \"pid\": " + std::to_string(pid_) +
                        ", \"timestamp\": \"" + iso_now() + "\"}";
        if (write(fd, j.data(), j.size()) != (ssize_t)j.size())
            die("write lock");
        close(fd);
    }

    void unlock()
    {
        if (unlink(lock_.c_str()) != 0)
            die("unlink lock");
    }

    std::string read_file()
    {
        int fd = open(file_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die("open for read");
        struct stat st;
        if (fstat(fd, &st) != 0)
            die("fstat");
        std::string text((size_t)st.st_size, '\0');
        size_t got = 0;
        while (got < text.size()) {
            ssize_t n = read(fd, &text[got], text.size() - got);
            if (n <= 0)
                die("read");
            got += (size_t)n;
        }
        close(fd);
        return text;
    }

    void write_file(const char *text, size_t len)
    {
        int fd = open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
        if (fd < 0)
            die("open for write");
        if (write(fd, text, len) != (ssize_t)len)
            die("write");
        close(fd);
    }

    std::string participant_;
    int pid_;
    std::string file_, lock_;
    size_t bytes_ = 0;
    uint64_t calls_ = 0;
};

// A directory for the original's files: /tmp (disk) or /dev/shm (tmpfs).
class OrigDir
{
  public:
    explicit OrigDir(int fs)
    {
        std::string t = fs ? "/dev/shm/shlbench-orig-XXXXXX"
                           : "/tmp/shlbench-orig-XXXXXX";
        std::vector<char> buf(t.begin(), t.end());
        buf.push_back(0);
        if (!mkdtemp(buf.data()))
            std::abort();
        path_ = buf.data();
    }
    ~OrigDir()
    {
        std::string cmd = "rm -rf -- '" + path_ + "'";
        if (std::system(cmd.c_str()) != 0)
            std::fprintf(stderr, "warning: could not remove %s\n",
                         path_.c_str());
    }
    const std::string &str() const { return path_; }

  private:
    std::string path_;
};

void
OrigCallPair(benchmark::State &state)
{
    OrigDir dir((int)state.range(0));
    OriginalLedger o(dir.str(), "worker-c");
    for (auto _ : state) {
        std::string id = o.start_call();
        o.end_call(id);
    }
    state.counters["file_bytes"] = (double)o.bytes();
}
BENCHMARK(OrigCallPair)
    ->Name("Original/CallPair")
    ->ArgName("fs")
    ->Arg(0)
    ->Arg(1);

void
OrigHeartbeat(benchmark::State &state)
{
    OrigDir dir((int)state.range(0));
    OriginalLedger o(dir.str(), "worker-a");
    for (auto _ : state)
        o.heartbeat();
    state.counters["file_bytes"] = (double)o.bytes();
}
BENCHMARK(OrigHeartbeat)
    ->Name("Original/Heartbeat")
    ->ArgName("fs")
    ->Arg(0)
    ->Arg(1);

} // namespace

BENCHMARK_MAIN();
