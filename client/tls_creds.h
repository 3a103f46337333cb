/*
 * tls_creds.h — PEM material for TLS, checked up front, and the gRPC
 * credentials made from it. Shared by liborderkv (client channels) and
 * orderkvd (its server, its node-to-node channels, its internal client),
 * which links liborderkv statically.
 *
 * Why check with OpenSSL before gRPC sees anything: gRPC core accepts any
 * bytes when credentials are created and only fails at the first handshake,
 * with a message that names no file. A missing, unreadable or mismatched
 * file must instead be an error at start naming that file.
 *
 * Ownership: a tls_pem owns its strings; tls_pem_free releases them (and
 * accepts a zeroed or NULL struct). The credentials returned are the
 * caller's (release with grpc_*_credentials_release).
 */
#ifndef OKV_CLIENT_TLS_CREDS_H
#define OKV_CLIENT_TLS_CREDS_H

#include <grpc/grpc_security.h>

#include "errors.h"

typedef struct tls_pem {
    char *ca;      /* CA certificate(s) that sign the peers; NULL: plaintext */
    char *cert;    /* own certificate (chain); NULL: none */
    char *key;     /* its private key; NULL iff cert is NULL */
} tls_pem;

/* Fills out from ca/cert/key, each a file name or PEM text itself (text
 * starting with "-----BEGIN"); any may be NULL or "". Checks: every file
 * readable, the CA holds at least one certificate, cert parses, key parses
 * and belongs to cert, cert and key given together. names[3] are how the
 * three are called in messages ("--tls-ca", "tls_ca", ...). On error out
 * is left empty and err names the file and what is wrong with it. */
int tls_pem_load(tls_pem *out, const char *ca, const char *cert, const char *key,
                 const char *const names[3], okv_error *err);

/* Copies src into out (for a client that keeps its own). */
int tls_pem_copy(tls_pem *out, const tls_pem *src);

void tls_pem_free(tls_pem *p);

/* Channel credentials: TLS with p->ca as the roots and p->cert/p->key as
 * this side's identity if given; insecure if p is NULL or has no CA. */
grpc_channel_credentials *tls_channel_creds(const tls_pem *p);

/* Server credentials: TLS with p->cert/p->key, and, with require_client,
 * a client certificate that p->ca signed is required and verified;
 * insecure if p is NULL or has no CA. */
grpc_server_credentials *tls_server_creds(const tls_pem *p, int require_client);

/* 1 if p asks for TLS. */
int tls_pem_on(const tls_pem *p);

#endif
