#include "order_idem.h"

#include <string.h>

#include "order_schema.h"

/* ---- FNV-1a 128 ------------------------------------------------------------
 * offset basis 0x6c62272e07bb014262b821756295c58d, prime 2^88 + 0x13b
 * (http://www.isthe.com/chongo/tech/comp/fnv/). Multiplying by the prime
 * modulo 2^128 is x << 88 plus x * 0x13b, done on two 64-bit halves so the
 * code needs no __int128. */

typedef struct fnv {
    uint64_t hi, lo;
} fnv;

static void fnv_init(fnv *h)
{
    h->hi = 0x6c62272e07bb0142ull;
    h->lo = 0x62b821756295c58dull;
}

static void fnv_mul(fnv *h)
{
    const uint64_t k = 0x13b;
    /* lo * k as 128 bits: k < 2^9, so split lo into 32-bit halves. */
    uint64_t a = h->lo >> 32, b = h->lo & 0xffffffffull;
    uint64_t bk = b * k, ak = a * k;             /* each < 2^41 */
    uint64_t low = bk + (ak << 32);
    uint64_t carry = low < bk;
    uint64_t high = (ak >> 32) + carry;
    h->hi = h->hi * k + high + (h->lo << 24);    /* the << 88 lands in hi as << 24 */
    h->lo = low;
}

static void fnv_bytes(fnv *h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h->lo ^= p[i];
        fnv_mul(h);
    }
}

ord_hash128 ord_fnv1a128(const void *data, size_t len)
{
    fnv h;
    fnv_init(&h);
    fnv_bytes(&h, data, len);
    return (ord_hash128){ h.hi, h.lo };
}

/* ---- the canonical encoding (header) ---------------------------------------- */

static void put_be(fnv *h, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    fnv_bytes(h, b, (size_t)n);
}

static void f_str(fnv *h, uint8_t tag, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    fnv_bytes(h, &tag, 1);
    put_be(h, (uint64_t)len, 4);
    fnv_bytes(h, s, len);
}

static void f_i64(fnv *h, uint8_t tag, int64_t v)
{
    fnv_bytes(h, &tag, 1);
    put_be(h, (uint64_t)v, 8);
}

static void f_u32(fnv *h, uint8_t tag, uint32_t v)
{
    fnv_bytes(h, &tag, 1);
    put_be(h, v, 4);
}

static void f_bool(fnv *h, uint8_t tag, int v)
{
    uint8_t b[2] = { tag, (uint8_t)(v != 0) };
    fnv_bytes(h, b, 2);
}

static void begin(fnv *h, ord_idem_kind kind)
{
    static const char domain[] = "okv.idem.v1";   /* with its NUL */
    fnv_init(h);
    fnv_bytes(h, domain, sizeof domain);
    uint8_t k = (uint8_t)kind;
    fnv_bytes(h, &k, 1);
}

static ord_hash128 end(const fnv *h) { return (ord_hash128){ h->hi, h->lo }; }

ord_hash128 ord_idem_hash_create(const Orderkv__V1__CreateOrderRequest *r)
{
    fnv h;
    begin(&h, ORD_IDEM_CREATE);
    f_str(&h, 1, r->customer_id);
    f_str(&h, 2, r->merchant_id);
    f_str(&h, 3, r->currency);
    f_u32(&h, 4, (uint32_t)r->n_items);
    for (size_t i = 0; i < r->n_items; i++) {
        const Orderkv__V1__CreateOrderItem *it = r->items[i];
        f_str(&h, 1, it->sku);
        f_u32(&h, 2, it->quantity);
        f_i64(&h, 3, it->unit_price);
        f_bool(&h, 4, it->reserve_stock);
    }
    f_bool(&h, 5, r->reserve_stock);
    return end(&h);
}

ord_hash128 ord_idem_hash_pay(const Orderkv__V1__PayOrderRequest *r)
{
    fnv h;
    begin(&h, ORD_IDEM_PAY);
    f_str(&h, 1, r->customer_id);
    f_str(&h, 2, r->order_id);
    f_str(&h, 3, r->account_id);
    f_str(&h, 4, r->method);
    f_i64(&h, 5, r->amount);
    f_str(&h, 6, r->currency);
    return end(&h);
}

ord_hash128 ord_idem_hash_refund(const Orderkv__V1__RefundOrderRequest *r)
{
    fnv h;
    begin(&h, ORD_IDEM_REFUND);
    f_str(&h, 1, r->customer_id);
    f_str(&h, 2, r->order_id);
    f_i64(&h, 3, r->amount);
    f_str(&h, 4, r->reason);
    return end(&h);
}

ord_hash128 ord_idem_hash_deposit(const Orderkv__V1__DepositRequest *r)
{
    fnv h;
    begin(&h, ORD_IDEM_DEPOSIT);
    f_str(&h, 1, r->account_id);
    f_i64(&h, 2, r->amount);
    return end(&h);
}

ord_hash128 ord_idem_hash_reserve(const Orderkv__V1__ReserveStockRequest *r)
{
    fnv h;
    begin(&h, ORD_IDEM_RESERVE);
    f_str(&h, 1, r->sku);
    f_u32(&h, 2, r->quantity);
    f_str(&h, 3, r->customer_id);
    return end(&h);
}

/* ---- records ------------------------------------------------------------------ */

int ord_idem_check(const Orderkv__V1__IdempotencyRecord *rec, ord_idem_kind kind,
                   ord_hash128 h, ord_error *err)
{
    const char *token = ord_idem_kind_token((int)kind);
    if ((int)rec->kind != (int)kind)
        return ord_error_set(err, ORD_R(IDEMPOTENCY_KEY_REUSED),
                             "this idempotency key was used by a %s request; a %s request "
                             "needs a key of its own",
                             ord_idem_kind_token((int)rec->kind) ? ord_idem_kind_token((int)rec->kind)
                                                                 : "different",
                             token ? token : "?");
    if (rec->request_hash_hi != h.hi || rec->request_hash_lo != h.lo)
        return ord_error_set(err, ORD_R(IDEMPOTENCY_KEY_REUSED),
                             "this idempotency key was first used with a different %s request "
                             "(other order, amount or fields); use a new key for a new request, "
                             "or resend the first request unchanged to get its answer",
                             token ? token : "?");
    if (rec->response.len == 0)
        return ord_error_set_code(err, OKV_ECORRUPT, ORD_R(INVALID),
                                  "the idempotency record of this key holds no response");
    return 0;
}

int ord_idem_expired(const Orderkv__V1__IdempotencyRecord *rec, int64_t now_ms,
                     int64_t retention_ms)
{
    if (retention_ms <= 0)
        return 0;
    /* now - created >= retention, without computing created + retention
     * (a record from the far future must not wrap). */
    if (now_ms < rec->created_at_ms)
        return 0;
    return (uint64_t)now_ms - (uint64_t)rec->created_at_ms >= (uint64_t)retention_ms;
}

void ord_idem_record_init(Orderkv__V1__IdempotencyRecord *rec, ord_idem_kind kind,
                          ord_hash128 h, const uint8_t *response, size_t response_len,
                          int64_t now_ms)
{
    orderkv__v1__idempotency_record__init(rec);
    rec->kind = (Orderkv__V1__IdempotencyKind)kind;
    rec->request_hash_hi = h.hi;
    rec->request_hash_lo = h.lo;
    rec->response.data = (uint8_t *)response;
    rec->response.len = response_len;
    rec->created_at_ms = now_ms;
    rec->schema_version = ORD_SCHEMA_VERSION;
}
