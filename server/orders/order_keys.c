#include "order_keys.h"

#include <string.h>

const char *ord_table_name(ord_table t)
{
    switch (t) {
    case ORD_TABLE_ORDERS: return "orders";
    case ORD_TABLE_PAYMENTS: return "payments";
    case ORD_TABLE_ACCOUNTS: return "accounts";
    case ORD_TABLE_STOCK: return "stock";
    }
    return "?";
}

static const struct {
    ord_idem_kind kind;
    const char *token;
    ord_table table;
} KINDS[] = {
    { ORD_IDEM_CREATE, "create", ORD_TABLE_ORDERS },
    { ORD_IDEM_PAY, "pay", ORD_TABLE_ORDERS },
    { ORD_IDEM_REFUND, "refund", ORD_TABLE_ORDERS },
    { ORD_IDEM_DEPOSIT, "deposit", ORD_TABLE_ACCOUNTS },
    { ORD_IDEM_RESERVE, "reserve", ORD_TABLE_STOCK },
};
#define N_KINDS (sizeof KINDS / sizeof KINDS[0])

const char *ord_idem_kind_token(int kind)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if ((int)KINDS[i].kind == kind)
            return KINDS[i].token;
    return NULL;
}

ord_table ord_idem_kind_table(ord_idem_kind kind)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (KINDS[i].kind == kind)
            return KINDS[i].table;
    return ORD_TABLE_ORDERS;
}

static int is_control(uint8_t c) { return c < 0x20 || c == 0x7f; }

/* The id rules over a byte range, so parsing and building share them. */
static int check_id_bytes(const char *what, const uint8_t *p, size_t len, ord_error *err)
{
    if (len == 0)
        return ord_error_set(err, ORD_R(INVALID), "%s is empty", what);
    if (len > ORD_ID_MAX)
        return ord_error_set(err, ORD_R(INVALID), "%s is %zu bytes long; the limit is %u", what,
                             len, ORD_ID_MAX);
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '/')
            return ord_error_set(err, ORD_R(INVALID),
                                 "%s contains '/' (at byte %zu): '/' separates the parts of "
                                 "a key", what, i);
        if (is_control(p[i]))
            return ord_error_set(err, ORD_R(INVALID),
                                 "%s contains control character 0x%02x (at byte %zu)", what,
                                 p[i], i);
    }
    return 0;
}

int ord_id_check(const char *what, const char *id, ord_error *err)
{
    if (!id)
        return ord_error_set(err, ORD_R(INVALID), "%s is missing", what);
    /* strnlen bounds the walk over a string that may be long. */
    size_t len = strnlen(id, ORD_ID_MAX + 1);
    return check_id_bytes(what, (const uint8_t *)id, len, err);
}

static int check_idem_bytes(const uint8_t *p, size_t len, ord_error *err)
{
    if (len == 0)
        return ord_error_set(err, ORD_R(INVALID), "idempotency key is empty");
    if (len > ORD_IDEM_KEY_MAX)
        return ord_error_set(err, ORD_R(INVALID),
                             "idempotency key is %zu bytes long; the limit is %u", len,
                             ORD_IDEM_KEY_MAX);
    for (size_t i = 0; i < len; i++)
        if (is_control(p[i]))
            return ord_error_set(err, ORD_R(INVALID),
                                 "idempotency key contains control character 0x%02x "
                                 "(at byte %zu)", p[i], i);
    return 0;
}

int ord_idem_key_check(const char *key, ord_error *err)
{
    if (!key)
        return ord_error_set(err, ORD_R(INVALID), "idempotency key is missing");
    return check_idem_bytes((const uint8_t *)key, strnlen(key, ORD_IDEM_KEY_MAX + 1), err);
}

/* Joins NULL-terminated parts into out. Callers have checked every part, so
 * the sum is within ORD_KEY_MAX (asserted by the layout of the limits). */
static void join(ord_key *out, const char *const *parts)
{
    size_t n = 0;
    for (size_t i = 0; parts[i]; i++) {
        size_t l = strlen(parts[i]);
        memcpy(out->buf + n, parts[i], l);
        n += l;
    }
    out->len = n;
}

/* "<owner>/<tag>/<id>" after checking both ids. */
static int key3(ord_key *out, const char *owner_what, const char *owner, const char *tag,
                const char *id_what, const char *id, ord_error *err)
{
    int rc = ord_id_check(owner_what, owner, err);
    if (rc == 0)
        rc = ord_id_check(id_what, id, err);
    if (rc)
        return rc;
    join(out, (const char *const[]){ owner, "/", tag, "/", id, NULL });
    return 0;
}

int ord_key_order(ord_key *out, const char *customer_id, const char *order_id, ord_error *err)
{
    return key3(out, "customer id", customer_id, "o", "order id", order_id, err);
}

int ord_key_payment(ord_key *out, const char *customer_id, const char *payment_id,
                    ord_error *err)
{
    return key3(out, "customer id", customer_id, "p", "payment id", payment_id, err);
}

int ord_key_refund(ord_key *out, const char *customer_id, const char *refund_id, ord_error *err)
{
    return key3(out, "customer id", customer_id, "r", "refund id", refund_id, err);
}

int ord_key_reservation(ord_key *out, const char *sku, const char *reservation_id,
                        ord_error *err)
{
    return key3(out, "sku", sku, "r", "reservation id", reservation_id, err);
}

int ord_key_balance(ord_key *out, const char *account_id, ord_error *err)
{
    int rc = ord_id_check("account id", account_id, err);
    if (rc == 0)
        join(out, (const char *const[]){ account_id, NULL });
    return rc;
}

int ord_key_account(ord_key *out, const char *account_id, ord_error *err)
{
    int rc = ord_id_check("account id", account_id, err);
    if (rc == 0)
        join(out, (const char *const[]){ account_id, "/meta", NULL });
    return rc;
}

int ord_key_stock(ord_key *out, const char *sku, ord_error *err)
{
    int rc = ord_id_check("sku", sku, err);
    if (rc == 0)
        join(out, (const char *const[]){ sku, NULL });
    return rc;
}

int ord_key_idem(ord_key *out, ord_idem_kind kind, const char *owner, const char *idem_key,
                 ord_error *err)
{
    const char *token = ord_idem_kind_token((int)kind);
    if (!token)
        return ord_error_set(err, ORD_R(INVALID), "unknown idempotency kind %d", (int)kind);
    const char *what = kind == ORD_IDEM_DEPOSIT ? "account id"
                       : kind == ORD_IDEM_RESERVE ? "sku" : "customer id";
    int rc = ord_id_check(what, owner, err);
    if (rc == 0)
        rc = ord_idem_key_check(idem_key, err);
    if (rc)
        return rc;
    join(out, (const char *const[]){ owner, "/i/", token, "/", idem_key, NULL });
    return 0;
}

int ord_key_orders_prefix(ord_key *out, const char *customer_id, ord_error *err)
{
    int rc = ord_id_check("customer id", customer_id, err);
    if (rc == 0)
        join(out, (const char *const[]){ customer_id, "/o/", NULL });
    return rc;
}

int ord_key_orders_start(ord_key *out, const char *customer_id, const char *start_after,
                         ord_error *err)
{
    if (!start_after || !*start_after)
        return ord_key_orders_prefix(out, customer_id, err);
    int rc = ord_key_order(out, customer_id, start_after, err);
    if (rc == 0)
        out->buf[out->len++] = 0;   /* the smallest key after the order's: fits, see ORD_KEY_MAX */
    return rc;
}

/* ---- parsing ---- */

static const uint8_t *find(const uint8_t *p, size_t len, uint8_t c)
{
    return len ? memchr(p, c, len) : NULL;
}

static int bad(ord_error *err, const char *table, const char *why)
{
    return ord_error_set(err, ORD_R(INVALID), "not a key of the %s layout: %s", table, why);
}

int ord_key_parse(ord_table table, const void *key, size_t len, ord_key_parts *out,
                  ord_error *err)
{
    const uint8_t *k = key;
    const char *tn = ord_table_name(table);
    memset(out, 0, sizeof *out);
    if (len > ORD_KEY_MAX)
        return bad(err, tn, "too long");
    const uint8_t *slash = find(k, len, '/');
    size_t olen = slash ? (size_t)(slash - k) : len;
    out->owner = (ord_slice){ k, olen };
    const char *owner_what = table == ORD_TABLE_STOCK      ? "sku"
                             : table == ORD_TABLE_ACCOUNTS ? "account id" : "customer id";
    int rc = check_id_bytes(owner_what, k, olen, err);
    if (rc)
        return rc;
    if (!slash) {   /* a bare counter: an account's balance or a sku's stock */
        if (table == ORD_TABLE_ACCOUNTS)
            out->type = ORD_KEY_BALANCE;
        else if (table == ORD_TABLE_STOCK)
            out->type = ORD_KEY_STOCK;
        else
            return bad(err, tn, "no '/' after the customer id");
        return 0;
    }
    const uint8_t *rest = slash + 1;
    size_t rlen = len - olen - 1;
    if (table == ORD_TABLE_ACCOUNTS && rlen == 4 && memcmp(rest, "meta", 4) == 0) {
        out->type = ORD_KEY_ACCOUNT;
        return 0;
    }
    if (rlen < 2 || rest[1] != '/')
        return bad(err, tn, "expected a one-letter tag between '/'s after the first part");
    uint8_t tag = rest[0];
    const uint8_t *tail = rest + 2;
    size_t tlen = rlen - 2;
    if (tag == 'i') {
        const uint8_t *s2 = find(tail, tlen, '/');
        if (!s2)
            return bad(err, tn, "no '/' after the idempotency kind");
        size_t klen = (size_t)(s2 - tail);
        for (size_t i = 0; i < N_KINDS; i++) {
            if (strlen(KINDS[i].token) == klen && memcmp(KINDS[i].token, tail, klen) == 0 &&
                KINDS[i].table == table) {
                out->type = ORD_KEY_IDEM;
                out->kind = KINDS[i].kind;
                out->id = (ord_slice){ s2 + 1, tlen - klen - 1 };
                return check_idem_bytes(out->id.p, out->id.len, err);
            }
        }
        return bad(err, tn, "unknown idempotency kind for this table");
    }
    const char *id_what = NULL;
    if (table == ORD_TABLE_ORDERS && tag == 'o') {
        out->type = ORD_KEY_ORDER;
        id_what = "order id";
    } else if (table == ORD_TABLE_PAYMENTS && tag == 'p') {
        out->type = ORD_KEY_PAYMENT;
        id_what = "payment id";
    } else if (table == ORD_TABLE_PAYMENTS && tag == 'r') {
        out->type = ORD_KEY_REFUND;
        id_what = "refund id";
    } else if (table == ORD_TABLE_STOCK && tag == 'r') {
        out->type = ORD_KEY_RESERVATION;
        id_what = "reservation id";
    } else {
        return bad(err, tn, "unknown tag");
    }
    out->id = (ord_slice){ tail, tlen };
    return check_id_bytes(id_what, tail, tlen, err);
}
