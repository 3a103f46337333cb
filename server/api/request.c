#include "request.h"

#include "command.h"

#include <stdlib.h>
#include <string.h>

#include "keycodec.h"
#include "orderkv.pb-c.h"

const char *request_method_path(enum request_kind kind)
{
    switch (kind) {
    case REQ_GET: return "/orderkv.v1.KV/Get";
    case REQ_PUT: return "/orderkv.v1.KV/Put";
    case REQ_DELETE: return "/orderkv.v1.KV/Delete";
    case REQ_SCAN: return "/orderkv.v1.KV/Scan";
    case REQ_STATUS: return "/orderkv.v1.Admin/Status";
    case REQ_TRANSFER: return "/orderkv.v1.Admin/TransferLeader";
    default: return "";
    }
}

/* Reads a varint at *p (< end); 0 on success. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int request_wire_each(const uint8_t *buf, size_t len, request_wire_fn fn, void *ctx)
{
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t key, v;
        if (read_varint(&p, end, &key))
            return -1;
        switch (key & 7) {
        case 0:
            if (read_varint(&p, end, &v))
                return -1;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 2:
            if (read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return -1;
            if (fn(ctx, (uint32_t)(key >> 3), p, (size_t)v))
                return 1;
            p += v;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

typedef struct field_len {
    uint32_t field;
    long found;
} field_len;

static int note_len(void *ctx, uint32_t field, const uint8_t *data, size_t len)
{
    field_len *f = ctx;
    (void)data;
    if (field == f->field)
        f->found = (long)len;
    return 0;
}

/* Length on the wire of the last occurrence of length-delimited field
 * `field` in a top-level message, or -1 if absent or unparsable.
 * protobuf-c hands strings over NUL-terminated, so a name with an embedded
 * NUL ("accounts\0evil") would silently become "accounts"; comparing with
 * the wire length catches that. */
static long wire_field_len(const uint8_t *buf, size_t len, uint32_t field)
{
    field_len f = { field, -1 };
    return request_wire_each(buf, len, note_len, &f) ? -1 : f.found;
}

static int check_table(request *r, const catalog *cat, const char *name, okv_error *err)
{
    size_t len = strlen(name);
    if (r->wire && wire_field_len(r->wire, r->wire_len, 1) > (long)len)
        return okv_error_set(err, OKV_EINVAL, "table name contains a NUL byte");
    if (len == 0)
        return okv_error_set(err, OKV_EINVAL, "table name is empty");
    if (len > OKV_MAX_TABLE_NAME_LEN)
        return okv_error_set(err, OKV_EINVAL, "table name is %zu bytes; the limit is %u", len,
                             OKV_MAX_TABLE_NAME_LEN);
    r->table = catalog_find(cat, name, len);
    if (!r->table) {
        char names[256];
        catalog_names(cat, names, sizeof names);
        return okv_error_set(err, OKV_ENOTFOUND, "unknown table '%s' (tables: %s)", name, names);
    }
    return OKV_OK;
}

static int check_key(request *r, const ProtobufCBinaryData *key, okv_error *err)
{
    if (key->len == 0)
        return okv_error_set(err, OKV_EINVAL, "key is empty");
    if (key->len > OKV_MAX_KEY_LEN)
        return okv_error_set(err, OKV_EINVAL, "key is %zu bytes; the limit is %u", key->len,
                             OKV_MAX_KEY_LEN);
    r->key = key->data;
    r->key_len = key->len;
    r->partition = keycodec_partition_of(key->data, key->len, r->table->partitions);
    return OKV_OK;
}

static int decode_get(request *r, const catalog *cat, const uint8_t *buf, size_t len,
                      okv_error *err)
{
    Orderkv__V1__GetRequest *m = orderkv__v1__get_request__unpack(NULL, len, buf);
    if (!m)
        return okv_error_set(err, OKV_EPROTO, "malformed GetRequest (%zu bytes)", len);
    r->msg = m;
    int rc = check_table(r, cat, m->table, err);
    return rc ? rc : check_key(r, &m->key, err);
}

static int check_watermark(request *r, uint64_t watermark, okv_error *err)
{
    if (watermark > r->request_id)
        return okv_error_set(err, OKV_EINVAL,
                             "watermark %llu is above the request id %llu: a client may only "
                             "promise to forget ids it has finished with",
                             (unsigned long long)watermark, (unsigned long long)r->request_id);
    if (watermark && !r->client_id)
        return okv_error_set(err, OKV_EINVAL, "a watermark needs a client_id");
    r->watermark = watermark;
    return OKV_OK;
}

static int decode_put(request *r, const catalog *cat, const uint8_t *buf, size_t len,
                      okv_error *err)
{
    Orderkv__V1__PutRequest *m = orderkv__v1__put_request__unpack(NULL, len, buf);
    if (!m)
        return okv_error_set(err, OKV_EPROTO, "malformed PutRequest (%zu bytes)", len);
    r->msg = m;
    int rc = check_table(r, cat, m->table, err);
    if (rc || (rc = check_key(r, &m->key, err)))
        return rc;
    if (m->value.len > OKV_MAX_VALUE_LEN)
        return okv_error_set(err, OKV_EINVAL, "value is %zu bytes; the limit is %u",
                             m->value.len, OKV_MAX_VALUE_LEN);
    r->value = m->value.data;
    r->value_len = m->value.len;
    r->check_version = m->check_version;
    r->expected_version = m->expected_version;
    r->client_id = m->client_id;
    r->request_id = m->request_id;
    return check_watermark(r, m->watermark, err);
}

static int decode_delete(request *r, const catalog *cat, const uint8_t *buf, size_t len,
                         okv_error *err)
{
    Orderkv__V1__DeleteRequest *m = orderkv__v1__delete_request__unpack(NULL, len, buf);
    if (!m)
        return okv_error_set(err, OKV_EPROTO, "malformed DeleteRequest (%zu bytes)", len);
    r->msg = m;
    int rc = check_table(r, cat, m->table, err);
    if (rc || (rc = check_key(r, &m->key, err)))
        return rc;
    r->check_version = m->check_version;
    r->expected_version = m->expected_version;
    r->client_id = m->client_id;
    r->request_id = m->request_id;
    return check_watermark(r, m->watermark, err);
}

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (alen > blen) - (alen < blen);
}

/* Scan bounds live in user-key space. A prefix becomes [prefix, successor);
 * a resume token moves the lower bound just past the last key returned. */
static int scan_bounds(request *r, const Orderkv__V1__ScanRequest *m, okv_error *err)
{
    size_t plen = m->prefix.len;
    if (plen && (m->start.len || m->end.len))
        return okv_error_set(err, OKV_EINVAL,
                             "give a scan either a prefix or a start/end range, not both");
    if (plen > OKV_MAX_KEY_LEN || m->start.len > OKV_MAX_KEY_LEN || m->end.len > OKV_MAX_KEY_LEN)
        return okv_error_set(err, OKV_EINVAL, "scan bound is longer than the key limit (%u)",
                             OKV_MAX_KEY_LEN);
    /* Room for the prefix successor and for resume key + '\0'. */
    r->scan_buf = malloc(2 * OKV_MAX_KEY_LEN + 2);
    if (!r->scan_buf)
        return okv_error_set(err, OKV_ENOMEM, "out of memory decoding scan");
    if (plen) {
        r->lower = m->prefix.data;
        r->lower_len = plen;
        r->upper_len = keycodec_prefix_successor(m->prefix.data, plen, r->scan_buf);
        r->upper = r->scan_buf;
        r->has_upper = r->upper_len > 0;
        r->single_partition = memchr(m->prefix.data, '/', plen) != NULL;
    } else {
        r->lower = m->start.data;
        r->lower_len = m->start.len;
        r->upper = m->end.data;
        r->upper_len = m->end.len;
        r->has_upper = m->end.len > 0;
        if (r->has_upper && bytes_cmp(r->lower, r->lower_len, r->upper, r->upper_len) >= 0)
            return okv_error_set(err, OKV_EINVAL, "scan range is empty: start >= end");
    }
    if (r->single_partition)
        r->partition = keycodec_partition_of(m->prefix.data, plen, r->table->partitions);

    if (m->resume_token.len) {
        const uint8_t *tok = m->resume_token.data;
        size_t tlen = m->resume_token.len;
        if (tok[0] != REQUEST_RESUME_TOKEN_V1 || tlen < 2 || tlen - 1 > OKV_MAX_KEY_LEN)
            return okv_error_set(err, OKV_EINVAL, "resume token is not one this server issued");
        const uint8_t *last = tok + 1;
        size_t last_len = tlen - 1;
        if (bytes_cmp(last, last_len, r->lower, r->lower_len) < 0 ||
            (r->has_upper && bytes_cmp(last, last_len, r->upper, r->upper_len) >= 0))
            return okv_error_set(err, OKV_EINVAL,
                                 "resume token does not belong to this scan's prefix or range");
        /* The smallest key after `last` is last + "\0". */
        uint8_t *next = r->scan_buf + OKV_MAX_KEY_LEN + 1;
        memcpy(next, last, last_len);
        next[last_len] = 0;
        r->lower = next;
        r->lower_len = last_len + 1;
    }
    return OKV_OK;
}

static int decode_scan(request *r, const catalog *cat, const uint8_t *buf, size_t len,
                       okv_error *err)
{
    Orderkv__V1__ScanRequest *m = orderkv__v1__scan_request__unpack(NULL, len, buf);
    if (!m)
        return okv_error_set(err, OKV_EPROTO, "malformed ScanRequest (%zu bytes)", len);
    r->msg = m;
    int rc = check_table(r, cat, m->table, err);
    if (rc)
        return rc;
    if (m->limit > OKV_SCAN_MAX_LIMIT)
        return okv_error_set(err, OKV_EINVAL, "scan limit %u is over the maximum %u", m->limit,
                             OKV_SCAN_MAX_LIMIT);
    r->limit = m->limit ? m->limit : OKV_SCAN_DEFAULT_LIMIT;
    return scan_bounds(r, m, err);
}

static int decode_status(request *r, const uint8_t *buf, size_t len, okv_error *err)
{
    Orderkv__V1__StatusRequest *m = orderkv__v1__status_request__unpack(NULL, len, buf);
    if (!m)
        return okv_error_set(err, OKV_EPROTO, "malformed StatusRequest (%zu bytes)", len);
    r->msg = m;
    return OKV_OK;
}

static int decode_transfer(request *r, const catalog *cat, const uint8_t *buf, size_t len,
                           okv_error *err)
{
    Orderkv__V1__TransferLeaderRequest *m =
        orderkv__v1__transfer_leader_request__unpack(NULL, len, buf);
    if (!m)
        return okv_error_set(err, OKV_EPROTO, "malformed TransferLeaderRequest (%zu bytes)", len);
    r->msg = m;
    int rc = check_table(r, cat, m->table, err);
    if (rc)
        return rc;
    if (m->partition >= r->table->partitions)
        return okv_error_set(err, OKV_EINVAL, "table %s has partitions 0..%u, not %u",
                             r->table->name, r->table->partitions - 1, m->partition);
    if (m->to_node == 0)
        return okv_error_set(err, OKV_EINVAL, "transfer-leader needs a target node id");
    r->partition = m->partition;
    r->to_node = m->to_node;
    return OKV_OK;
}

int request_decode(request *out, enum request_kind kind, const catalog *cat,
                   const uint8_t *buf, size_t len, okv_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->wire = buf;
    out->wire_len = len;
    int rc;
    switch (kind) {
    case REQ_GET: rc = decode_get(out, cat, buf, len, err); break;
    case REQ_PUT: rc = decode_put(out, cat, buf, len, err); break;
    case REQ_DELETE: rc = decode_delete(out, cat, buf, len, err); break;
    case REQ_SCAN: rc = decode_scan(out, cat, buf, len, err); break;
    case REQ_STATUS: rc = decode_status(out, buf, len, err); break;
    case REQ_TRANSFER: rc = decode_transfer(out, cat, buf, len, err); break;
    default: rc = okv_error_set(err, OKV_EUNIMPLEMENTED, "unknown request kind %d", (int)kind);
    }
    out->wire = NULL;   /* only valid during decoding */
    out->wire_len = 0;
    if (rc)
        request_release(out);
    return rc;
}

void request_release(request *r)
{
    if (r->msg)
        protobuf_c_message_free_unpacked(r->msg, NULL);
    free(r->scan_buf);
    memset(r, 0, sizeof *r);
}

size_t request_resume_token(uint8_t *out, const uint8_t *key, size_t key_len)
{
    out[0] = REQUEST_RESUME_TOKEN_V1;
    memcpy(out + 1, key, key_len);
    return key_len + 1;
}

void request_to_command(const request *r, command *c)
{
    memset(c, 0, sizeof *c);
    c->op = r->kind == REQ_DELETE ? CMD_DELETE : CMD_PUT;
    c->check_version = r->check_version;
    c->expected_version = r->expected_version;
    c->table_id = r->table->id;
    c->partition = r->partition;
    c->client_id = r->client_id;
    c->request_id = r->request_id;
    c->watermark = r->watermark;
    c->key = r->key;
    c->key_len = r->key_len;
    c->value = r->value;
    c->value_len = r->value_len;
}
