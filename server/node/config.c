#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "log.h"

void config_defaults(config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data_dir, sizeof c->data_dir, "%s", CONFIG_DEFAULT_DATA_DIR);
    snprintf(c->listen, sizeof c->listen, "%s", CONFIG_DEFAULT_LISTEN);
    c->log_level = OKV_LOG_INFO;
    c->node_id = 1;
    c->partitions = CATALOG_DEFAULT_PARTITIONS;
    c->threads = 2;
    c->tick_ms = 100;
    c->election_ticks = 10;
    c->snapshot_entries = 100000;
    c->log_keep = 5000;
    c->lease_reads = 1;
    c->shutdown_grace_ms = 5000;
    c->txn_timeout_ms = 10000;
    c->idem_retention_ms = 24LL * 60 * 60 * 1000;
    c->idem_gc_every_ms = 10 * 60 * 1000;
    c->tls_client_auth = -1;
    c->audit_max_bytes = 64ULL << 20;
    c->audit_keep = 4;
}

const char *config_usage(void)
{
    return "usage: orderkvd [options]\n"
           "\n"
           "Runs one orderkv node: the orders, payments, accounts and stock tables over\n"
           "RocksDB, served over gRPC (proto/orderkv.proto).\n"
           "\n"
           "  --data-dir DIR        data directory (default ./data; created if absent)\n"
           "  --listen HOST:PORT    address to serve on (default 127.0.0.1:7400;\n"
           "                        port 0 picks a free port)\n"
           "  --port-file FILE      once serving, write the bound HOST:PORT to FILE\n"
           "  --log-level LEVEL     error, warn, info (default) or debug\n"
           "  --node-id N           this node's id (default 1)\n"
           "  --initial-cluster SPEC  run as one node of a cluster: ID=HOST:PORT,...\n"
           "                        (every node's id and client address, this one\n"
           "                        included; used at first boot, then stored)\n"
           "  --partitions N        partitions per table when creating a data dir\n"
           "                        (default 8; an existing dir keeps its own)\n"
           "  --threads N           gRPC completion-queue threads (default 2)\n"
           "  --raft-tick-ms N      Raft tick (default 100; elections after 10-20\n"
           "                        ticks without a leader). The same on every node:\n"
           "                        recorded at the cluster's first boot, a node\n"
           "                        with another value stops\n"
           "  --raft-snapshot-entries N  snapshot a partition and compact its Raft\n"
           "                        log every N applied entries (default 100000;\n"
           "                        0 = never)\n"
           "  --raft-log-keep N     entries kept in the log behind a snapshot, so a\n"
           "                        follower slightly behind needs no snapshot\n"
           "                        (default 5000)\n"
           "  --read-mode MODE      lease (default): a leader that a majority\n"
           "                        confirmed less than ~0.8 election timeouts ago\n"
           "                        reads without asking them again (assumes clock\n"
           "                        rates differ by under 10%); read-index: every\n"
           "                        read waits for a heartbeat round. Recorded and\n"
           "                        checked like --raft-tick-ms\n"
           "  --shutdown-grace-ms N how long in-flight calls may finish on SIGTERM\n"
           "                        (default 5000)\n"
           "  --txn-timeout-ms N    deadline of a transaction across partitions\n"
           "                        (default 10000): past it, one that did not\n"
           "                        decide is aborted, and its locks are released\n"
           "  --idem-retention-ms N idempotency keys of orders, payments, refunds,\n"
           "                        deposits and reservations are kept at least N ms\n"
           "                        (default 86400000 = 24 h; 0 = forever): a resend\n"
           "                        within it gets the first answer\n"
           "  --idem-gc-every-ms N  how often expired keys are dropped (default 600000)\n"
           "  --metrics-listen HOST:PORT  serve Prometheus metrics at\n"
           "                        http://HOST:PORT/metrics (default: off; port 0\n"
           "                        picks a free port, logged at start)\n"
           "  --tls-ca FILE         TLS: the CA certificate that signs every node's\n"
           "                        and client's certificate (PEM). With --tls-cert\n"
           "                        and --tls-key (all three or none) the node\n"
           "                        serves TLS only and dials its peers with TLS,\n"
           "                        showing its own certificate (mutual TLS).\n"
           "                        Without them: plaintext. See make-certs.sh\n"
           "  --tls-cert FILE       this node's certificate (PEM; IP SANs for the\n"
           "                        addresses it is dialled at)\n"
           "  --tls-key FILE        its private key (PEM)\n"
           "  --tls-client-auth MODE  require (default with TLS): clients and peers\n"
           "                        must show a certificate the CA signed; none:\n"
           "                        clients need only the CA (peers still show\n"
           "                        theirs, but it is not checked); optional:\n"
           "                        a certificate is checked when shown (with\n"
           "                        --auth on, for users who log in by password)\n"
           "  --auth on|off         check every call against users and roles kept\n"
           "                        in the meta group (default off: any client that\n"
           "                        reaches the port may do anything; logged loudly)\n"
           "  --auth-secret-file FILE  with --auth on: the secret every node of the\n"
           "                        cluster shares (16+ bytes), by which nodes\n"
           "                        know each other's calls\n"
           "  --auth-admin NAME     the first admin user, created at bootstrap if\n"
           "                        it does not exist yet\n"
           "  --auth-admin-password-file FILE  its password (first line)\n"
           "  --audit-max-bytes N   rotate DATA/audit.log (admin actions and refused\n"
           "                        requests, JSON lines) before it would pass N\n"
           "                        bytes (default 67108864 = 64 MiB; 4096..2^40)\n"
           "  --audit-keep N        rotated audit logs kept, audit.log.1 .. .N\n"
           "                        (default 4; 0..1000; the oldest is dropped)\n"
           "  --config FILE         read `key = value` settings (flag names without\n"
           "                        dashes) from FILE; later flags override it\n"
           "  -h, --help            show this help\n"
           "  --version             show the version\n";
}

static int parse_uint(const char *key, const char *value, uint64_t min, uint64_t max,
                      uint64_t *out, okv_error *err)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || end == value || *end || value[0] == '-' || v < min || v > max)
        return okv_error_set(err, OKV_EINVAL, "--%s: '%s' is not a number in %llu..%llu", key,
                             value, (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return OKV_OK;
}

static int set_string(char *dst, size_t cap, const char *key, const char *value, okv_error *err)
{
    if (value[0] == '\0')
        return okv_error_set(err, OKV_EINVAL, "--%s: empty value", key);
    if (strlen(value) >= cap)
        return okv_error_set(err, OKV_EINVAL, "--%s: value longer than %zu bytes", key, cap - 1);
    memcpy(dst, value, strlen(value) + 1);
    return OKV_OK;
}

int config_set(config *c, const char *key, const char *value, okv_error *err)
{
    uint64_t v;
    int rc;
    if (strcmp(key, "data-dir") == 0)
        return set_string(c->data_dir, sizeof c->data_dir, key, value, err);
    if (strcmp(key, "listen") == 0) {
        if (!strchr(value, ':'))
            return okv_error_set(err, OKV_EINVAL, "--listen: '%s' is not HOST:PORT", value);
        return set_string(c->listen, sizeof c->listen, key, value, err);
    }
    if (strcmp(key, "metrics-listen") == 0) {
        if (!strchr(value, ':'))
            return okv_error_set(err, OKV_EINVAL, "--metrics-listen: '%s' is not HOST:PORT",
                                 value);
        return set_string(c->metrics_listen, sizeof c->metrics_listen, key, value, err);
    }
    if (strcmp(key, "initial-cluster") == 0)
        return set_string(c->initial_cluster, sizeof c->initial_cluster, key, value, err);
    if (strcmp(key, "tls-ca") == 0)
        return set_string(c->tls_ca, sizeof c->tls_ca, key, value, err);
    if (strcmp(key, "tls-cert") == 0)
        return set_string(c->tls_cert, sizeof c->tls_cert, key, value, err);
    if (strcmp(key, "tls-key") == 0)
        return set_string(c->tls_key, sizeof c->tls_key, key, value, err);
    if (strcmp(key, "tls-client-auth") == 0) {
        if (strcmp(value, "require") == 0)
            c->tls_client_auth = 1;
        else if (strcmp(value, "none") == 0)
            c->tls_client_auth = 0;
        else if (strcmp(value, "optional") == 0)
            c->tls_client_auth = 2;
        else
            return okv_error_set(err, OKV_EINVAL,
                                 "--tls-client-auth must be 'require', 'optional' or 'none', "
                                 "not '%s'", value);
        return OKV_OK;
    }
    if (strcmp(key, "auth") == 0) {
        if (strcmp(value, "on") == 0)
            c->auth = 1;
        else if (strcmp(value, "off") == 0)
            c->auth = 0;
        else
            return okv_error_set(err, OKV_EINVAL, "--auth must be 'on' or 'off', not '%s'",
                                 value);
        return OKV_OK;
    }
    if (strcmp(key, "auth-secret-file") == 0)
        return set_string(c->auth_secret_file, sizeof c->auth_secret_file, key, value, err);
    if (strcmp(key, "auth-admin") == 0)
        return set_string(c->auth_admin, sizeof c->auth_admin, key, value, err);
    if (strcmp(key, "auth-admin-password-file") == 0)
        return set_string(c->auth_admin_password_file, sizeof c->auth_admin_password_file, key,
                          value, err);
    if (strcmp(key, "port-file") == 0)
        return set_string(c->port_file, sizeof c->port_file, key, value, err);
    if (strcmp(key, "log-level") == 0) {
        int lvl = okv_log_parse_level(value);
        if (lvl < 0)
            return okv_error_set(err, OKV_EINVAL,
                                 "--log-level: '%s' is not one of error, warn, info, debug",
                                 value);
        c->log_level = lvl;
        return OKV_OK;
    }
    if (strcmp(key, "node-id") == 0) {
        if ((rc = parse_uint(key, value, 1, UINT64_MAX, &v, err)))
            return rc;
        c->node_id = v;
        return OKV_OK;
    }
    if (strcmp(key, "partitions") == 0) {
        if ((rc = parse_uint(key, value, 1, CATALOG_MAX_PARTITIONS, &v, err)))
            return rc;
        c->partitions = (uint32_t)v;
        c->partitions_set = 1;
        return OKV_OK;
    }
    if (strcmp(key, "threads") == 0) {
        if ((rc = parse_uint(key, value, 1, 8, &v, err)))
            return rc;
        c->threads = (int)v;
        return OKV_OK;
    }
    if (strcmp(key, "raft-tick-ms") == 0) {
        if ((rc = parse_uint(key, value, 10, 10000, &v, err)))
            return rc;
        c->tick_ms = (int)v;
        return OKV_OK;
    }
    if (strcmp(key, "raft-snapshot-entries") == 0) {
        if ((rc = parse_uint(key, value, 0, 100000000, &v, err)))
            return rc;
        c->snapshot_entries = (int)v;
        return OKV_OK;
    }
    if (strcmp(key, "read-mode") == 0) {
        if (strcmp(value, "lease") == 0)
            c->lease_reads = 1;
        else if (strcmp(value, "read-index") == 0)
            c->lease_reads = 0;
        else
            return okv_error_set(err, OKV_EINVAL,
                                 "--read-mode must be 'lease' or 'read-index', not '%s'", value);
        return OKV_OK;
    }
    if (strcmp(key, "raft-log-keep") == 0) {
        if ((rc = parse_uint(key, value, 0, 100000000, &v, err)))
            return rc;
        c->log_keep = (int)v;
        return OKV_OK;
    }
    if (strcmp(key, "shutdown-grace-ms") == 0) {
        if ((rc = parse_uint(key, value, 0, 600000, &v, err)))
            return rc;
        c->shutdown_grace_ms = (int)v;
        return OKV_OK;
    }
    if (strcmp(key, "idem-retention-ms") == 0) {
        if ((rc = parse_uint(key, value, 0, 10LL * 365 * 24 * 3600 * 1000, &v, err)))
            return rc;
        c->idem_retention_ms = (int64_t)v;
        return OKV_OK;
    }
    if (strcmp(key, "idem-gc-every-ms") == 0) {
        if ((rc = parse_uint(key, value, 100, 24 * 3600 * 1000, &v, err)))
            return rc;
        c->idem_gc_every_ms = (int)v;
        return OKV_OK;
    }
    if (strcmp(key, "txn-timeout-ms") == 0) {
        if ((rc = parse_uint(key, value, 100, 600000, &v, err)))
            return rc;
        c->txn_timeout_ms = (int)v;
        return OKV_OK;
    }
    if (strcmp(key, "audit-max-bytes") == 0)
        return parse_uint(key, value, 4096, 1ULL << 40, &c->audit_max_bytes, err);
    if (strcmp(key, "audit-keep") == 0) {
        if ((rc = parse_uint(key, value, 0, 1000, &v, err)))
            return rc;
        c->audit_keep = (int)v;
        return OKV_OK;
    }
    return okv_error_set(err, OKV_EINVAL, "unknown setting '%s' (see orderkvd --help)", key);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

int config_parse_text(config *c, const char *text, const char *origin, okv_error *err)
{
    char line[8192];
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (len >= sizeof line)
            return okv_error_set(err, OKV_EINVAL, "%s:%d: line too long", origin, lineno);
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl ? 1 : 0);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            return okv_error_set(err, OKV_EINVAL, "%s:%d: expected 'key = value'", origin, lineno);
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        okv_error sub;
        if (config_set(c, key, value, &sub))
            return okv_error_set(err, OKV_EINVAL, "%s:%d: %s", origin, lineno, sub.msg);
    }
    return OKV_OK;
}

static int load_file(config *c, const char *path, okv_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return okv_error_set(err, OKV_EINVAL, "--config: cannot open %s: %s", path,
                             strerror(errno));
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    int too_big = buf && !feof(f);
    fclose(f);
    if (!buf)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (too_big) {
        free(buf);
        return okv_error_set(err, OKV_EINVAL, "--config: %s is larger than 1 MiB", path);
    }
    buf[n] = '\0';
    int rc = config_parse_text(c, buf, path, err);
    free(buf);
    return rc;
}

int config_parse_args(config *c, int argc, char **argv, okv_error *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            c->show_help = 1;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            c->show_version = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return okv_error_set(err, OKV_EINVAL, "unexpected argument '%s' (see --help)", a);
        char key[64];
        const char *value;
        const char *eq = strchr(a + 2, '=');
        size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (klen >= sizeof key)
            return okv_error_set(err, OKV_EINVAL, "unknown flag '%s' (see --help)", a);
        memcpy(key, a + 2, klen);
        key[klen] = '\0';
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return okv_error_set(err, OKV_EINVAL, "--%s needs a value", key);
            value = argv[++i];
        }
        int rc = strcmp(key, "config") == 0 ? load_file(c, value, err)
                                            : config_set(c, key, value, err);
        if (rc)
            return rc;
    }
    return OKV_OK;
}

int config_check(const config *c, okv_error *err)
{
    const char *given[3] = { c->tls_ca, c->tls_cert, c->tls_key };
    static const char *const names[3] = { "--tls-ca", "--tls-cert", "--tls-key" };
    int n = 0;
    for (int i = 0; i < 3; i++)
        n += given[i][0] != '\0';
    if (n != 0 && n != 3) {
        char missing[64] = "";
        for (int i = 0; i < 3; i++)
            if (!given[i][0])
                snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                         missing[0] ? " and " : "", names[i]);
        return okv_error_set(err, OKV_EINVAL,
                             "TLS needs --tls-ca, --tls-cert and --tls-key together: %s missing",
                             missing);
    }
    if (n == 0 && c->tls_client_auth >= 0)
        return okv_error_set(err, OKV_EINVAL,
                             "--tls-client-auth given without --tls-ca, --tls-cert, --tls-key");
    if (c->auth && !c->auth_secret_file[0])
        return okv_error_set(err, OKV_EINVAL,
                             "--auth on needs --auth-secret-file (the secret the nodes share "
                             "to know each other's calls)");
    if (!c->auth && (c->auth_secret_file[0] || c->auth_admin[0]))
        return okv_error_set(err, OKV_EINVAL,
                             "--auth-secret-file and --auth-admin need --auth on");
    if (!c->auth_admin[0] != !c->auth_admin_password_file[0])
        return okv_error_set(err, OKV_EINVAL,
                             "--auth-admin and --auth-admin-password-file go together");
    return OKV_OK;
}
