/*
 * range_digest.h — what a scan saw of a key range, in 8 bytes: the digest a
 * transaction's RANGE condition carries (server/txn/txn.h) and that the
 * partition computes again when the condition is evaluated. Client and
 * server include this one definition, so they cannot drift apart.
 *
 * FNV-1a 64 over, for each key of the range in key order: the key's length
 * (u16 big-endian), its bytes, its version (u64 big-endian). An insert, a
 * delete or any write (a new version) in the range changes it; the key
 * count travels beside it, so an empty range is (0, OKV_RANGE_DIGEST_INIT).
 * Not a cryptographic hash: it guards against change, not against an
 * adversary choosing versions, which only the partition assigns.
 */
#ifndef OKV_RANGE_DIGEST_H
#define OKV_RANGE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define OKV_RANGE_DIGEST_INIT 0xcbf29ce484222325ULL

static inline uint64_t okv_range_digest_byte(uint64_t h, uint8_t b)
{
    return (h ^ b) * 0x100000001b3ULL;
}

static inline uint64_t okv_range_digest_add(uint64_t h, const void *key, size_t key_len,
                                            uint64_t version)
{
    const uint8_t *k = (const uint8_t *)key;
    h = okv_range_digest_byte(h, (uint8_t)(key_len >> 8));
    h = okv_range_digest_byte(h, (uint8_t)key_len);
    for (size_t i = 0; i < key_len; i++)
        h = okv_range_digest_byte(h, k[i]);
    for (int s = 56; s >= 0; s -= 8)
        h = okv_range_digest_byte(h, (uint8_t)(version >> s));
    return h;
}

#endif
