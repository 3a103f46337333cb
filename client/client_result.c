/*
 * client_result.c — what an asynchronous callback sees (okv_result), and
 * batches of writes (okv_batch).
 */
#include <stdlib.h>
#include <string.h>

#include "client_result.h"
#include "orderkv.pb-c.h"

struct okv_result {
    client_op *op;                /* NULL for a batch's own result */
    int code;
    const char *errmsg;
    size_t n;                     /* a batch: its writes' results */
    okv_result *items;
};

typedef struct async_ctx {
    okv_callback cb;
    void *arg;
} async_ctx;

static void fill(okv_result *r, client_op *op)
{
    memset(r, 0, sizeof *r);
    r->op = op;
    r->code = op->rc;
    r->errmsg = op->rc ? op->err : "";
}

static void async_done(client_op *op)
{
    async_ctx *ctx = op->done_arg;
    okv_result r;
    fill(&r, op);
    ctx->cb(ctx->arg, &r);
    free(ctx);
    client_op_free(op);
}

void client_result_attach(client_op *op, okv_callback cb, void *arg)
{
    /* The context lives in the op's done_arg; allocation failure is
     * checked by the caller through op->done == NULL. */
    async_ctx *ctx = malloc(sizeof *ctx);
    if (ctx) {
        ctx->cb = cb;
        ctx->arg = arg;
    }
    op->done = ctx ? async_done : NULL;
    op->done_arg = ctx;
}

int okv_result_code(const okv_result *r) { return r ? r->code : OKV_EINVAL; }

const client_op *client_result_op(const okv_result *r) { return r ? r->op : NULL; }

const char *okv_result_errmsg(const okv_result *r) { return r && r->errmsg ? r->errmsg : ""; }

static const ProtobufCMessage *resp_of(const okv_result *r, enum client_method m)
{
    return r && r->op && r->op->m == m && r->code == OKV_OK ? r->op->resp : NULL;
}

uint64_t okv_result_version(const okv_result *r)
{
    const ProtobufCMessage *m;
    if ((m = resp_of(r, M_PUT)))
        return ((const Orderkv__V1__PutResponse *)m)->version;
    if ((m = resp_of(r, M_GET)))
        return ((const Orderkv__V1__GetResponse *)m)->version;
    if ((m = resp_of(r, M_TXN)))
        return ((const Orderkv__V1__TxnResponse *)m)->version;
    return 0;
}

int okv_result_existed(const okv_result *r)
{
    const ProtobufCMessage *m = resp_of(r, M_DELETE);
    return m ? (int)((const Orderkv__V1__DeleteResponse *)m)->existed : 0;
}

const void *okv_result_value(const okv_result *r, size_t *len_out)
{
    const ProtobufCMessage *m = resp_of(r, M_GET);
    if (len_out)
        *len_out = m ? ((const Orderkv__V1__GetResponse *)m)->value.len : 0;
    if (!m)
        return NULL;
    const uint8_t *d = ((const Orderkv__V1__GetResponse *)m)->value.data;
    return d ? (const void *)d : "";
}

okv_value *okv_result_take_value(const okv_result *r)
{
    const ProtobufCMessage *m = resp_of(r, M_GET);
    return m ? client_value_from(m) : NULL;
}

okv_scan_result *okv_result_take_scan(const okv_result *r)
{
    const ProtobufCMessage *m = resp_of(r, M_SCAN);
    if (!m)
        return NULL;
    okv_scan_result *s = client_scan_from((ProtobufCMessage *)m);
    if (s)
        r->op->resp = NULL;   /* moved: the op no longer frees it */
    return s;
}

ProtobufCMessage *client_result_take_resp(const okv_result *r)
{
    if (!r || !r->op || r->code != OKV_OK)
        return NULL;
    ProtobufCMessage *m = r->op->resp;
    r->op->resp = NULL;   /* moved: the op no longer frees it */
    return m;
}

size_t okv_result_count(const okv_result *r) { return r ? r->n : 0; }

const okv_result *okv_result_at(const okv_result *r, size_t i)
{
    return r && i < r->n ? &r->items[i] : NULL;
}

/* ---- batches of writes ------------------------------------------------------ */

typedef struct batch_write {
    int is_delete;
    char *table;
    uint8_t *key, *value;
    size_t key_len, value_len;
} batch_write;

struct okv_batch {
    batch_write *w;
    size_t n, cap;
};

int okv_batch_new(okv_batch **out)
{
    if (!out)
        return OKV_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? OKV_OK : OKV_ENOMEM;
}

void okv_batch_free(okv_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->w[i].table);
        free(b->w[i].key);
        free(b->w[i].value);
    }
    free(b->w);
    free(b);
}

size_t okv_batch_count(const okv_batch *b) { return b ? b->n : 0; }

static void *dup_bytes(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static int batch_add(okv_batch *b, int is_delete, const char *table, const void *key,
                     size_t key_len, const void *value, size_t value_len)
{
    if (!b)
        return OKV_EINVAL;
    if (client_check_table_key(NULL, table, key, key_len))
        return OKV_EINVAL;
    if (value_len > OKV_MAX_VALUE_LEN || (value_len && !value))
        return client_fail(NULL, OKV_EINVAL, "value is %zu bytes (limit %u) or NULL", value_len,
                           OKV_MAX_VALUE_LEN);
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        batch_write *w = realloc(b->w, cap * sizeof *w);
        if (!w)
            return OKV_ENOMEM;
        b->w = w;
        b->cap = cap;
    }
    batch_write *w = &b->w[b->n];
    memset(w, 0, sizeof *w);
    w->is_delete = is_delete;
    w->table = strdup(table);
    w->key = dup_bytes(key, key_len);
    w->value = dup_bytes(value, value_len);
    w->key_len = key_len;
    w->value_len = value_len;
    if (!w->table || !w->key || !w->value) {
        free(w->table);
        free(w->key);
        free(w->value);
        return OKV_ENOMEM;
    }
    b->n++;
    return OKV_OK;
}

int okv_batch_put(okv_batch *b, const char *table, const void *key, size_t key_len,
                  const void *value, size_t value_len)
{
    return batch_add(b, 0, table, key, key_len, value, value_len);
}

int okv_batch_delete(okv_batch *b, const char *table, const void *key, size_t key_len)
{
    return batch_add(b, 1, table, key, key_len, NULL, 0);
}

typedef struct batch_run {
    okv_callback cb;
    void *arg;
    size_t n;
    size_t left;                  /* completion thread only */
    client_op **ops;
    okv_result *items;
} batch_run;

static void batch_run_free(batch_run *br)
{
    for (size_t i = 0; i < br->n; i++)
        client_op_free(br->ops[i]);
    free(br->ops);
    free(br->items);
    free(br);
}

static void batch_item_done(client_op *op)
{
    batch_run *br = op->done_arg;
    if (--br->left > 0)
        return;
    okv_result all;
    memset(&all, 0, sizeof all);
    all.n = br->n;
    all.items = br->items;
    for (size_t i = 0; i < br->n; i++) {
        fill(&br->items[i], br->ops[i]);
        if (br->items[i].code && !all.code) {
            all.code = br->items[i].code;
            all.errmsg = br->items[i].errmsg;
        }
    }
    if (!all.errmsg)
        all.errmsg = "";
    br->cb(br->arg, &all);
    batch_run_free(br);
}

int okv_batch_submit(okv_client *c, const okv_batch *b, int timeout_ms, okv_callback cb,
                     void *arg)
{
    if (!c || !b || !cb)
        return OKV_EINVAL;
    if (b->n == 0)
        return client_fail(c, OKV_EINVAL, "the batch holds no writes");
    batch_run *br = calloc(1, sizeof *br);
    if (br) {
        br->ops = calloc(b->n, sizeof *br->ops);
        br->items = calloc(b->n, sizeof *br->items);
    }
    if (!br || !br->ops || !br->items) {
        if (br)
            batch_run_free(br);
        return client_fail(c, OKV_ENOMEM, "out of memory");
    }
    br->cb = cb;
    br->arg = arg;
    br->n = b->n;
    br->left = b->n;
    for (size_t i = 0; i < b->n; i++) {
        const batch_write *w = &b->w[i];
        int rc;
        br->ops[i] = w->is_delete
                         ? client_delete_op(c, w->table, w->key, w->key_len, timeout_ms, &rc)
                         : client_put_op(c, w->table, w->key, w->key_len, w->value,
                                         w->value_len, 0, 0, timeout_ms, &rc);
        if (!br->ops[i]) {
            batch_run_free(br);
            return rc;
        }
        br->ops[i]->done = batch_item_done;
        br->ops[i]->done_arg = br;
    }
    /* All of them leave together: one message per node. */
    client_cork();
    for (size_t i = 0; i < b->n; i++)
        client_op_submit(br->ops[i]);
    client_uncork();
    return OKV_OK;
}
