// Node-API addon over libshmledger (the native half; index.js gives it the
// original's API shape).
//
// Threads: every function here runs on the JavaScript thread. No library
// callback is registered, so no library thread ever enters this code. Abort
// and failure reach JavaScript through each session's event descriptor
// (shl_op_event_fd): a libuv poll handle on the environment's loop watches
// it and the notify function is called with MakeCallback (microtasks drain,
// async hooks see it). The poll handle is referenced while the session is
// open, so an open session keeps the process alive (as the original's
// heartbeat timer did until dispose); leave(), complete() and close() close
// it, after which nothing of this addon keeps the loop alive.
#include <napi.h>
#include <uv.h>

#include <shmledger/shmledger.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace {

// ---------------------------------------------------------------------------
// errors

Napi::Error
MakeError(Napi::Env env, int rc, const char *what)
{
    // shl_errmsg() is per-thread and valid until the next library call on
    // this thread: read it before anything else.
    std::string detail = shl_errmsg();
    std::string msg = what;
    msg += ": ";
    msg += shl_strerror(rc);
    if (!detail.empty() && detail != shl_strerror(rc)) {
        msg += " (";
        msg += detail;
        msg += ")";
    }
    Napi::Error err = Napi::Error::New(env, msg);
    err.Set("code", Napi::Number::New(env, rc));
    err.Set("codeName", Napi::String::New(env, shl_strerror(rc)));
    return err;
}

[[noreturn]] void
Throw(Napi::Env env, int rc, const char *what)
{
    throw MakeError(env, rc, what);
}

[[noreturn]] void
ThrowType(Napi::Env env, const std::string &msg)
{
    Napi::Error err = Napi::TypeError::New(env, msg);
    err.Set("code", Napi::Number::New(env, -EINVAL));
    err.Set("codeName", Napi::String::New(env, shl_strerror(-EINVAL)));
    throw err;
}

[[noreturn]] void
ThrowClosed(Napi::Env env, const char *what)
{
    Napi::Error err = Napi::Error::New(
        env, std::string(what) + ": " + shl_strerror(SHL_ESTATE) +
                 " (the handle is closed)");
    err.Set("code", Napi::Number::New(env, SHL_ESTATE));
    err.Set("codeName", Napi::String::New(env, shl_strerror(SHL_ESTATE)));
    throw err;
}

std::string
StringArg(const Napi::CallbackInfo &info, size_t i, const char *name)
{
    if (info.Length() <= i || !info[i].IsString())
        ThrowType(info.Env(), std::string(name) + " must be a string");
    return info[i].As<Napi::String>().Utf8Value();
}

// An optional string: undefined/null -> has=false.
bool
OptStringArg(const Napi::CallbackInfo &info, size_t i, const char *name,
             std::string *out)
{
    if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull())
        return false;
    if (!info[i].IsString())
        ThrowType(info.Env(), std::string(name) + " must be a string");
    *out = info[i].As<Napi::String>().Utf8Value();
    return true;
}

Napi::Object
FailedInfoToJs(Napi::Env env, const shl_failed_info &fi)
{
    Napi::Object o = Napi::Object::New(env);
    o.Set("operationId", Napi::String::New(env, fi.operation_id));
    o.Set("failedAt",
          Napi::Date::New(env, static_cast<double>(fi.failed_at_us) / 1000.0));
    o.Set("reason", Napi::String::New(env, fi.reason));
    uint32_t n = std::min<uint32_t>(fi.crashed_call_count, SHL_CRASHED_IDS_MAX);
    Napi::Array ids = Napi::Array::New(env, n);
    for (uint32_t i = 0; i < n; i++)
        ids.Set(i, Napi::String::New(env, fi.crashed_call_ids[i]));
    o.Set("crashedCallIds", ids);
    o.Set("crashedCallCount", Napi::Number::New(env, fi.crashed_call_count));
    return o;
}

// ---------------------------------------------------------------------------
// native state shared by the wrappers (they may be collected in any order)

struct CallState {
    shl_call *call = nullptr; // nullptr once the session ended
    std::string id;
};

struct LedgerState;

struct OpState {
    napi_env env = nullptr;
    shl_op *op = nullptr; // nullptr once the session ended
    std::string id;
    std::string participant_id;
    bool initiator = false;
    uint64_t session_id = 0;
    uv_poll_t *poll = nullptr;
    Napi::FunctionReference notify;
    std::unique_ptr<Napi::AsyncContext> async;
    bool abort_delivered = false;
    bool failure_delivered = false;
    std::vector<std::shared_ptr<CallState>> calls;

    // The session is gone (left, completed, or its ledger closed): forget
    // the handles and stop watching. No library call.
    void Detach()
    {
        op = nullptr;
        for (auto &c : calls)
            c->call = nullptr;
        calls.clear();
        StopPoll();
    }

    void StopPoll()
    {
        if (poll) {
            uv_poll_stop(poll);
            delete static_cast<std::weak_ptr<OpState> *>(poll->data);
            poll->data = nullptr;
            uv_close(reinterpret_cast<uv_handle_t *>(poll),
                     [](uv_handle_t *h) { delete reinterpret_cast<uv_poll_t *>(h); });
            poll = nullptr;
        }
    }
};

struct LedgerState {
    napi_env env = nullptr;
    shl_ledger *l = nullptr; // nullptr once closed
    std::string participant_id;
    std::string base_path;
    std::vector<std::shared_ptr<OpState>> ops; // open sessions

    void Close()
    {
        if (!l)
            return;
        for (auto &o : ops)
            o->Detach();
        ops.clear();
        shl_ledger *tmp = l;
        l = nullptr;
        shl_ledger_close(tmp); // leaves every open session (cancel)
    }

    void Forget(OpState *o)
    {
        ops.erase(std::remove_if(ops.begin(), ops.end(),
                                 [o](const std::shared_ptr<OpState> &p) {
                                     return p.get() == o;
                                 }),
                  ops.end());
    }

    ~LedgerState() { Close(); }
};

// Ledgers of one environment, so its teardown (a worker thread ending)
// closes the poll handles. The ledgers themselves are not closed there: a
// process that exits with pending calls has crashed for the others.
struct EnvData {
    std::vector<std::weak_ptr<LedgerState>> ledgers;
    Napi::FunctionReference ledger_ctor, op_ctor, call_ctor;
};

void
EnvCleanup(void *arg)
{
    auto *d = static_cast<EnvData *>(arg);
    for (auto &w : d->ledgers)
        if (auto s = w.lock())
            for (auto &o : s->ops)
                o->StopPoll();
}

// ---------------------------------------------------------------------------
// Call

class Call : public Napi::ObjectWrap<Call> {
  public:
    static Napi::Function Init(Napi::Env env)
    {
        return DefineClass(env, "NativeCall",
                           {
                               InstanceAccessor<&Call::Id>("id"),
                               InstanceAccessor<&Call::IsCompleted>("isCompleted"),
                               InstanceMethod<&Call::End>("end"),
                               InstanceMethod<&Call::Fail>("fail"),
                           });
    }
    Call(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Call>(info) {}

    std::shared_ptr<CallState> st;
    std::shared_ptr<OpState> op; // keeps the session state alive
    std::shared_ptr<LedgerState> ledger;

  private:
    Napi::Value Id(const Napi::CallbackInfo &info)
    {
        return Napi::String::New(info.Env(), st ? st->id : "");
    }
    Napi::Value IsCompleted(const Napi::CallbackInfo &info)
    {
        bool done = !st || !st->call || shl_call_is_completed(st->call);
        return Napi::Boolean::New(info.Env(), done);
    }
    Napi::Value End(const Napi::CallbackInfo &info)
    {
        if (!st || !st->call)
            ThrowClosed(info.Env(), "end");
        int rc = shl_call_end(st->call, nullptr);
        if (rc < 0)
            Throw(info.Env(), rc, "end");
        return info.Env().Undefined();
    }
    Napi::Value Fail(const Napi::CallbackInfo &info)
    {
        if (!st || !st->call)
            ThrowClosed(info.Env(), "fail");
        std::string err = "unknown";
        if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull())
            err = info[0].ToString().Utf8Value();
        int rc = shl_call_fail(st->call, err.c_str());
        if (rc < 0)
            Throw(info.Env(), rc, "fail");
        return info.Env().Undefined();
    }
};

// ---------------------------------------------------------------------------
// Operation (one session)

void OnPoll(uv_poll_t *h, int status, int events);

class Operation : public Napi::ObjectWrap<Operation> {
  public:
    static Napi::Function Init(Napi::Env env)
    {
        return DefineClass(
            env, "NativeOperation",
            {
                InstanceAccessor<&Operation::Id>("id"),
                InstanceAccessor<&Operation::ParticipantId>("participantId"),
                InstanceAccessor<&Operation::IsInitiator>("isInitiator"),
                InstanceAccessor<&Operation::SessionId>("sessionId"),
                InstanceAccessor<&Operation::IsOpen>("isOpen"),
                InstanceAccessor<&Operation::IsAborted>("isAborted"),
                InstanceAccessor<&Operation::PendingCallCount>("pendingCallCount"),
                InstanceMethod<&Operation::StartCall>("startCall"),
                InstanceMethod<&Operation::Log>("log"),
                InstanceMethod<&Operation::SetAbortFlag>("setAbortFlag"),
                InstanceMethod<&Operation::CheckAbort>("checkAbort"),
                InstanceMethod<&Operation::TriggerAbort>("triggerAbort"),
                InstanceMethod<&Operation::State>("getOperationState"),
                InstanceMethod<&Operation::FailureInfo>("failureInfo"),
                InstanceMethod<&Operation::RegisterTemp>("registerTempResource"),
                InstanceMethod<&Operation::UnregisterTemp>("unregisterTempResource"),
                InstanceMethod<&Operation::Leave>("leave"),
                InstanceMethod<&Operation::Complete>("complete"),
                InstanceMethod<&Operation::Ref>("ref"),
                InstanceMethod<&Operation::Unref>("unref"),
            });
    }
    Operation(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Operation>(info) {}

    std::shared_ptr<OpState> st;
    std::shared_ptr<LedgerState> ledger;

  private:
    shl_op *Op(Napi::Env env, const char *what)
    {
        if (!st || !st->op)
            ThrowClosed(env, what);
        return st->op;
    }
    Napi::Value Id(const Napi::CallbackInfo &info)
    {
        return Napi::String::New(info.Env(), st->id);
    }
    Napi::Value ParticipantId(const Napi::CallbackInfo &info)
    {
        return Napi::String::New(info.Env(), st->participant_id);
    }
    Napi::Value IsInitiator(const Napi::CallbackInfo &info)
    {
        return Napi::Boolean::New(info.Env(), st->initiator);
    }
    Napi::Value SessionId(const Napi::CallbackInfo &info)
    {
        return Napi::Number::New(info.Env(), static_cast<double>(st->session_id));
    }
    Napi::Value IsOpen(const Napi::CallbackInfo &info)
    {
        return Napi::Boolean::New(info.Env(), st && st->op);
    }
    Napi::Value IsAborted(const Napi::CallbackInfo &info)
    {
        return Napi::Boolean::New(info.Env(), st->op && shl_op_is_aborted(st->op));
    }
    Napi::Value PendingCallCount(const Napi::CallbackInfo &info)
    {
        return Napi::Number::New(
            info.Env(), st->op ? static_cast<double>(shl_op_pending_call_count(st->op)) : 0);
    }

    // startCall(description|undefined, failOnCrash)
    Napi::Value StartCall(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_op *op = Op(env, "startCall");
        std::string desc;
        bool has_desc = OptStringArg(info, 0, "description", &desc);
        shl_call_opts o;
        shl_call_opts_init(&o);
        o.description = has_desc ? desc.c_str() : nullptr;
        if (info.Length() > 1 && !info[1].IsUndefined())
            o.fail_on_crash = info[1].ToBoolean().Value();
        shl_call *c = nullptr;
        int rc = shl_call_start(op, &o, &c);
        if (rc < 0)
            Throw(env, rc, "startCall");
        auto cs = std::make_shared<CallState>();
        cs->call = c;
        cs->id = shl_call_id(c);
        // Finished calls of the session are released here: keep only the
        // pending ones in the list (their handles are freed by the library
        // when the session ends).
        auto &calls = st->calls;
        calls.erase(std::remove_if(calls.begin(), calls.end(),
                                   [](const std::shared_ptr<CallState> &x) {
                                       if (x->call && shl_call_is_completed(x->call)) {
                                           shl_call_release(x->call);
                                           x->call = nullptr;
                                           return true;
                                       }
                                       return !x->call;
                                   }),
                    calls.end());
        calls.push_back(cs);
        auto *d = env.GetInstanceData<EnvData>();
        Napi::Object obj = d->call_ctor.New({});
        Call *w = Call::Unwrap(obj);
        w->st = cs;
        w->op = st;
        w->ledger = ledger;
        return obj;
    }

    // log(message, level 0..3)
    Napi::Value Log(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_op *op = Op(env, "log");
        std::string msg = StringArg(info, 0, "message");
        int level = SHL_LOG_INFO;
        if (info.Length() > 1 && !info[1].IsUndefined())
            level = info[1].ToNumber().Int32Value();
        int rc = shl_op_log(op, static_cast<shl_log_level>(level), msg.c_str());
        if (rc < 0)
            Throw(env, rc, "log");
        return env.Undefined();
    }
    Napi::Value SetAbortFlag(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_op *op = Op(env, "setAbortFlag");
        bool v = info.Length() > 0 ? info[0].ToBoolean().Value() : true;
        int rc = shl_op_set_abort_flag(op, v);
        if (rc < 0)
            Throw(env, rc, "setAbortFlag");
        return env.Undefined();
    }
    Napi::Value CheckAbort(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        int rc = shl_op_check_abort(Op(env, "checkAbort"));
        if (rc == SHL_ESTALE) // the record is gone: the original said true
            return Napi::Boolean::New(env, true);
        if (rc < 0)
            Throw(env, rc, "checkAbort");
        return Napi::Boolean::New(env, rc == 1);
    }
    Napi::Value TriggerAbort(const Napi::CallbackInfo &info)
    {
        shl_op_trigger_abort(Op(info.Env(), "triggerAbort"));
        return info.Env().Undefined();
    }
    Napi::Value State(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        int rc = shl_op_get_state(Op(env, "getOperationState"));
        if (rc < 0)
            Throw(env, rc, "getOperationState");
        return Napi::String::New(env, shl_op_state_name(static_cast<shl_op_state>(rc)));
    }
    Napi::Value FailureInfo(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_failed_info fi;
        int rc = shl_op_wait_failure(Op(env, "failureInfo"), 0, &fi);
        if (rc == -ETIMEDOUT)
            return env.Null();
        if (rc < 0)
            Throw(env, rc, "failureInfo");
        return FailedInfoToJs(env, fi);
    }
    Napi::Value RegisterTemp(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_op *op = Op(env, "registerTempResource");
        std::string p = StringArg(info, 0, "path");
        int rc = shl_op_register_temp_resource_n(op, p.data(), p.size());
        if (rc < 0)
            Throw(env, rc, "registerTempResource");
        return env.Undefined();
    }
    Napi::Value UnregisterTemp(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_op *op = Op(env, "unregisterTempResource");
        std::string p = StringArg(info, 0, "path");
        int rc = shl_op_unregister_temp_resource(op, p.c_str());
        if (rc < 0)
            Throw(env, rc, "unregisterTempResource");
        return Napi::Number::New(env, rc);
    }
    void Ended()
    {
        st->Detach();
        if (ledger)
            ledger->Forget(st.get());
    }
    Napi::Value Leave(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_op *op = Op(env, "leave");
        bool cancel = info.Length() > 0 && info[0].ToBoolean().Value();
        int rc = shl_op_leave(op, cancel);
        if (rc < 0)
            Throw(env, rc, "leave");
        Ended();
        return env.Undefined();
    }
    Napi::Value Complete(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_op *op = Op(env, "complete");
        int rc = shl_op_complete(op);
        if (rc < 0)
            Throw(env, rc, "complete");
        Ended();
        return env.Undefined();
    }
    Napi::Value Ref(const Napi::CallbackInfo &info)
    {
        if (st->poll)
            uv_ref(reinterpret_cast<uv_handle_t *>(st->poll));
        return info.This();
    }
    Napi::Value Unref(const Napi::CallbackInfo &info)
    {
        if (st->poll)
            uv_unref(reinterpret_cast<uv_handle_t *>(st->poll));
        return info.This();
    }
};

// The session's event descriptor became readable: deliver what is new.
void
OnPoll(uv_poll_t *h, int status, int events)
{
    (void)events;
    // Keep the state alive across the JavaScript calls below (they may
    // leave the session or close the ledger).
    if (!h->data)
        return;
    std::shared_ptr<OpState> st =
        static_cast<std::weak_ptr<OpState> *>(h->data)->lock();
    if (!st || !st->op)
        return;
    uint64_t v;
    while (read(shl_op_event_fd(st->op), &v, sizeof v) > 0) {
    }
    (void)status;
    Napi::Env env(st->env);
    Napi::HandleScope scope(env);
    if (!st->abort_delivered && st->op && shl_op_wait_abort(st->op, 0) == 0) {
        st->abort_delivered = true;
        st->notify.MakeCallback(env.Global(), {Napi::String::New(env, "abort")},
                                *st->async);
    }
    shl_failed_info fi;
    if (!st->failure_delivered && st->op && shl_op_wait_failure(st->op, 0, &fi) == 0) {
        st->failure_delivered = true;
        st->notify.MakeCallback(env.Global(),
                                {Napi::String::New(env, "failure"), FailedInfoToJs(env, fi)},
                                *st->async);
    }
    if (st->abort_delivered && st->failure_delivered && st->poll)
        uv_poll_stop(st->poll); // nothing more to say; closed with the session
}

// ---------------------------------------------------------------------------
// Ledger

class Ledger : public Napi::ObjectWrap<Ledger> {
  public:
    static Napi::Function Init(Napi::Env env)
    {
        return DefineClass(env, "NativeLedger",
                           {
                               InstanceAccessor<&Ledger::ParticipantId>("participantId"),
                               InstanceAccessor<&Ledger::BasePath>("basePath"),
                               InstanceAccessor<&Ledger::IsOpen>("isOpen"),
                               InstanceMethod<&Ledger::Create>("createOperation"),
                               InstanceMethod<&Ledger::Join>("joinOperation"),
                               InstanceMethod<&Ledger::Heartbeat>("heartbeat"),
                               InstanceMethod<&Ledger::Close>("close"),
                           });
    }

    // new NativeLedger(basePath, participantId, {heartbeatIntervalMs, ...})
    Ledger(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Ledger>(info)
    {
        Napi::Env env = info.Env();
        std::string base = StringArg(info, 0, "basePath");
        std::string pid = StringArg(info, 1, "participantId");
        shl_ledger_opts o;
        shl_ledger_opts_init(&o);
        if (info.Length() > 2 && info[2].IsObject()) {
            Napi::Object opts = info[2].As<Napi::Object>();
            auto num = [&](const char *k, auto *dst) {
                Napi::Value v = opts.Get(k);
                if (v.IsUndefined() || v.IsNull())
                    return;
                if (!v.IsNumber())
                    ThrowType(env, std::string(k) + " must be a number");
                using T = std::remove_pointer_t<decltype(dst)>;
                double d = v.As<Napi::Number>().DoubleValue();
                if (!(d >= 0) || d > static_cast<double>(std::numeric_limits<T>::max()) ||
                    d != static_cast<double>(static_cast<T>(d)))
                    ThrowType(env, std::string(k) + " must be a non-negative integer in range");
                *dst = static_cast<T>(d);
            };
            num("heartbeatIntervalMs", &o.heartbeat_interval_ms);
            num("staleThresholdMs", &o.stale_threshold_ms);
            num("maxBackups", &o.max_backups);
            num("timeoutMs", &o.timeout_ms);
            num("snapshotPeriodMs", &o.snapshot_period_ms);
            Napi::Value snap = opts.Get("snapshotter");
            if (!snap.IsUndefined())
                o.snapshotter = snap.ToBoolean().Value();
            Napi::Value syncf = opts.Get("syncFiles");
            if (!syncf.IsUndefined())
                o.sync_files = syncf.ToBoolean().Value();
        }
        shl_ledger *l = nullptr;
        int rc = shl_ledger_open(&l, base.c_str(), pid.c_str(), &o);
        if (rc < 0)
            Throw(env, rc, "open ledger");
        st = std::make_shared<LedgerState>();
        st->env = env;
        st->l = l;
        st->participant_id = pid;
        st->base_path = base;
        env.GetInstanceData<EnvData>()->ledgers.push_back(st);
    }

    std::shared_ptr<LedgerState> st;

  private:
    shl_ledger *L(Napi::Env env, const char *what)
    {
        if (!st || !st->l)
            ThrowClosed(env, what);
        return st->l;
    }
    Napi::Value ParticipantId(const Napi::CallbackInfo &info)
    {
        return Napi::String::New(info.Env(), st ? st->participant_id : "");
    }
    Napi::Value BasePath(const Napi::CallbackInfo &info)
    {
        return Napi::String::New(info.Env(), st ? st->base_path : "");
    }
    Napi::Value IsOpen(const Napi::CallbackInfo &info)
    {
        return Napi::Boolean::New(info.Env(), st && st->l);
    }

    // Wrap a new session; notify(kind, info) is called on the loop.
    Napi::Value Wrap(Napi::Env env, shl_op *op, Napi::Value notify)
    {
        auto os = std::make_shared<OpState>();
        os->env = env;
        os->op = op;
        os->id = shl_op_id(op);
        os->participant_id = shl_op_participant_id(op);
        os->initiator = shl_op_is_initiator(op);
        os->session_id = shl_op_session_id(op);
        st->ops.push_back(os);
        if (notify.IsFunction()) {
            os->notify = Napi::Persistent(notify.As<Napi::Function>());
            os->async = std::make_unique<Napi::AsyncContext>(env, "shmledger.Operation");
            int fd = shl_op_event_fd(op);
            uv_loop_t *loop = nullptr;
            if (fd >= 0 && napi_get_uv_event_loop(env, &loop) == napi_ok) {
                auto *p = new uv_poll_t;
                if (uv_poll_init(loop, p, fd) == 0) {
                    // data: a weak reference, freed with the handle
                    p->data = new std::weak_ptr<OpState>(os);
                    os->poll = p;
                    uv_poll_start(p, UV_READABLE, OnPoll);
                } else {
                    delete p;
                }
            }
        }
        Napi::Object obj = env.GetInstanceData<EnvData>()->op_ctor.New({});
        Operation *w = Operation::Unwrap(obj);
        w->st = os;
        w->ledger = st;
        return obj;
    }

    // createOperation(description|undefined, notify)
    Napi::Value Create(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_ledger *l = L(env, "createOperation");
        std::string desc;
        bool has = OptStringArg(info, 0, "description", &desc);
        shl_op *op = nullptr;
        int rc = shl_op_create(l, has ? desc.c_str() : nullptr, nullptr, &op);
        if (rc < 0)
            Throw(env, rc, "createOperation");
        return Wrap(env, op, info.Length() > 1 ? info[1] : env.Undefined());
    }
    // joinOperation(id, notify)
    Napi::Value Join(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        shl_ledger *l = L(env, "joinOperation");
        std::string id = StringArg(info, 0, "operationId");
        shl_op *op = nullptr;
        int rc = shl_op_join(l, id.c_str(), nullptr, &op);
        if (rc < 0)
            Throw(env, rc, "joinOperation");
        return Wrap(env, op, info.Length() > 1 ? info[1] : env.Undefined());
    }
    Napi::Value Heartbeat(const Napi::CallbackInfo &info)
    {
        Napi::Env env = info.Env();
        int rc = shl_ledger_heartbeat(L(env, "heartbeat"));
        if (rc < 0)
            Throw(env, rc, "heartbeat");
        return env.Undefined();
    }
    Napi::Value Close(const Napi::CallbackInfo &info)
    {
        if (st)
            st->Close(); // idempotent
        return info.Env().Undefined();
    }
};

void
EnvDataFinalize(Napi::Env env, EnvData *d)
{
    napi_remove_env_cleanup_hook(env, EnvCleanup, d);
    delete d;
}

Napi::Object
InitAll(Napi::Env env, Napi::Object exports)
{
    auto *d = new EnvData();
    env.SetInstanceData<EnvData, EnvDataFinalize>(d); // deleted at teardown
    napi_add_env_cleanup_hook(env, EnvCleanup, d);
    Napi::Function lc = Ledger::Init(env);
    Napi::Function oc = Operation::Init(env);
    Napi::Function cc = Call::Init(env);
    d->ledger_ctor = Napi::Persistent(lc);
    d->op_ctor = Napi::Persistent(oc);
    d->call_ctor = Napi::Persistent(cc);
    exports.Set("NativeLedger", lc);
    exports.Set("NativeOperation", oc);
    exports.Set("NativeCall", cc);
    exports.Set("version", Napi::String::New(env, shl_version_string()));
    Napi::Object codes = Napi::Object::New(env);
#define C(n) codes.Set(#n, Napi::Number::New(env, SHL_##n))
    C(EVERSION); C(EFORMAT); C(EOWNER); C(ECORRUPT); C(ENOTREADY); C(EFULL);
    C(ESTALE); C(EPANIC); C(ESTATE); C(ENOTFOUND); C(EBADID); C(EFAILED);
    C(EABORTED); C(EFENCED);
#undef C
    exports.Set("codes", codes);
    Napi::Function strerror = Napi::Function::New(env, [](const Napi::CallbackInfo &info) {
        return Napi::String::New(info.Env(), shl_strerror(info[0].ToNumber().Int32Value()));
    });
    exports.Set("strerror", strerror);
    // unlinkSegment(basePath[, force]) -> true, false when there was none;
    // throws EBUSY while participants are alive unless force is true
    exports.Set("unlinkSegment", Napi::Function::New(env, [](const Napi::CallbackInfo &info) {
        std::string base = StringArg(info, 0, "basePath");
        bool force = info.Length() > 1 && info[1].ToBoolean().Value();
        int rc = force ? shl_segment_unlink_force(base.c_str())
                       : shl_segment_unlink(base.c_str());
        if (rc == -ENOENT)
            return Napi::Boolean::New(info.Env(), false);
        if (rc < 0)
            Throw(info.Env(), rc, "unlinkSegment");
        return Napi::Boolean::New(info.Env(), true);
    }));
    exports.Set("segmentName", Napi::Function::New(env, [](const Napi::CallbackInfo &info) {
        std::string base = StringArg(info, 0, "basePath");
        char buf[256];
        int rc = shl_segment_name(base.c_str(), buf, sizeof buf);
        if (rc < 0)
            Throw(info.Env(), rc, "segmentName");
        return Napi::String::New(info.Env(), buf);
    }));
    return exports;
}

} // namespace

NODE_API_MODULE(shmledger, InitAll)
