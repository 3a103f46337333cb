/* liborderkv's asynchronous calls against a real orderkvd: many calls in
 * flight from one thread, callbacks exactly once and never inside the
 * submitting call, batches of writes, the threading rules (no synchronous
 * call from a callback; okv_close waits for callbacks), errors, a dead
 * server, and garbage on the batched stream (the node stays up). */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

typedef struct fx {
    char *dir;
    char data[4200];
    okv_test_server srv;
    okv_client *c;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = okv_test_tmpdir("async");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    if (okv_test_server_start(&f->srv, orderkvd_path, f->data, NULL) != 0)
        fail_msg("orderkvd did not start; log: %s", f->srv.log_path);
    assert_int_equal(okv_connect(&f->c, f->srv.address, NULL), OKV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    okv_close(f->c);
    if (f->srv.pid > 0)
        okv_test_server_stop(&f->srv, 1);
    okv_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Counts callbacks; a test waits for all it expects. */
typedef struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok, failed, last_code;
    char last_msg[256];
    uint64_t max_version;
} tally;

#define TALLY_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, "", 0 }

static void tally_wait(tally *t, int n)
{
    pthread_mutex_lock(&t->mu);
    while (t->done < n)
        pthread_cond_wait(&t->cv, &t->mu);   /* every call ends by its deadline */
    pthread_mutex_unlock(&t->mu);
}

static void tally_add(tally *t, const okv_result *r)
{
    pthread_mutex_lock(&t->mu);
    t->done++;
    if (okv_result_code(r) == OKV_OK) {
        t->ok++;
        if (okv_result_version(r) > t->max_version)
            t->max_version = okv_result_version(r);
    } else {
        t->failed++;
        t->last_code = okv_result_code(r);
        snprintf(t->last_msg, sizeof t->last_msg, "%s", okv_result_errmsg(r));
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Set around each *_async call: a callback that runs inside it sees it. */
static _Thread_local int submitting;
static atomic_int ran_inside;

static void on_done(void *arg, const okv_result *r)
{
    if (submitting)
        atomic_fetch_add(&ran_inside, 1);
    tally_add(arg, r);
}

/* ---- many in flight from one thread, then read back ------------------------- */

typedef struct getcheck {
    tally *t;
    int i;
} getcheck;

static void on_get(void *arg, const okv_result *r)
{
    getcheck *g = arg;
    size_t len = 0;
    const char *v = okv_result_value(r, &len);
    char want[32];
    snprintf(want, sizeof want, "value-%d", g->i);
    if (okv_result_code(r) != OKV_OK || !v || len != strlen(want) || memcmp(v, want, len) != 0 ||
        okv_result_version(r) == 0) {
        pthread_mutex_lock(&g->t->mu);
        g->t->failed++;
        g->t->done++;
        pthread_cond_broadcast(&g->t->cv);
        pthread_mutex_unlock(&g->t->mu);
    } else {
        tally_add(g->t, r);
    }
    free(g);
}

static void test_async__many_in_flight_then_read_back(void **state)
{
    fx *f = *state;
    enum { N = 2000 };
    tally puts = TALLY_INIT;
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "c%d/o%d", i % 37, i);
        snprintf(val, sizeof val, "value-%d", i);
        submitting = 1;
        int rc = okv_put_async(f->c, "orders", key, strlen(key), val, strlen(val), 10000,
                               on_done, &puts);
        submitting = 0;
        assert_int_equal(rc, OKV_OK);
    }
    tally_wait(&puts, N);
    if (puts.failed)
        fail_msg("%d of %d puts failed; last: %s: %s", puts.failed, N,
                 okv_strerror(puts.last_code), puts.last_msg);
    assert_int_equal(puts.ok, N);
    assert_int_equal(atomic_load(&ran_inside), 0);

    tally gets = TALLY_INIT;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "c%d/o%d", i % 37, i);
        getcheck *g = malloc(sizeof *g);
        g->t = &gets;
        g->i = i;
        assert_int_equal(okv_get_async(f->c, "orders", key, strlen(key), 10000, on_get, g),
                         OKV_OK);
    }
    tally_wait(&gets, N);
    assert_int_equal(gets.failed, 0);

    /* The synchronous calls see what the asynchronous ones wrote. */
    okv_value *v;
    assert_int_equal(okv_get(f->c, "orders", "c0/o0", 5, &v, 0), OKV_OK);
    assert_string_equal(okv_value_data(v), "value-0");
    okv_value_free(v);
}

/* ---- delete and scan ------------------------------------------------------------ */

typedef struct one {
    tally t;
    int existed;
    okv_scan_result *scan;
    okv_value *value;
} one;

static void on_delete(void *arg, const okv_result *r)
{
    one *o = arg;
    o->existed = okv_result_existed(r);
    tally_add(&o->t, r);
}

static void on_scan(void *arg, const okv_result *r)
{
    one *o = arg;
    o->scan = okv_result_take_scan(r);
    tally_add(&o->t, r);
}

static void on_take_value(void *arg, const okv_result *r)
{
    one *o = arg;
    o->value = okv_result_take_value(r);
    tally_add(&o->t, r);
}

static void test_async__delete_scan_and_taken_results(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "p/%d", i);
        assert_int_equal(okv_put(f->c, "payments", key, strlen(key), "x", 1, NULL, 0), OKV_OK);
    }
    one o = { TALLY_INIT, -1, NULL, NULL };
    assert_int_equal(okv_delete_async(f->c, "payments", "p/0", 3, 0, on_delete, &o), OKV_OK);
    tally_wait(&o.t, 1);
    assert_int_equal(o.t.ok, 1);
    assert_int_equal(o.existed, 1);

    okv_scan_opts so = OKV_SCAN_OPTS_INIT;
    so.prefix = "p/";
    so.prefix_len = 2;
    assert_int_equal(okv_scan_async(f->c, "payments", &so, on_scan, &o), OKV_OK);
    tally_wait(&o.t, 2);
    assert_non_null(o.scan);
    assert_int_equal(okv_scan_result_count(o.scan), 4);   /* taken: still valid now */
    size_t kl;
    assert_memory_equal(okv_scan_result_key(o.scan, 0, &kl), "p/1", 3);
    okv_scan_result_free(o.scan);

    assert_int_equal(okv_get_async(f->c, "payments", "p/1", 3, 0, on_take_value, &o), OKV_OK);
    tally_wait(&o.t, 3);
    assert_non_null(o.value);
    assert_string_equal(okv_value_data(o.value), "x");
    okv_value_free(o.value);

    /* A missing key is a result, not a retry. */
    assert_int_equal(okv_get_async(f->c, "payments", "p/0", 3, 0, on_take_value, &o), OKV_OK);
    tally_wait(&o.t, 4);
    assert_int_equal(o.t.last_code, OKV_ENOTFOUND);
    assert_null(o.value);
}

/* ---- batches -------------------------------------------------------------------- */

typedef struct batch_seen {
    tally t;
    size_t count;
    int all_ok;
    uint64_t versions[256];
} batch_seen;

static void on_batch(void *arg, const okv_result *r)
{
    batch_seen *b = arg;
    b->count = okv_result_count(r);
    b->all_ok = 1;
    for (size_t i = 0; i < b->count && i < 256; i++) {
        const okv_result *it = okv_result_at(r, i);
        b->all_ok &= okv_result_code(it) == OKV_OK;
        b->versions[i] = okv_result_version(it);
    }
    assert_null(okv_result_at(r, b->count));
    tally_add(&b->t, r);
}

static void test_async__batch_of_writes(void **state)
{
    fx *f = *state;
    okv_batch *b;
    assert_int_equal(okv_batch_new(&b), OKV_OK);
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "acct%d", i);
        assert_int_equal(okv_batch_put(b, "accounts", key, strlen(key), "100", 3), OKV_OK);
    }
    assert_int_equal(okv_batch_delete(b, "accounts", "acct7", 5), OKV_OK);
    assert_int_equal(okv_batch_put(b, "nope", "", 0, "x", 1), OKV_EINVAL);   /* empty key */
    assert_int_equal(okv_batch_count(b), 101);
    batch_seen seen;
    memset(&seen, 0, sizeof seen);
    seen.t = (tally)TALLY_INIT;
    assert_int_equal(okv_batch_submit(f->c, b, 10000, on_batch, &seen), OKV_OK);
    okv_batch_free(b);   /* the submitted batch no longer needs it */
    tally_wait(&seen.t, 1);
    assert_int_equal(seen.count, 101);
    assert_true(seen.all_ok);
    for (size_t i = 0; i < 100; i++)
        assert_true(seen.versions[i] > 0);
    okv_value *v;
    assert_int_equal(okv_get(f->c, "accounts", "acct99", 6, &v, 0), OKV_OK);
    okv_value_free(v);
    /* The delete came after the put of the same key in the batch, but the
     * writes are independent: the key holds one of the two outcomes. */
    int rc = okv_get(f->c, "accounts", "acct7", 5, &v, 0);
    assert_true(rc == OKV_OK || rc == OKV_ENOTFOUND);
    if (rc == OKV_OK)
        okv_value_free(v);

    okv_batch *empty;
    assert_int_equal(okv_batch_new(&empty), OKV_OK);
    assert_int_equal(okv_batch_submit(f->c, empty, 0, on_batch, &seen), OKV_EINVAL);
    okv_batch_free(empty);
}

/* ---- threading rules and errors ------------------------------------------------ */

typedef struct nested {
    tally t;
    okv_client *c;
    int sync_rc;
    int async_rc;
    tally inner;
} nested;

static void on_inner(void *arg, const okv_result *r) { tally_add(arg, r); }

static void on_outer(void *arg, const okv_result *r)
{
    nested *n = arg;
    okv_value *v = NULL;
    n->sync_rc = okv_get(n->c, "orders", "k", 1, &v, 0);   /* would wait for itself */
    okv_value_free(v);
    n->async_rc = okv_put_async(n->c, "orders", "k2", 2, "v", 1, 0, on_inner, &n->inner);
    tally_add(&n->t, r);
}

static void test_async__callbacks_follow_the_threading_rules(void **state)
{
    fx *f = *state;
    nested n;
    memset(&n, 0, sizeof n);
    n.t = (tally)TALLY_INIT;
    n.inner = (tally)TALLY_INIT;
    n.c = f->c;
    assert_int_equal(okv_put_async(f->c, "orders", "k", 1, "v", 1, 0, on_outer, &n), OKV_OK);
    tally_wait(&n.t, 1);
    assert_int_equal(n.sync_rc, OKV_EINVAL);
    assert_int_equal(n.async_rc, OKV_OK);
    tally_wait(&n.inner, 1);
    assert_int_equal(n.inner.ok, 1);

    /* Bad arguments: an error at once, and no callback. */
    tally t = TALLY_INIT;
    assert_int_equal(okv_put_async(f->c, "orders", "", 0, "v", 1, 0, on_done, &t), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(f->c), "key is empty"));
    assert_int_equal(okv_get_async(f->c, "orders", "k", 1, 0, NULL, NULL), OKV_EINVAL);
    /* An unknown table is the server's answer, in the callback. */
    assert_int_equal(okv_put_async(f->c, "refunds", "k", 1, "v", 1, 0, on_done, &t), OKV_OK);
    tally_wait(&t, 1);
    assert_int_equal(t.last_code, OKV_ENOTFOUND);
    assert_non_null(strstr(t.last_msg, "refunds"));
    assert_int_equal(t.done, 1);
}

static void test_async__close_waits_for_every_callback(void **state)
{
    fx *f = *state;
    tally t = TALLY_INIT;
    for (int i = 0; i < 300; i++) {
        char key[16];
        snprintf(key, sizeof key, "z%d", i);
        assert_int_equal(okv_put_async(f->c, "orders", key, strlen(key), "v", 1, 0, on_done, &t),
                         OKV_OK);
    }
    okv_close(f->c);
    f->c = NULL;
    assert_int_equal(t.done, 300);   /* no wait: close already waited */
    assert_int_equal(t.ok, 300);
}

/* ---- a dead server -------------------------------------------------------------- */

static void test_async__dead_server_fails_cleanly_within_the_deadline(void **state)
{
    fx *f = *state;
    assert_int_equal(okv_test_server_stop(&f->srv, 1), 128 + 9);
    tally t = TALLY_INIT;
    for (int i = 0; i < 20; i++) {
        submitting = 1;
        assert_int_equal(okv_get_async(f->c, "orders", "k", 1, 700, on_done, &t), OKV_OK);
        submitting = 0;
    }
    tally_wait(&t, 20);
    assert_int_equal(t.failed, 20);
    assert_true(t.last_code == OKV_EUNAVAILABLE || t.last_code == OKV_ETIMEDOUT);
    assert_int_equal(atomic_load(&ran_inside), 0);
}

/* ---- garbage on the batched stream ----------------------------------------------- */

static void test_async__garbage_on_the_stream_leaves_the_node_serving(void **state)
{
    fx *f = *state;
    grpc_init();
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(f->srv.address, cr, NULL);
    grpc_channel_credentials_release(cr);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method = grpc_slice_from_static_string("/orderkv.v1.KV/Batch");
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_millis(10000, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                               NULL, dl, NULL);
    /* Field 1 claims 200 bytes that are not there; then an item for a
     * method the stream does not carry would follow, but the message is
     * unreadable as a whole. */
    static const char junk[] = "\x0a\xc8\x01garbage";
    grpc_slice sl = grpc_slice_from_copied_buffer(junk, sizeof junk - 1);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_metadata_array md, tr;
    grpc_metadata_array_init(&md);
    grpc_metadata_array_init(&tr);
    grpc_status_code st;
    grpc_slice details;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = bb;
    ops[2].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[2].data.recv_initial_metadata.recv_initial_metadata = &md;
    ops[3].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[3].data.recv_status_on_client.trailing_metadata = &tr;
    ops[3].data.recv_status_on_client.status = &st;
    ops[3].data.recv_status_on_client.status_details = &details;
    assert_int_equal(grpc_call_start_batch(call, ops, 4, call, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                                NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
    /* The server ended the stream with a clear error, not the deadline. */
    assert_int_equal(st, GRPC_STATUS_INVALID_ARGUMENT);
    char *why = grpc_slice_to_c_string(details);
    assert_non_null(strstr(why, "malformed BatchRequest"));
    gpr_free(why);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&md);
    grpc_metadata_array_destroy(&tr);
    grpc_byte_buffer_destroy(bb);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    grpc_shutdown();
    /* Still serving, batched and unary alike. */
    assert_int_equal(okv_put(f->c, "orders", "after", 5, "ok", 2, NULL, 0), OKV_OK);
    okv_status *s;
    assert_int_equal(okv_status_get(f->c, &s, 0), OKV_OK);
    okv_status_free(s);
}

/* ---- a node that predates the batched stream ------------------------------------ */

/* A gRPC server with only the unary Put of an older orderkvd: it answers
 * every Put with version 42 and everything else (KV.Batch among them)
 * with UNIMPLEMENTED, as any gRPC server does for a method it lacks. */
typedef struct old_server {
    grpc_server *srv;
    grpc_completion_queue *cq;
    pthread_t th;
    int port;
    atomic_int puts;
} old_server;

static void *old_server_main(void *arg)
{
    old_server *o = arg;
    for (;;) {
        grpc_call *call = NULL;
        grpc_call_details d;
        grpc_metadata_array md;
        grpc_call_details_init(&d);
        grpc_metadata_array_init(&md);
        int tag_req = 0;
        if (grpc_server_request_call(o->srv, &call, &d, &md, o->cq, o->cq, &tag_req) !=
            GRPC_CALL_OK)
            break;
        grpc_event ev = grpc_completion_queue_next(o->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                                   NULL);
        /* At shutdown the server's own notification may come before the
         * failed request: it is no call (a NULL call crashed this thread
         * now and then, under load). stop_old_server drains the rest. */
        if (ev.type != GRPC_OP_COMPLETE || !ev.success || ev.tag != &tag_req || !call) {
            grpc_call_details_destroy(&d);
            grpc_metadata_array_destroy(&md);
            break;   /* shutting down */
        }
        int is_put = grpc_slice_str_cmp(d.method, "/orderkv.v1.KV/Put") == 0;
        grpc_byte_buffer *in = NULL, *out = NULL;
        int cancelled = 0;
        grpc_op ops[5];
        memset(ops, 0, sizeof ops);
        size_t n = 0;
        if (is_put) {   /* read the request first */
            ops[0].op = GRPC_OP_RECV_MESSAGE;
            ops[0].data.recv_message.recv_message = &in;
            int tag_recv = 0;
            grpc_call_start_batch(call, ops, 1, &tag_recv, NULL);
            grpc_completion_queue_next(o->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            atomic_fetch_add(&o->puts, 1);
            /* PutResponse { version = 42 }: field 2, varint */
            static const char resp[] = { 0x10, 42 };
            grpc_slice sl = grpc_slice_from_copied_buffer(resp, sizeof resp);
            out = grpc_raw_byte_buffer_create(&sl, 1);
            grpc_slice_unref(sl);
            memset(ops, 0, sizeof ops);
        }
        grpc_slice status_details = grpc_slice_from_static_string(is_put ? "" : "no such method");
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        if (out) {
            ops[n].op = GRPC_OP_SEND_MESSAGE;
            ops[n++].data.send_message.send_message = out;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status =
            is_put ? GRPC_STATUS_OK : GRPC_STATUS_UNIMPLEMENTED;
        ops[n++].data.send_status_from_server.status_details = &status_details;
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &cancelled;
        int tag_reply = 0;
        grpc_call_start_batch(call, ops, n, &tag_reply, NULL);
        grpc_completion_queue_next(o->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (in)
            grpc_byte_buffer_destroy(in);
        if (out)
            grpc_byte_buffer_destroy(out);
        grpc_call_unref(call);
        grpc_call_details_destroy(&d);
        grpc_metadata_array_destroy(&md);
    }
    return NULL;
}

static int stop_old_server(old_server *o)
{
    int shutdown_tag = 0;
    grpc_server_shutdown_and_notify(o->srv, o->cq, &shutdown_tag);
    grpc_server_cancel_all_calls(o->srv);
    pthread_join(o->th, NULL);
    /* the shutdown tag (and anything left) is drained here */
    grpc_completion_queue_shutdown(o->cq);
    while (grpc_completion_queue_next(o->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_server_destroy(o->srv);
    grpc_completion_queue_destroy(o->cq);
    grpc_shutdown();
    return 0;
}

static void test_async__a_node_without_the_batched_stream_gets_unary_calls(void **state)
{
    (void)state;
    grpc_init();
    old_server o;
    memset(&o, 0, sizeof o);
    grpc_arg a = { GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, { .integer = 0 } };
    grpc_channel_args args = { 1, &a };
    o.srv = grpc_server_create(&args, NULL);
    o.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(o.srv, o.cq, NULL);
    grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
    o.port = grpc_server_add_http2_port(o.srv, "127.0.0.1:0", cr);
    grpc_server_credentials_release(cr);
    assert_true(o.port > 0);
    grpc_server_start(o.srv);
    assert_int_equal(pthread_create(&o.th, NULL, old_server_main, &o), 0);

    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", o.port);
    okv_client *c;
    assert_int_equal(okv_connect(&c, addr, NULL), OKV_OK);
    uint64_t v = 0;
    int rc = okv_put(c, "orders", "k", 1, "v", 1, &v, 5000);
    if (rc)
        fail_msg("put to an older node: %s: %s", okv_strerror(rc), okv_errmsg(c));
    assert_int_equal(v, 42);
    tally t = TALLY_INIT;
    for (int i = 0; i < 20; i++)
        assert_int_equal(okv_put_async(c, "orders", "k", 1, "v", 1, 5000, on_done, &t), OKV_OK);
    tally_wait(&t, 20);
    assert_int_equal(t.ok, 20);
    assert_int_equal(t.max_version, 42);
    assert_int_equal(atomic_load(&o.puts), 21);   /* each put reached it once */
    okv_close(c);
    stop_old_server(&o);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_async__many_in_flight_then_read_back),
        T(test_async__delete_scan_and_taken_results),
        T(test_async__batch_of_writes),
        T(test_async__callbacks_follow_the_threading_rules),
        T(test_async__close_waits_for_every_callback),
        T(test_async__dead_server_fails_cleanly_within_the_deadline),
        T(test_async__garbage_on_the_stream_leaves_the_node_serving),
        cmocka_unit_test(test_async__a_node_without_the_batched_stream_gets_unary_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
