#include "auth_password.h"

#include <crypt.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

int auth_password_hash(const char *password, char *out, size_t cap)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    /* count 0: libxcrypt's default cost for yescrypt (tens of ms). */
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
        return OKV_EINTERNAL;
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *h = crypt_rn(password, salt, &cd, sizeof cd);
    if (!h || h[0] == '*' || strlen(h) >= cap)
        return OKV_EINTERNAL;
    snprintf(out, cap, "%s", h);
    return OKV_OK;
}

int auth_password_verify(const char *password, const char *hash)
{
    if (!hash[0] || hash[0] != '$')
        return 0;
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *h = crypt_rn(password, hash, &cd, sizeof cd);
    if (!h || h[0] == '*')
        return 0;
    size_t n = strlen(hash);
    if (strlen(h) != n)
        return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(h[i] ^ hash[i]);
    return diff == 0;
}
