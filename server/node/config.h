/*
 * config.h — orderkvd settings from the command line and an optional config
 * file. Pure: parsing only, no side effects, so it is unit-tested.
 *
 * Precedence: built-in defaults < config file (--config FILE) < flags.
 * The file has one `key = value` per line; '#' starts a comment; keys are
 * the long flag names without dashes (data-dir, listen, log-level, ...).
 */
#ifndef OKV_SERVER_CONFIG_H
#define OKV_SERVER_CONFIG_H

#include <stdint.h>

#include "errors.h"

#define CONFIG_DEFAULT_LISTEN "127.0.0.1:7400"
#define CONFIG_DEFAULT_DATA_DIR "./data"

typedef struct config {
    char data_dir[4096];
    char listen[128];
    char port_file[4096];     /* "" = none */
    int log_level;            /* OKV_LOG_* */
    uint64_t node_id;
    uint32_t partitions;      /* per table, used only when the dir is created */
    int partitions_set;       /* --partitions was given explicitly */
    int threads;              /* completion-queue threads */
    int tick_ms;              /* Raft tick (cluster mode) */
    int election_ticks;       /* ticks without a leader before an election; no flag:
                               * recorded in the meta group, where a node built with
                               * another value is refused (meta.h) */
    int snapshot_entries;     /* compact a group's log every N applied entries; 0 = never */
    int log_keep;             /* entries kept behind a snapshot for slow followers */
    int lease_reads;          /* 1: a leader within its lease reads locally; 0: ReadIndex always */
    int shutdown_grace_ms;
    int txn_timeout_ms;       /* a transaction across partitions: its deadline */
    int64_t idem_retention_ms;   /* orders: idempotency records kept at least this; 0 = ever */
    int idem_gc_every_ms;        /* orders: how often expired records are looked for */
    uint64_t audit_max_bytes;     /* DATA/audit.log is rotated past this (audit.h) */
    int audit_keep;               /* rotated audit logs kept: audit.log.1 .. .N */
    char initial_cluster[4096];   /* "" = single-node mode */
    char metrics_listen[128];     /* "" = no /metrics endpoint */
    /* TLS (docs/operations.md "TLS"): all three files or none ("" = off). */
    char tls_ca[4096];        /* CA that signs every node and client certificate */
    char tls_cert[4096];      /* this node's certificate: served, and shown to peers */
    char tls_key[4096];       /* its private key */
    int tls_client_auth;      /* -1: not given (require when TLS is on); 0: none;
                                 1: require a client certificate the CA signed;
                                 2: optional (checked when shown; for --auth on,
                                 where users may log in with a password instead) */
    /* Users and roles (docs/operations.md "Users and roles"). */
    int auth;                 /* 1: every call is authenticated and checked */
    char auth_secret_file[4096];   /* the nodes' shared secret (their own identity) */
    char auth_admin[65];           /* the first admin, written at bootstrap if absent */
    char auth_admin_password_file[4096];
    int show_help;
    int show_version;
} config;

void config_defaults(config *c);

/* Parses argv (flags override what is already in c). A --config FILE flag is
 * applied where it appears, so later flags override the file. OKV_EINVAL
 * with a message naming the flag on any error. */
int config_parse_args(config *c, int argc, char **argv, okv_error *err);

/* Applies the `key = value` text of a config file named `origin`. */
int config_parse_text(config *c, const char *text, const char *origin, okv_error *err);

/* Sets one setting by its long name. */
int config_set(config *c, const char *key, const char *value, okv_error *err);

const char *config_usage(void);

/* Checks what single settings cannot: the TLS files come all three or
 * none, and --tls-client-auth only with them. */
int config_check(const config *c, okv_error *err);

#endif
