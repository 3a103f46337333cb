/*
 * shell_main.c — `orderkv`, the administrator's shell: options, the three
 * input modes, and the exit status.
 *
 * Modes:
 *  - one-shot: each -e TEXT is run in order (TEXT may hold several commands
 *    separated by ';'); stdin is not read.
 *  - interactive: stdin is a terminal; libedit gives line editing, history in
 *    ~/.orderkv_history and Tab completion.
 *  - stdin: anything else; one line at a time, no prompt.
 * A failed command never stops the run (a script's later commands still
 * execute); it makes the exit status 1. Status 2 means the command line itself
 * was wrong, and nothing was run.
 */
#define _GNU_SOURCE   /* explicit_bzero */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "orderkv.h"
#include "shell.h"
#include "shell_backup.h"
#include "shell_commands.h"
#include "shell_complete.h"
#include "shell_lexer.h"
#include "shell_tables.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define DEFAULT_ADDR "127.0.0.1:7400"
#define HISTORY_FILE ".orderkv_history"
#define HISTORY_MAX 1000

static void print_usage(FILE *f)
{
    fputs("usage: orderkv [options] [-e COMMANDS]...\n"
          "\n"
          "The orderkv shell. Reads commands from -e, else interactively from a\n"
          "terminal, else line by line from standard input.\n"
          "\n"
          "options:\n"
          "  -a, --addr ADDRS    comma-separated host:port list of cluster nodes\n"
          "                      (default: $ORDERKV_ADDR, else " DEFAULT_ADDR ")\n"
          "  -e, --execute CMDS  run CMDS (several may be separated by ';') and exit;\n"
          "                      may be repeated\n"
          "      --json          print each result as one JSON object on one line\n"
          "      --timeout MS    deadline of each call in milliseconds (default 5000)\n"
          "      --tls-ca FILE   connect with TLS, trusting nodes whose certificate\n"
          "                      this CA signed (default: $ORDERKV_TLS_CA; none:\n"
          "                      plaintext)\n"
          "      --tls-cert FILE this client's certificate, for nodes that require\n"
          "                      one (default: $ORDERKV_TLS_CERT)\n"
          "      --tls-key FILE  its private key (default: $ORDERKV_TLS_KEY)\n"
          "  -u, --user NAME     log in as NAME on clusters run with --auth on\n"
          "                      (default: $ORDERKV_USER); the password comes from\n"
          "                      --password-file, else $ORDERKV_PASSWORD, else a\n"
          "                      prompt on the terminal. Without --user, a client\n"
          "                      certificate (--tls-cert) names the user\n"
          "      --password-file FILE  the password: the file's first line\n"
          "  -h, --help          show this help and exit\n"
          "      --version       show the version and exit\n"
          "\n"
          "exit status: 0 every command succeeded, 1 some command failed,\n"
          "2 invalid command line. Type \"help\" in the shell for its commands.\n",
          f);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "orderkv: %s%s%s\nTry 'orderkv --help'.\n", msg, arg ? " " : "",
            arg ? arg : "");
    return EXIT_USAGE;
}

/* Runs every command in text; returns how many failed. */
static int run_text(shell_ctx *ctx, const char *text, size_t len)
{
    shell_line line = SHELL_LINE_INIT;
    shell_lex_error err;
    if (shell_lex(text, len, &line, &err) != SHELL_LEX_OK) {
        shell_report_syntax_error(ctx, err.msg);
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < line.count && !ctx->quit; i++)
        if (shell_execute(ctx, &line.cmds[i]) != 0)
            failed++;
    shell_line_clear(&line);
    /* Keep results and errors in order when both streams go to one place. */
    fflush(ctx->out);
    return failed;
}

static int run_stdin(shell_ctx *ctx)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int failed = 0;
    while (!ctx->quit && (n = getline(&buf, &cap, stdin)) >= 0)
        failed += run_text(ctx, buf, (size_t)n);
    free(buf);
    return failed;
}

/* The history file's path, or NULL without $HOME (history then stays in memory). */
static char *history_path(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + sizeof HISTORY_FILE + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", home, HISTORY_FILE);
    return p;
}

/* Interactive failures are seen as they happen, so they do not set the exit status. */
static void run_interactive(shell_ctx *ctx)
{
    char *hist = history_path();
    using_history();
    stifle_history(HISTORY_MAX);
    if (hist)
        (void)read_history(hist);   /* a missing or unreadable file is fine */
    shell_complete_install(ctx);
    printf("orderkv %s. Type \"help\" for commands, \"quit\" or Ctrl-D to leave.\n",
           OKV_VERSION_STRING);

    char *line;
    while (!ctx->quit && (line = readline("orderkv> ")) != NULL) {
        if (line[strspn(line, " \t")] != '\0') {
            add_history(line);
            /* Saved per line so a killed session keeps its history. */
            if (hist)
                (void)write_history(hist);
        }
        run_text(ctx, line, strlen(line));
        free(line);
    }
    if (!ctx->quit)
        putchar('\n');   /* Ctrl-D leaves the cursor after the prompt */
    free(hist);
}

/* Parses a positive millisecond count that fits an int. */
static int parse_timeout(const char *s, int *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || v == 0 || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

/* What the command line asked for. */
typedef struct cli {
    const char *addr;
    int json;
    int timeout_ms;           /* 0: the library's default */
    const char **scripts;     /* -e texts, in order */
    size_t nscripts;
    const char *tls_ca, *tls_cert, *tls_key;   /* NULL: not given */
    const char *user, *password_file;          /* NULL: not given */
} cli;

/*
 * Parses the options into c. Returns -1 to go on running, or the exit status
 * to leave with at once (--help, --version, or 2 for a usage error).
 */
static int parse_cli(int argc, char **argv, cli *c)
{
    enum { OPT_JSON = 256, OPT_TIMEOUT, OPT_VERSION, OPT_TLS_CA, OPT_TLS_CERT, OPT_TLS_KEY,
           OPT_PASSWORD_FILE };
    static const struct option longopts[] = {
        { "addr", required_argument, NULL, 'a' },
        { "execute", required_argument, NULL, 'e' },
        { "json", no_argument, NULL, OPT_JSON },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { "tls-ca", required_argument, NULL, OPT_TLS_CA },
        { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
        { "tls-key", required_argument, NULL, OPT_TLS_KEY },
        { "user", required_argument, NULL, 'u' },
        { "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
        { NULL, 0, NULL, 0 },
    };
    int opt;
    opterr = 0;   /* we print our own messages, with the exit status we want */
    while ((opt = getopt_long(argc, argv, ":a:e:hu:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a': c->addr = optarg; break;
        case 'e': c->scripts[c->nscripts++] = optarg; break;
        case OPT_JSON: c->json = 1; break;
        case OPT_TIMEOUT:
            if (parse_timeout(optarg, &c->timeout_ms) != 0)
                return usage_error("--timeout needs a positive number of milliseconds, got",
                                   optarg);
            break;
        case OPT_TLS_CA: c->tls_ca = optarg; break;
        case OPT_TLS_CERT: c->tls_cert = optarg; break;
        case OPT_TLS_KEY: c->tls_key = optarg; break;
        case 'u': c->user = optarg; break;
        case OPT_PASSWORD_FILE: c->password_file = optarg; break;
        case 'h': print_usage(stdout); return 0;
        case OPT_VERSION: printf("orderkv %s\n", OKV_VERSION_STRING); return 0;
        case ':': return usage_error("missing value for", argv[optind - 1]);
        default: return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument (commands go after -e, quoted):", argv[optind]);
    if (!c->addr || !*c->addr)
        c->addr = DEFAULT_ADDR;
    return -1;
}

/* Runs the mode the command line selects; returns how many commands failed. */
static int run(shell_ctx *ctx, const cli *c)
{
    int failed = 0;
    if (c->nscripts > 0) {
        for (size_t i = 0; i < c->nscripts && !ctx->quit; i++)
            failed += run_text(ctx, c->scripts[i], strlen(c->scripts[i]));
    } else if (isatty(STDIN_FILENO)) {
        run_interactive(ctx);
    } else {
        failed = run_stdin(ctx);
    }
    return failed;
}

int main(int argc, char **argv)
{
    /* Offline: a restore writes a data dir and talks to no node. */
    if (argc > 1 && strcmp(argv[1], "restore") == 0)
        return shell_restore_main(argc - 1, argv + 1);
    cli c = { getenv("ORDERKV_ADDR"), 0, 0, NULL, 0, getenv("ORDERKV_TLS_CA"),
              getenv("ORDERKV_TLS_CERT"), getenv("ORDERKV_TLS_KEY"), getenv("ORDERKV_USER"),
              NULL };
    char password[1100] = "";
    /* argc bounds the number of -e options. */
    c.scripts = calloc((size_t)argc, sizeof *c.scripts);
    if (!c.scripts) {
        fputs("orderkv: out of memory\n", stderr);
        return EXIT_FAILED;
    }
    int rc = parse_cli(argc, argv, &c);

    shell_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.json = c.json;
    ctx.out = stdout;
    ctx.err = stderr;
    if (rc < 0) {
        ctx.tls_ca = c.tls_ca;
        ctx.tls_cert = c.tls_cert;
        ctx.tls_key = c.tls_key;
        if (c.user && *c.user) {
            if (shell_read_password(c.password_file, c.user, password, sizeof password) != 0)
                rc = EXIT_USAGE;
            ctx.user = c.user;
            ctx.password = password;
        } else if (c.password_file) {
            rc = usage_error("--password-file needs --user (or $ORDERKV_USER)", NULL);
        }
    }
    if (rc < 0) {
        okv_options opts = OKV_OPTIONS_INIT;
        if (c.timeout_ms > 0)
            opts.default_timeout_ms = c.timeout_ms;
        opts.tls_ca = ctx.tls_ca;
        opts.tls_cert = ctx.tls_cert;
        opts.tls_key = ctx.tls_key;
        opts.user = ctx.user;
        opts.password = ctx.password;
        int crc = okv_connect(&ctx.client, c.addr, &opts);
        if (crc != OKV_OK && strncmp(okv_errmsg(NULL), "tls_", 4) == 0) {
            /* tls_ca / tls_cert / tls_key: --tls-ca / --tls-cert / --tls-key */
            fprintf(stderr, "orderkv: bad TLS file (--tls-ca, --tls-cert, --tls-key): %s\n",
                    okv_errmsg(NULL));
            rc = EXIT_USAGE;
        } else if (crc != OKV_OK) {
            fprintf(stderr, "orderkv: bad --addr/ORDERKV_ADDR \"%s\": %s: %s\n", c.addr,
                    okv_strerror(crc), okv_errmsg(NULL));
            rc = EXIT_USAGE;
        }
    }
    if (rc < 0)
        rc = run(&ctx, &c) ? EXIT_FAILED : 0;
    if (ctx.tx) {
        /* Leaving with a transaction open: nothing of it was written. */
        fprintf(stderr, "orderkv: the open transaction was not committed; nothing of it was "
                        "written\n");
        okv_tx_free(ctx.tx);
    }
    okv_close(ctx.client);
    shell_tables_clear(&ctx.tables);
    free(c.scripts);
    explicit_bzero(password, sizeof password);
    if (fflush(stdout) != 0 && rc == 0)
        rc = EXIT_FAILED;   /* e.g. a full disk: don't claim success */
    return rc;
}
