#define _GNU_SOURCE   /* explicit_bzero */
#include "auth.h"

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "auth_md.h"
#include "auth_password.h"
#include "auth_rules.h"
#include "failpoint.h"
#include "log.h"

#define CACHE_SLOTS 64
#define SECRET_MIN 16

/* A password that checked out against a hash: the next calls with the
 * same user, hash and password skip the slow hash. pw is SHA-256 of the
 * process's random salt and the password, never the password itself. */
typedef struct cache_entry {
    int used;
    char user[AUTH_USER_MAX + 1];
    char hash[AUTH_HASH_MAX + 1];
    uint8_t pw[32];
} cache_entry;

struct auth {
    char secret[AUTH_PASSWORD_MAX + 1];
    auth_lookup_fn lookup;
    void *lookup_arg;
    auth_refusal_fn refused;
    void *refused_arg;
    uint8_t salt[32];
    pthread_mutex_t mu;
    cache_entry cache[CACHE_SLOTS];
};

int auth_read_secret_file(const char *path, char *out, size_t cap, okv_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return okv_error_set(err, OKV_EINVAL, "cannot read %s: %m", path);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n = getline(&line, &lcap, f);
    fclose(f);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    int rc = OKV_OK;
    if (n <= 0)
        rc = okv_error_set(err, OKV_EINVAL, "%s is empty: its first line is the secret", path);
    else if ((size_t)n >= cap)
        rc = okv_error_set(err, OKV_EINVAL, "%s: the first line is longer than %zu bytes", path,
                           cap - 1);
    else
        memcpy(out, line, (size_t)n + 1);
    if (line)
        explicit_bzero(line, lcap);
    free(line);
    return rc;
}

int auth_new(auth **out, const char *secret_file, auth_lookup_fn lookup, void *lookup_arg,
             okv_error *err)
{
    *out = NULL;
    auth *a = calloc(1, sizeof *a);
    if (!a)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    int rc = auth_read_secret_file(secret_file, a->secret, sizeof a->secret, err);
    if (rc == OKV_OK && strlen(a->secret) < SECRET_MIN)
        rc = okv_error_set(err, OKV_EINVAL,
                           "%s: the cluster secret must be at least %d bytes (e.g. `openssl "
                           "rand -hex 32 > FILE`)", secret_file, SECRET_MIN);
    if (rc == OKV_OK && getrandom(a->salt, sizeof a->salt, 0) != (ssize_t)sizeof a->salt)
        rc = okv_error_set(err, OKV_EINTERNAL, "getrandom failed: %m");
    if (rc) {
        explicit_bzero(a, sizeof *a);
        free(a);
        return rc;
    }
    a->lookup = lookup;
    a->lookup_arg = lookup_arg;
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return OKV_OK;
}

void auth_free(auth *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    explicit_bzero(a, sizeof *a);
    free(a);
}

void auth_on_refusal(auth *a, auth_refusal_fn fn, void *arg)
{
    a->refused = fn;
    a->refused_arg = arg;
}

const char *auth_node_secret(const auth *a) { return a->secret; }

static int equal_ct(const char *x, const char *y)
{
    size_t n = strlen(x);
    if (n != strlen(y))
        return 0;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(x[i] ^ y[i]);
    return d == 0;
}

/* ---- users ------------------------------------------------------------- */

static int load_user(auth *a, const char *name, auth_user *u)
{
    char row[sizeof AUTH_ROW_PREFIX + AUTH_USER_MAX];
    snprintf(row, sizeof row, AUTH_ROW_PREFIX "%s", name);
    uint8_t *v = NULL;
    size_t len = 0;
    int rc = a->lookup(a->lookup_arg, row, &v, &len);
    if (rc)
        return rc;
    if (!v)
        return OKV_ENOTFOUND;
    rc = auth_user_decode(v, len, name, u) ? OKV_ECORRUPT : OKV_OK;
    free(v);
    return rc;
}

static void pw_digest(const auth *a, const char *password, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(ctx, a->salt, sizeof a->salt) ||
        !EVP_DigestUpdate(ctx, password, strlen(password)) || !EVP_DigestFinal_ex(ctx, out, &n))
        memset(out, 0, 32);   /* never matches a real entry: the slow path runs */
    EVP_MD_CTX_free(ctx);
}

static size_t slot_of(const char *user)
{
    uint32_t h = 2166136261u;
    for (; *user; user++)
        h = (h ^ (uint8_t)*user) * 16777619u;
    return h % CACHE_SLOTS;
}

static int password_ok(auth *a, const auth_user *u, const char *password)
{
    uint8_t pw[32];
    pw_digest(a, password, pw);
    size_t slot = slot_of(u->name);
    pthread_mutex_lock(&a->mu);
    const cache_entry *e = &a->cache[slot];
    int hit = e->used && strcmp(e->user, u->name) == 0 && strcmp(e->hash, u->hash) == 0 &&
              memcmp(e->pw, pw, sizeof pw) == 0;
    pthread_mutex_unlock(&a->mu);
    if (hit)
        return 1;
    if (!auth_password_verify(password, u->hash))
        return 0;
    pthread_mutex_lock(&a->mu);
    cache_entry *w = &a->cache[slot];
    w->used = 1;
    snprintf(w->user, sizeof w->user, "%s", u->name);
    snprintf(w->hash, sizeof w->hash, "%s", u->hash);
    memcpy(w->pw, pw, sizeof pw);
    pthread_mutex_unlock(&a->mu);
    return 1;
}

/* ---- who a call is from ---------------------------------------------- */

static const grpc_metadata *md_find(const grpc_metadata_array *md, const char *key)
{
    for (size_t i = 0; md && i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0)
            return &md->metadata[i];
    return NULL;
}

/* A metadata value as a C string into out; 0, or -1 when too long or
 * holding a NUL. */
static int md_string(const grpc_metadata *m, char *out, size_t cap)
{
    size_t n = GRPC_SLICE_LENGTH(m->value);
    const uint8_t *p = GRPC_SLICE_START_PTR(m->value);
    if (n >= cap || memchr(p, '\0', n))
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

#define FAIL(id, ...)                                                  \
    do {                                                               \
        (id)->state = RPC_ID_FAILED;                                   \
        snprintf((id)->failure, sizeof (id)->failure, __VA_ARGS__);    \
    } while (0)

static void identify_password(auth *a, const grpc_metadata *user_md, const grpc_metadata *pw_md,
                              rpc_identity *id)
{
    char name[AUTH_USER_MAX + 1];
    char password[AUTH_PASSWORD_MAX + 1] = "";
    if (md_string(user_md, name, sizeof name) || (pw_md && md_string(pw_md, password,
                                                                     sizeof password))) {
        FAIL(id, "a user name or password too long");
        return;
    }
    snprintf(id->user, sizeof id->user, "%s", name);
    if (strcmp(name, AUTH_NODE_USER) == 0) {
        if (equal_ct(password, a->secret))
            id->state = RPC_ID_NODE;
        else
            FAIL(id, "%s with a wrong cluster secret (--auth-secret-file differs between nodes?)",
                 AUTH_NODE_USER);
        explicit_bzero(password, sizeof password);
        return;
    }
    auth_user u;
    int rc = load_user(a, name, &u);
    if (rc == OKV_ENOTFOUND)
        FAIL(id, "no user %s", name);
    else if (rc)
        FAIL(id, "the record of user %s cannot be read", name);
    else if (!u.hash[0])
        FAIL(id, "user %s has no password: it logs in with a client certificate", name);
    else if (!password_ok(a, &u, password))
        FAIL(id, "wrong password for user %s", name);
    else {
        id->state = RPC_ID_USER;
        snprintf(id->proof, sizeof id->proof, "%s", u.hash);
    }
    explicit_bzero(password, sizeof password);
}

static void identify_certificate(auth *a, grpc_call *call, rpc_identity *id)
{
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    if (!ctx)
        return;
    if (grpc_auth_context_peer_is_authenticated(ctx)) {
        grpc_auth_property_iterator it =
            grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_CN_PROPERTY_NAME);
        const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
        char cn[AUTH_USER_MAX + 1];
        if (p && p->value_length < sizeof cn) {
            memcpy(cn, p->value, p->value_length);
            cn[p->value_length] = '\0';
            auth_user u;
            snprintf(id->user, sizeof id->user, "%s", cn);
            if (!auth_user_name_valid(cn))
                FAIL(id, "the client certificate's common name \"%s\" is no valid user name", cn);
            else if (load_user(a, cn, &u))
                FAIL(id, "the client certificate names user %s, who does not exist", cn);
            else {
                id->state = RPC_ID_USER;
                snprintf(id->proof, sizeof id->proof, "cert");
            }
        }
    }
    grpc_auth_context_release(ctx);
}

static void identify(void *arg, grpc_call *call, const grpc_metadata_array *md, rpc_identity *id)
{
    auth *a = arg;
    memset(id, 0, sizeof *id);
    char *peer = grpc_call_get_peer(call);
    if (peer) {
        snprintf(id->from, sizeof id->from, "%s", peer);
        gpr_free(peer);
    }
    const grpc_metadata *user_md = md_find(md, AUTH_MD_USER);
    if (user_md)
        identify_password(a, user_md, md_find(md, AUTH_MD_PASSWORD), id);
    else
        identify_certificate(a, call, id);
}

/* ---- whether it may ------------------------------------------------- */

int auth_user_of(auth *a, const rpc_identity *id, auth_user *out)
{
    if (id->state != RPC_ID_USER)
        return OKV_EINVAL;
    int rc = load_user(a, id->user, out);
    if (rc)
        return rc;
    /* Logged in by password: that password must still be the user's. */
    if (id->proof[0] == '$' && strcmp(id->proof, out->hash) != 0)
        return OKV_ENOTFOUND;
    return OKV_OK;
}

static const char *short_path(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

static int authorize_id(auth *a, const rpc_identity *id, const auth_rule *r, const char *path,
                        const uint8_t *req, size_t len, char *msg, size_t cap)
{
    if (!r) {
        snprintf(msg, cap, "permission denied: %s has no permission rule (a bug: report it)",
                 short_path(path));
        return OKV_EPERMISSION;
    }
    if (auth_rule_need(r) == AUTH_NEED_ITEMS)
        return OKV_OK;   /* each item is checked */
    switch (id->state) {
    case RPC_ID_NODE:
        return OKV_OK;
    case RPC_ID_ANONYMOUS:
        snprintf(msg, cap, "not authenticated: %s needs a user (send okv-user and okv-password, "
                           "e.g. the shell's --user, or a client certificate naming one)",
                 short_path(path));
        return OKV_EAUTH;
    case RPC_ID_FAILED:
        snprintf(msg, cap, "not authenticated: %s", id->failure);
        return OKV_EAUTH;
    case RPC_ID_USER:
        break;
    }
    auth_user u;
    int rc = auth_user_of(a, id, &u);
    if (rc == OKV_ENOTFOUND) {
        snprintf(msg, cap, "not authenticated: user %s was deleted or its password changed "
                           "since this connection logged in", id->user);
        return OKV_EAUTH;
    }
    if (rc) {
        snprintf(msg, cap, "not authenticated: the record of user %s cannot be read", id->user);
        return OKV_EAUTH;
    }
    if (!req && auth_rule_need(r) == AUTH_NEED_TABLES)
        return OKV_OK;   /* the opening check: the request's tables come next */
    if (auth_rule_need(r) == AUTH_NEED_TABLES && OKV_FAILPOINT("auth.tables.unchecked"))
        return OKV_OK;   /* planted: cluster.auth_planted must notice */
    return auth_rule_check(r, &u, req, len, msg, cap);
}

static int authorize(void *arg, const rpc_identity *id, const char *path, const uint8_t *req,
                     size_t len, char *msg, size_t cap)
{
    auth *a = arg;
    int rc = authorize_id(a, id, auth_rule_find(path), path, req, len, msg, cap);
    if (rc != OKV_OK && a->refused)
        a->refused(a->refused_arg, id, short_path(path), msg);
    return rc;
}

const rpc_auth_ops *auth_rpc_ops(void)
{
    static const rpc_auth_ops ops = { identify, authorize };
    return &ops;
}

int auth_check_methods(const rpc_server *s, okv_error *err)
{
    const char *p;
    for (size_t i = 0; (p = rpc_server_method_path(s, i)) != NULL; i++)
        if (!auth_rule_find(p))
            return okv_error_set(err, OKV_EINVAL,
                                 "--auth on: method %s has no permission rule "
                                 "(server/auth/auth_rules.c); refusing to serve it unchecked",
                                 p);
    return OKV_OK;
}
