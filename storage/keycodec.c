#include "keycodec.h"

#include <string.h>

#include "hash.h"

void keycodec_put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void keycodec_put_u64be(uint8_t *p, uint64_t v)
{
    keycodec_put_u32be(p, (uint32_t)(v >> 32));
    keycodec_put_u32be(p + 4, (uint32_t)v);
}

uint32_t keycodec_get_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t keycodec_get_u64be(const uint8_t *p)
{
    return ((uint64_t)keycodec_get_u32be(p) << 32) | keycodec_get_u32be(p + 4);
}

uint32_t keycodec_partition_of(const void *key, size_t key_len, uint32_t partitions)
{
    const void *slash = key_len ? memchr(key, '/', key_len) : NULL;
    size_t pk_len = slash ? (size_t)((const char *)slash - (const char *)key) : key_len;
    return (uint32_t)(okv_hash64(key, pk_len) % partitions);
}

void keycodec_data_prefix(uint8_t out[KEYCODEC_DATA_PREFIX_LEN], uint32_t table_id,
                          uint32_t partition)
{
    keycodec_put_u32be(out, table_id);
    keycodec_put_u32be(out + 4, partition);
}

size_t keycodec_data_key(uint8_t *out, uint32_t table_id, uint32_t partition,
                         const void *key, size_t key_len)
{
    keycodec_data_prefix(out, table_id, partition);
    if (key_len)
        memcpy(out + KEYCODEC_DATA_PREFIX_LEN, key, key_len);
    return KEYCODEC_DATA_PREFIX_LEN + key_len;
}

int keycodec_data_key_decode(const void *enc, size_t len, uint32_t *table_id,
                             uint32_t *partition, const uint8_t **key, size_t *key_len)
{
    const uint8_t *p = enc;
    if (len < KEYCODEC_DATA_PREFIX_LEN)
        return -1;
    *table_id = keycodec_get_u32be(p);
    *partition = keycodec_get_u32be(p + 4);
    *key = p + KEYCODEC_DATA_PREFIX_LEN;
    *key_len = len - KEYCODEC_DATA_PREFIX_LEN;
    return 0;
}

void keycodec_value_header(uint8_t out[KEYCODEC_VALUE_HEADER_LEN], uint64_t version)
{
    keycodec_put_u64be(out, version);
}

int keycodec_value_decode(const void *enc, size_t len, uint64_t *version,
                          const uint8_t **val, size_t *val_len)
{
    const uint8_t *p = enc;
    if (len < KEYCODEC_VALUE_HEADER_LEN)
        return -1;
    *version = keycodec_get_u64be(p);
    if (*version == 0)
        return -1;
    *val = p + KEYCODEC_VALUE_HEADER_LEN;
    *val_len = len - KEYCODEC_VALUE_HEADER_LEN;
    return 0;
}

void keycodec_seq_key(uint8_t out[KEYCODEC_SEQ_KEY_LEN], uint32_t table_id, uint32_t partition)
{
    out[0] = 'S';
    keycodec_put_u32be(out + 1, table_id);
    keycodec_put_u32be(out + 5, partition);
}

size_t keycodec_prefix_successor(const void *prefix, size_t prefix_len, uint8_t *out)
{
    const uint8_t *p = prefix;
    size_t n = prefix_len;
    while (n > 0 && p[n - 1] == 0xff)
        n--;
    if (n == 0)
        return 0;
    memcpy(out, p, n);
    out[n - 1]++;
    return n;
}
