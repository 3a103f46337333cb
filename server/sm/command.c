#include "command.h"

#include <stdlib.h>
#include <string.h>

#include "keycodec.h"

size_t command_encoded_size(const command *c)
{
    return COMMAND_HEADER_LEN + c->key_len + 4 + c->value_len;
}

void command_encode(const command *c, uint8_t *out)
{
    out[0] = COMMAND_FORMAT;
    out[1] = c->op;
    out[2] = c->check_version ? 1 : 0;
    keycodec_put_u32be(out + 3, c->table_id);
    keycodec_put_u32be(out + 7, c->partition);
    keycodec_put_u64be(out + 11, c->client_id);
    keycodec_put_u64be(out + 19, c->request_id);
    keycodec_put_u64be(out + 27, c->watermark);
    keycodec_put_u64be(out + 35, c->expected_version);
    keycodec_put_u32be(out + 43, (uint32_t)c->key_len);
    uint8_t *p = out + COMMAND_HEADER_LEN;
    if (c->key_len)
        memcpy(p, c->key, c->key_len);
    p += c->key_len;
    keycodec_put_u32be(p, (uint32_t)c->value_len);
    if (c->value_len)
        memcpy(p + 4, c->value, c->value_len);
}

int command_decode(const uint8_t *buf, size_t len, command *out, okv_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < COMMAND_HEADER_LEN + 4)
        return okv_error_set(err, OKV_ECORRUPT, "command of %zu bytes is too short", len);
    if (buf[0] != COMMAND_FORMAT)
        return okv_error_set(err, OKV_ECORRUPT, "command format %u is not %d", buf[0],
                             COMMAND_FORMAT);
    out->op = buf[1];
    if (out->op < CMD_PUT || out->op > CMD_TPC_MANY)
        return okv_error_set(err, OKV_ECORRUPT, "unknown command op %u", out->op);
    if (buf[2] & ~1u)
        return okv_error_set(err, OKV_ECORRUPT, "unknown command flags 0x%x", buf[2]);
    out->check_version = buf[2] & 1;
    out->table_id = keycodec_get_u32be(buf + 3);
    out->partition = keycodec_get_u32be(buf + 7);
    out->client_id = keycodec_get_u64be(buf + 11);
    out->request_id = keycodec_get_u64be(buf + 19);
    out->watermark = keycodec_get_u64be(buf + 27);
    out->expected_version = keycodec_get_u64be(buf + 35);
    size_t klen = keycodec_get_u32be(buf + 43);
    /* A transaction's or a 2PC message's bytes are its value; no key. */
    int is_txn = out->op == CMD_TXN || out->op == CMD_TPC || out->op == CMD_TPC_MANY;
    if ((klen == 0) != is_txn || klen > OKV_MAX_KEY_LEN || klen > len - COMMAND_HEADER_LEN - 4 ||
        (is_txn && out->check_version))
        return okv_error_set(err, OKV_ECORRUPT, "command key length %zu is invalid", klen);
    const uint8_t *p = buf + COMMAND_HEADER_LEN;
    out->key = p;
    out->key_len = klen;
    p += klen;
    size_t vlen = keycodec_get_u32be(p);
    size_t rest = len - COMMAND_HEADER_LEN - klen - 4;
    if (vlen != rest || vlen > (is_txn ? COMMAND_TXN_MAX : OKV_MAX_VALUE_LEN) ||
        (out->op == CMD_DELETE && vlen != 0) || (is_txn && vlen == 0))
        return okv_error_set(err, OKV_ECORRUPT, "command value length %zu is invalid", vlen);
    out->value = p + 4;
    out->value_len = vlen;
    return OKV_OK;
}

size_t command_result_encode(const command_result *r, uint8_t out[COMMAND_RESULT_LEN])
{
    int v2 = r->failed || r->reason;
    out[0] = v2 ? 2 : COMMAND_FORMAT;
    keycodec_put_u32be(out + 1, (uint32_t)r->code);
    keycodec_put_u64be(out + 5, r->version);
    out[13] = r->existed ? 1 : 0;
    if (!v2)
        return COMMAND_RESULT_V1_LEN;
    keycodec_put_u32be(out + 14, r->failed);
    out[18] = r->reason;
    return COMMAND_RESULT_LEN;
}

int command_result_decode(const uint8_t *buf, size_t len, command_result *out)
{
    memset(out, 0, sizeof *out);
    if (len < COMMAND_RESULT_V1_LEN || buf[13] > 1)
        return -1;
    if (!(buf[0] == COMMAND_FORMAT && len == COMMAND_RESULT_V1_LEN) &&
        !(buf[0] == 2 && len == COMMAND_RESULT_LEN))
        return -1;
    out->code = (int)(int32_t)keycodec_get_u32be(buf + 1);
    out->version = keycodec_get_u64be(buf + 5);
    out->existed = buf[13];
    if (buf[0] == 2) {
        out->failed = keycodec_get_u32be(buf + 14);
        out->reason = buf[18];
    }
    return 0;
}

uint8_t *command_tpc_new(uint8_t op, uint32_t table_id, uint32_t partition,
                         const uint8_t *msgs, size_t msgs_len, size_t *len)
{
    command c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.table_id = table_id;
    c.partition = partition;
    c.value = msgs;
    c.value_len = msgs_len;
    *len = command_encoded_size(&c);
    uint8_t *out = malloc(*len);
    if (out)
        command_encode(&c, out);
    return out;
}
