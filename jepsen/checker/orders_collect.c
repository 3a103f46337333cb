/*
 * orders_collect.c — reads an orders history into the checker's state:
 * checks each op's shape (a runner bug is a format error, never an
 * anomaly), gathers the attempts of every idempotency key, every
 * observation of every order, the initial stock, and the final state
 * (the last ok final read of each customer, sku and account), then indexes
 * the final state's payments, refunds, reservations and deposits.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orders_int.h"

/* ---- growing the per-entity arrays ------------------------------------------ */

static bool reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *n = realloc(*arr, nc * elem);
    if (!n)
        return false;
    *arr = n;
    *cap = nc;
    return true;
}

/* Which info array belongs to map m, so interning grows it in step. */
static void *slot_of(ostate *s, strmap *m, size_t **cap, size_t *elem)
{
#define MAP(name, arr, c)                                                                          \
    if (m == &s->name) {                                                                           \
        *cap = &s->c;                                                                              \
        *elem = sizeof *s->arr;                                                                    \
        return &s->arr;                                                                            \
    }
    MAP(customers, cust, cap_cust)
    MAP(orders, ord, cap_ord)
    MAP(skus, sku, cap_sku)
    MAP(accounts, acct, cap_acct)
    MAP(keys, key, cap_key)
    MAP(pays, pay, cap_pay)
    MAP(refunds, refund, cap_refund)
    MAP(reservations, resv, cap_resv)
    MAP(deposits, dep, cap_dep)
#undef MAP
    return NULL;
}

/* A new entity's info: positions NONE, the rest zero. */
static void init_info(ostate *s, strmap *m, size_t id)
{
    if (m == &s->customers)
        s->cust[id] = (cust_info){ .orders_inv = NONE, .payments_inv = NONE };
    else if (m == &s->orders)
        s->ord[id] = (ord_info){ .final_inv = NONE, .first_payment = NONE, .first_refund = NONE };
    else if (m == &s->skus)
        s->sku[id] = (sku_info){ .init_inv = NONE, .final_inv = NONE };
    else if (m == &s->accounts)
        s->acct[id] = (acct_info){ .final_inv = NONE };
    else if (m == &s->keys)
        s->key[id] = (key_info){ .answer_inv = NONE, .first_inv = NONE, .record_inv = NONE };
    else if (m == &s->pays)
        s->pay[id] = (frec){ .inv = NONE, .owner = NONE };
    else if (m == &s->refunds)
        s->refund[id] = (frec){ .inv = NONE, .owner = NONE };
    else if (m == &s->reservations)
        s->resv[id] = (frec){ .inv = NONE, .owner = NONE };
    else
        s->dep[id] = (frec){ .inv = NONE, .owner = NONE };
}

/* The id of "a" or "a<sep>b" in m, added if new. NONE when out of memory. */
static size_t intern2(ostate *s, strmap *m, const char *a, char sep, const char *b)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char stack[512], *buf = la + lb + 2 <= sizeof stack ? stack : malloc(la + lb + 2);
    if (!buf) {
        s->oom = true;
        return NONE;
    }
    memcpy(buf, a, la);
    size_t len = la;
    if (b) {
        buf[len++] = sep;
        memcpy(buf + len, b, lb);
        len += lb;
    }
    size_t before = m->n, id = NONE;
    size_t *cap = NULL, elem = 0;
    void *arr = slot_of(s, m, &cap, &elem);
    if (strmap_intern(m, buf, len, &id) != 0 || !reserve(arr, cap, m->n, elem)) {
        s->oom = true;
        id = NONE;
    } else if (m->n > before) {
        init_info(s, m, id);
    }
    if (buf != stack)
        free(buf);
    return id;
}

size_t orders_order_id(ostate *s, const char *customer, const char *oid)
{
    return intern2(s, &s->orders, customer, '/', oid);
}

/* ---- shapes ---------------------------------------------------------------------- */

static bool is_str(const history_value *v) { return v->kind == HV_OTHER && v->s; }

static bool tuple_ok(const history_value *v);

/* Shape letters: s string, i integer, L list, O order tuple, o O or null,
 * z string or null. */
static bool shape_ok(const history_value *v, const char *shape)
{
    size_t n = strlen(shape);
    if (v->kind != HV_LIST || v->n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const history_value *x = &v->items[i];
        bool ok = false;
        switch (shape[i]) {
        case 's': ok = is_str(x); break;
        case 'i': ok = x->kind == HV_INT; break;
        case 'L': ok = x->kind == HV_LIST; break;
        case 'O': ok = tuple_ok(x); break;
        case 'o': ok = x->kind == HV_NULL || tuple_ok(x); break;
        case 'z': ok = x->kind == HV_NULL || is_str(x); break;
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool list_of(const history_value *v, const char *shape)
{
    if (v->kind != HV_LIST)
        return false;
    for (size_t i = 0; i < v->n; i++)
        if (!shape_ok(&v->items[i], shape))
            return false;
    return true;
}

static bool tuple_ok(const history_value *v)
{
    return shape_ok(v, "sssiiisssLL") && list_of(&v->items[O_ITEMS], "siis") &&
           shape_ok(&v->items[O_TIMES], "iiiiii");
}

/* ---- the ops ----------------------------------------------------------------------- */

const char *orders_answer(const history_value *ok, int at)
{
    const history_value *a = &ok->items[at];
    return a->kind == HV_LIST ? a->items[O_ID].s : a->s;
}

typedef struct opdef {
    const char *f;
    const char *invoke;     /* shape of the invoke value */
    const char *ok;         /* shape of the ok value */
    int kind;               /* K_* of a keyed request, or -1 */
    int key_at;             /* index of the key in the invoke value */
    int answer_at;          /* index in the ok value of the id answered, or -1 */
    int order_at;           /* index in the ok value of an O (or null), or -1 */
} opdef;

static const opdef OPS[] = {
    { "set-stock", "si", "si", -1, 0, -1, -1 },
    { "open-account", "s", "s", -1, 0, -1, -1 },
    { "deposit", "sis", "sis", K_DEPOSIT, 2, -1, -1 },
    { "create", "ssL", "ssLO", K_CREATE, 1, 3, 3 },   /* answer: the order's id */
    { "pay", "sssis", "sssissO", K_PAY, 4, 5, 6 },
    { "refund", "ssis", "ssissO", K_REFUND, 3, 4, 5 },
    { "cancel", "ss", "sszO", -1, 0, -1, 3 },
    { "ship", "ss", "ssO", -1, 0, -1, 2 },
    { "complete", "ss", "ssO", -1, 0, -1, 2 },
    { "reserve", "sis", "siss", K_RESERVE, 2, 3, -1 },
    { "get-order", "ss", "sso", -1, 0, -1, 2 },
    { "list-orders", "s", "sL", -1, 0, -1, -1 },
    { "get-account", "s", "si", -1, 0, -1, -1 },
    { "get-stock", "s", "si", -1, 0, -1, -1 },
    { "final-orders", "s", "sL", -1, 0, -1, -1 },
    { "final-payments", "s", "sLL", -1, 0, -1, -1 },
    { "final-stock", "s", "siL", -1, 0, -1, -1 },
    { "final-account", "s", "siL", -1, 0, -1, -1 },
};
#define N_OPS (sizeof OPS / sizeof OPS[0])

static const opdef *find_op(const char *f)
{
    for (size_t i = 0; i < N_OPS; i++)
        if (strcmp(OPS[i].f, f) == 0)
            return &OPS[i];
    return NULL;
}

static int add_snap(ostate *s, const history_value *o, size_t inv, size_t ret, bool timed)
{
    size_t ord = orders_order_id(s, o->items[O_CUSTOMER].s, o->items[O_ID].s);
    if (ord == NONE || !reserve((void **)&s->snaps, &s->cap_snaps, s->n_snaps + 1, sizeof *s->snaps))
        return OKV_ENOMEM;
    s->snaps[s->n_snaps++] = (o_snap){ ord, o, inv, ret, timed };
    return 0;
}

/* An attempt of a keyed request. */
static void add_attempt(ostate *s, const opdef *d, size_t inv, history_type t)
{
    const history_op *op = &s->h->ops[inv];
    const char *key = op->value.items[d->key_at].s;
    if (!*key)
        return;
    char kind[4] = { (char)('0' + d->kind), 0 };
    size_t id = intern2(s, &s->keys, kind, ':', key);
    if (id == NONE)
        return;
    key_info *k = &s->key[id];
    k->kind = d->kind;
    k->key = strchr(strmap_key(&s->keys, id), ':') + 1;
    if (k->first_inv == NONE)
        k->first_inv = inv;
    k->any_ok |= t == HISTORY_OK;
    k->any_info |= t == HISTORY_INFO;
    if (t == HISTORY_OK && d->answer_at >= 0 && !k->answer) {
        k->answer = orders_answer(&s->h->ops[op->pair].value, d->answer_at);
        k->answer_inv = inv;
    }
}

static int set_stock(ostate *s, size_t inv, history_type t, okv_error *err)
{
    const history_op *op = &s->h->ops[inv];
    size_t id = intern2(s, &s->skus, op->value.items[0].s, 0, NULL);
    if (id == NONE)
        return OKV_ENOMEM;
    sku_info *k = &s->sku[id];
    int64_t v = op->value.items[1].i;
    if (k->init_inv != NONE && s->h->ops[k->init_inv].value.items[1].i != v)
        return history_op_error(err, "orders", op, "sku %s's stock is set to two values; the "
                                "checker needs one initial stock per sku", op->value.items[0].s);
    k->init_inv = inv;
    if (t == HISTORY_OK) {
        k->has_init = true;
        k->init = v;
    }
    return 0;
}

/* The last ok final read of its entity wins (they all run after healing). */
static int final_read(ostate *s, const opdef *d, size_t inv)
{
    const history_value *v = &s->h->ops[s->h->ops[inv].pair].value;
    const char *who = v->items[0].s;
    s->final_reads++;
    if (d->f[6] == 'o' || d->f[6] == 'p') {   /* final-orders, final-payments */
        size_t id = intern2(s, &s->customers, who, 0, NULL);
        if (id == NONE)
            return OKV_ENOMEM;
        cust_info *c = &s->cust[id];
        if (d->f[6] == 'o') {
            c->orders_inv = inv;
            c->orders = &v->items[1];
        } else {
            c->payments_inv = inv;
            c->payments = &v->items[1];
            c->refunds = &v->items[2];
        }
    } else if (d->f[6] == 's') {
        size_t id = intern2(s, &s->skus, who, 0, NULL);
        if (id == NONE)
            return OKV_ENOMEM;
        s->sku[id].final_inv = inv;
        s->sku[id].available = v->items[1].i;
        s->sku[id].reservations = &v->items[2];
    } else {
        size_t id = intern2(s, &s->accounts, who, 0, NULL);
        if (id == NONE)
            return OKV_ENOMEM;
        s->acct[id].final_inv = inv;
        s->acct[id].balance = v->items[1].i;
        s->acct[id].deposits = &v->items[2];
    }
    return 0;
}

/* Shapes of the lists inside list-orders and the final reads. */
static bool inner_ok(const opdef *d, const history_value *v)
{
    if (strcmp(d->f, "list-orders") == 0 || strcmp(d->f, "final-orders") == 0) {
        for (size_t i = 0; i < v->items[1].n; i++)
            if (!tuple_ok(&v->items[1].items[i]))
                return false;
        return true;
    }
    if (strcmp(d->f, "final-payments") == 0)
        return list_of(&v->items[1], "ssiss") && list_of(&v->items[2], "sssiss");
    if (strcmp(d->f, "final-stock") == 0)
        return list_of(&v->items[2], "sssis");
    if (strcmp(d->f, "final-account") == 0)
        return list_of(&v->items[2], "si");
    return true;
}

/* Observations an ok op carries: the order it returns, or every order of
 * a list. A keyed request's answer may be a replay of an older state. */
static int snaps_of(ostate *s, const opdef *d, size_t inv)
{
    const history_op *op = &s->h->ops[inv];
    const history_value *v = &s->h->ops[op->pair].value;
    if (d->order_at >= 0) {
        const history_value *o = &v->items[d->order_at];
        bool keyed = d->kind >= 0 && *op->value.items[d->key_at].s;
        return o->kind == HV_NULL ? 0 : add_snap(s, o, inv, op->pair, !keyed);
    }
    if (strcmp(d->f, "list-orders") == 0 || strcmp(d->f, "final-orders") == 0)
        for (size_t i = 0; i < v->items[1].n; i++) {
            int rc = add_snap(s, &v->items[1].items[i], inv, op->pair, true);
            if (rc)
                return rc;
        }
    return 0;
}

static int one_op(ostate *s, size_t pos, okv_error *err)
{
    const history_op *op = &s->h->ops[pos];
    const opdef *d = find_op(history_f(s->h, op));
    if (!d)
        return history_op_error(err, "orders", op, "f \"%s\" is not an orders op", history_f(s->h, op));
    if (!shape_ok(&op->value, d->invoke))
        return history_op_error(err, "orders", op, "a %s's invoke value must have the shape %s "
                                "(orders_check.h)", d->f, d->invoke);
    history_type t = history_outcome(s->h, pos);
    if (t == HISTORY_OK) {
        const history_op *done = &s->h->ops[op->pair];
        if (!shape_ok(&done->value, d->ok) || !inner_ok(d, &done->value))
            return history_op_error(err, "orders", done, "an ok %s's value must have the shape %s "
                                    "(orders_check.h)", d->f, d->ok);
    }
    if (strcmp(d->f, "set-stock") == 0)
        return set_stock(s, pos, t, err);
    if (d->kind >= 0) {
        add_attempt(s, d, pos, t);
        s->ops_by_outcome[t == HISTORY_OK ? 0 : t == HISTORY_FAIL ? 1 : 2]++;
    }
    if (t != HISTORY_OK)
        return s->oom ? OKV_ENOMEM : 0;
    if (strncmp(d->f, "final-", 6) == 0) {
        int rc = final_read(s, d, pos);
        if (rc)
            return rc;
    }
    int rc = snaps_of(s, d, pos);
    return rc ? rc : s->oom ? OKV_ENOMEM : 0;
}

/* ---- the final state's records ---------------------------------------------------- */

/* Counts a record of a keyed request for its key, if the runner used it. */
static void key_record(ostate *s, int kind, const char *key, size_t inv)
{
    if (!*key)
        return;
    char buf[600];
    int n = snprintf(buf, sizeof buf, "%d:%s", kind, key);
    if (n < 0 || (size_t)n >= sizeof buf)
        return;
    size_t id = strmap_find(&s->keys, buf, (size_t)n);
    if (id == NONE)
        return;
    if (s->key[id].n_records++ == 0)
        s->key[id].record_inv = inv;
}

static void index_customer(ostate *s, size_t c)
{
    const cust_info *ci = &s->cust[c];
    const char *cust = strmap_key(&s->customers, c);
    for (size_t i = 0; ci->orders && i < ci->orders->n; i++) {
        const history_value *o = &ci->orders->items[i];
        size_t ord = orders_order_id(s, o->items[O_CUSTOMER].s, o->items[O_ID].s);
        if (ord == NONE)
            return;
        s->ord[ord].final = o;
        s->ord[ord].final_inv = ci->orders_inv;
        key_record(s, K_CREATE, o->items[O_MERCHANT].s, ci->orders_inv);
    }
    for (size_t i = 0; ci->payments && i < ci->payments->n; i++) {
        const history_value *p = &ci->payments->items[i];
        size_t id = intern2(s, &s->pays, cust, '/', p->items[0].s);
        size_t ord = orders_order_id(s, cust, p->items[1].s);
        if (id == NONE || ord == NONE)
            return;
        s->pay[id] = (frec){ p, ci->payments_inv, c };
        if (s->ord[ord].n_payments++ == 0)
            s->ord[ord].first_payment = id;
        key_record(s, K_PAY, p->items[4].s, ci->payments_inv);
    }
    for (size_t i = 0; ci->refunds && i < ci->refunds->n; i++) {
        const history_value *r = &ci->refunds->items[i];
        size_t id = intern2(s, &s->refunds, cust, '/', r->items[0].s);
        size_t ord = orders_order_id(s, cust, r->items[1].s);
        if (id == NONE || ord == NONE)
            return;
        s->refund[id] = (frec){ r, ci->payments_inv, c };
        s->ord[ord].refunds += r->items[3].i;
        if (s->ord[ord].first_refund == NONE)
            s->ord[ord].first_refund = id;
        key_record(s, K_REFUND, r->items[5].s, ci->payments_inv);
    }
}

static void index_final(ostate *s)
{
    s->all_payments_read = s->customers.n > 0;
    for (size_t c = 0; c < s->customers.n && !s->oom; c++) {
        s->all_payments_read &= s->cust[c].payments_inv != NONE;
        index_customer(s, c);
    }
    for (size_t k = 0; k < s->skus.n && !s->oom; k++) {
        const history_value *rs = s->sku[k].reservations;
        for (size_t i = 0; rs && i < rs->n; i++) {
            const history_value *r = &rs->items[i];
            size_t id = intern2(s, &s->reservations, strmap_key(&s->skus, k), '/', r->items[0].s);
            if (id == NONE)
                return;
            s->resv[id] = (frec){ r, s->sku[k].final_inv, k };
            /* A reservation made alone carries its key as its customer. */
            if (!*r->items[1].s)
                key_record(s, K_RESERVE, r->items[2].s, s->sku[k].final_inv);
        }
    }
    for (size_t a = 0; a < s->accounts.n && !s->oom; a++) {
        const history_value *ds = s->acct[a].deposits;
        for (size_t i = 0; ds && i < ds->n; i++) {
            size_t id = intern2(s, &s->deposits, strmap_key(&s->accounts, a), '/', ds->items[i].items[0].s);
            if (id == NONE)
                return;
            s->dep[id] = (frec){ &ds->items[i], s->acct[a].final_inv, a };
            key_record(s, K_DEPOSIT, ds->items[i].items[0].s, s->acct[a].final_inv);
        }
    }
}

/* Customers, skus and accounts named by the main-phase ops must all be
 * read at the end; they are interned here so a missing final read shows. */
static void name_entities(ostate *s, size_t pos)
{
    const history_op *op = &s->h->ops[pos];
    const char *f = history_f(s->h, op), *first = op->value.items[0].s;
    if (strcmp(f, "deposit") == 0 || strcmp(f, "open-account") == 0 || strcmp(f, "get-account") == 0)
        intern2(s, &s->accounts, first, 0, NULL);
    else if (strcmp(f, "reserve") == 0 || strcmp(f, "get-stock") == 0 || strcmp(f, "set-stock") == 0)
        intern2(s, &s->skus, first, 0, NULL);
    else if (strncmp(f, "final-", 6) != 0)
        intern2(s, &s->customers, first, 0, NULL);
    if (strcmp(f, "pay") == 0)
        intern2(s, &s->accounts, op->value.items[2].s, 0, NULL);
}

int orders_collect(ostate *s, okv_error *err)
{
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE)
            continue;
        int rc = one_op(s, pos, err);
        if (rc == OKV_ENOMEM)
            return okv_error_set(err, rc, "out of memory");
        if (rc)
            return rc;
        name_entities(s, pos);
    }
    index_final(s);
    return s->oom ? okv_error_set(err, OKV_ENOMEM, "out of memory") : 0;
}

int orders_op_known(const char *f) { return find_op(f) != NULL; }

int orders_keyed(const char *f, int *kind, int *key_at)
{
    const opdef *d = find_op(f);
    if (!d || d->kind < 0)
        return -1;
    *kind = d->kind;
    *key_at = d->key_at;
    return d->answer_at;
}
