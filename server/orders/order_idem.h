/*
 * order_idem.h — idempotency keys: recognising a request seen before.
 *
 * CreateOrder, PayOrder, RefundOrder, Deposit and ReserveStock may carry an
 * idempotency key. The first request with a key stores, in the same
 * transaction as its effect, an IdempotencyRecord {kind, hash of the request,
 * the response it was answered with} (records.proto). A later request with
 * that key is then:
 *   - the same request (same hash): answered with the stored response, byte
 *     for byte, and nothing is applied again (a replay);
 *   - another request: refused, IDEMPOTENCY_KEY_REUSED (OKV_EIDEMPOTENCY).
 * Two copies racing: both plan with the record absent, the first commits and
 * the second's "record absent" condition fails (or it meets the first's lock
 * and, after retries, gets IN_PROGRESS); planned again, it is a replay. So a
 * key has at most one effect.
 *
 * The request hash is FNV-1a 128 over a canonical encoding of the request's
 * *semantic* fields: not the idempotency key (it is the record's address),
 * not times, not ids the server chooses. The encoding (stored hashes depend
 * on it: change it only with a new domain string):
 *   "okv.idem.v1" 0x00, kind (1 byte), then per field in the order listed in
 *   order_idem.c: tag (1 byte), then a string as u32 big-endian length +
 *   bytes, an int64 as 8 bytes big-endian, a u32 as 4 bytes big-endian, a
 *   bool as 1 byte; a repeated field as u32 count then each element's fields.
 * Items are hashed in the request's order: the same items listed in another
 * order are another request.
 *
 * A record older than the retention (default 24 h; the service's
 * configuration) may be deleted by a sweep; after that the key is new again.
 * The check below does not look at age: an existing record is always honoured.
 *
 * Pure.
 */
#ifndef OKV_ORDERS_IDEM_H
#define OKV_ORDERS_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "order_error.h"
#include "order_keys.h"

#define ORD_IDEM_RETENTION_DEFAULT_MS (24LL * 60 * 60 * 1000)

typedef struct ord_hash128 {
    uint64_t hi, lo;
} ord_hash128;

/* FNV-1a 128 of len bytes (exposed for its test vectors). */
ord_hash128 ord_fnv1a128(const void *data, size_t len);

/* The request hash of each kind. */
ord_hash128 ord_idem_hash_create(const Orderkv__V1__CreateOrderRequest *r);
ord_hash128 ord_idem_hash_pay(const Orderkv__V1__PayOrderRequest *r);
ord_hash128 ord_idem_hash_refund(const Orderkv__V1__RefundOrderRequest *r);
ord_hash128 ord_idem_hash_deposit(const Orderkv__V1__DepositRequest *r);
ord_hash128 ord_idem_hash_reserve(const Orderkv__V1__ReserveStockRequest *r);

/* A stored record against a new request of `kind` with hash h:
 *   0                 the same request: answer rec->response (a replay);
 *   OKV_EIDEMPOTENCY  another request used the key first (reason
 *                     IDEMPOTENCY_KEY_REUSED), or the record is of another kind;
 *   OKV_ECORRUPT      the record has no response (reason INVALID): it cannot
 *                     have been written by a planner. */
int ord_idem_check(const Orderkv__V1__IdempotencyRecord *rec, ord_idem_kind kind,
                   ord_hash128 h, ord_error *err);

/* 1 if a sweep may delete rec at now_ms: it is older than retention_ms
 * (created_at_ms + retention_ms <= now_ms, computed without overflow). A
 * retention <= 0 never expires anything. */
int ord_idem_expired(const Orderkv__V1__IdempotencyRecord *rec, int64_t now_ms,
                     int64_t retention_ms);

/* Fills rec (initialised here) for a first request: kind, hash, the
 * response bytes (borrowed: they must outlive rec), created_at_ms. */
void ord_idem_record_init(Orderkv__V1__IdempotencyRecord *rec, ord_idem_kind kind,
                          ord_hash128 h, const uint8_t *response, size_t response_len,
                          int64_t now_ms);

#endif
