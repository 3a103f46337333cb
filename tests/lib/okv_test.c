#include "okv_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && t[0] ? t : "/tmp";
}

char *okv_test_tmpdir(const char *tag)
{
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/okvtest-%s-XXXXXX", tmp_root(), tag);
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

void okv_test_rmtree(const char *path)
{
    if (!path || strncmp(path, tmp_root(), strlen(tmp_root())) != 0 || strstr(path, "/okvtest-") == NULL)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int okv_test_server_start(okv_test_server *s, const char *orderkvd, const char *data_dir, ...)
{
    char env[sizeof s->env];
    memcpy(env, s->env, sizeof env);
    memset(s, 0, sizeof *s);
    memcpy(s->env, env, sizeof env);
    const char *bin = getenv("ORDERKVD");
    if (!bin || !bin[0])
        bin = orderkvd;
    snprintf(s->data_dir, sizeof s->data_dir, "%s", data_dir);
    char port_file[4200];
    snprintf(port_file, sizeof port_file, "%s.port", data_dir);
    unlink(port_file);
    snprintf(s->log_path, sizeof s->log_path, "%s.log", data_dir);

    const char *argv[32];
    int argc = 0;
    argv[argc++] = bin;
    argv[argc++] = "--data-dir";
    argv[argc++] = data_dir;
    argv[argc++] = "--listen";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--port-file";
    argv[argc++] = port_file;
    va_list ap;
    va_start(ap, data_dir);
    const char *extra;
    while (argc < 30 && (extra = va_arg(ap, const char *)) != NULL)
        argv[argc++] = extra;
    va_end(ap);
    argv[argc] = NULL;

    /* The environment is built before fork: the child of a threaded test
     * may only exec. */
    extern char **environ;
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + 2, sizeof *envp);
    if (!envp)
        return -1;
    memcpy(envp, environ, nenv * sizeof *envp);
    if (s->env[0])
        envp[nenv++] = s->env;
    envp[nenv] = NULL;

    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        return -1;
    }
    if (pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execve(bin, (char *const *)argv, envp);
        _exit(127);
    }
    free(envp);
    s->pid = pid;
    for (int i = 0; i < 1500; i++) {   /* 15 s */
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fgets(s->address, sizeof s->address, f) != NULL;
            fclose(f);
            if (ok) {
                s->address[strcspn(s->address, "\n")] = '\0';
                return 0;
            }
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            return -1;   /* exited during start-up: see s->log_path */
        }
        sleep_ms(10);
    }
    okv_test_server_stop(s, 1);
    return -1;
}

int okv_test_server_stop(okv_test_server *s, int hard)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, hard ? SIGKILL : SIGTERM);
    int status = 0;
    for (int i = 0; i < 3000; i++) {   /* 30 s */
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    return -1;
}
