/*
 * test_keycodec.c — the byte formats of keycodec.h. These are on-disk formats
 * (docs/storage-format.md), so the tests pin exact bytes, not just roundtrips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "keycodec.h"

/* A seeded PRNG (xorshift64*) so a failure names the seed that replays it. */
static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* RocksDB's bytewise order: memcmp, then the shorter first. */
static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

struct triple {
    uint32_t table;
    uint32_t part;
    uint8_t key[6];
    size_t key_len;
    uint8_t enc[KEYCODEC_DATA_PREFIX_LEN + 6];
    size_t enc_len;
};

static int triple_cmp(const struct triple *a, const struct triple *b)
{
    if (a->table != b->table)
        return a->table < b->table ? -1 : 1;
    if (a->part != b->part)
        return a->part < b->part ? -1 : 1;
    return bytes_cmp(a->key, a->key_len, b->key, b->key_len);
}

static void test_keycodec__data_keys_sort_like_triples(void **state)
{
    /* Few distinct ids and bytes, so equal fields, shared prefixes and keys
     * that are prefixes of each other all occur often; the byte values sit
     * at the edges where a signed compare or an escaping bug would show. */
    static const uint32_t ids[] = { 0, 1, 2, 255, 256, 0x7fffffffu, 0x80000000u, 0xffffffffu };
    static const uint8_t bytes[] = { 0x00, 0x01, '/', 'a', 0x7f, 0x80, 0xfe, 0xff };
    enum { N = 400 };
    static struct triple t[N];
    uint64_t seed = 0x5eed0001u;
    rng_state = seed;
    for (int i = 0; i < N; i++) {
        t[i].table = ids[rng() % 8];
        t[i].part = ids[rng() % 8];
        t[i].key_len = (size_t)(rng() % 7);
        for (size_t j = 0; j < t[i].key_len; j++)
            t[i].key[j] = bytes[rng() % 8];
        t[i].enc_len = keycodec_data_key(t[i].enc, t[i].table, t[i].part, t[i].key,
                                         t[i].key_len);
        assert_int_equal(t[i].enc_len, KEYCODEC_DATA_PREFIX_LEN + t[i].key_len);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            int want = triple_cmp(&t[i], &t[j]);
            int got = bytes_cmp(t[i].enc, t[i].enc_len, t[j].enc, t[j].enc_len);
            if (want != got) {
                fprintf(stderr, "seed %#llx: triples %d and %d order %d, encodings %d\n",
                        (unsigned long long)seed, i, j, want, got);
                fail();
            }
        }
}

static void test_keycodec__data_key_layout_and_decode(void **state)
{
    uint8_t enc[16];
    size_t n = keycodec_data_key(enc, 0x01020304u, 0xa0b0c0d0u, "k/\x00\xff", 4);
    static const uint8_t want[] = { 0x01, 0x02, 0x03, 0x04, 0xa0, 0xb0, 0xc0, 0xd0,
                                    'k', '/', 0x00, 0xff };
    assert_int_equal(n, sizeof want);
    assert_memory_equal(enc, want, sizeof want);

    uint32_t table, part;
    const uint8_t *key;
    size_t key_len;
    assert_int_equal(keycodec_data_key_decode(enc, n, &table, &part, &key, &key_len), 0);
    assert_int_equal(table, 0x01020304u);
    assert_int_equal(part, 0xa0b0c0d0u);
    assert_int_equal(key_len, 4);
    assert_ptr_equal(key, enc + 8);

    /* An empty user key is legal; a key shorter than the prefix is not. */
    assert_int_equal(keycodec_data_key_decode(enc, 8, &table, &part, &key, &key_len), 0);
    assert_int_equal(key_len, 0);
    assert_int_equal(keycodec_data_key_decode(enc, 7, &table, &part, &key, &key_len), -1);

    uint8_t prefix[KEYCODEC_DATA_PREFIX_LEN];
    keycodec_data_prefix(prefix, 0x01020304u, 0xa0b0c0d0u);
    assert_memory_equal(prefix, want, KEYCODEC_DATA_PREFIX_LEN);
}

static void test_keycodec__partition_of_uses_part_before_first_slash(void **state)
{
    static const uint32_t parts[] = { 1, 2, 7, 16, 1000, 0xffffffffu };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        uint32_t p = parts[i];
        uint32_t c = keycodec_partition_of("cust42", 6, p);
        assert_true(c < p);
        assert_int_equal(keycodec_partition_of("cust42/ord9001", 14, p), c);
        assert_int_equal(keycodec_partition_of("cust42/ord1/x/y", 15, p), c);
        assert_int_equal(keycodec_partition_of("cust42/", 7, p), c);
        assert_int_equal(c, (uint32_t)(okv_hash64("cust42", 6) % p));
        /* A leading '/' means an empty partition key. */
        assert_int_equal(keycodec_partition_of("/x", 2, p), keycodec_partition_of("", 0, p));
        assert_int_equal(keycodec_partition_of("", 0, p), (uint32_t)(okv_hash64("", 0) % p));
        /* Bytes after the key's end must not matter ("a/" vs "ab" stop at 1). */
        assert_int_equal(keycodec_partition_of("ab", 1, p), keycodec_partition_of("a/b", 3, p));
    }
    /* The whole key counts when there is no '/'. */
    int differ = 0;
    char key[16];
    uint32_t first = keycodec_partition_of("c0", 2, 64);
    for (int i = 1; i < 100; i++) {
        int n = snprintf(key, sizeof key, "c%d", i);
        differ |= keycodec_partition_of(key, (size_t)n, 64) != first;
    }
    assert_true(differ);
}

static void test_keycodec__value_header_roundtrip(void **state)
{
    static const uint64_t versions[] = { 1, 2, 0x0102030405060708ull, 1ull << 63, UINT64_MAX };
    uint8_t buf[KEYCODEC_VALUE_HEADER_LEN + 3];
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        keycodec_value_header(buf, versions[i]);
        memcpy(buf + KEYCODEC_VALUE_HEADER_LEN, "abc", 3);
        uint64_t v;
        const uint8_t *val;
        size_t val_len;
        assert_int_equal(keycodec_value_decode(buf, sizeof buf, &v, &val, &val_len), 0);
        assert_true(v == versions[i]);
        assert_ptr_equal(val, buf + KEYCODEC_VALUE_HEADER_LEN);
        assert_int_equal(val_len, 3);
        /* An empty user value. */
        assert_int_equal(keycodec_value_decode(buf, KEYCODEC_VALUE_HEADER_LEN, &v, &val,
                                               &val_len), 0);
        assert_int_equal(val_len, 0);
    }
    keycodec_value_header(buf, 0x0102030405060708ull);
    static const uint8_t be[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    assert_memory_equal(buf, be, 8);
}

static void test_keycodec__value_decode_rejects_version_0_and_short(void **state)
{
    uint8_t buf[KEYCODEC_VALUE_HEADER_LEN + 1] = { 0 };
    uint64_t v;
    const uint8_t *val;
    size_t val_len;
    assert_int_equal(keycodec_value_decode(buf, sizeof buf, &v, &val, &val_len), -1);
    keycodec_value_header(buf, 5);
    assert_int_equal(keycodec_value_decode(buf, KEYCODEC_VALUE_HEADER_LEN - 1, &v, &val,
                                           &val_len), -1);
    assert_int_equal(keycodec_value_decode(buf, 0, &v, &val, &val_len), -1);
}

static void test_keycodec__seq_key_layout(void **state)
{
    uint8_t k[KEYCODEC_SEQ_KEY_LEN];
    keycodec_seq_key(k, 0x01020304u, 0xfffffffeu);
    static const uint8_t want[] = { 'S', 0x01, 0x02, 0x03, 0x04, 0xff, 0xff, 0xff, 0xfe };
    assert_int_equal(KEYCODEC_SEQ_KEY_LEN, sizeof want);
    assert_memory_equal(k, want, sizeof want);

    /* Sequence keys of one table sort by partition. */
    uint8_t a[KEYCODEC_SEQ_KEY_LEN], b[KEYCODEC_SEQ_KEY_LEN];
    keycodec_seq_key(a, 1, 255);
    keycodec_seq_key(b, 1, 256);
    assert_true(memcmp(a, b, sizeof a) < 0);
}

static void test_keycodec__big_endian_helpers(void **state)
{
    uint8_t b[8];
    keycodec_put_u32be(b, 0xdeadbeefu);
    assert_int_equal(b[0], 0xde);
    assert_int_equal(b[3], 0xef);
    assert_int_equal(keycodec_get_u32be(b), 0xdeadbeefu);
    keycodec_put_u64be(b, 0x8000000000000001ull);
    assert_int_equal(b[0], 0x80);
    assert_int_equal(b[7], 0x01);
    assert_true(keycodec_get_u64be(b) == 0x8000000000000001ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keycodec__data_keys_sort_like_triples),
        cmocka_unit_test(test_keycodec__data_key_layout_and_decode),
        cmocka_unit_test(test_keycodec__partition_of_uses_part_before_first_slash),
        cmocka_unit_test(test_keycodec__value_header_roundtrip),
        cmocka_unit_test(test_keycodec__value_decode_rejects_version_0_and_short),
        cmocka_unit_test(test_keycodec__seq_key_layout),
        cmocka_unit_test(test_keycodec__big_endian_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
