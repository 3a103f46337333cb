#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const builtin[] = { "orders", "payments", "accounts", "stock" };

void catalog_init_default(catalog *c, uint32_t partitions)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        catalog_table *t = &c->tables[c->count];
        snprintf(t->name, sizeof t->name, "%s", builtin[i]);
        t->id = (uint32_t)i + 1;
        t->partitions = partitions;
        t->index = c->count++;
    }
}

const catalog_table *catalog_find(const catalog *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->count; i++) {
        const catalog_table *t = &c->tables[i];
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0)
            return t;
    }
    return NULL;
}

void catalog_names(const catalog *c, char *buf, size_t cap)
{
    size_t off = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < c->count && off < cap; i++) {
        int n = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", c->tables[i].name);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

size_t catalog_encode(const catalog *c, char *buf, size_t cap)
{
    size_t off = 0;
    for (size_t i = 0; i < c->count; i++) {
        const catalog_table *t = &c->tables[i];
        int n = snprintf(buf + off, cap - off, "%s%s=%u:%u", i ? "," : "", t->name, t->id,
                         t->partitions);
        if (n < 0 || (size_t)n >= cap - off)
            return 0;
        off += (size_t)n;
    }
    return off;
}

/* Parses one "name=id:partitions" entry of exactly len bytes. */
static int decode_entry(catalog_table *t, const char *s, size_t len, okv_error *err)
{
    char tmp[128];
    if (len == 0 || len >= sizeof tmp)
        return okv_error_set(err, OKV_ECORRUPT, "catalog entry of %zu bytes", len);
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *eq = strchr(tmp, '=');
    char *colon = eq ? strchr(eq, ':') : NULL;
    if (!eq || !colon || eq == tmp || (size_t)(eq - tmp) > OKV_MAX_TABLE_NAME_LEN)
        return okv_error_set(err, OKV_ECORRUPT, "malformed catalog entry '%s'", tmp);
    *eq = '\0';
    *colon = '\0';
    char *end1, *end2;
    unsigned long id = strtoul(eq + 1, &end1, 10);
    unsigned long parts = strtoul(colon + 1, &end2, 10);
    if (*end1 || *end2 || id == 0 || id > UINT32_MAX || parts == 0 ||
        parts > CATALOG_MAX_PARTITIONS)
        return okv_error_set(err, OKV_ECORRUPT, "malformed catalog entry for table '%s'", tmp);
    memcpy(t->name, tmp, strlen(tmp) + 1);   /* length checked above */
    t->id = (uint32_t)id;
    t->partitions = (uint32_t)parts;
    return OKV_OK;
}

int catalog_decode(catalog *c, const char *text, size_t len, okv_error *err)
{
    memset(c, 0, sizeof *c);
    size_t start = 0;
    while (start < len) {
        const char *comma = memchr(text + start, ',', len - start);
        size_t end = comma ? (size_t)(comma - text) : len;
        if (c->count == CATALOG_MAX_TABLES)
            return okv_error_set(err, OKV_ECORRUPT, "catalog lists more than %d tables",
                                 CATALOG_MAX_TABLES);
        catalog_table *t = &c->tables[c->count];
        int rc = decode_entry(t, text + start, end - start, err);
        if (rc)
            return rc;
        t->index = c->count++;
        start = end + 1;
    }
    if (c->count == 0)
        return okv_error_set(err, OKV_ECORRUPT, "catalog is empty");
    return OKV_OK;
}
