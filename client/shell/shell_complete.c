/*
 * shell_complete.c — libedit completion hooks (shell_complete.h).
 *
 * readline's completion callbacks take no user pointer, so the session context
 * and the candidate list live in file statics; only the interactive loop, on
 * one thread, ever calls readline().
 */
#include "shell_complete.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <editline/readline.h>

#include "shell_commands.h"
#include "shell_tables.h"

static shell_ctx *session;

enum complete_what { COMPLETE_COMMANDS, COMPLETE_TABLES, COMPLETE_SUBCOMMANDS };
static enum complete_what what;
static char what_command[32];   /* the command whose subcommands complete */

/* readline's generator protocol: called with state 0 first, then 1, 2, ...
 * until it returns NULL; each returned string is malloc'd and freed by libedit. */
static char *generate(const char *text, int state)
{
    static size_t next;
    size_t len = strlen(text);
    if (state == 0)
        next = 0;
    for (;;) {
        const char *name;
        if (what == COMPLETE_COMMANDS) {
            name = shell_command_name(next);
        } else if (what == COMPLETE_SUBCOMMANDS) {
            name = shell_command_subcommand(what_command, next);
        } else {
            const shell_tables *t = shell_tables_get(session);
            name = next < t->count ? t->names[next] : NULL;
        }
        if (!name)
            return NULL;
        next++;
        if (strncmp(name, text, len) == 0)
            return strdup(name);
    }
}

/*
 * Finds which word of its command the cursor is in: the words between the last
 * ';' before `start` and `start`. Quotes are not tracked — completing inside a
 * quoted argument is not useful anyway.
 */
static size_t word_index(const char *line, int start, char *first, size_t first_cap)
{
    int seg = start;
    while (seg > 0 && line[seg - 1] != ';')
        seg--;
    size_t words = 0;
    int i = seg;
    first[0] = '\0';
    while (i < start) {
        while (i < start && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i >= start)
            break;
        int w = i;
        while (i < start && line[i] != ' ' && line[i] != '\t')
            i++;
        if (words == 0) {
            size_t n = (size_t)(i - w) < first_cap - 1 ? (size_t)(i - w) : first_cap - 1;
            memcpy(first, line + w, n);
            first[n] = '\0';
        }
        words++;
    }
    return words;
}

static char **attempt(const char *text, int start, int end)
{
    char first[32];
    /* Never fall back to file-name completion. */
    rl_attempted_completion_over = 1;
    size_t idx = word_index(rl_line_buffer, start, first, sizeof first);
    memcpy(what_command, first, sizeof what_command);
    if (idx == 0)
        what = COMPLETE_COMMANDS;
    else if (idx == 1 && strcmp(first, "help") == 0)
        what = COMPLETE_COMMANDS;
    else if (idx == 1 && shell_command_subcommand(first, 0))
        what = COMPLETE_SUBCOMMANDS;
    else if (idx == 1 && shell_command_takes_table(first))
        what = COMPLETE_TABLES;
    else
        return NULL;
    return rl_completion_matches(text, generate);
}

void shell_complete_install(shell_ctx *ctx)
{
    session = ctx;
    rl_readline_name = "orderkv";   /* for "orderkv:" sections in ~/.editrc */
    rl_attempted_completion_function = attempt;
    /* Word breaks: spaces and ';' only, so "cust1/o1" is one word. */
    rl_basic_word_break_characters = " \t;";
}
