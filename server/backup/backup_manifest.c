/*
 * backup_manifest.c — the backup manifest's text and SHA-256
 * (backup_manifest.h has the format).
 */
#include "backup_manifest.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC_LINE "orderkv-backup 1"
#define SUM_TAG "manifest-sha256 "

int backup_manifest_add(backup_manifest *m, const backup_part *p)
{
    if (m->nparts == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        backup_part *np = realloc(m->parts, cap * sizeof *np);
        if (!np)
            return OKV_ENOMEM;
        m->parts = np;
        m->cap = cap;
    }
    m->parts[m->nparts++] = *p;
    return OKV_OK;
}

void backup_manifest_clear(backup_manifest *m)
{
    free(m->parts);
    memset(m, 0, sizeof *m);
}

void backup_part_file(char *buf, size_t cap, const char *table, uint32_t partition)
{
    snprintf(buf, cap, "%s-%u.snap", table, partition);
}

/* ---- SHA-256 ------------------------------------------------------------------ */

struct backup_hash {
    EVP_MD_CTX *ctx;
};

backup_hash *backup_hash_new(void)
{
    backup_hash *h = calloc(1, sizeof *h);
    if (h && (!(h->ctx = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        h = NULL;
    }
    return h;
}

void backup_hash_update(backup_hash *h, const void *p, size_t n)
{
    EVP_DigestUpdate(h->ctx, p, n);
}

void backup_hash_final(backup_hash *h, char hex[BACKUP_SHA_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, md, &n);
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = '\0';
    backup_hash_free(h);
}

void backup_hash_free(backup_hash *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

static int sha_of(const void *p, size_t n, char hex[BACKUP_SHA_HEX])
{
    backup_hash *h = backup_hash_new();
    if (!h)
        return OKV_ENOMEM;
    backup_hash_update(h, p, n);
    backup_hash_final(h, hex);
    return OKV_OK;
}

/* ---- text --------------------------------------------------------------------- */

typedef struct sbuf {
    char *b;
    size_t len, cap;
    int oom;
} sbuf;

static void add(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(sbuf *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line || s->oom) {
        s->oom = 1;
        return;
    }
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t cap = (s->cap ? s->cap * 2 : 4096) + (size_t)n;
        char *nb = realloc(s->b, cap);
        if (!nb) {
            s->oom = 1;
            return;
        }
        s->b = nb;
        s->cap = cap;
    }
    memcpy(s->b + s->len, line, (size_t)n + 1);
    s->len += (size_t)n;
}

int backup_manifest_encode(const backup_manifest *m, char **text, size_t *len, okv_error *err)
{
    sbuf s = { NULL, 0, 0, 0 };
    add(&s, "%s\nfence %" PRIu64 "\ncreated-ms %" PRIu64 "\n", MAGIC_LINE, m->fence_id,
        m->created_ms);
    for (size_t i = 0; i < m->ntables; i++)
        add(&s, "table %s %u %u\n", m->tables[i].name, m->tables[i].id, m->tables[i].partitions);
    for (size_t i = 0; i < m->nparts; i++) {
        const backup_part *p = &m->parts[i];
        add(&s, "part %u %u %" PRIu64 " %" PRIu64 " %s %" PRIu64 " %s\n", p->table_id,
            p->partition, p->index, p->term, p->file, p->bytes, p->sha256);
    }
    char hex[BACKUP_SHA_HEX];
    if (!s.oom && sha_of(s.b, s.len, hex) == OKV_OK)
        add(&s, SUM_TAG "%s\n", hex);
    else
        s.oom = 1;
    if (s.oom) {
        free(s.b);
        return okv_error_set(err, OKV_ENOMEM, "out of memory writing the backup manifest");
    }
    *text = s.b;
    *len = s.len;
    return OKV_OK;
}

static int name_ok(const char *s)
{
    if (!*s || strlen(s) > BACKUP_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

static int hex_ok(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

static const backup_table *table_by_id(const backup_manifest *m, uint32_t id)
{
    for (size_t i = 0; i < m->ntables; i++)
        if (m->tables[i].id == id)
            return &m->tables[i];
    return NULL;
}

/* One line (NUL-terminated, no newline). */
static int parse_line(backup_manifest *m, char *line, int no, okv_error *err)
{
    char a[160], b[160], c[160];
    unsigned u1, u2;
    uint64_t x1, x2, x3;
    int used = 0;
    if (sscanf(line, "fence %" SCNu64 "%n", &x1, &used) == 1 && !line[used]) {
        m->fence_id = x1;
    } else if (sscanf(line, "created-ms %" SCNu64 "%n", &x1, &used) == 1 && !line[used]) {
        m->created_ms = x1;
    } else if (sscanf(line, "table %150s %u %u%n", a, &u1, &u2, &used) == 3 && !line[used]) {
        if (!name_ok(a) || !u2 || u2 > 1024 || m->ntables == BACKUP_MAX_TABLES ||
            table_by_id(m, u1))
            return okv_error_set(err, OKV_ECORRUPT, "MANIFEST line %d: a bad table record", no);
        backup_table *t = &m->tables[m->ntables++];
        snprintf(t->name, sizeof t->name, "%.64s", a);
        t->id = u1;
        t->partitions = u2;
    } else if (sscanf(line, "part %u %u %" SCNu64 " %" SCNu64 " %150s %" SCNu64 " %150s%n", &u1,
                      &u2, &x1, &x2, b, &x3, c, &used) == 7 && !line[used]) {
        backup_part p;
        memset(&p, 0, sizeof p);
        const backup_table *t = table_by_id(m, u1);
        if (!t || u2 >= t->partitions || !x1 || !x2 || !name_ok(b) || !hex_ok(c) ||
            strlen(b) >= sizeof p.file)
            return okv_error_set(err, OKV_ECORRUPT, "MANIFEST line %d: a bad partition record",
                                 no);
        p.table_id = u1;
        p.partition = u2;
        p.index = x1;
        p.term = x2;
        snprintf(p.file, sizeof p.file, "%.80s", b);
        p.bytes = x3;
        snprintf(p.sha256, sizeof p.sha256, "%.64s", c);
        if (backup_manifest_add(m, &p))
            return okv_error_set(err, OKV_ENOMEM, "out of memory");
    } else {
        return okv_error_set(err, OKV_ECORRUPT, "MANIFEST line %d is not a manifest record: "
                             "'%.80s'", no, line);
    }
    return OKV_OK;
}

int backup_manifest_decode(backup_manifest *m, const char *text, size_t len, okv_error *err)
{
    /* The checksum line is last: everything before it is what it covers. */
    if (len < sizeof MAGIC_LINE || memcmp(text, MAGIC_LINE "\n", sizeof MAGIC_LINE) != 0)
        return okv_error_set(err, OKV_ECORRUPT, "MANIFEST does not start with '%s': not an "
                             "orderkv backup (or a newer format)", MAGIC_LINE);
    if (text[len - 1] != '\n')
        return okv_error_set(err, OKV_ECORRUPT, "MANIFEST is truncated (no final newline)");
    size_t start = len - 1;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    size_t taglen = sizeof SUM_TAG - 1;
    if (len - 1 - start != taglen + 64 || memcmp(text + start, SUM_TAG, taglen) != 0)
        return okv_error_set(err, OKV_ECORRUPT, "MANIFEST is truncated or damaged: its last "
                             "line is not its checksum");
    char want[BACKUP_SHA_HEX], got[BACKUP_SHA_HEX];
    memcpy(want, text + start + taglen, 64);
    want[64] = '\0';
    if (sha_of(text, start, got))
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (strcmp(want, got) != 0)
        return okv_error_set(err, OKV_ECORRUPT, "MANIFEST is damaged: its SHA-256 is %s, its "
                             "last line says %s", got, want);
    char *copy = malloc(start + 1);
    if (!copy)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    memcpy(copy, text, start);
    copy[start] = '\0';
    int rc = OKV_OK, no = 1;
    char *save = NULL;
    strtok_r(copy, "\n", &save);   /* the magic line */
    for (char *line = strtok_r(NULL, "\n", &save); line && !rc;
         line = strtok_r(NULL, "\n", &save))
        rc = parse_line(m, line, ++no, err);
    free(copy);
    if (rc)
        return rc;
    if (!m->ntables || !m->fence_id)
        return okv_error_set(err, OKV_ECORRUPT, "MANIFEST names no tables or no fence");
    for (size_t t = 0; t < m->ntables; t++)
        for (uint32_t p = 0; p < m->tables[t].partitions; p++) {
            int seen = 0;
            for (size_t i = 0; i < m->nparts; i++)
                seen += m->parts[i].table_id == m->tables[t].id && m->parts[i].partition == p;
            if (seen != 1)
                return okv_error_set(err, OKV_ECORRUPT, "MANIFEST lists partition %u of table "
                                     "%s %d times (once expected)", p, m->tables[t].name, seen);
        }
    return OKV_OK;
}
