/*
 * service_kv.c — orderkv.v1.KV: Get, Put, Delete, Scan.
 *
 * Single-node mode. Reads run on the completion-queue thread that received
 * them (a RocksDB point read is microseconds). Writes become the commands
 * cluster mode proposes (command.h) and go to the committer, which applies
 * them with the state machine and answers from its completer thread once
 * durable, so no synced write ever runs on a queue thread.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "node.h"
#include "orderkv.pb-c.h"

uint64_t node_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int service_error_code(int code)
{
    switch (code) {
    case OKV_OK: return ORDERKV__V1__ERROR_CODE__OK;
    case OKV_ENOTFOUND: return ORDERKV__V1__ERROR_CODE__NOT_FOUND;
    case OKV_EINVAL:
    case OKV_EPROTO: return ORDERKV__V1__ERROR_CODE__INVALID_ARGUMENT;
    case OKV_ENOTLEADER: return ORDERKV__V1__ERROR_CODE__NOT_LEADER;
    case OKV_ECONFLICT: return ORDERKV__V1__ERROR_CODE__CONFLICT;
    case OKV_ECONDITION: return ORDERKV__V1__ERROR_CODE__CONDITION_FAILED;
    case OKV_EILLEGAL: return ORDERKV__V1__ERROR_CODE__ILLEGAL_TRANSITION;
    case OKV_EFUNDS: return ORDERKV__V1__ERROR_CODE__INSUFFICIENT_FUNDS;
    case OKV_ESOLDOUT: return ORDERKV__V1__ERROR_CODE__SOLD_OUT;
    case OKV_EIDEMPOTENCY: return ORDERKV__V1__ERROR_CODE__IDEMPOTENCY_KEY_REUSED;
    case OKV_EINPROGRESS: return ORDERKV__V1__ERROR_CODE__IN_PROGRESS;
    case OKV_EPERMISSION: return ORDERKV__V1__ERROR_CODE__PERMISSION_DENIED;
    case OKV_EAUTH: return ORDERKV__V1__ERROR_CODE__UNAUTHENTICATED;
    case OKV_EUNAVAILABLE: return ORDERKV__V1__ERROR_CODE__UNAVAILABLE;
    case OKV_ETIMEDOUT: return ORDERKV__V1__ERROR_CODE__TIMEOUT;
    case OKV_ECORRUPT: return ORDERKV__V1__ERROR_CODE__CORRUPTION;
    case OKV_EUNKNOWN: return ORDERKV__V1__ERROR_CODE__UNKNOWN_OUTCOME;
    case OKV_EUNIMPLEMENTED: return ORDERKV__V1__ERROR_CODE__UNIMPLEMENTED;
    default: return ORDERKV__V1__ERROR_CODE__INTERNAL;
    }
}

/* Packs msg into a stack buffer when small, else the heap, and replies. */
void service_reply_message(rpc_call *call, const ProtobufCMessage *msg)
{
    uint8_t stack[4096];
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = len <= sizeof stack ? stack : malloc(len);
    if (!buf) {
        rpc_call_reply(call, OKV_ENOMEM, "out of memory encoding the response", NULL, 0);
        return;
    }
    protobuf_c_message_pack(msg, buf);
    rpc_call_reply(call, OKV_OK, NULL, buf, len);
    if (buf != stack)
        free(buf);
}

void service_reply_error(rpc_call *call, int code, const char *msg)
{
    Orderkv__V1__Error e = ORDERKV__V1__ERROR__INIT;
    e.code = service_error_code(code);
    e.message = (char *)msg;
    Orderkv__V1__GetResponse r = ORDERKV__V1__GET_RESPONSE__INIT;
    r.error = &e;
    uint8_t buf[OKV_ERRMSG_MAX + 64];
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    if (len > sizeof buf) {
        rpc_call_reply(call, code, msg, NULL, 0);
        return;
    }
    protobuf_c_message_pack(&r.base, buf);
    rpc_call_reply(call, code, msg, buf, len);
}

static void handle_get(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    request r;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_decode(&r, REQ_GET, kvstore_catalog(n->kv), buf, len, &err);
    if (rc) {
        service_reply_error(call, rc, err.msg);
        return;
    }
    uint8_t *val = NULL;
    size_t vlen = 0;
    uint64_t version = 0;
    rc = kvstore_get(n->kv, r.table, r.partition, r.key, r.key_len, &val, &vlen, &version, &err);
    atomic_fetch_add(&n->reads, 1);
    request_release(&r);
    if (rc) {
        if (rc != OKV_ENOTFOUND)
            OKV_ERROR("get failed: %s: %s", okv_strerror(rc), err.msg);
        service_reply_error(call, rc, err.msg);
        return;
    }
    service_reply_value(call, val, vlen, version);
    free(val);
}

void service_reply_value(rpc_call *call, const uint8_t *val, size_t len, uint64_t version)
{
    Orderkv__V1__GetResponse resp = ORDERKV__V1__GET_RESPONSE__INIT;
    resp.value.data = (uint8_t *)val;
    resp.value.len = len;
    resp.version = version;
    service_reply_message(call, &resp.base);
}

void service_reply_applied(rpc_call *call, int is_delete, const command_result *r)
{
    if (r->code == OKV_ECONFLICT)
        service_reply_error(call, OKV_ECONFLICT, "version condition failed");
    else if (r->code == OKV_EUNAVAILABLE)
        service_reply_error(call, r->code, "the key is locked by a transaction across partitions "
                                           "in progress; nothing applied, retry");
    else if (r->code)
        service_reply_error(call, r->code, "the write was refused when applied");
    else
        service_reply_write(call, is_delete, r->version, r->existed);
}

void service_reply_write(rpc_call *call, int is_delete, uint64_t version, int existed)
{
    if (is_delete) {
        Orderkv__V1__DeleteResponse resp = ORDERKV__V1__DELETE_RESPONSE__INIT;
        resp.existed = existed;
        resp.version = version;
        service_reply_message(call, &resp.base);
    } else {
        Orderkv__V1__PutResponse resp = ORDERKV__V1__PUT_RESPONSE__INIT;
        resp.version = version;
        service_reply_message(call, &resp.base);
    }
}

/* A write on its way through the committer; freed when answered. */
typedef struct pending_write {
    commit_op op;          /* first: the committer hands back &op */
    rpc_call *call;
    request req;           /* keeps key and value alive */
} pending_write;

/* The answers are cluster mode's (service_kv_raft.c): the same command
 * applied by the same state machine gives the same result. */
static void write_done(commit_op *op)
{
    pending_write *pw = (pending_write *)op;
    const command_result *r = &op->result;
    if (op->code) {
        OKV_WARN("write failed: %s: %s", okv_strerror(op->code), op->err.msg);
        service_reply_error(pw->call, op->code, op->err.msg);
    } else {
        service_reply_applied(pw->call, op->cmd.op == CMD_DELETE, r);
    }
    request_release(&pw->req);
    free(pw);
}

static void handle_write(rpc_call *call, const uint8_t *buf, size_t len, node *n,
                         enum request_kind kind)
{
    pending_write *pw = calloc(1, sizeof *pw);
    if (!pw) {
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        return;
    }
    okv_error err;
    okv_error_clear(&err);
    int rc = request_decode(&pw->req, kind, kvstore_catalog(n->kv), buf, len, &err);
    if (rc) {
        free(pw);
        service_reply_error(call, rc, err.msg);
        return;
    }
    const request *r = &pw->req;
    pw->call = call;
    pw->op.done = write_done;
    request_to_command(r, &pw->op.cmd);   /* as cluster mode proposes it */
    committer_submit(n->com, &pw->op);
}

static void handle_put(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    handle_write(call, buf, len, arg, REQ_PUT);
}

static void handle_delete(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    handle_write(call, buf, len, arg, REQ_DELETE);
}

static void handle_scan(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    request r;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_decode(&r, REQ_SCAN, kvstore_catalog(n->kv), buf, len, &err);
    if (rc) {
        service_reply_error(call, rc, err.msg);
        return;
    }
    kv_item *items = NULL;
    size_t count = 0;
    int more = 0;
    rc = kvstore_scan(n->kv, &r, &items, &count, &more, &err);
    atomic_fetch_add(&n->reads, 1);
    request_release(&r);
    if (rc) {
        OKV_ERROR("scan failed: %s: %s", okv_strerror(rc), err.msg);
        service_reply_error(call, rc, err.msg);
        return;
    }
    service_reply_scan(call, items, count, more);
    kvstore_items_free(items, count);
}

void service_reply_scan(rpc_call *call, const kv_item *items, size_t count, int more)
{
    Orderkv__V1__KeyValue *kvs = calloc(count ? count : 1, sizeof *kvs);
    Orderkv__V1__KeyValue **ptrs = calloc(count ? count : 1, sizeof *ptrs);
    uint8_t *token = more && count ? malloc(items[count - 1].key_len + 1) : NULL;
    if (!kvs || !ptrs || (more && count && !token)) {
        free(kvs);
        free(ptrs);
        free(token);
        service_reply_error(call, OKV_ENOMEM, "out of memory encoding scan");
        return;
    }
    Orderkv__V1__ScanResponse resp = ORDERKV__V1__SCAN_RESPONSE__INIT;
    for (size_t i = 0; i < count; i++) {
        orderkv__v1__key_value__init(&kvs[i]);
        kvs[i].key.data = items[i].key;
        kvs[i].key.len = items[i].key_len;
        kvs[i].value.data = items[i].value;
        kvs[i].value.len = items[i].value_len;
        kvs[i].version = items[i].version;
        ptrs[i] = &kvs[i];
    }
    resp.n_items = count;
    resp.items = ptrs;
    if (token) {
        resp.resume_token.len =
            request_resume_token(token, items[count - 1].key, items[count - 1].key_len);
        resp.resume_token.data = token;
    }
    service_reply_message(call, &resp.base);
    free(token);
    free(kvs);
    free(ptrs);
}

int service_kv_methods_register(node *n, const rpc_handler fns[4], okv_error *err)
{
    static const enum request_kind kinds[4] = { REQ_GET, REQ_PUT, REQ_DELETE, REQ_SCAN };
    for (size_t i = 0; i < 4; i++) {
        int rc = rpc_server_add_method(n->rpc, request_method_path(kinds[i]), fns[i], n, err);
        if (rc)
            return rc;
    }
    int rc = rpc_server_add_method(n->rpc, "/orderkv.v1.KV/Txn", service_txn_handler(n), n, err);
    if (rc)
        return rc;
    /* Clients that keep many calls in flight send them batched on one
     * stream; the items go to the methods above. */
    return rpc_server_add_batch_method(n->rpc, "/orderkv.v1.KV/Batch", err);
}

int service_kv_register(node *n, okv_error *err)
{
    static const rpc_handler fns[4] = { handle_get, handle_put, handle_delete, handle_scan };
    return service_kv_methods_register(n, fns, err);
}
