/*
 * node_auth.h — users and roles in the node (node_auth.c).
 */
#ifndef OKV_SERVER_NODE_AUTH_H
#define OKV_SERVER_NODE_AUTH_H

#include "config.h"
#include "node.h"

/* With --auth on: n->auth from the secret file (call after the store is
 * open, before the transport and the internal client are made, which
 * send the secret). Off: logs loudly that nobody is checked. */
int node_auth_new(node *n, const config *cfg, okv_error *err);

/* With --auth on, after every method is registered and before the server
 * starts: checks each has a permission rule, queues the first admin for
 * the meta group, and installs the checks on the server. */
int node_auth_finish(node *n, const config *cfg, okv_error *err);

/* The nodes' shared secret, NULL with --auth off. */
const char *node_auth_secret(const node *n);

#endif
