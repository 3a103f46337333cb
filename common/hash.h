/*
 * hash.h — the partitioning hash. Its output decides where every key lives,
 * so it is part of the on-disk format: never change it for an existing format
 * version. FNV-1a 64-bit, chosen for being simple, stable and well known.
 */
#ifndef OKV_COMMON_HASH_H
#define OKV_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t okv_hash64(const void *data, size_t len);

#endif
