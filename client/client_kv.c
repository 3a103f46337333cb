/*
 * client_kv.c — get, put, delete, scan and their result objects.
 */
#include <stdlib.h>
#include <string.h>

#include "client_async.h"
#include "client_result.h"
#include "orderkv.pb-c.h"

struct okv_value {
    uint64_t version;
    size_t len;
    char data[];     /* len bytes + a NUL */
};

struct okv_scan_result {
    Orderkv__V1__ScanResponse *resp;
};

static int put_sync(okv_client *c, const char *table, const void *key,
                    size_t key_len, const void *value, size_t value_len, int check,
                    uint64_t expected, uint64_t *version_out, int timeout_ms);

/* Arguments are checked here too, so a bad call fails at once with a precise
 * message instead of a round trip. */
int client_check_table_key(okv_client *c, const char *table, const void *key, size_t key_len)
{
    if (!table || !table[0])
        return client_fail(c, OKV_EINVAL, "table name is empty");
    if (strlen(table) > OKV_MAX_TABLE_NAME_LEN)
        return client_fail(c, OKV_EINVAL, "table name is longer than %u bytes",
                           OKV_MAX_TABLE_NAME_LEN);
    if (!key || key_len == 0)
        return client_fail(c, OKV_EINVAL, "key is empty");
    if (key_len > OKV_MAX_KEY_LEN)
        return client_fail(c, OKV_EINVAL, "key is %zu bytes; the limit is %u", key_len,
                           OKV_MAX_KEY_LEN);
    return OKV_OK;
}

/* ---- building ops (shared by the synchronous and asynchronous calls) ---- */

static client_op *get_op(okv_client *c, const char *table, const void *key, size_t key_len,
                         int timeout_ms, int *rc)
{
    if ((*rc = client_check_table_key(c, table, key, key_len)))
        return NULL;
    Orderkv__V1__GetRequest req = ORDERKV__V1__GET_REQUEST__INIT;
    req.table = (char *)table;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;
    /* Sent to the partition's leader when known: it answers from its lease
     * without asking the followers (any replica could answer, slower). */
    client_route_key rk = { table, key, key_len, -1 };
    client_op *op = client_op_new(c, M_GET, &orderkv__v1__get_response__descriptor, 0,
                                  timeout_ms, &rk);
    if (!op || client_op_pack(op, &req.base)) {
        client_op_free(op);
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    return op;
}

client_op *client_put_op(okv_client *c, const char *table, const void *key, size_t key_len,
                         const void *value, size_t value_len, int check, uint64_t expected,
                         int timeout_ms, int *rc)
{
    if ((*rc = client_check_table_key(c, table, key, key_len)))
        return NULL;
    if (value_len > OKV_MAX_VALUE_LEN) {
        *rc = client_fail(c, OKV_EINVAL, "value is %zu bytes; the limit is %u", value_len,
                          OKV_MAX_VALUE_LEN);
        return NULL;
    }
    if (value_len && !value) {
        *rc = client_fail(c, OKV_EINVAL, "value is NULL but value_len is %zu", value_len);
        return NULL;
    }
    client_route_key rk = { table, key, key_len, -1 };
    client_op *op = client_op_new(c, M_PUT, &orderkv__v1__put_response__descriptor, 1,
                                  timeout_ms, &rk);
    if (!op) {
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    Orderkv__V1__PutRequest req = ORDERKV__V1__PUT_REQUEST__INIT;
    req.table = (char *)table;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;
    req.value.data = (uint8_t *)value;
    req.value.len = value_len;
    req.client_id = c->opts.client_id;
    req.watermark = op->watermark;
    req.request_id = op->w.id;
    req.check_version = check;
    req.expected_version = expected;
    if (client_op_pack(op, &req.base)) {
        client_op_free(op);
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    return op;
}

client_op *client_delete_op(okv_client *c, const char *table, const void *key, size_t key_len,
                            int timeout_ms, int *rc)
{
    if ((*rc = client_check_table_key(c, table, key, key_len)))
        return NULL;
    client_route_key rk = { table, key, key_len, -1 };
    client_op *op = client_op_new(c, M_DELETE, &orderkv__v1__delete_response__descriptor, 1,
                                  timeout_ms, &rk);
    if (!op) {
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    Orderkv__V1__DeleteRequest req = ORDERKV__V1__DELETE_REQUEST__INIT;
    req.table = (char *)table;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;
    req.client_id = c->opts.client_id;
    req.watermark = op->watermark;
    req.request_id = op->w.id;
    if (client_op_pack(op, &req.base)) {
        client_op_free(op);
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    return op;
}

static int check_scan(okv_client *c, const char *table, const okv_scan_opts *o);

static client_op *scan_op(okv_client *c, const char *table, const okv_scan_opts *opts, int *rc)
{
    okv_scan_opts defaults = OKV_SCAN_OPTS_INIT;
    const okv_scan_opts *o = opts ? opts : &defaults;
    if ((*rc = check_scan(c, table, o)))
        return NULL;
    Orderkv__V1__ScanRequest req = ORDERKV__V1__SCAN_REQUEST__INIT;
    req.table = (char *)table;
    req.prefix.data = (uint8_t *)o->prefix;
    req.prefix.len = o->prefix_len;
    req.start.data = (uint8_t *)o->start;
    req.start.len = o->start_len;
    req.end.data = (uint8_t *)o->end;
    req.end.len = o->end_len;
    req.limit = o->limit;
    req.resume_token.data = (uint8_t *)o->resume;
    req.resume_token.len = o->resume_len;
    client_op *op = client_op_new(c, M_SCAN, &orderkv__v1__scan_response__descriptor, 0,
                                  o->timeout_ms, NULL);
    if (!op || client_op_pack(op, &req.base)) {
        client_op_free(op);
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    return op;
}

/* ---- synchronous calls: an op and a wait ---------------------------------- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} waiter;

static void waiter_done(client_op *op)
{
    waiter *w = op->done_arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int client_op_wait(okv_client *c, client_op *op)
{
    if (client_on_completion_thread())
        return client_fail(c, OKV_EINVAL, "a synchronous call from a callback would wait for "
                                          "itself; use the *_async calls in callbacks");
    waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    op->done = waiter_done;
    op->done_arg = &w;
    client_op_submit(op);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (op->rc)
        client_fail(c, op->rc, "%s", op->err);
    return op->rc;
}

/* Submits op and waits for it; on OKV_OK *resp is its response (the
 * caller frees it). Frees op. */
static int run_sync(okv_client *c, client_op *op, ProtobufCMessage **resp)
{
    *resp = NULL;
    int rc = client_op_wait(c, op);
    if (rc == OKV_OK) {
        *resp = op->resp;
        op->resp = NULL;
    }
    client_op_free(op);
    return rc;
}

okv_value *client_value_new(const void *data, size_t len, uint64_t version)
{
    okv_value *v = malloc(sizeof *v + len + 1);
    if (!v)
        return NULL;
    v->version = version;
    v->len = len;
    if (len)
        memcpy(v->data, data, len);
    v->data[len] = '\0';
    return v;
}

okv_value *client_value_from(const ProtobufCMessage *m)
{
    const Orderkv__V1__GetResponse *resp = (const Orderkv__V1__GetResponse *)m;
    return client_value_new(resp->value.data, resp->value.len, resp->version);
}

int okv_get(okv_client *c, const char *table, const void *key, size_t key_len, okv_value **out,
            int timeout_ms)
{
    if (!c || !out)
        return OKV_EINVAL;
    *out = NULL;
    int rc;
    client_op *op = get_op(c, table, key, key_len, timeout_ms, &rc);
    if (!op)
        return rc;
    ProtobufCMessage *m;
    if ((rc = run_sync(c, op, &m)))
        return rc;
    okv_value *v = client_value_from(m);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!v)
        return client_fail(c, OKV_ENOMEM, "out of memory");
    *out = v;
    return OKV_OK;
}

const void *okv_value_data(const okv_value *v) { return v->data; }
size_t okv_value_len(const okv_value *v) { return v->len; }
uint64_t okv_value_version(const okv_value *v) { return v->version; }
void okv_value_free(okv_value *v) { free(v); }

int okv_put(okv_client *c, const char *table, const void *key, size_t key_len, const void *value,
            size_t value_len, uint64_t *version_out, int timeout_ms)
{
    return put_sync(c, table, key, key_len, value, value_len, 0, 0, version_out,
                              timeout_ms);
}

int okv_put_if(okv_client *c, const char *table, const void *key, size_t key_len,
               const void *value, size_t value_len, uint64_t expected_version,
               uint64_t *version_out, int timeout_ms)
{
    return put_sync(c, table, key, key_len, value, value_len, 1, expected_version,
                              version_out, timeout_ms);
}

static int put_sync(okv_client *c, const char *table, const void *key,
                    size_t key_len, const void *value, size_t value_len, int check,
                    uint64_t expected, uint64_t *version_out, int timeout_ms)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = client_put_op(c, table, key, key_len, value, value_len, check, expected,
                                  timeout_ms, &rc);
    if (!op)
        return rc;
    ProtobufCMessage *m;
    if ((rc = run_sync(c, op, &m)))
        return rc;
    if (version_out)
        *version_out = ((Orderkv__V1__PutResponse *)m)->version;
    protobuf_c_message_free_unpacked(m, NULL);
    return OKV_OK;
}

int okv_delete(okv_client *c, const char *table, const void *key, size_t key_len,
               int *existed_out, int timeout_ms)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = client_delete_op(c, table, key, key_len, timeout_ms, &rc);
    if (!op)
        return rc;
    ProtobufCMessage *m;
    if ((rc = run_sync(c, op, &m)))
        return rc;
    if (existed_out)
        *existed_out = ((Orderkv__V1__DeleteResponse *)m)->existed;
    protobuf_c_message_free_unpacked(m, NULL);
    return OKV_OK;
}

static int check_scan(okv_client *c, const char *table, const okv_scan_opts *o)
{
    if (!table || !table[0])
        return client_fail(c, OKV_EINVAL, "table name is empty");
    if (o->version != OKV_SCAN_OPTS_VERSION)
        return client_fail(c, OKV_EINVAL, "okv_scan_opts.version is %u; this library is %d",
                           o->version, OKV_SCAN_OPTS_VERSION);
    if (o->prefix_len && (o->start_len || o->end_len))
        return client_fail(c, OKV_EINVAL,
                           "give a scan either a prefix or a start/end range, not both");
    if ((o->prefix_len && !o->prefix) || (o->start_len && !o->start) || (o->end_len && !o->end) ||
        (o->resume_len && !o->resume))
        return client_fail(c, OKV_EINVAL, "a scan bound has a length but no bytes");
    if (o->limit > OKV_SCAN_MAX_LIMIT)
        return client_fail(c, OKV_EINVAL, "scan limit %u is over the maximum %u", o->limit,
                           OKV_SCAN_MAX_LIMIT);
    return OKV_OK;
}

okv_scan_result *client_scan_from(ProtobufCMessage *m)
{
    okv_scan_result *r = malloc(sizeof *r);
    if (r)
        r->resp = (Orderkv__V1__ScanResponse *)m;
    return r;
}

int okv_scan(okv_client *c, const char *table, const okv_scan_opts *opts, okv_scan_result **out)
{
    if (!c || !out)
        return OKV_EINVAL;
    *out = NULL;
    int rc;
    client_op *op = scan_op(c, table, opts, &rc);
    if (!op)
        return rc;
    ProtobufCMessage *m;
    if ((rc = run_sync(c, op, &m)))
        return rc;
    okv_scan_result *r = client_scan_from(m);
    if (!r) {
        protobuf_c_message_free_unpacked(m, NULL);
        return client_fail(c, OKV_ENOMEM, "out of memory");
    }
    *out = r;
    return OKV_OK;
}

/* ---- asynchronous calls ---------------------------------------------------- */

int client_op_submit_async(okv_client *c, client_op *op, okv_callback cb, void *arg)
{
    if (!cb) {
        client_op_free(op);
        return client_fail(c, OKV_EINVAL, "no callback given");
    }
    client_result_attach(op, cb, arg);
    if (!op->done) {
        client_op_free(op);
        return client_fail(c, OKV_ENOMEM, "out of memory");
    }
    client_op_submit(op);
    return OKV_OK;
}

int okv_get_async(okv_client *c, const char *table, const void *key, size_t key_len,
                  int timeout_ms, okv_callback cb, void *arg)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = get_op(c, table, key, key_len, timeout_ms, &rc);
    return op ? client_op_submit_async(c, op, cb, arg) : rc;
}

int okv_put_async(okv_client *c, const char *table, const void *key, size_t key_len,
                  const void *value, size_t value_len, int timeout_ms, okv_callback cb,
                  void *arg)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op =
        client_put_op(c, table, key, key_len, value, value_len, 0, 0, timeout_ms, &rc);
    return op ? client_op_submit_async(c, op, cb, arg) : rc;
}

int okv_put_if_async(okv_client *c, const char *table, const void *key, size_t key_len,
                     const void *value, size_t value_len, uint64_t expected_version,
                     int timeout_ms, okv_callback cb, void *arg)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = client_put_op(c, table, key, key_len, value, value_len, 1,
                                  expected_version, timeout_ms, &rc);
    return op ? client_op_submit_async(c, op, cb, arg) : rc;
}

int okv_delete_async(okv_client *c, const char *table, const void *key, size_t key_len,
                     int timeout_ms, okv_callback cb, void *arg)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = client_delete_op(c, table, key, key_len, timeout_ms, &rc);
    return op ? client_op_submit_async(c, op, cb, arg) : rc;
}

int okv_scan_async(okv_client *c, const char *table, const okv_scan_opts *opts, okv_callback cb,
                   void *arg)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = scan_op(c, table, opts, &rc);
    return op ? client_op_submit_async(c, op, cb, arg) : rc;
}

size_t okv_scan_result_count(const okv_scan_result *r) { return r->resp->n_items; }

const void *okv_scan_result_key(const okv_scan_result *r, size_t i, size_t *len_out)
{
    if (i >= r->resp->n_items)
        return NULL;
    if (len_out)
        *len_out = r->resp->items[i]->key.len;
    return r->resp->items[i]->key.data;
}

const void *okv_scan_result_value(const okv_scan_result *r, size_t i, size_t *len_out)
{
    if (i >= r->resp->n_items)
        return NULL;
    if (len_out)
        *len_out = r->resp->items[i]->value.len;
    /* protobuf-c leaves empty bytes fields NULL; callers get "" instead. */
    return r->resp->items[i]->value.data ? (const void *)r->resp->items[i]->value.data : "";
}

uint64_t okv_scan_result_version(const okv_scan_result *r, size_t i)
{
    return i < r->resp->n_items ? r->resp->items[i]->version : 0;
}

const void *okv_scan_result_resume(const okv_scan_result *r, size_t *len_out)
{
    if (len_out)
        *len_out = r->resp->resume_token.len;
    return r->resp->resume_token.len ? r->resp->resume_token.data : NULL;
}

void okv_scan_result_free(okv_scan_result *r)
{
    if (!r)
        return;
    protobuf_c_message_free_unpacked(&r->resp->base, NULL);
    free(r);
}
