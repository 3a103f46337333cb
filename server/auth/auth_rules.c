#include "auth_rules.h"

#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "orderkv.pb-c.h"
#include "orders.pb-c.h"

#define MAX_TABLES 512   /* a transaction: 256 conditions + 256 writes */

typedef struct table_need {
    const char *table;
    enum auth_access access;
} table_need;

/* Fills out[] with what the request needs; returns how many, or -1 when
 * the request does not decode. Protobuf-c's unpacked message stays alive
 * in *keep until the caller frees it (the names point into it). */
typedef int (*tables_fn)(const uint8_t *req, size_t len, table_need *out, ProtobufCMessage **keep);

struct auth_rule {
    const char *path;
    enum auth_need need;
    tables_fn tables;                /* AUTH_NEED_TABLES with a table in the request */
    const char *fixed[3];            /* AUTH_NEED_TABLES of the orders service */
    enum auth_access fixed_access;
};

#define ONE_TABLE_FN(name, type, unpack, acc)                                             \
    static int name(const uint8_t *req, size_t len, table_need *out, ProtobufCMessage **keep) \
    {                                                                                        \
        type *m = unpack(NULL, len, req);                                                    \
        if (!m)                                                                              \
            return -1;                                                                       \
        *keep = &m->base;                                                                    \
        out[0].table = m->table;                                                             \
        out[0].access = acc;                                                                 \
        return 1;                                                                            \
    }

ONE_TABLE_FN(get_tables, Orderkv__V1__GetRequest, orderkv__v1__get_request__unpack,
             AUTH_ACCESS_READ)
ONE_TABLE_FN(scan_tables, Orderkv__V1__ScanRequest, orderkv__v1__scan_request__unpack,
             AUTH_ACCESS_READ)
ONE_TABLE_FN(put_tables, Orderkv__V1__PutRequest, orderkv__v1__put_request__unpack,
             AUTH_ACCESS_WRITE)
ONE_TABLE_FN(delete_tables, Orderkv__V1__DeleteRequest, orderkv__v1__delete_request__unpack,
             AUTH_ACCESS_WRITE)

static int txn_tables(const uint8_t *req, size_t len, table_need *out, ProtobufCMessage **keep)
{
    Orderkv__V1__TxnRequest *m = orderkv__v1__txn_request__unpack(NULL, len, req);
    if (!m)
        return -1;
    *keep = &m->base;
    if (m->n_conditions + m->n_writes > MAX_TABLES)
        return -1;
    int n = 0;
    for (size_t i = 0; i < m->n_conditions; i++)
        out[n++] = (table_need){ m->conditions[i]->table, AUTH_ACCESS_READ };
    for (size_t i = 0; i < m->n_writes; i++)
        out[n++] = (table_need){ m->writes[i]->table, AUTH_ACCESS_WRITE };
    return n;
}

/* Creating an order writes the orders table, and stock when it reserves. */
static int create_order_tables(const uint8_t *req, size_t len, table_need *out,
                               ProtobufCMessage **keep)
{
    Orderkv__V1__CreateOrderRequest *m = orderkv__v1__create_order_request__unpack(NULL, len, req);
    if (!m)
        return -1;
    *keep = &m->base;
    out[0] = (table_need){ "orders", AUTH_ACCESS_WRITE };
    int reserves = m->reserve_stock;
    for (size_t i = 0; i < m->n_items; i++)
        reserves |= m->items[i]->reserve_stock;
    if (!reserves)
        return 1;
    out[1] = (table_need){ "stock", AUTH_ACCESS_WRITE };
    return 2;
}

#define K "/orderkv.v1.KV/"
#define A "/orderkv.v1.Admin/"
#define O "/orderkv.v1.Orders/"
#define R AUTH_ACCESS_READ
#define W AUTH_ACCESS_WRITE

static const auth_rule RULES[] = {
    { K "Get", AUTH_NEED_TABLES, get_tables, { 0 }, 0 },
    { K "Scan", AUTH_NEED_TABLES, scan_tables, { 0 }, 0 },
    { K "Put", AUTH_NEED_TABLES, put_tables, { 0 }, 0 },
    { K "Delete", AUTH_NEED_TABLES, delete_tables, { 0 }, 0 },
    { K "Txn", AUTH_NEED_TABLES, txn_tables, { 0 }, 0 },
    /* The stream itself: each item it carries is checked as its method. */
    { K "Batch", AUTH_NEED_ITEMS, NULL, { 0 }, 0 },
    { K "TxnStatus", AUTH_NEED_USER, NULL, { 0 }, 0 },
    { K "TxnPart", AUTH_NEED_NODE, NULL, { 0 }, 0 },
    { "/orderkv.v1.Raft/Stream", AUTH_NEED_NODE, NULL, { 0 }, 0 },
    { "/orderkv.v1.Raft/Snapshot", AUTH_NEED_NODE, NULL, { 0 }, 0 },
    { A "Status", AUTH_NEED_USER, NULL, { 0 }, 0 },
    { A "WhoAmI", AUTH_NEED_USER, NULL, { 0 }, 0 },
    { A "TransferLeader", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    { A "UserAdd", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    { A "UserSet", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    { A "UserDelete", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    { A "UserList", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    { A "AuditTail", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    /* A backup reads every table and holds back transactions: admin. */
    { A "BackupFence", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    { A "BackupCut", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    { A "BackupRead", AUTH_NEED_ADMIN, NULL, { 0 }, 0 },
    { O "CreateOrder", AUTH_NEED_TABLES, create_order_tables, { 0 }, 0 },
    { O "GetOrder", AUTH_NEED_TABLES, NULL, { "orders" }, R },
    { O "ListOrders", AUTH_NEED_TABLES, NULL, { "orders" }, R },
    { O "PayOrder", AUTH_NEED_TABLES, NULL, { "orders", "payments", "accounts" }, W },
    { O "CancelOrder", AUTH_NEED_TABLES, NULL, { "orders", "payments", "accounts" }, W },
    { O "ShipOrder", AUTH_NEED_TABLES, NULL, { "orders" }, W },
    { O "CompleteOrder", AUTH_NEED_TABLES, NULL, { "orders" }, W },
    { O "RefundOrder", AUTH_NEED_TABLES, NULL, { "orders", "payments", "accounts" }, W },
    { O "CreateAccount", AUTH_NEED_TABLES, NULL, { "accounts" }, W },
    { O "GetAccount", AUTH_NEED_TABLES, NULL, { "accounts" }, R },
    { O "Deposit", AUTH_NEED_TABLES, NULL, { "accounts" }, W },
    { O "SetStock", AUTH_NEED_TABLES, NULL, { "stock" }, W },
    { O "GetStock", AUTH_NEED_TABLES, NULL, { "stock" }, R },
    { O "ReserveStock", AUTH_NEED_TABLES, NULL, { "stock" }, W },
};

const auth_rule *auth_rule_find(const char *path)
{
    for (size_t i = 0; i < sizeof RULES / sizeof RULES[0]; i++)
        if (strcmp(RULES[i].path, path) == 0)
            return &RULES[i];
    return NULL;
}

enum auth_need auth_rule_need(const auth_rule *r) { return r->need; }
size_t auth_rules_count(void) { return sizeof RULES / sizeof RULES[0]; }
const char *auth_rule_path(size_t i) { return i < auth_rules_count() ? RULES[i].path : NULL; }

static const char *verb(enum auth_access a) { return a == AUTH_ACCESS_WRITE ? "write" : "read"; }

/* The method's short name for messages: "KV/Get". */
static const char *short_path(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

int auth_rule_check(const auth_rule *r, const auth_user *u, const uint8_t *req, size_t len,
                    char *msg, size_t cap)
{
    if (!u)
        return OKV_OK;   /* the nodes themselves */
    switch (r->need) {
    case AUTH_NEED_NODE:
        snprintf(msg, cap, "permission denied: %s is called only by orderkv nodes, not by user %s",
                 short_path(r->path), u->name);
        return OKV_EPERMISSION;
    case AUTH_NEED_ADMIN:
        if (u->role == AUTH_ROLE_ADMIN)
            return OKV_OK;
        snprintf(msg, cap, "permission denied: user %s may not call %s (it needs role admin; "
                           "the user has role %s)", u->name, short_path(r->path),
                 auth_role_name(u->role));
        return OKV_EPERMISSION;
    case AUTH_NEED_USER:
    case AUTH_NEED_ITEMS:
        return OKV_OK;
    case AUTH_NEED_TABLES:
        break;
    }
    if (!r->tables) {
        for (size_t i = 0; i < 3 && r->fixed[i]; i++)
            if (auth_user_access(u, r->fixed[i]) < r->fixed_access) {
                snprintf(msg, cap, "permission denied: user %s may not %s table %s (%s %ss it)",
                         u->name, verb(r->fixed_access), r->fixed[i], short_path(r->path),
                         verb(r->fixed_access));
                return OKV_EPERMISSION;
            }
        return OKV_OK;
    }
    static _Thread_local table_need need[MAX_TABLES];
    ProtobufCMessage *keep = NULL;
    int n = r->tables(req, len, need, &keep);
    int rc = OKV_OK;
    if (n < 0) {
        snprintf(msg, cap, "malformed %s request", short_path(r->path));
        rc = OKV_EPROTO;
    }
    if (n == 0 && u->role == AUTH_ROLE_NONE && u->ngrants == 0) {
        /* A request that names no table (an empty transaction) still
         * needs a user who may use some table. */
        snprintf(msg, cap, "permission denied: user %s may not call %s (it may use no table)",
                 u->name, short_path(r->path));
        rc = OKV_EPERMISSION;
    }
    for (int i = 0; rc == OKV_OK && i < n; i++) {
        const char *t = need[i].table ? need[i].table : "";
        if (auth_user_access(u, t) < need[i].access) {
            snprintf(msg, cap, "permission denied: user %s may not %s table %.64s", u->name,
                     verb(need[i].access), t);
            rc = OKV_EPERMISSION;
        }
    }
    if (keep)
        protobuf_c_message_free_unpacked(keep, NULL);
    return rc;
}
