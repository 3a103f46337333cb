/*
 * client.c — creating and closing clients, per-thread error messages.
 */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client_async.h"
#include "orderkv_orders.h"

/* The handle is shared by threads, so "the last error" is per thread: each
 * thread sees the message of its own last failed call on that handle. */
static _Thread_local struct {
    const okv_client *who;
    int reason;            /* an Orders refusal's OrdersError, else 0 */
    char msg[512];
} last_error;

int client_fail(const okv_client *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    last_error.who = c;
    last_error.reason = 0;
    vsnprintf(last_error.msg, sizeof last_error.msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *okv_errmsg(const okv_client *c)
{
    return last_error.who == c ? last_error.msg : "";
}

void client_fail_reason(const okv_client *c, int reason)
{
    if (last_error.who == c)
        last_error.reason = reason;
}

int okv_orders_reason(const okv_client *c)
{
    return last_error.who == c ? last_error.reason : 0;
}

const char *client_method_path(enum client_method m)
{
    static const char *const paths[M_COUNT] = {
        "/orderkv.v1.KV/Get", "/orderkv.v1.KV/Put", "/orderkv.v1.KV/Delete",
        "/orderkv.v1.KV/Scan", "/orderkv.v1.Admin/Status", "/orderkv.v1.Admin/TransferLeader",
        "/orderkv.v1.KV/Batch", "/orderkv.v1.KV/Txn", "/orderkv.v1.KV/TxnPart",
        "/orderkv.v1.KV/TxnStatus",
        "/orderkv.v1.Admin/WhoAmI", "/orderkv.v1.Admin/UserAdd", "/orderkv.v1.Admin/UserSet",
        "/orderkv.v1.Admin/UserDelete", "/orderkv.v1.Admin/UserList",
        "/orderkv.v1.Admin/AuditTail",
        "/orderkv.v1.Admin/BackupFence", "/orderkv.v1.Admin/BackupCut",
        "/orderkv.v1.Admin/BackupRead",
        "/orderkv.v1.Orders/CreateOrder", "/orderkv.v1.Orders/GetOrder",
        "/orderkv.v1.Orders/ListOrders", "/orderkv.v1.Orders/PayOrder",
        "/orderkv.v1.Orders/CancelOrder", "/orderkv.v1.Orders/ShipOrder",
        "/orderkv.v1.Orders/CompleteOrder", "/orderkv.v1.Orders/RefundOrder",
        "/orderkv.v1.Orders/CreateAccount", "/orderkv.v1.Orders/GetAccount",
        "/orderkv.v1.Orders/Deposit", "/orderkv.v1.Orders/SetStock",
        "/orderkv.v1.Orders/GetStock", "/orderkv.v1.Orders/ReserveStock",
    };
    return m < M_COUNT ? paths[m] : "";
}

static uint64_t random_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    return id ? id : 1;
}

/* One past the highest request id of every client closed so far in this
 * process: a later client starts above it even if the wall clock did not
 * advance (or stepped back) in between (client_int.h). */
static _Atomic uint64_t closed_ids_end;

static uint64_t wall_clock_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Splits "a:1,b:2" into c->addrs; rejects empty entries and entries without
 * a port so that typos fail here, not as a timeout later. */
static int address_chars_ok(const char *a)
{
    for (const char *q = a; *q; q++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]", *q))
            return 0;
    return 1;
}

static int address_form_ok(const char *a)
{
    const char *colon = strrchr(a, ':');
    return colon && colon != a && colon[1] != '\0';
}

static int parse_addresses(okv_client *c, const char *list)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 0)
            return client_fail(c, OKV_EINVAL, "empty address in '%s'", list);
        if (len >= CLIENT_ADDR_MAX)
            return client_fail(c, OKV_EINVAL, "address longer than %d bytes in '%s'",
                               CLIENT_ADDR_MAX - 1, list);
        if (c->naddrs == CLIENT_MAX_ADDRS)
            return client_fail(c, OKV_EINVAL, "more than %d addresses", CLIENT_MAX_ADDRS);
        char *a = c->addrs[c->naddrs];
        memcpy(a, p, len);
        a[len] = '\0';
        if (!address_chars_ok(a))
            return client_fail(c, OKV_EINVAL, "address '%s' has a character not allowed in HOST:PORT", a);
        if (!address_form_ok(a))
            return client_fail(c, OKV_EINVAL, "address '%s' is not HOST:PORT", a);
        c->naddrs++;
        p += len;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p)
            return client_fail(c, OKV_EINVAL, "malformed address list '%s'", list);
    }
    if (c->naddrs == 0)
        return client_fail(c, OKV_EINVAL, "no address given");
    return OKV_OK;
}

/* Opens node i's channels and registers the methods on them. */
static void open_channels(okv_client *c, size_t i)
{
    grpc_channel_credentials *creds = tls_channel_creds(&c->tls);
    /* Reconnect quickly after a node restarts: gRPC's default backoff grows
     * to two minutes, far longer than any call's deadline. (gRPC uses the
     * "min reconnect backoff" as the minimum time a connection attempt may
     * take, so that one stays generous: a slow or loaded node still gets
     * time to finish the HTTP/2 handshake.) */
    /* A local subchannel pool gives each channel its own connection;
     * otherwise gRPC would share one connection among identical channels. */
    grpc_arg argv[5];
    const char *keys[5] = { GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                            GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                            GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL };
    int values[5] = { 64 * 1024 * 1024, 100, 5000, 1000, 1 };
    for (int j = 0; j < 5; j++) {
        argv[j].type = GRPC_ARG_INTEGER;
        argv[j].key = (char *)keys[j];
        argv[j].value.integer = values[j];
    }
    grpc_channel_args args = { 5, argv };
    for (int k = 0; k < CLIENT_CONNS_PER_NODE; k++) {
        c->channels[i][k] = grpc_channel_create(c->addrs[i], creds, &args);
        for (int m = 0; m < M_COUNT; m++)
            c->methods[i][k][m] = grpc_channel_register_call(
                c->channels[i][k], client_method_path((enum client_method)m), NULL, NULL);
    }
    grpc_channel_credentials_release(creds);
}

size_t client_naddrs(okv_client *c)
{
    return atomic_load_explicit(&c->naddrs, memory_order_acquire);
}

long client_node_add(okv_client *c, const char *addr)
{
    size_t len = strlen(addr);
    pthread_mutex_lock(&c->addr_mu);
    size_t n = atomic_load_explicit(&c->naddrs, memory_order_relaxed);
    long idx = -1;
    for (size_t i = 0; i < n && idx < 0; i++)
        if (strcmp(c->addrs[i], addr) == 0)
            idx = (long)i;
    /* New nodes are added unless the caller pinned the list; a malformed
     * address from a server is ignored, never dialled. */
    if (idx < 0 && !c->opts.listed_nodes_only && n < CLIENT_MAX_ADDRS && len > 0 &&
        len < CLIENT_ADDR_MAX && address_chars_ok(addr) && address_form_ok(addr)) {
        memcpy(c->addrs[n], addr, len + 1);
        open_channels(c, n);
        atomic_store_explicit(&c->naddrs, n + 1, memory_order_release);
        idx = (long)n;
    }
    pthread_mutex_unlock(&c->addr_mu);
    return idx;
}

static void close_rest(okv_client *c);

int okv_connect(okv_client **out, const char *addresses, const okv_options *opts)
{
    if (!out)
        return OKV_EINVAL;
    *out = NULL;
    okv_options defaults = OKV_OPTIONS_INIT;
    if (opts && (opts->version < 1 || opts->version > OKV_OPTIONS_VERSION))
        return client_fail(NULL, OKV_EINVAL, "okv_options.version is %u; this library is %d",
                           opts->version, OKV_OPTIONS_VERSION);
    okv_client *c = calloc(1, sizeof *c);
    if (!c)
        return OKV_ENOMEM;
    c->opts = defaults;
    /* An older caller's struct ends where its version's fields end. */
    if (opts && opts->version == 1)
        memcpy(&c->opts, opts, offsetof(okv_options, listed_nodes_only));
    else if (opts && opts->version == 2)
        memcpy(&c->opts, opts, offsetof(okv_options, tls_ca));
    else if (opts && opts->version == 3)
        memcpy(&c->opts, opts, offsetof(okv_options, user));
    else if (opts)
        c->opts = *opts;
    c->opts.version = OKV_OPTIONS_VERSION;
    static const char *const tls_names[3] = { "tls_ca", "tls_cert", "tls_key" };
    okv_error terr;
    okv_error_clear(&terr);
    int trc = tls_pem_load(&c->tls, c->opts.tls_ca, c->opts.tls_cert, c->opts.tls_key,
                           tls_names, &terr);
    c->opts.tls_ca = c->opts.tls_cert = c->opts.tls_key = NULL;   /* the caller's */
    if (trc) {
        free(c);
        return client_fail(NULL, trc, "%s", terr.msg);
    }
    int arc = client_auth_init(c, c->opts.user, c->opts.password);
    c->opts.user = c->opts.password = NULL;   /* the caller's */
    if (arc) {
        tls_pem_free(&c->tls);
        free(c);
        return arc;
    }
    if (c->opts.default_timeout_ms <= 0)
        c->opts.default_timeout_ms = defaults.default_timeout_ms;
    if (c->opts.client_id == 0)
        c->opts.client_id = random_id();
    if (!addresses) {
        client_auth_free(c);
        tls_pem_free(&c->tls);
        free(c);
        return client_fail(NULL, OKV_EINVAL, "no address given");
    }
    int rc = parse_addresses(c, addresses);
    if (rc) {
        /* Keep the message visible through okv_errmsg(NULL) for the caller. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", okv_errmsg(c));
        client_fail(NULL, rc, "%s", msg);
        client_auth_free(c);
        tls_pem_free(&c->tls);
        free(c);
        return rc;
    }
    snprintf(c->addr_list, sizeof c->addr_list, "%s", addresses);
    grpc_init();
    for (size_t i = 0; i < c->naddrs; i++)
        open_channels(c, i);
    pthread_mutex_init(&c->addr_mu, NULL);
    pthread_mutex_init(&c->cq_mu, NULL);
    pthread_mutex_init(&c->route_mu, NULL);
    atomic_init(&c->current, 0);
    pthread_mutex_init(&c->inflight_mu, NULL);
    c->next_request_id = client_request_id_first(wall_clock_us(), atomic_load(&closed_ids_end));
    if (client_async_start(c) != OKV_OK) {
        close_rest(c);
        return client_fail(NULL, OKV_EINTERNAL, "cannot start the client's completion thread");
    }
    *out = c;
    return OKV_OK;
}

void okv_close(okv_client *c)
{
    if (!c)
        return;
    client_async_stop(c);
    close_rest(c);
}

/* Everything but the asynchronous core. */
static void close_rest(okv_client *c)
{
    for (size_t i = 0; i < c->cq_nfree; i++) {
        grpc_completion_queue_shutdown(c->cq_free[i]);
        grpc_completion_queue_destroy(c->cq_free[i]);
    }
    free(c->cq_free);
    pthread_mutex_destroy(&c->cq_mu);
    client_route_free(c);
    pthread_mutex_destroy(&c->route_mu);
    uint64_t end = c->next_request_id;
    uint64_t seen = atomic_load(&closed_ids_end);
    while (seen < end && !atomic_compare_exchange_weak(&closed_ids_end, &seen, end)) {
        /* another client raised it meanwhile; seen holds the new value */
    }
    pthread_mutex_destroy(&c->inflight_mu);
    pthread_mutex_destroy(&c->addr_mu);
    for (size_t i = 0; i < c->naddrs; i++)
        for (int k = 0; k < CLIENT_CONNS_PER_NODE; k++)
            grpc_channel_destroy(c->channels[i][k]);
    client_auth_free(c);
    tls_pem_free(&c->tls);
    free(c);
    grpc_shutdown();
}

grpc_completion_queue *client_cq_get(okv_client *c)
{
    grpc_completion_queue *cq = NULL;
    pthread_mutex_lock(&c->cq_mu);
    if (c->cq_nfree)
        cq = c->cq_free[--c->cq_nfree];
    pthread_mutex_unlock(&c->cq_mu);
    return cq ? cq : grpc_completion_queue_create_for_pluck(NULL);
}

void client_cq_put(okv_client *c, grpc_completion_queue *cq)
{
    pthread_mutex_lock(&c->cq_mu);
    if (c->cq_nfree == c->cq_cap) {
        size_t cap = c->cq_cap ? c->cq_cap * 2 : 16;
        grpc_completion_queue **n = realloc(c->cq_free, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&c->cq_mu);
            grpc_completion_queue_shutdown(cq);
            grpc_completion_queue_destroy(cq);
            return;
        }
        c->cq_free = n;
        c->cq_cap = cap;
    }
    c->cq_free[c->cq_nfree++] = cq;
    pthread_mutex_unlock(&c->cq_mu);
}
