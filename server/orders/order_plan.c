/*
 * order_plan.c — the plan container: ops, the response, and what a failed
 * transaction of a plan means. The planners themselves are in
 * order_plan_*.c, one family per file.
 */
#include "order_plan_int.h"

#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "order_money.h"
#include "order_schema.h"

ord_plan *plan_new(void) { return calloc(1, sizeof(ord_plan)); }

static void free_ops(ord_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)ops[i].value);
    free(ops);
}

void ord_plan_free(ord_plan *p)
{
    if (!p)
        return;
    free_ops(p->conds, p->n_conds);
    free_ops(p->writes, p->n_writes);
    free(p->response);
    free(p);
}

size_t ord_plan_len(const ord_plan *p) { return p->n_conds + p->n_writes; }
size_t ord_plan_conditions(const ord_plan *p) { return p->n_conds; }
int ord_plan_is_replay(const ord_plan *p) { return p->replay; }
int ord_plan_has_idem(const ord_plan *p) { return p->has_idem; }

const ord_op *ord_plan_op(const ord_plan *p, size_t i)
{
    if (i < p->n_conds)
        return &p->conds[i];
    i -= p->n_conds;
    return i < p->n_writes ? &p->writes[i] : NULL;
}

const uint8_t *ord_plan_response(const ord_plan *p, size_t *len)
{
    *len = p->response_len;
    return p->response;
}

/* Appends a zeroed op to conditions or writes; NULL once out of memory. */
static ord_op *push(ord_plan *p, int is_write)
{
    if (p->oom)
        return NULL;
    ord_op **v = is_write ? &p->writes : &p->conds;
    size_t *n = is_write ? &p->n_writes : &p->n_conds;
    size_t *cap = is_write ? &p->cap_writes : &p->cap_conds;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        ord_op *nv = realloc(*v, nc * sizeof **v);
        if (!nv) {
            p->oom = 1;
            return NULL;
        }
        *v = nv;
        *cap = nc;
    }
    ord_op *op = &(*v)[(*n)++];
    memset(op, 0, sizeof *op);
    return op;
}

static ord_op *add_op(ord_plan *p, ord_op_kind kind, ord_table t, const ord_key *k)
{
    ord_op *op = push(p, kind >= ORD_OP_PUT);
    if (op) {
        op->kind = kind;
        op->table = t;
        op->key = *k;
        op->on_fail = ORD_FAIL_RETRY;
    }
    return op;
}

void plan_absent(ord_plan *p, ord_table t, const ord_key *k) { add_op(p, ORD_OP_ABSENT, t, k); }

void plan_version_is(ord_plan *p, ord_table t, const ord_key *k, uint64_t version)
{
    ord_op *op = add_op(p, ORD_OP_VERSION_IS, t, k);
    if (op)
        op->version = version;
}

/* Packs m into a new buffer: NULL (and p->oom) on failure. */
static uint8_t *pack(ord_plan *p, const ProtobufCMessage *m, size_t *len)
{
    if (p->oom)
        return NULL;
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);   /* an all-default message packs to 0 bytes */
    if (!buf) {
        p->oom = 1;
        return NULL;
    }
    protobuf_c_message_pack(m, buf);
    return buf;
}

static void put_bytes(ord_plan *p, ord_table t, const ord_key *k, uint8_t *buf, size_t len)
{
    ord_op *op = buf ? add_op(p, ORD_OP_PUT, t, k) : NULL;
    if (!op) {
        free(buf);
        return;
    }
    op->value = buf;
    op->value_len = len;
}

void plan_put_msg(ord_plan *p, ord_table t, const ord_key *k, const ProtobufCMessage *m)
{
    size_t len = 0;
    uint8_t *buf = pack(p, m, &len);
    put_bytes(p, t, k, buf, len);
}

void plan_put_counter(ord_plan *p, ord_table t, const ord_key *k, int64_t v)
{
    uint8_t *buf = p->oom ? NULL : malloc(8);
    if (!buf) {
        p->oom = 1;
        return;
    }
    /* okv_counter_encode's format: big-endian two's complement. */
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--, u >>= 8)
        buf[i] = (uint8_t)u;
    put_bytes(p, t, k, buf, 8);
}

void plan_add(ord_plan *p, ord_table t, const ord_key *k, int64_t delta, int has_floor,
              int64_t floor, ord_on_fail on_fail)
{
    ord_op *op = add_op(p, ORD_OP_ADD, t, k);
    if (op) {
        op->delta = delta;
        op->has_floor = has_floor;
        op->floor = has_floor ? floor : 0;
        op->on_fail = on_fail;
    }
}

void plan_respond(ord_plan *p, const ProtobufCMessage *m)
{
    free(p->response);
    p->response = pack(p, m, &p->response_len);
}

void plan_idem(ord_plan *p, const ord_key *k, ord_idem_kind kind, ord_hash128 h, int64_t now_ms)
{
    Orderkv__V1__IdempotencyRecord rec;
    ord_idem_record_init(&rec, kind, h, p->response, p->response_len, now_ms);
    ord_table t = ord_idem_kind_table(kind);
    /* Planted bug orders.idem.skip (jepsen/tests/planted.sh): without the
     * "record absent" condition, two copies of one request that both read
     * no record both commit: one key, two effects. */
    if (!OKV_FAILPOINT("orders.idem.skip"))
        plan_absent(p, t, k);
    plan_put_msg(p, t, k, &rec.base);
    p->has_idem = 1;
}

static int copy_response(ord_plan *p, const uint8_t *data, size_t len)
{
    p->response = malloc(len ? len : 1);
    if (!p->response)
        return -1;
    if (len)
        memcpy(p->response, data, len);
    p->response_len = len;
    return 0;
}

int plan_try_replay(ord_plan **out, const Orderkv__V1__IdempotencyRecord *rec,
                    ord_idem_kind kind, ord_hash128 h, ord_error *err)
{
    if (!rec)
        return 0;
    int rc = ord_idem_check(rec, kind, h, err);
    if (rc)
        return rc;
    ord_plan *p = plan_new();
    if (!p || copy_response(p, rec->response.data, rec->response.len) != 0) {
        ord_plan_free(p);
        return ord_error_set_code(err, OKV_ENOMEM, ORD_R(NONE), "out of memory");
    }
    p->replay = 1;
    *out = p;
    return 1;
}

int plan_answer(ord_plan **out, const ProtobufCMessage *m, ord_error *err)
{
    ord_plan *p = plan_new();
    if (p)
        plan_respond(p, m);
    return plan_finish(out, p, err);
}

int plan_finish(ord_plan **out, ord_plan *p, ord_error *err)
{
    if (!p || p->oom) {
        ord_plan_free(p);
        *out = NULL;
        return ord_error_set_code(err, OKV_ENOMEM, ORD_R(NONE), "out of memory building a plan");
    }
    *out = p;
    return 0;
}

int plan_text_check(const char *what, const char *s, size_t max, ord_error *err)
{
    size_t len = s ? strnlen(s, max + 1) : 0;
    if (len > max)
        return ord_error_set(err, ORD_R(INVALID), "%s is longer than %zu bytes", what, max);
    return 0;
}

int plan_order_found(const Orderkv__V1__Order *o, const char *customer_id,
                     const char *order_id, ord_error *err)
{
    if (!o)
        return ord_error_set(err, ORD_R(NOT_FOUND), "customer %s has no order %s", customer_id,
                             order_id);
    return ord_schema_check("order", order_id, o->schema_version, err);
}

/* ---- failures ------------------------------------------------------------------ */

/* The key's first part: the account id of a balance, the sku of a stock counter. */
static void owner_of(const ord_op *op, char *buf, size_t cap)
{
    const uint8_t *slash = memchr(op->key.buf, '/', op->key.len);
    size_t n = slash ? (size_t)(slash - op->key.buf) : op->key.len;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, op->key.buf, n);
    buf[n] = '\0';
}

int ord_plan_failure(const ord_plan *p, uint32_t failed, int txn_reason, ord_error *err)
{
    const ord_op *op = ord_plan_op(p, failed);
    if (!op)
        return ord_error_set_code(err, OKV_EINTERNAL, ORD_R(NONE),
                                  "the transaction reported item %u; the plan has %zu", failed,
                                  ord_plan_len(p));
    char owner[ORD_ID_MAX + 1];
    owner_of(op, owner, sizeof owner);
    switch (txn_reason) {
    case OKV_TXN_CONDITION:
    case OKV_TXN_LOCKED:
        return ORD_PLAN_RETRY;
    case OKV_TXN_FLOOR:
        if (op->on_fail == ORD_FAIL_FUNDS) {
            char amount[ORD_MONEY_TEXT_MAX];
            ord_money_format(amount, sizeof amount, -op->delta, p->currency);
            return ord_error_set(err, ORD_R(INSUFFICIENT_FUNDS),
                                 "account %s holds less than %s; nothing was charged", owner,
                                 amount);
        }
        if (op->on_fail == ORD_FAIL_SOLD_OUT)
            return ord_error_set(err, ORD_R(SOLD_OUT),
                                 "sku %s has fewer than %lld units available; nothing was "
                                 "reserved", owner, (long long)-op->delta);
        return ORD_PLAN_RETRY;
    case OKV_TXN_OVERFLOW:
        return ord_error_set(err, ORD_R(INVALID),
                             "%s %s would leave the int64 range; nothing applied",
                             op->table == ORD_TABLE_STOCK ? "the stock of sku" : "the balance of account",
                             owner);
    case OKV_TXN_NOT_COUNTER:
        return ord_error_set_code(err, OKV_ECORRUPT, ORD_R(INVALID),
                                  "%s key of %s holds a value that is not an 8-byte counter",
                                  ord_table_name(op->table), owner);
    default:
        return ord_error_set_code(err, OKV_EINTERNAL, ORD_R(NONE),
                                  "transaction failed with unexpected reason %d at item %u",
                                  txn_reason, failed);
    }
}

int ord_plan_conflict(const ord_plan *p, ord_error *err)
{
    if (p->has_idem)
        return ord_error_set(err, ORD_R(IN_PROGRESS),
                             "a request with this idempotency key is being applied right now; "
                             "resend it shortly to get its result");
    return ord_error_set_code(err, OKV_ECONFLICT, ORD_R(NONE),
                              "the records kept changing under this request; try again");
}
