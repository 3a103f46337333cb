/*
 * auth_md.h — the gRPC metadata a caller names itself with, for nodes run
 * with --auth on (docs/operations.md "Users and roles"). Shared by
 * liborderkv, which sends them on every call and batched stream, and by
 * the node, which reads them (server/auth/) and sends them itself, as the
 * internal user AUTH_NODE_USER with the cluster's secret, on its calls to
 * its peers.
 */
#ifndef OKV_COMMON_AUTH_MD_H
#define OKV_COMMON_AUTH_MD_H

#define AUTH_MD_USER "okv-user"
#define AUTH_MD_PASSWORD "okv-password"

/* The nodes' own identity. '@' is not allowed in user names, so no user
 * can be created under it; its password is the --auth-secret-file. */
#define AUTH_NODE_USER "@node"

/* Longest user name and password accepted anywhere. */
#define AUTH_USER_MAX 64
#define AUTH_PASSWORD_MAX 1024

#endif
