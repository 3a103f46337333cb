#include "rpc_server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rpc_server_int.h"
#include "rpc_stream.h"
#include "thread_name.h"
#include "tls_creds.h"

int rpc_status_for_code(int code)
{
    switch (code) {
    case OKV_OK: return GRPC_STATUS_OK;
    case OKV_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
    case OKV_EINVAL: return GRPC_STATUS_INVALID_ARGUMENT;
    case OKV_EPROTO: return GRPC_STATUS_INVALID_ARGUMENT;
    case OKV_ENOTLEADER: return GRPC_STATUS_UNAVAILABLE;
    case OKV_EUNAVAILABLE: return GRPC_STATUS_UNAVAILABLE;
    case OKV_ECONFLICT: return GRPC_STATUS_FAILED_PRECONDITION;
    case OKV_ECONDITION: return GRPC_STATUS_FAILED_PRECONDITION;
    case OKV_EILLEGAL: return GRPC_STATUS_FAILED_PRECONDITION;
    case OKV_EFUNDS: return GRPC_STATUS_FAILED_PRECONDITION;
    case OKV_ESOLDOUT: return GRPC_STATUS_FAILED_PRECONDITION;
    case OKV_EIDEMPOTENCY: return GRPC_STATUS_FAILED_PRECONDITION;
    case OKV_EINPROGRESS: return GRPC_STATUS_ABORTED;
    case OKV_EPERMISSION: return GRPC_STATUS_PERMISSION_DENIED;
    case OKV_EAUTH: return GRPC_STATUS_UNAUTHENTICATED;
    case OKV_ETIMEDOUT: return GRPC_STATUS_DEADLINE_EXCEEDED;
    case OKV_ECORRUPT: return GRPC_STATUS_DATA_LOSS;
    case OKV_EUNIMPLEMENTED: return GRPC_STATUS_UNIMPLEMENTED;
    case OKV_EUNKNOWN: return GRPC_STATUS_INTERNAL;
    default: return GRPC_STATUS_INTERNAL;
    }
}

static void on_call_event(rpc_tag *tag, int ok);

rpc_call *rpc_call_new(rpc_server *s, rpc_method *m)
{
    rpc_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->tag.fn = on_call_event;
    c->srv = s;
    c->method = m;
    c->state = CALL_REQUESTED;
    grpc_metadata_array_init(&c->request_md);
    if (!m)
        grpc_call_details_init(&c->details);
    atomic_fetch_add(&s->live_calls, 1);
    return c;
}

void rpc_call_free(rpc_call *c)
{
    rpc_server *s = c->srv;
    if (c->active && atomic_fetch_sub(&s->active_calls, 1) == 1) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    grpc_metadata_array_destroy(&c->request_md);
    if (!c->method)
        grpc_call_details_destroy(&c->details);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->response)
        grpc_byte_buffer_destroy(c->response);
    grpc_slice_unref(c->status_details);
    if (c->call)
        grpc_call_unref(c->call);
    gpr_free(c->peer);
    free(c);
    if (atomic_fetch_sub(&s->live_calls, 1) == 1) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

const char *rpc_call_peer(rpc_call *c)
{
    if (c->batch)
        return rpc_batch_peer(c->batch);
    if (!c->peer && c->call)
        c->peer = grpc_call_get_peer(c->call);
    return c->peer ? c->peer : "";
}

/* Posts one slot that receives the next call of method m (NULL: any
 * unregistered method). */
static void request_slot(rpc_server *s, rpc_method *m)
{
    if (atomic_load(&s->shutting_down))
        return;
    rpc_call *c = rpc_call_new(s, m);
    if (!c) {
        OKV_ERROR("out of memory requesting a call slot");
        return;
    }
    grpc_call_error e;
    if (m)
        e = grpc_server_request_registered_call(s->server, m->handle, &c->call, &c->deadline,
                                                &c->request_md, m->fn ? &c->payload : NULL,
                                                s->cq, s->cq, &c->tag);
    else
        e = grpc_server_request_call(s->server, &c->call, &c->details, &c->request_md, s->cq,
                                     s->cq, &c->tag);
    if (e != GRPC_CALL_OK) {
        OKV_WARN("request call slot failed: %d", (int)e);
        rpc_call_free(c);
    }
}

/* ---- metrics ------------------------------------------------------------- */

static const char *const code_names[RPC_METRIC_CODES] = {
    "OK", "NOT_FOUND", "INVALID_ARGUMENT", "UNAVAILABLE", "TIMEOUT", "NOT_LEADER",
    "CONFLICT", "UNKNOWN", "INTERNAL", "NO_MEMORY", "CORRUPT", "IO", "UNIMPLEMENTED",
    "FORMAT", "PROTOCOL", "CONDITION_FAILED", "ILLEGAL", "INSUFFICIENT_FUNDS", "SOLD_OUT",
    "IDEMPOTENCY", "IN_PROGRESS", "PERMISSION_DENIED", "UNAUTHENTICATED", "OTHER",
};

/* Latency buckets in seconds: 100 us to 10 s (a put waits for a
 * replicated sync, a transaction for two rounds). */
static const double latency_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                         1,      2.5,     5,      10 };

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "/orderkv.v1.KV/Get" -> "KV/Get". */
static void method_metrics_init(rpc_method *m, const char *path)
{
    const char *p = path[0] == '/' ? path + 1 : path;
    if (strncmp(p, "orderkv.v1.", 11) == 0)
        p += 11;
    snprintf(m->label, sizeof m->label, "%s", p);
    for (size_t i = 0; i < RPC_METRIC_CODES; i++)
        atomic_init(&m->by_code[i], NULL);
    atomic_init(&m->latency, NULL);
}

void rpc_server_set_metrics(rpc_server *s, struct metrics_registry *reg)
{
    s->metrics = reg;
    method_metrics_init(&s->unknown, "unknown");
}

/* Counts an answer: once per call, on whichever thread answers. */
static void record_reply(rpc_call *c, int code)
{
    rpc_server *s = c->srv;
    if (!s->metrics || !c->start_ns)
        return;
    rpc_method *m = c->method ? c->method : &s->unknown;
    size_t i = code <= 0 && -code < RPC_METRIC_CODES - 1 ? (size_t)-code : RPC_METRIC_CODES - 1;
    metrics_counter *ctr = atomic_load_explicit(&m->by_code[i], memory_order_acquire);
    if (!ctr) {
        metrics_label l[2] = { { "method", m->label }, { "code", code_names[i] } };
        ctr = metrics_counter_get(s->metrics, "orderkv_rpc_requests_total",
                                  "Calls answered, by method and result code.", l, 2);
        atomic_store_explicit(&m->by_code[i], ctr, memory_order_release);
    }
    metrics_counter_inc(ctr);
    metrics_histogram *h = atomic_load_explicit(&m->latency, memory_order_acquire);
    if (!h) {
        metrics_label l = { "method", m->label };
        h = metrics_histogram_get(s->metrics, "orderkv_rpc_duration_seconds",
                                  "Time from a call's arrival to its answer, by method.",
                                  latency_bounds, sizeof latency_bounds / sizeof latency_bounds[0],
                                  &l, 1);
        atomic_store_explicit(&m->latency, h, memory_order_release);
    }
    metrics_histogram_observe(h, (double)(mono_ns() - c->start_ns) / 1e9);
}

void rpc_call_reply(rpc_call *c, int code, const char *msg, const uint8_t *resp, size_t resp_len)
{
    record_reply(c, code);
    if (c->batch) {
        rpc_batch_reply(c, code, msg, resp, resp_len);
        return;
    }
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (resp) {
        grpc_slice sl = grpc_slice_from_copied_buffer((const char *)resp, resp_len);
        c->response = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->response;
    }
    c->status_details = grpc_slice_from_copied_string(code == OKV_OK || !msg ? "" : msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)rpc_status_for_code(code);
    ops[n++].data.send_status_from_server.status_details = &c->status_details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    c->state = CALL_REPLYING;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->tag, NULL);
    if (e != GRPC_CALL_OK) {
        /* Not expected with well-formed ops; free now since no event will come. */
        OKV_ERROR("start reply batch failed: %d", (int)e);
        rpc_call_free(c);
    }
}

/* The authenticator's verdict on a unary call's request (the tables it
 * names); a call without a message is left to the checks below. */
static int authorize_payload(rpc_server *s, rpc_call *c, char *msg, size_t cap)
{
    if (!c->payload)
        return OKV_OK;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, c->payload)) {
        snprintf(msg, cap, "request message could not be decompressed");
        return OKV_EPROTO;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    int rc = s->auth->authorize(s->auth_arg, &c->id, c->method->path, GRPC_SLICE_START_PTR(all),
                                GRPC_SLICE_LENGTH(all), msg, cap);
    grpc_slice_unref(all);
    return rc;
}

void rpc_server_set_auth(rpc_server *s, const rpc_auth_ops *ops, void *arg)
{
    s->auth = ops;
    s->auth_arg = arg;
}

const rpc_identity *rpc_call_identity(const rpc_call *c) { return &c->id; }

int rpc_server_auth_on(const rpc_server *s) { return s->auth != NULL; }

const char *rpc_server_method_path(const rpc_server *s, size_t i)
{
    return i < s->nmethods ? s->methods[i].path : NULL;
}

int rpc_server_authorize(rpc_server *s, const rpc_identity *id, const char *path,
                         const uint8_t *req, size_t len, char *msg, size_t cap)
{
    if (!s->auth)
        return OKV_OK;
    return s->auth->authorize(s->auth_arg, id, path, req ? req : (const uint8_t *)"", len, msg,
                              cap);
}

/* A call arrived on one of our slots. */
static void on_arrival(rpc_server *s, rpc_call *c)
{
    request_slot(s, c->method);   /* keep the pool full */
    if (c->method && s->auth) {
        char msg[512];
        s->auth->identify(s->auth_arg, c->call, &c->request_md, &c->id);
        int rc = s->auth->authorize(s->auth_arg, &c->id, c->method->path, NULL, 0, msg,
                                    sizeof msg);
        if (rc == OKV_OK && !c->method->stream_fn)
            rc = authorize_payload(s, c, msg, sizeof msg);
        if (rc != OKV_OK) {
            rpc_server_count_active(s, c);
            rpc_call_reply(c, rc, msg, NULL, 0);
            return;
        }
    }
    if (c->method && c->method->stream_fn) {
        /* The stream's owner drives the call from here on; it stays
         * counted in live_streams until rpc_server_stream_done. */
        grpc_call *call = c->call;
        c->call = NULL;
        atomic_fetch_add(&s->live_streams, 1);
        rpc_stream_handler fn = c->method->stream_fn;
        void *arg = c->method->arg;
        rpc_identity id = c->id;
        rpc_call_free(c);
        fn(arg, s, call, &id);
        return;
    }
    rpc_server_count_active(s, c);
    if (!c->method) {
        char *path = grpc_slice_to_c_string(c->details.method);
        char msg[256];
        snprintf(msg, sizeof msg, "unknown method %s (orderkv serves orderkv.v1.KV and "
                                  "orderkv.v1.Admin; see proto/orderkv.proto)", path);
        gpr_free(path);
        rpc_call_reply(c, OKV_EUNIMPLEMENTED, msg, NULL, 0);
        return;
    }
    if (!c->payload) {
        rpc_call_reply(c, OKV_EINVAL, "request carries no message", NULL, 0);
        return;
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, c->payload)) {
        rpc_call_reply(c, OKV_EPROTO, "request message could not be decompressed", NULL, 0);
        return;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    c->method->fn(c, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), c->method->arg);
    grpc_slice_unref(all);
}

static void on_call_event(rpc_tag *tag, int ok)
{
    rpc_call *c = (rpc_call *)tag;
    if (c->state == CALL_REPLYING)
        rpc_call_free(c);
    else if (ok)
        on_arrival(c->srv, c);
    else
        rpc_call_free(c);   /* the server is shutting down */
}

static void on_shutdown_done(rpc_tag *tag, int ok)
{
    (void)ok;
    rpc_server *s = (rpc_server *)((char *)tag - offsetof(rpc_server, shutdown_tag));
    pthread_mutex_lock(&s->mu);
    s->shutdown_done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *cq_thread(void *arg)
{
    okv_thread_name("okv-rpc");
    rpc_server *s = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        rpc_tag *tag = ev.tag;
        tag->fn(tag, ev.success);
    }
    return NULL;
}

int rpc_server_new(rpc_server **out, const char *address, okv_error *err)
{
    return rpc_server_new_tls(out, address, NULL, 0, err);
}

int rpc_server_new_tls(rpc_server **out, const char *address, const tls_pem *tls,
                       int require_client, okv_error *err)
{
    *out = NULL;
    rpc_server *s = calloc(1, sizeof *s);
    if (!s)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    grpc_init();
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;   /* drain's wait must not follow wall-clock steps */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->shutdown_tag.fn = on_shutdown_done;

    /* Pitfall 3: without this a second server on the same port binds
     * silently and steals half the connections. */
    /* Peers' transports ping every second (transport.c channel_new);
     * without the last two the server would answer them with GOAWAY
     * ("too many pings") and break the streams it is meant to keep. */
    grpc_arg args[4];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[0].value.integer = 0;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = 8 * 1024 * 1024;   /* > max key + value + framing */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
    args[2].value.integer = 500;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_HTTP2_MAX_PING_STRIKES;
    args[3].value.integer = 0;
    grpc_channel_args cargs = { 4, args };
    s->server = grpc_server_create(&cargs, NULL);
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);

    grpc_server_credentials *creds = tls_server_creds(tls, require_client);
    int port = grpc_server_add_http2_port(s->server, address, creds);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        rpc_server_shutdown_and_free(s, 0);
        return okv_error_set(err, OKV_EINVAL,
                             "cannot listen on %s (address in use, or not host:port?)", address);
    }
    /* Report the port actually bound (differs when the caller asked for 0). */
    const char *colon = strrchr(address, ':');
    int hostlen = colon ? (int)(colon - address) : (int)strlen(address);
    snprintf(s->address, sizeof s->address, "%.*s:%d", hostlen, address, port);
    *out = s;
    return OKV_OK;
}

const char *rpc_server_address(const rpc_server *s) { return s->address; }

int rpc_server_add_method(rpc_server *s, const char *path, rpc_handler fn, void *arg,
                          okv_error *err)
{
    if (s->nmethods == MAX_METHODS)
        return okv_error_set(err, OKV_EINVAL, "too many methods");
    rpc_method *m = &s->methods[s->nmethods];
    snprintf(m->path, sizeof m->path, "%s", path);
    m->fn = fn;
    m->arg = arg;
    method_metrics_init(m, path);
    m->handle = grpc_server_register_method(s->server, m->path, NULL,
                                            GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (!m->handle)
        return okv_error_set(err, OKV_EINVAL, "cannot register method %s", path);
    s->nmethods++;
    return OKV_OK;
}

int rpc_server_add_stream_method(rpc_server *s, const char *path, rpc_stream_handler fn,
                                 void *arg, okv_error *err)
{
    if (s->nmethods == MAX_METHODS)
        return okv_error_set(err, OKV_EINVAL, "too many methods");
    rpc_method *m = &s->methods[s->nmethods];
    snprintf(m->path, sizeof m->path, "%s", path);
    m->stream_fn = fn;
    m->arg = arg;
    m->handle = grpc_server_register_method(s->server, m->path, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    if (!m->handle)
        return okv_error_set(err, OKV_EINVAL, "cannot register method %s", path);
    s->nmethods++;
    return OKV_OK;
}

grpc_completion_queue *rpc_server_cq(rpc_server *s) { return s->cq; }

void rpc_server_count_active(rpc_server *s, rpc_call *c)
{
    atomic_fetch_add(&s->active_calls, 1);
    c->active = 1;
    c->start_ns = s->metrics ? mono_ns() : 0;
}

rpc_method *rpc_server_find_method(rpc_server *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (s->methods[i].fn && strcmp(s->methods[i].path, path) == 0)
            return &s->methods[i];
    return NULL;
}

int rpc_server_is_shutting_down(const rpc_server *s) { return atomic_load(&s->shutting_down); }

void rpc_server_stream_done(rpc_server *s)
{
    if (atomic_fetch_sub(&s->live_streams, 1) == 1) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

int rpc_server_start(rpc_server *s, int threads, okv_error *err)
{
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    grpc_server_start(s->server);
    for (size_t i = 0; i < s->nmethods; i++)
        for (int k = 0; k < SLOTS_PER_METHOD; k++)
            request_slot(s, &s->methods[i]);
    for (int k = 0; k < 4; k++)
        request_slot(s, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&s->threads[i], NULL, cq_thread, s) != 0)
            return okv_error_set(err, OKV_EINTERNAL, "cannot start completion-queue thread");
        s->nthreads++;
    }
    return OKV_OK;
}

/* Waits until cond(s) holds or the absolute deadline passes; returns cond(s). */
static int wait_until(rpc_server *s, int (*cond)(rpc_server *), const struct timespec *deadline)
{
    pthread_mutex_lock(&s->mu);
    while (!cond(s)) {
        if (deadline) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, deadline) != 0)
                break;
        } else {
            pthread_cond_wait(&s->cv, &s->mu);
        }
    }
    int ok = cond(s);
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static int is_shutdown_done(rpc_server *s) { return s->shutdown_done; }
static int no_live_calls(rpc_server *s)
{
    return atomic_load(&s->live_calls) == 0 && atomic_load(&s->live_streams) == 0;
}
static int no_active_calls(rpc_server *s) { return atomic_load(&s->active_calls) == 0; }

void rpc_server_drain(rpc_server *s, int grace_ms)
{
    if (!s || s->drained)
        return;
    s->drained = 1;
    atomic_store(&s->shutting_down, 1);
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
    if (s->nthreads == 0)
        return;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += grace_ms / 1000;
    dl.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    /* Graceful part: every call that arrived gets its answer (writes wait
     * for their sync). Idle client connections do not count: gRPC would
     * wait for clients to hang up, so once no call is active the rest is
     * cancelled and the connections closed (rpc_server_shutdown_and_free). */
    if (!wait_until(s, no_active_calls, &dl))
        OKV_WARN("in-flight calls did not finish within %d ms; cancelling them", grace_ms);
}

void rpc_server_shutdown_and_free(rpc_server *s, int grace_ms)
{
    if (!s)
        return;
    rpc_server_drain(s, grace_ms);
    if (s->nthreads == 0) {
        /* Never started: drain the queue here. */
        grpc_server_cancel_all_calls(s->server);
        for (;;) {
            grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_OP_COMPLETE && ev.tag == &s->shutdown_tag)
                break;
            if (ev.type == GRPC_OP_COMPLETE)
                ((rpc_tag *)ev.tag)->fn(ev.tag, 0);
        }
    } else {
        grpc_server_cancel_all_calls(s->server);
        wait_until(s, is_shutdown_done, NULL);
        /* Slots requested but never used complete with success = 0 and are
         * freed by the queue threads; wait for every one of them. */
        wait_until(s, no_live_calls, NULL);
    }
    grpc_completion_queue_shutdown(s->cq);
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    if (s->nthreads == 0) {
        while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
    }
    grpc_server_destroy(s->server);
    grpc_completion_queue_destroy(s->cq);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    grpc_shutdown();
}
