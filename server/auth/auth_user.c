#include "auth_user.h"

#include <stdio.h>
#include <string.h>

int auth_user_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > AUTH_USER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

const char *auth_role_name(enum auth_role r)
{
    switch (r) {
    case AUTH_ROLE_ADMIN: return "admin";
    case AUTH_ROLE_WRITER: return "writer";
    case AUTH_ROLE_READER: return "reader";
    default: return "none";
    }
}

int auth_role_parse(const char *s, enum auth_role *out)
{
    static const enum auth_role all[] = { AUTH_ROLE_NONE, AUTH_ROLE_READER, AUTH_ROLE_WRITER,
                                          AUTH_ROLE_ADMIN };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, auth_role_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

const char *auth_access_name(enum auth_access a)
{
    switch (a) {
    case AUTH_ACCESS_WRITE: return "writer";
    case AUTH_ACCESS_READ: return "reader";
    default: return "none";
    }
}

int auth_access_parse(const char *s, enum auth_access *out)
{
    if (strcmp(s, "writer") == 0)
        *out = AUTH_ACCESS_WRITE;
    else if (strcmp(s, "reader") == 0)
        *out = AUTH_ACCESS_READ;
    else if (strcmp(s, "none") == 0)
        *out = AUTH_ACCESS_NONE;
    else
        return -1;
    return 0;
}

size_t auth_user_encode(const auth_user *u, char *buf, size_t cap)
{
    size_t len = 0;
    int w = snprintf(buf, cap, "v=1\nrole=%s\n", auth_role_name(u->role));
    if (w < 0 || (size_t)w >= cap)
        return 0;
    len = (size_t)w;
    for (size_t i = 0; i < u->ngrants; i++) {
        w = snprintf(buf + len, cap - len, "grant=%s:%s\n", u->grants[i].table,
                     auth_access_name(u->grants[i].access));
        if (w < 0 || (size_t)w >= cap - len)
            return 0;
        len += (size_t)w;
    }
    w = snprintf(buf + len, cap - len, "hash=%s\n", u->hash);
    if (w < 0 || (size_t)w >= cap - len)
        return 0;
    return len + (size_t)w;
}

/* One "key=value" line of the record into u. */
static int decode_line(const char *key, const char *val, auth_user *u, int *seen_version)
{
    if (strcmp(key, "v") == 0) {
        *seen_version = strcmp(val, "1") == 0;
        return *seen_version ? 0 : -1;
    }
    if (strcmp(key, "role") == 0)
        return auth_role_parse(val, &u->role);
    if (strcmp(key, "hash") == 0) {
        if (strlen(val) > AUTH_HASH_MAX)
            return -1;
        snprintf(u->hash, sizeof u->hash, "%s", val);
        return 0;
    }
    if (strcmp(key, "grant") == 0) {
        const char *colon = strrchr(val, ':');
        if (!colon || colon == val || (size_t)(colon - val) > AUTH_TABLE_MAX)
            return -1;
        char table[AUTH_TABLE_MAX + 1];
        snprintf(table, sizeof table, "%.*s", (int)(colon - val), val);
        enum auth_access a;
        if (auth_access_parse(colon + 1, &a) || a == AUTH_ACCESS_NONE)
            return -1;
        return auth_user_set_grant(u, table, a);
    }
    return -1;
}

int auth_user_decode(const uint8_t *buf, size_t len, const char *name, auth_user *u)
{
    memset(u, 0, sizeof *u);
    if (strlen(name) > AUTH_USER_MAX)
        return -1;
    snprintf(u->name, sizeof u->name, "%s", name);
    int seen_version = 0;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && buf[end] != '\n')
            end++;
        char line[AUTH_HASH_MAX + 16];
        if (end - i >= sizeof line)
            return -1;
        memcpy(line, buf + i, end - i);
        line[end - i] = '\0';
        if (memchr(line, '\0', end - i))
            return -1;
        char *eq = strchr(line, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        if (decode_line(line, eq + 1, u, &seen_version))
            return -1;
        i = end + 1;
    }
    return seen_version ? 0 : -1;
}

enum auth_access auth_user_access(const auth_user *u, const char *table)
{
    enum auth_access a = AUTH_ACCESS_NONE;
    if (u->role == AUTH_ROLE_ADMIN || u->role == AUTH_ROLE_WRITER)
        a = AUTH_ACCESS_WRITE;
    else if (u->role == AUTH_ROLE_READER)
        a = AUTH_ACCESS_READ;
    for (size_t i = 0; i < u->ngrants; i++)
        if (strcmp(u->grants[i].table, table) == 0 && u->grants[i].access > a)
            a = u->grants[i].access;
    return a;
}

int auth_user_set_grant(auth_user *u, const char *table, enum auth_access a)
{
    if (strlen(table) == 0 || strlen(table) > AUTH_TABLE_MAX)
        return -1;
    for (size_t i = 0; i < u->ngrants; i++) {
        if (strcmp(u->grants[i].table, table) != 0)
            continue;
        if (a == AUTH_ACCESS_NONE) {
            u->grants[i] = u->grants[--u->ngrants];
            memset(&u->grants[u->ngrants], 0, sizeof u->grants[0]);
        } else {
            u->grants[i].access = a;
        }
        return 0;
    }
    if (a == AUTH_ACCESS_NONE)
        return 0;
    if (u->ngrants == AUTH_MAX_GRANTS)
        return -1;
    snprintf(u->grants[u->ngrants].table, sizeof u->grants[0].table, "%s", table);
    u->grants[u->ngrants++].access = a;
    return 0;
}
