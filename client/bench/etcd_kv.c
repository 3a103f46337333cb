/*
 * etcd_kv.c — unary Put / Range / Txn calls to etcd through gRPC C core,
 * started without waiting and completed on etcd_kv's own completion
 * thread(s).
 *
 * The call itself mirrors liborderkv's (client/client_call.c) on purpose,
 * so that the two targets differ in the server and not in the client: the
 * same channel arguments, the same number of connections per endpoint,
 * registered methods, one batch per call with RECV_INITIAL_METADATA in it,
 * and a protobuf-c unpack of the reply. What it leaves out is failover: a
 * benchmark should count a failed call, not hide it by retrying elsewhere.
 *
 * A call's life: *_async packs the request, allocates an etcd_call holding
 * everything the batch writes into or reads from, creates the call on the
 * next channel with the shared completion queue, and starts one batch of
 * six ops tagged with the etcd_call. The completion thread takes the tag
 * from grpc_completion_queue_next, turns status and body into an OKV code,
 * runs the callback, then frees the etcd_call (the send buffer is destroyed
 * only here, after the batch completed).
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_kv.h"
#include "etcd_kv.pb-c.h"
#include "etcd_txn.pb-c.h"
#include "orderkv.h"

#define ADDR_MAX 256
#define MAX_CHANNELS (ETCD_KV_MAX_ENDPOINTS * ETCD_KV_CONNS_PER_ENDPOINT)

enum method { M_PUT, M_RANGE, M_TXN, M_COUNT };

static const char *const method_paths[M_COUNT] = {
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Txn",
};

static const ProtobufCMessageDescriptor *const reply_types[M_COUNT] = {
    &etcdserverpb__put_response__descriptor,
    &etcdserverpb__range_response__descriptor,
    &etcdserverpb__txn_response__descriptor,
};

/* What the caller gets from a reply. */
enum reply {
    R_PLAIN,   /* etcd_kv_callback: put, get (OKV_ENOTFOUND if the Range found nothing) */
    R_READ,    /* etcd_kv_read_callback: the keys of a Range or of a Txn of Ranges */
    R_CAS,     /* etcd_kv_callback: a Txn's `succeeded` (false: OKV_ECONFLICT) */
    R_COUNT,   /* etcd_kv_count_callback: a count_only Range's `count` */
};

#define MAX_COMPLETION_THREADS 8

struct etcd_kv {
    etcd_kv_options opts;
    size_t naddrs;                      /* endpoints that carry calls */
    char addrs[ETCD_KV_MAX_ENDPOINTS][ADDR_MAX];
    /* Channel i talks to addrs[i % naddrs]: consecutive calls alternate
     * endpoints first, then connections of one endpoint. */
    size_t nchannels;
    grpc_channel *channels[MAX_CHANNELS];
    void *methods[MAX_CHANNELS][M_COUNT];
    atomic_uint next;                   /* round-robin cursor */
    grpc_completion_queue *cq;          /* every call's; served by threads[] */
    int nthreads;
    pthread_t threads[MAX_COMPLETION_THREADS];
};

/* One call in flight: what its batch reads and writes, and whom to tell. */
typedef struct etcd_call {
    etcd_kv *e;
    enum method m;
    size_t channel;
    grpc_call *call;
    grpc_byte_buffer *send;
    grpc_byte_buffer *body;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    enum reply reply;
    size_t nkeys;                       /* R_READ: keys asked for */
    etcd_kv_callback cb;                /* R_PLAIN, R_CAS */
    etcd_kv_read_callback read_cb;      /* R_READ */
    etcd_kv_count_callback count_cb;    /* R_COUNT */
    void *arg;
} etcd_call;

static _Thread_local char last_msg[512];

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *etcd_kv_errmsg(void)
{
    return last_msg;
}

static gpr_timespec deadline_in(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static void cq_destroy(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
}

/* Splits "a:1, b:2" into e->addrs; rejects empty entries and missing ports. */
static int parse_addresses(etcd_kv *e, const char *list)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && p[trimmed - 1] == ' ')
            trimmed--;
        if (trimmed == 0)
            return fail(OKV_EINVAL, "empty address in '%s'", list);
        if (trimmed >= ADDR_MAX)
            return fail(OKV_EINVAL, "address longer than %d bytes in '%s'", ADDR_MAX - 1, list);
        if (e->naddrs == ETCD_KV_MAX_ENDPOINTS)
            return fail(OKV_EINVAL, "more than %d endpoints", ETCD_KV_MAX_ENDPOINTS);
        char *a = e->addrs[e->naddrs++];
        memcpy(a, p, trimmed);
        a[trimmed] = '\0';
        const char *colon = strrchr(a, ':');
        if (!colon || colon == a || colon[1] == '\0')
            return fail(OKV_EINVAL, "endpoint '%s' is not HOST:PORT (etcd's default client port is 2379)", a);
        p += len;
        if (*p == ',')
            p++;
    }
    if (e->naddrs == 0)
        return fail(OKV_EINVAL, "no endpoint given");
    return OKV_OK;
}

/* Waits until ch is READY. A connection attempt that fails is final: the
 * benchmark should not start against an endpoint that is down. */
static int wait_ready(grpc_channel *ch, const char *addr, int timeout_ms)
{
    gpr_timespec deadline = deadline_in(timeout_ms);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    int rc = OKV_OK;
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
    while (st != GRPC_CHANNEL_READY) {
        if (st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN) {
            rc = fail(OKV_EUNAVAILABLE, "cannot connect to etcd at %s (is it running?)", addr);
            break;
        }
        int tag;
        grpc_channel_watch_connectivity_state(ch, st, deadline, cq, &tag);
        grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (!ev.success) {
            rc = fail(OKV_ETIMEDOUT, "etcd at %s not reachable within %d ms", addr, timeout_ms);
            break;
        }
        st = grpc_channel_check_connectivity_state(ch, 1);
    }
    cq_destroy(cq);
    return rc;
}

static void *completion_main(void *arg);

int etcd_kv_connect(etcd_kv **out, const char *addresses, const etcd_kv_options *opts)
{
    *out = NULL;
    etcd_kv *e = calloc(1, sizeof *e);
    if (!e)
        return fail(OKV_ENOMEM, "out of memory");
    etcd_kv_options defaults = ETCD_KV_OPTIONS_INIT;
    e->opts = opts ? *opts : defaults;
    if (e->opts.default_timeout_ms <= 0)
        e->opts.default_timeout_ms = defaults.default_timeout_ms;
    if (e->opts.connect_timeout_ms <= 0)
        e->opts.connect_timeout_ms = defaults.connect_timeout_ms;
    if (e->opts.completion_threads <= 0)
        e->opts.completion_threads = defaults.completion_threads;
    if (e->opts.completion_threads > MAX_COMPLETION_THREADS) {
        free(e);
        return fail(OKV_EINVAL, "at most %d completion threads", MAX_COMPLETION_THREADS);
    }
    int rc = addresses ? parse_addresses(e, addresses) : fail(OKV_EINVAL, "no endpoint given");
    if (rc) {
        free(e);
        return rc;
    }
    if (e->opts.policy == ETCD_KV_ENDPOINTS_FIRST)
        e->naddrs = 1;
    atomic_init(&e->next, 0);

    grpc_init();
    /* The channel arguments of liborderkv (client/client.c), so both targets
     * get the same connection behaviour; the local subchannel pool is what
     * gives every channel its own TCP connection. */
    const char *keys[5] = { GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                            GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                            GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL };
    const int values[5] = { 64 * 1024 * 1024, 100, 5000, 1000, 1 };
    grpc_arg argv[5];
    for (int i = 0; i < 5; i++) {
        argv[i].type = GRPC_ARG_INTEGER;
        argv[i].key = (char *)keys[i];
        argv[i].value.integer = values[i];
    }
    grpc_channel_args args = { 5, argv };
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    e->nchannels = e->naddrs * ETCD_KV_CONNS_PER_ENDPOINT;
    for (size_t i = 0; i < e->nchannels; i++) {
        e->channels[i] = grpc_channel_create(e->addrs[i % e->naddrs], creds, &args);
        for (int m = 0; m < M_COUNT; m++)
            e->methods[i][m] = grpc_channel_register_call(e->channels[i], method_paths[m], NULL, NULL);
    }
    grpc_channel_credentials_release(creds);
    for (size_t i = 0; i < e->nchannels; i++) {
        rc = wait_ready(e->channels[i], e->addrs[i % e->naddrs], e->opts.connect_timeout_ms);
        if (rc) {
            etcd_kv_free(e);
            return rc;
        }
    }
    e->cq = grpc_completion_queue_create_for_next(NULL);
    for (int i = 0; i < e->opts.completion_threads; i++) {
        if (pthread_create(&e->threads[i], NULL, completion_main, e) != 0) {
            etcd_kv_free(e);
            return fail(OKV_ENOMEM, "cannot start a completion thread");
        }
        e->nthreads++;
    }
    *out = e;
    return OKV_OK;
}

void etcd_kv_free(etcd_kv *e)
{
    if (!e)
        return;
    if (e->cq) {
        /* No call is in flight (precondition), so the queue is empty and
         * every thread leaves at GRPC_QUEUE_SHUTDOWN. */
        grpc_completion_queue_shutdown(e->cq);
        for (int i = 0; i < e->nthreads; i++)
            pthread_join(e->threads[i], NULL);
        grpc_completion_queue_destroy(e->cq);
    }
    for (size_t i = 0; i < e->nchannels; i++)
        grpc_channel_destroy(e->channels[i]);
    free(e);
    grpc_shutdown();
}

static int code_from_status(grpc_status_code st)
{
    switch (st) {
    case GRPC_STATUS_UNAVAILABLE: return OKV_EUNAVAILABLE;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_CANCELLED: return OKV_ETIMEDOUT;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE: return OKV_EINVAL;
    case GRPC_STATUS_UNIMPLEMENTED: return OKV_EUNIMPLEMENTED;
    default: return OKV_EINTERNAL;
    }
}

static ProtobufCMessage *unpack_body(grpc_byte_buffer *body, const ProtobufCMessageDescriptor *d)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, body))
        return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all),
                                                    GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    return m;
}

static void call_free(etcd_call *c)
{
    grpc_byte_buffer_destroy(c->send);
    grpc_byte_buffer_destroy(c->body);
    grpc_slice_unref(c->details);
    grpc_metadata_array_destroy(&c->init_md);
    grpc_metadata_array_destroy(&c->trail_md);
    if (c->call)
        grpc_call_unref(c->call);
    free(c);
}

/*
 * Starts one unary call of method m with req on the next channel in
 * round-robin order. OKV_OK: the batch is started and finish() will run on
 * a completion thread; otherwise nothing is left behind.
 */
static int start(etcd_kv *e, enum method m, const ProtobufCMessage *req, int timeout_ms,
                 enum reply reply, size_t nkeys, etcd_kv_callback cb,
                 etcd_kv_read_callback read_cb, etcd_kv_count_callback count_cb, void *arg)
{
    etcd_call *c = calloc(1, sizeof *c);
    if (!c)
        return fail(OKV_ENOMEM, "out of memory");
    c->e = e;
    c->m = m;
    c->reply = reply;
    c->nkeys = nkeys;
    c->cb = cb;
    c->read_cb = read_cb;
    c->count_cb = count_cb;
    c->arg = arg;
    c->channel = atomic_fetch_add(&e->next, 1) % e->nchannels;
    c->status = GRPC_STATUS_UNKNOWN;
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->init_md);
    grpc_metadata_array_init(&c->trail_md);

    /* Packed straight into the slice the send buffer takes a reference on. */
    size_t len = protobuf_c_message_get_packed_size(req);
    grpc_slice sl = grpc_slice_malloc(len);
    protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(sl));
    c->send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);

    int ms = timeout_ms > 0 ? timeout_ms : e->opts.default_timeout_ms;
    c->call = grpc_channel_create_registered_call(e->channels[c->channel], NULL,
                                                  GRPC_PROPAGATE_DEFAULTS, e->cq,
                                                  e->methods[c->channel][m], deadline_in(ms), NULL);
    /* RECV_INITIAL_METADATA must be in the batch, or a trailers-only error
     * reply surfaces only at the deadline. */
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->body;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->trail_md;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    grpc_call_error err = grpc_call_start_batch(c->call, ops, 6, c, NULL);
    if (err != GRPC_CALL_OK) {
        const char *addr = e->addrs[c->channel % e->naddrs];
        call_free(c);
        return fail(OKV_EINTERNAL, "gRPC refused to start a call to %s (grpc_call_error %d)", addr,
                    (int)err);
    }
    return OKV_OK;
}

/* The OKV code and message for a completed call's transport and gRPC
 * status; on OKV_OK, *resp is the unpacked reply (the caller frees it).
 * msg gets "" on success. */
static int call_status(etcd_call *c, int batch_ok, ProtobufCMessage **resp, char *msg,
                       size_t msgsize)
{
    const char *addr = c->e->addrs[c->channel % c->e->naddrs];
    *resp = NULL;
    msg[0] = '\0';
    if (!batch_ok) {
        snprintf(msg, msgsize, "etcd at %s: the call's batch failed", addr);
        return OKV_EUNAVAILABLE;
    }
    if (c->status != GRPC_STATUS_OK) {
        char *d = grpc_slice_to_c_string(c->details);
        snprintf(msg, msgsize, "etcd at %s: %s (gRPC status %d)", addr, d[0] ? d : "no detail",
                 (int)c->status);
        gpr_free(d);
        return code_from_status(c->status);
    }
    *resp = c->body ? unpack_body(c->body, reply_types[c->m]) : NULL;
    if (!*resp) {
        snprintf(msg, msgsize, "unparsable %s reply from %s", method_paths[c->m], addr);
        return OKV_EPROTO;
    }
    return OKV_OK;
}

static void kv_of(const Etcdserverpb__RangeResponse *r, etcd_kv_kv *out)
{
    memset(out, 0, sizeof *out);
    if (r->n_kvs == 0)
        return;
    const Etcdserverpb__KeyValue *kv = r->kvs[0];
    out->found = 1;
    out->value = kv->value.data;
    out->value_len = kv->value.len;
    out->mod_revision = kv->mod_revision;
    out->version = kv->version;
}

/* R_READ: the keys out of a Range reply, or out of a Txn of Ranges' reply
 * (one Range reply per key, in order). OKV_EPROTO if it is not that. */
static int read_kvs(const etcd_call *c, const ProtobufCMessage *resp, etcd_kv_kv *kvs)
{
    if (c->m == M_RANGE) {
        kv_of((const Etcdserverpb__RangeResponse *)resp, &kvs[0]);
        return OKV_OK;
    }
    const Etcdserverpb__TxnResponse *t = (const Etcdserverpb__TxnResponse *)resp;
    if (!t->succeeded || t->n_responses != c->nkeys)
        return OKV_EPROTO;
    for (size_t i = 0; i < c->nkeys; i++) {
        const Etcdserverpb__ResponseOp *op = t->responses[i];
        if (op->response_case != ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE ||
            !op->response_range)
            return OKV_EPROTO;
        kv_of(op->response_range, &kvs[i]);
    }
    return OKV_OK;
}

/* Turns a completed call into its outcome and runs its callback. */
static void finish(etcd_call *c, int batch_ok)
{
    char msg[512];
    ProtobufCMessage *resp;
    int rc = call_status(c, batch_ok, &resp, msg, sizeof msg);
    switch (c->reply) {
    case R_PLAIN:
        if (rc == OKV_OK && c->m == M_RANGE &&
            ((const Etcdserverpb__RangeResponse *)resp)->n_kvs == 0)
            rc = OKV_ENOTFOUND;
        c->cb(c->arg, rc, msg);
        break;
    case R_CAS:
        if (rc == OKV_OK && !((const Etcdserverpb__TxnResponse *)resp)->succeeded) {
            rc = OKV_ECONFLICT;
            snprintf(msg, sizeof msg, "a compare of the Txn did not hold; nothing written");
        }
        c->cb(c->arg, rc, msg);
        break;
    case R_COUNT:
        c->count_cb(c->arg, rc, msg,
                    rc == OKV_OK ? ((const Etcdserverpb__RangeResponse *)resp)->count : 0);
        break;
    case R_READ: {
        etcd_kv_kv kvs[ETCD_KV_MAX_KEYS];
        if (rc == OKV_OK && (rc = read_kvs(c, resp, kvs)) != OKV_OK)
            snprintf(msg, sizeof msg, "%s reply from %s is not one Range per key",
                     method_paths[c->m], c->e->addrs[c->channel % c->e->naddrs]);
        c->read_cb(c->arg, rc, msg, rc == OKV_OK ? kvs : NULL, rc == OKV_OK ? c->nkeys : 0);
        break;
    }
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
}

/* A completion thread: runs gRPC's work for the queue and finishes calls. */
static void *completion_main(void *arg)
{
    etcd_kv *e = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(e->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        etcd_call *c = ev.tag;
        finish(c, ev.success);
        call_free(c);
    }
    return NULL;
}

static int check_key(size_t key_len)
{
    return key_len ? OKV_OK : fail(OKV_EINVAL, "empty key");
}

int etcd_kv_put_async(etcd_kv *e, const void *key, size_t key_len, const void *value,
                      size_t value_len, int timeout_ms, etcd_kv_callback cb, void *arg)
{
    int rc = check_key(key_len);
    if (rc)
        return rc;
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;
    req.value.data = (uint8_t *)value;
    req.value.len = value_len;
    return start(e, M_PUT, &req.base, timeout_ms, R_PLAIN, 0, cb, NULL, NULL, arg);
}

int etcd_kv_get_async(etcd_kv *e, const void *key, size_t key_len, int timeout_ms,
                      etcd_kv_callback cb, void *arg)
{
    int rc = check_key(key_len);
    if (rc)
        return rc;
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;   /* range_end empty: this key only */
    req.serializable = e->opts.serializable ? 1 : 0;
    return start(e, M_RANGE, &req.base, timeout_ms, R_PLAIN, 0, cb, NULL, NULL, arg);
}

int etcd_kv_read_async(etcd_kv *e, const void *const *keys, const size_t *key_lens, size_t n,
                       int timeout_ms, etcd_kv_read_callback cb, void *arg)
{
    if (n < 1 || n > ETCD_KV_MAX_KEYS)
        return fail(OKV_EINVAL, "a read takes 1 to %d keys", ETCD_KV_MAX_KEYS);
    Etcdserverpb__RangeRequest ranges[ETCD_KV_MAX_KEYS];
    Etcdserverpb__RequestOp ops[ETCD_KV_MAX_KEYS];
    Etcdserverpb__RequestOp *opp[ETCD_KV_MAX_KEYS];
    for (size_t i = 0; i < n; i++) {
        int rc = check_key(key_lens[i]);
        if (rc)
            return rc;
        etcdserverpb__range_request__init(&ranges[i]);
        ranges[i].key.data = (uint8_t *)keys[i];
        ranges[i].key.len = key_lens[i];   /* range_end empty: this key only */
        ranges[i].serializable = e->opts.serializable ? 1 : 0;
        etcdserverpb__request_op__init(&ops[i]);
        ops[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
        ops[i].request_range = &ranges[i];
        opp[i] = &ops[i];
    }
    if (n == 1)
        return start(e, M_RANGE, &ranges[0].base, timeout_ms, R_READ, 1, NULL, cb, NULL, arg);
    /* No compares: success always runs, every Range at the same revision. */
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    req.n_success = n;
    req.success = opp;
    return start(e, M_TXN, &req.base, timeout_ms, R_READ, n, NULL, cb, NULL, arg);
}

int etcd_kv_cas_async(etcd_kv *e, const etcd_kv_cas *items, size_t n, int timeout_ms,
                      etcd_kv_callback cb, void *arg)
{
    if (n < 1 || n > ETCD_KV_MAX_KEYS)
        return fail(OKV_EINVAL, "a compare-and-swap takes 1 to %d keys", ETCD_KV_MAX_KEYS);
    etcd_kv_cmp cmps[ETCD_KV_MAX_KEYS];
    etcd_kv_put puts[ETCD_KV_MAX_KEYS];
    for (size_t i = 0; i < n; i++) {
        cmps[i] = (etcd_kv_cmp){ items[i].key, items[i].key_len, ETCD_KV_CMP_MOD,
                                 ETCD_KV_CMP_EQUAL, items[i].mod_revision };
        puts[i] = (etcd_kv_put){ items[i].key, items[i].key_len, items[i].value,
                                 items[i].value_len };
    }
    return etcd_kv_txn_async(e, cmps, n, puts, n, timeout_ms, cb, arg);
}

/* cmp as etcd's Compare; the key is borrowed, not copied (packing copies). */
static int compare_init(Etcdserverpb__Compare *out, const etcd_kv_cmp *cmp)
{
    int rc = check_key(cmp->key_len);
    if (rc)
        return rc;
    etcdserverpb__compare__init(out);
    out->result = (Etcdserverpb__Compare__CompareResult)cmp->result;
    out->target = (Etcdserverpb__Compare__CompareTarget)cmp->target;
    out->key.data = (uint8_t *)cmp->key;
    out->key.len = cmp->key_len;
    if (cmp->target == ETCD_KV_CMP_MOD) {
        out->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
        out->mod_revision = cmp->num;
    } else {
        out->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
        out->version = cmp->num;
    }
    return OKV_OK;
}

int etcd_kv_txn_async(etcd_kv *e, const etcd_kv_cmp *cmps, size_t ncmps, const etcd_kv_put *puts,
                      size_t nputs, int timeout_ms, etcd_kv_callback cb, void *arg)
{
    if (ncmps > ETCD_KV_MAX_KEYS || nputs < 1 || nputs > ETCD_KV_MAX_KEYS)
        return fail(OKV_EINVAL, "a Txn takes 0 to %d compares and 1 to %d puts",
                    ETCD_KV_MAX_KEYS, ETCD_KV_MAX_KEYS);
    Etcdserverpb__Compare cmp[ETCD_KV_MAX_KEYS];
    Etcdserverpb__Compare *cmpp[ETCD_KV_MAX_KEYS];
    Etcdserverpb__PutRequest put[ETCD_KV_MAX_KEYS];
    Etcdserverpb__RequestOp ops[ETCD_KV_MAX_KEYS];
    Etcdserverpb__RequestOp *opp[ETCD_KV_MAX_KEYS];
    for (size_t i = 0; i < ncmps; i++) {
        int rc = compare_init(&cmp[i], &cmps[i]);
        if (rc)
            return rc;
        cmpp[i] = &cmp[i];
    }
    for (size_t i = 0; i < nputs; i++) {
        int rc = check_key(puts[i].key_len);
        if (rc)
            return rc;
        etcdserverpb__put_request__init(&put[i]);
        put[i].key.data = (uint8_t *)puts[i].key;
        put[i].key.len = puts[i].key_len;
        put[i].value.data = (uint8_t *)puts[i].value;
        put[i].value.len = puts[i].value_len;
        etcdserverpb__request_op__init(&ops[i]);
        ops[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        ops[i].request_put = &put[i];
        opp[i] = &ops[i];
    }
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    req.n_compare = ncmps;
    req.compare = ncmps ? cmpp : NULL;
    req.n_success = nputs;
    req.success = opp;
    return start(e, M_TXN, &req.base, timeout_ms, R_CAS, 0, cb, NULL, NULL, arg);
}

/* The end of the Range covering every key that starts with prefix, as
 * etcd's clientv3.GetPrefixRangeEnd: the prefix with its last byte below
 * 0xff incremented and what follows dropped; "\0" (every key from prefix
 * on) if every byte is 0xff. Returns its length (>= 1). */
static size_t prefix_end(const uint8_t *prefix, size_t len, uint8_t *out)
{
    memcpy(out, prefix, len);
    for (size_t i = len; i > 0; i--)
        if (out[i - 1] < 0xff) {
            out[i - 1]++;
            return i;
        }
    out[0] = 0;
    return 1;
}

#define PREFIX_MAX 1024

int etcd_kv_count_async(etcd_kv *e, const void *prefix, size_t prefix_len, int timeout_ms,
                        etcd_kv_count_callback cb, void *arg)
{
    if (prefix_len < 1 || prefix_len > PREFIX_MAX)
        return fail(OKV_EINVAL, "a count's prefix takes 1 to %d bytes", PREFIX_MAX);
    uint8_t end[PREFIX_MAX];
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)prefix;
    req.key.len = prefix_len;
    req.range_end.data = end;
    req.range_end.len = prefix_end(prefix, prefix_len, end);
    req.count_only = 1;
    req.serializable = e->opts.serializable ? 1 : 0;
    return start(e, M_RANGE, &req.base, timeout_ms, R_COUNT, 0, NULL, NULL, cb, arg);
}
