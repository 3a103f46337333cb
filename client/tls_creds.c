/*
 * tls_creds.c — reading and checking PEM files with OpenSSL (which gRPC
 * core on Debian links too), and making gRPC credentials from them.
 */
#include "tls_creds.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEM_MAX (1u << 20)   /* no CA bundle or key of ours comes near 1 MiB */

static int is_pem_text(const char *s) { return strncmp(s, "-----BEGIN", 10) == 0; }

/* The text of src (a file name or PEM itself) in *out (malloc'd). */
static int read_pem(char **out, const char *src, const char *name, okv_error *err)
{
    *out = NULL;
    if (is_pem_text(src)) {
        *out = strdup(src);
        return *out ? OKV_OK : okv_error_set(err, OKV_ENOMEM, "out of memory");
    }
    FILE *f = fopen(src, "rb");
    if (!f)
        return okv_error_set(err, OKV_EINVAL, "%s: cannot read %s: %s", name, src,
                             strerror(errno));
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX, f) : 0;
    int bad = ferror(f), big = buf && n == PEM_MAX;
    int saved = errno;
    fclose(f);
    if (!buf)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (bad || big || n == 0) {
        free(buf);
        return okv_error_set(err, OKV_EINVAL, "%s: cannot read %s: %s", name, src,
                             bad ? strerror(saved) : big ? "larger than 1 MiB" : "empty file");
    }
    buf[n] = '\0';
    *out = buf;
    return OKV_OK;
}

/* OpenSSL's reason for the last failure, for a message. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "no PEM data found";
}

static int count_certs(const char *pem, X509 **first)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    int n = 0;
    X509 *x;
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        if (n == 0 && first)
            *first = x;
        else
            X509_free(x);
        n++;
    }
    BIO_free(b);
    ERR_clear_error();   /* the read past the last certificate "fails" */
    return n;
}

static int check(const tls_pem *p, const char *const names[3], const char *const src[3],
                 okv_error *err)
{
    if (p->ca && count_certs(p->ca, NULL) == 0)
        return okv_error_set(err, OKV_EINVAL, "%s: %s holds no PEM certificate", names[0],
                             src[0]);
    if (!p->cert)
        return OKV_OK;
    X509 *x = NULL;
    if (count_certs(p->cert, &x) == 0)
        return okv_error_set(err, OKV_EINVAL, "%s: %s holds no PEM certificate", names[1],
                             src[1]);
    ERR_clear_error();
    BIO *b = BIO_new_mem_buf(p->key, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    int rc = OKV_OK;
    if (!k)
        rc = okv_error_set(err, OKV_EINVAL, "%s: %s holds no usable PEM private key (%s)",
                           names[2], src[2], ssl_reason());
    else if (X509_check_private_key(x, k) != 1)
        rc = okv_error_set(err, OKV_EINVAL,
                           "%s: the key in %s does not match the certificate in %s (%s)",
                           names[2], src[2], src[1], names[1]);
    EVP_PKEY_free(k);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

static const char *describe(const char *s) { return is_pem_text(s) ? "the PEM text" : s; }

int tls_pem_load(tls_pem *out, const char *ca, const char *cert, const char *key,
                 const char *const names[3], okv_error *err)
{
    memset(out, 0, sizeof *out);
    const char *in[3] = { ca && *ca ? ca : NULL, cert && *cert ? cert : NULL,
                          key && *key ? key : NULL };
    if (!in[1] != !in[2])
        return okv_error_set(err, OKV_EINVAL, "%s and %s go together: %s given without %s",
                             names[1], names[2], in[1] ? names[1] : names[2],
                             in[1] ? names[2] : names[1]);
    if (in[1] && !in[0])
        return okv_error_set(err, OKV_EINVAL,
                             "%s given without %s: TLS needs the CA that signs the other side",
                             names[1], names[0]);
    char **dst[3] = { &out->ca, &out->cert, &out->key };
    const char *src[3];
    for (int i = 0; i < 3; i++) {
        src[i] = in[i] ? describe(in[i]) : "";
        int rc = in[i] ? read_pem(dst[i], in[i], names[i], err) : OKV_OK;
        if (rc) {
            tls_pem_free(out);
            return rc;
        }
    }
    int rc = check(out, names, src, err);
    if (rc)
        tls_pem_free(out);
    return rc;
}

int tls_pem_copy(tls_pem *out, const tls_pem *src)
{
    memset(out, 0, sizeof *out);
    const char *s[3] = { src->ca, src->cert, src->key };
    char **d[3] = { &out->ca, &out->cert, &out->key };
    for (int i = 0; i < 3; i++)
        if (s[i] && !(*d[i] = strdup(s[i]))) {
            tls_pem_free(out);
            return OKV_ENOMEM;
        }
    return OKV_OK;
}

void tls_pem_free(tls_pem *p)
{
    if (!p)
        return;
    free(p->ca);
    free(p->cert);
    if (p->key) {   /* a private key does not linger in freed memory */
        memset(p->key, 0, strlen(p->key));
        free(p->key);
    }
    memset(p, 0, sizeof *p);
}

int tls_pem_on(const tls_pem *p) { return p && p->ca; }

grpc_channel_credentials *tls_channel_creds(const tls_pem *p)
{
    if (!tls_pem_on(p))
        return grpc_insecure_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = { p->key, p->cert };
    /* The server's name is checked against the host part of the address
     * dialled (an IP address on loopback: the certificates carry IP SANs,
     * scripts/make-certs.sh), so no target-name override is needed. */
    return grpc_ssl_credentials_create(p->ca, p->cert ? &pair : NULL, NULL, NULL);
}

grpc_server_credentials *tls_server_creds(const tls_pem *p, int require_client)
{
    if (!tls_pem_on(p) || !p->cert)
        return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = { p->key, p->cert };
    return grpc_ssl_server_credentials_create_ex(
        p->ca, &pair, 1,
        require_client == 1   ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
        : require_client == 2 ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
}
