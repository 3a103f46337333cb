/*
 * shell_users.c — `whoami` and `user ...`: users and roles of a cluster run
 * with --auth on (docs/operations.md "Users and roles"), and reading the
 * shell's own password (--password-file, $ORDERKV_PASSWORD, or a prompt).
 *
 * New passwords are never taken from the command line (it shows in ps and
 * in the history): `user add` and `user passwd` read them from
 * --password-file FILE or prompt twice on the terminal.
 */
#define _GNU_SOURCE   /* explicit_bzero */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "shell_cmd_int.h"

#define PASSWORD_CAP 1100

const char *const shell_user_subcommands[] = { "add", "list", "delete", "role", "grant",
                                               "revoke", "passwd", NULL };

/* The first line of path into out; 0, or -1 with a message on stderr. */
static int read_first_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "orderkv: cannot read password file %s: %m\n", path);
        return -1;
    }
    int ok = fgets(out, (int)cap, f) != NULL;
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (!ok || !out[0]) {
        fprintf(stderr, "orderkv: password file %s is empty\n", path);
        return -1;
    }
    return 0;
}

/* Prompts on the terminal with echo off. 0, or -1 when there is none. */
static int prompt(const char *question, char *out, size_t cap)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return -1;
    struct termios old, quiet;
    int fd = fileno(tty);
    int have = tcgetattr(fd, &old) == 0;
    if (have) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    fputs(question, tty);
    fflush(tty);
    int ok = fgets(out, (int)cap, tty) != NULL;
    if (have)
        tcsetattr(fd, TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (!ok)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

int shell_read_password(const char *file, const char *user, char *out, size_t cap)
{
    if (file)
        return read_first_line(file, out, cap);
    const char *env = getenv("ORDERKV_PASSWORD");
    if (env) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    char q[160];
    snprintf(q, sizeof q, "password for %s: ", user);
    if (prompt(q, out, cap) == 0)
        return 0;
    fprintf(stderr, "orderkv: --user %s needs a password: --password-file FILE, "
                    "$ORDERKV_PASSWORD, or a terminal to type it on\n", user);
    return -1;
}

/* A new password for `user add|passwd`: --password-file, else typed twice. */
static int new_password(shell_ctx *ctx, const shell_cmd_def *def, const char *file,
                        const char *user, char *out, size_t cap)
{
    if (file)
        return read_first_line(file, out, cap) == 0
                   ? 0
                   : shell_cmd_fail_code(ctx, def, OKV_EINVAL, "cannot read --password-file");
    char again[PASSWORD_CAP];
    char q[160];
    snprintf(q, sizeof q, "new password for %s: ", user);
    if (prompt(q, out, cap) != 0 || prompt("again: ", again, sizeof again) != 0)
        return shell_cmd_fail_code(ctx, def, OKV_EINVAL,
                                   "no terminal to type the password on: give --password-file "
                                   "FILE (its first line)");
    int same = strcmp(out, again) == 0;
    explicit_bzero(again, sizeof again);
    if (!same)
        return shell_cmd_fail_code(ctx, def, OKV_EINVAL, "the two passwords differ");
    if (!out[0])
        return shell_cmd_fail_code(ctx, def, OKV_EINVAL,
                                   "empty password (for certificate-only users: --no-password)");
    return 0;
}

static void done(shell_ctx *ctx, const shell_cmd_def *def, const char *sub, const char *name,
                 const char *text)
{
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "subcommand", sub);
        shell_json_str(&j, "user", name);
        shell_json_end(&j);
    } else {
        fprintf(ctx->out, "%s\n", text);
    }
}

static int list_users(shell_ctx *ctx, const shell_cmd_def *def)
{
    okv_user_list *l = NULL;
    int rc = okv_user_list_get(ctx->client, &l, ctx->timeout_ms);
    if (rc)
        return shell_cmd_fail_okv(ctx, def, rc);
    char grants[1200];
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "subcommand", "list");
        shell_json_array_begin(&j, "users");
        for (size_t i = 0; i < okv_user_list_count(l); i++) {
            okv_user_list_grants(l, i, grants, sizeof grants);
            shell_json_object_begin(&j, NULL);
            shell_json_str(&j, "name", okv_user_list_name(l, i));
            shell_json_str(&j, "role", okv_user_list_role(l, i));
            shell_json_str(&j, "grants", grants);
            shell_json_bool(&j, "password", okv_user_list_has_password(l, i));
            shell_json_object_end(&j);
        }
        shell_json_array_end(&j);
        shell_json_end(&j);
    } else {
        fprintf(ctx->out, "%-24s %-7s %-9s %s\n", "USER", "ROLE", "PASSWORD", "GRANTS");
        for (size_t i = 0; i < okv_user_list_count(l); i++) {
            okv_user_list_grants(l, i, grants, sizeof grants);
            fprintf(ctx->out, "%-24s %-7s %-9s %s\n", okv_user_list_name(l, i),
                    okv_user_list_role(l, i), okv_user_list_has_password(l, i) ? "yes" : "no",
                    grants[0] ? grants : "-");
        }
    }
    okv_user_list_free(l);
    return 0;
}

/* Finds "--NAME VALUE" (or "--NAME" alone when value is NULL) among the
 * words after the subcommand; returns the value, "" for a bare flag, or
 * NULL when absent. */
static const char *flag(const shell_command *c, const char *name, int takes_value)
{
    for (size_t i = 2; i < c->argc; i++)
        if (!c->args[i].quoted && strcmp(c->args[i].bytes, name) == 0)
            return takes_value ? (i + 1 < c->argc ? c->args[i + 1].bytes : NULL) : "";
    return NULL;
}

/* The positional words after the subcommand, skipping known flags. */
static size_t positionals(const shell_command *c, const char **pos, size_t cap)
{
    size_t n = 0;
    for (size_t i = 2; i < c->argc; i++) {
        const char *w = c->args[i].bytes;
        if (!c->args[i].quoted && strcmp(w, "--password-file") == 0) {
            i++;
            continue;
        }
        if (!c->args[i].quoted && strcmp(w, "--no-password") == 0)
            continue;
        if (n < cap)
            pos[n] = w;
        n++;
    }
    return n;
}

static int run_sub(shell_ctx *ctx, const shell_cmd_def *def, const char *sub,
                   const shell_command *c)
{
    const char *pos[4];
    size_t n = positionals(c, pos, 4);
    char text[300];
    int rc;
    if (strcmp(sub, "list") == 0)
        return n == 0 ? list_users(ctx, def) : shell_cmd_fail_usage(ctx, def, "user list");
    if (strcmp(sub, "add") == 0) {
        if (n != 2)
            return shell_cmd_fail_usage(ctx, def, "user add NAME ROLE [--password-file F | "
                                                  "--no-password]");
        char pw[PASSWORD_CAP] = "";
        if (!flag(c, "--no-password", 0) &&
            new_password(ctx, def, flag(c, "--password-file", 1), pos[0], pw, sizeof pw) != 0)
            return -1;
        rc = okv_user_add(ctx->client, pos[0], pw, pos[1], ctx->timeout_ms);
        explicit_bzero(pw, sizeof pw);
        snprintf(text, sizeof text, "user %s added (role %s)", pos[0], pos[1]);
    } else if (strcmp(sub, "passwd") == 0) {
        if (n != 1)
            return shell_cmd_fail_usage(ctx, def, "user passwd NAME [--password-file F | "
                                                  "--no-password]");
        char pw[PASSWORD_CAP] = "";
        if (!flag(c, "--no-password", 0) &&
            new_password(ctx, def, flag(c, "--password-file", 1), pos[0], pw, sizeof pw) != 0)
            return -1;
        rc = okv_user_set_password(ctx->client, pos[0], pw, ctx->timeout_ms);
        explicit_bzero(pw, sizeof pw);
        snprintf(text, sizeof text, "password of %s changed", pos[0]);
    } else if (strcmp(sub, "delete") == 0) {
        if (n != 1)
            return shell_cmd_fail_usage(ctx, def, "user delete NAME");
        rc = okv_user_delete(ctx->client, pos[0], ctx->timeout_ms);
        snprintf(text, sizeof text, "user %s deleted", pos[0]);
    } else if (strcmp(sub, "role") == 0) {
        if (n != 2)
            return shell_cmd_fail_usage(ctx, def, "user role NAME admin|writer|reader|none");
        rc = okv_user_set_role(ctx->client, pos[0], pos[1], ctx->timeout_ms);
        snprintf(text, sizeof text, "user %s now has role %s", pos[0], pos[1]);
    } else if (strcmp(sub, "grant") == 0) {
        if (n != 3)
            return shell_cmd_fail_usage(ctx, def, "user grant NAME TABLE reader|writer");
        rc = okv_user_grant(ctx->client, pos[0], pos[1], pos[2], ctx->timeout_ms);
        snprintf(text, sizeof text, "user %s may now %s table %s", pos[0],
                 strcmp(pos[2], "writer") == 0 ? "read and write" : "read", pos[1]);
    } else if (strcmp(sub, "revoke") == 0) {
        if (n != 2)
            return shell_cmd_fail_usage(ctx, def, "user revoke NAME TABLE");
        rc = okv_user_grant(ctx->client, pos[0], pos[1], "none", ctx->timeout_ms);
        snprintf(text, sizeof text, "user %s has no grant on table %s any more (its role "
                                    "still applies)", pos[0], pos[1]);
    } else {
        return shell_cmd_fail_usage(ctx, def, "add, list, delete, role, grant, revoke or passwd");
    }
    if (rc)
        return shell_cmd_fail_okv(ctx, def, rc);
    done(ctx, def, sub, pos[0], text);
    return 0;
}

int shell_cmd_user(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const shell_command *c = a->raw;
    if (c->argc < 2)
        return shell_cmd_fail_usage(ctx, def, "add, list, delete, role, grant, revoke or passwd");
    return run_sub(ctx, def, c->args[1].bytes, c);
}

int shell_cmd_whoami(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    (void)a;
    char user[80], role[32];
    int on = 0;
    int rc = okv_whoami(ctx->client, user, sizeof user, role, sizeof role, &on,
                        ctx->timeout_ms);
    if (rc)
        return shell_cmd_fail_okv(ctx, def, rc);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_bool(&j, "auth", on);
        shell_json_str(&j, "user", on ? user : NULL);
        shell_json_str(&j, "role", on && role[0] ? role : NULL);
        shell_json_end(&j);
    } else if (!on) {
        fprintf(ctx->out, "the cluster runs with --auth off: nobody is checked\n");
    } else {
        fprintf(ctx->out, "%s (role %s)\n", user, role[0] ? role : "-");
    }
    return 0;
}
