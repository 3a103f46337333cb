/*
 * auth_rules.h — which permission every RPC needs (pure: the request's
 * bytes in, a verdict out; tested in tests/unit/auth).
 *
 * Every method a node serves has a rule here; a node started with
 * --auth on refuses to start when one has none (auth_rules_missing), so a
 * new RPC cannot slip through unchecked. The kinds:
 *
 *   node    the nodes' own calls (Raft, snapshots, 2PC steps): only the
 *           internal user AUTH_NODE_USER;
 *   admin   cluster operations, users, the audit log, backups;
 *   user    any authenticated user (Status, WhoAmI, TxnStatus: they show
 *           no table data);
 *   items   the batched stream: opening it needs nothing, each call it
 *           carries is checked as that method, as its opener's (so a
 *           refusal is the call's answer, not the end of the stream);
 *   tables  read or write on the tables the request names (KV calls, the
 *           transaction's conditions and writes) or that the orders
 *           service touches for it (paying writes orders, payments and
 *           accounts).
 */
#ifndef OKV_SERVER_AUTH_RULES_H
#define OKV_SERVER_AUTH_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "auth_user.h"

enum auth_need { AUTH_NEED_NODE, AUTH_NEED_ADMIN, AUTH_NEED_USER, AUTH_NEED_TABLES,
                 AUTH_NEED_ITEMS };

typedef struct auth_rule auth_rule;

/* The rule of a method path ("/orderkv.v1.KV/Get"), or NULL. */
const auth_rule *auth_rule_find(const char *path);
enum auth_need auth_rule_need(const auth_rule *r);

/* Checks u (NULL: the internal node user, allowed everything) against r
 * for the request req/len. OKV_OK, OKV_EPERMISSION with "permission
 * denied: user X may not write table Y" in msg, or OKV_EPROTO when a
 * request whose tables matter does not decode (the method would refuse it
 * too). */
int auth_rule_check(const auth_rule *r, const auth_user *u, const uint8_t *req, size_t len,
                    char *msg, size_t cap);

/* The number of rules and the path of rule i, to walk them (tests). */
size_t auth_rules_count(void);
const char *auth_rule_path(size_t i);

#endif
