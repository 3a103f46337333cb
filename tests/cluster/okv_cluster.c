#include "okv_cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t okv_cluster_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void okv_cluster_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A listening socket bound to 127.0.0.1:port (0: any); -1 if it cannot be. */
static int bind_port(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

/* Claims port for this test process: an exclusive lock on a file named
 * after it, held until the process exits (the descriptor is never closed).
 * Test processes started at the same moment (ctest -j runs several, two of
 * them often the same binary) would otherwise pick the same free port: a
 * port is free between the pick and the node's bind, and another process
 * may pick it then. 1 if claimed, 0 if another process holds it. A lock
 * dir that cannot be used claims nothing and refuses nothing. */
static int claim_port(int port)
{
    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/tmp/okvtest-ports-%u", (unsigned)getuid());
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return 1;
    snprintf(path, sizeof path, "%s/%d", dir, port);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return 1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return 0;
    }
    return 1;   /* fd stays open: the claim lasts as long as this process */
}

/* Picks n distinct free ports. Peers need fixed addresses, so port 0 cannot
 * be handed to orderkvd. Ports are tried below the kernel's ephemeral range
 * (32768+ on Linux) first: a port from that range could be taken as the
 * source port of some outgoing connection before a killed node binds it
 * again. Each socket stays open until all are picked, so they differ; each
 * port is claimed (claim_port) so that no concurrent test process picks it
 * too. The seed mixes pid and a nanosecond clock by multiplication: a plain
 * pid ^ ms gave two processes started a millisecond apart with pids one
 * apart the same seed a quarter of the time. */
static int pick_ports(int n, int *ports)
{
    int fds[OKV_CLUSTER_MAX_NODES];
    int got = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec * 40503u ^
                    (unsigned)ts.tv_sec;
    for (int tries = 0; got < n && tries < 400; tries++) {
        int want = 20000 + (int)(rand_r(&seed) % 12000u);
        if ((fds[got] = bind_port(want, &ports[got])) < 0)
            continue;
        if (claim_port(ports[got]))
            got++;
        else
            close(fds[got]);
    }
    while (got < n && (fds[got] = bind_port(0, &ports[got])) >= 0)
        got++;
    for (int i = 0; i < got; i++)
        close(fds[i]);
    return got == n ? 0 : -1;
}

/* flag with every "@ID@" replaced by id, into buf. */
static const char *flag_for(const char *flag, int id, char *buf, size_t cap)
{
    if (!flag)
        return NULL;
    size_t used = 0;
    buf[0] = '\0';
    for (const char *p = flag; *p && used + 1 < cap;) {
        if (strncmp(p, "@ID@", 4) == 0) {
            used += (size_t)snprintf(buf + used, cap - used, "%d", id);
            p += 4;
        } else {
            buf[used++] = *p++;
            buf[used] = '\0';
        }
    }
    return buf;
}

int okv_cluster_node_start(okv_cluster *c, int id)
{
    char tick[16], node_id[16];
    snprintf(tick, sizeof tick, "%d", c->tick_ms);
    snprintf(node_id, sizeof node_id, "%d", id);
    c->stopped[id] = 0;
    char fb[10][1024];
    const char *f[10];
    for (int i = 0; i < 10; i++)
        f[i] = flag_for(c->flag[i], id, fb[i], sizeof fb[i]);
    /* okv_test_server_start passes --listen 127.0.0.1:0 first; the later
     * --listen wins (orderkvd: the last of a repeated flag wins). */
    int rc = okv_test_server_start(&c->node[id], c->orderkvd, c->data[id], "--listen", c->addr[id],
                                   "--node-id", node_id, "--initial-cluster", c->spec,
                                   "--raft-tick-ms", tick, f[0], f[1], f[2], f[3], f[4], f[5],
                                   f[6], f[7], f[8], f[9], (char *)NULL);
    if (rc != 0)
        fprintf(stderr, "node %d did not start; log: %s\n", id, c->node[id].log_path);
    return rc;
}

void okv_cluster_set_env(okv_cluster *c, int id, const char *env)
{
    snprintf(c->node[id].env, sizeof c->node[id].env, "%s", env ? env : "");
}

int okv_cluster_start(okv_cluster **out, const char *orderkvd, int n, int tick_ms)
{
    return okv_cluster_start_env(out, orderkvd, n, tick_ms, NULL);
}

int okv_cluster_start_env(okv_cluster **out, const char *orderkvd, int n, int tick_ms,
                          const char *env)
{
    return okv_cluster_start_ex(out, orderkvd, n, tick_ms, env, NULL);
}

int okv_cluster_start_ex(okv_cluster **out, const char *orderkvd, int n, int tick_ms,
                         const char *env, const char *flags)
{
    return okv_cluster_start_opts(out, orderkvd, n, tick_ms, env, flags, NULL);
}

int okv_cluster_start_opts(okv_cluster **out, const char *orderkvd, int n, int tick_ms,
                           const char *env, const char *flags, const okv_options *client)
{
    okv_cluster *c = calloc(1, sizeof *c);
    *out = c;
    if (!c || n < 1 || n > OKV_CLUSTER_MAX_NODES)
        return -1;
    okv_options defaults = OKV_OPTIONS_INIT;
    c->client_opts = client ? *client : defaults;
    c->n = n;
    c->tick_ms = tick_ms;
    snprintf(c->flags, sizeof c->flags, "%s", flags ? flags : "");
    int nf = 0;
    char *save = NULL;
    for (char *w = strtok_r(c->flags, " ", &save); w && nf < 10; w = strtok_r(NULL, " ", &save))
        c->flag[nf++] = w;
    c->flag[nf] = NULL;
    c->orderkvd = orderkvd;
    c->dir = okv_test_tmpdir("cluster");
    int ports[OKV_CLUSTER_MAX_NODES];
    if (!c->dir || pick_ports(n, ports) != 0)
        return -1;
    size_t sl = 0, al = 0;
    for (int id = 1; id <= n; id++) {
        snprintf(c->addr[id], sizeof c->addr[id], "127.0.0.1:%d", ports[id - 1]);
        snprintf(c->data[id], sizeof c->data[id], "%s/node%d", c->dir, id);
        sl += (size_t)snprintf(c->spec + sl, sizeof c->spec - sl, "%s%d=%s", id > 1 ? "," : "",
                               id, c->addr[id]);
        al += (size_t)snprintf(c->all + al, sizeof c->all - al, "%s%s", id > 1 ? "," : "",
                               c->addr[id]);
    }
    if (okv_connect(&c->admin, c->all, &c->client_opts) != OKV_OK)
        return -1;
    for (int id = 1; id <= n; id++) {
        okv_cluster_set_env(c, id, env);
        if (okv_cluster_node_start(c, id) != 0)
            return -1;
    }
    return 0;
}

int okv_cluster_node_stop(okv_cluster *c, int id, int hard)
{
    if (c->stopped[id] && c->node[id].pid > 0)
        kill(c->node[id].pid, SIGCONT);   /* a stopped process never handles SIGTERM */
    c->stopped[id] = 0;
    return okv_test_server_stop(&c->node[id], hard);
}

void okv_cluster_node_pause(okv_cluster *c, int id)
{
    if (c->node[id].pid > 0 && kill(c->node[id].pid, SIGSTOP) == 0)
        c->stopped[id] = 1;
}

void okv_cluster_node_resume(okv_cluster *c, int id)
{
    if (c->node[id].pid > 0)
        kill(c->node[id].pid, SIGCONT);
    c->stopped[id] = 0;
}

int okv_cluster_reap_dead(okv_cluster *c)
{
    int dead = 0;
    for (int id = 1; c && id <= c->n; id++) {
        int st;
        if (c->node[id].pid <= 0 || waitpid(c->node[id].pid, &st, WNOHANG) != c->node[id].pid)
            continue;
        dead++;
        if (WIFSIGNALED(st))
            fprintf(stderr, "node %d (PID %d) died of signal %d (%s)\n", id, (int)c->node[id].pid,
                    WTERMSIG(st), strsignal(WTERMSIG(st)));
        else
            fprintf(stderr, "node %d (PID %d) exited with status %d\n", id, (int)c->node[id].pid,
                    WEXITSTATUS(st));
        c->node[id].pid = 0;
    }
    return dead;
}

void okv_cluster_dump_logs(okv_cluster *c, int lines)
{
    okv_cluster_reap_dead(c);
    for (int id = 1; c && id <= c->n; id++) {
        if (!c->node[id].log_path[0])
            continue;
        char cmd[4400];
        fprintf(stderr, "---- last %d lines of node %d's log (%s)\n", lines, id,
                c->node[id].log_path);
        fflush(stderr);
        snprintf(cmd, sizeof cmd, "tail -n %d '%s' >&2", lines, c->node[id].log_path);
        if (system(cmd) != 0)
            fprintf(stderr, "(cannot read it)\n");
    }
}

void okv_cluster_free(okv_cluster *c)
{
    if (!c)
        return;
    for (int id = 1; id <= c->n; id++)
        if (c->node[id].pid > 0)
            okv_cluster_node_stop(c, id, 1);
    okv_close(c->admin);
    if (getenv("OKV_KEEP_CLUSTER_DIR"))
        fprintf(stderr, "cluster dir kept: %s\n", c->dir);
    else
        okv_test_rmtree(c->dir);
    free(c->dir);
    free(c);
}

int okv_cluster_replicas(okv_cluster *c, int id, okv_cluster_replica *out, int timeout_ms)
{
    okv_status *s = NULL;
    if (okv_status_get_at(c->admin, c->addr[id], &s, timeout_ms) != OKV_OK)
        return -1;
    size_t n = okv_status_replica_count(s);
    int k = 0;
    for (size_t i = 0; i < n && k < OKV_CLUSTER_MAX_GROUPS; i++) {
        okv_replica_info r;
        if (okv_status_replica(s, i, &r) != OKV_OK)
            continue;
        okv_cluster_replica *o = &out[k++];
        o->node = (uint64_t)id;
        o->table_id = r.table_id;
        o->partition = r.partition;
        snprintf(o->role, sizeof o->role, "%s", r.role ? r.role : "");
        o->term = r.term;
        o->leader = r.leader;
        o->commit = r.commit;
        o->applied = r.applied;
        o->last_index = r.last_index;
    }
    okv_status_free(s);
    return k;
}

static int live(const okv_cluster *c, int id) { return c->node[id].pid > 0 && !c->stopped[id]; }

/* The leader replica of (table_id, partition) among the live nodes' reports:
 * role "leader" with the highest term. 0 if none. */
static int leader_replica(okv_cluster *c, uint32_t table_id, uint32_t partition,
                          okv_cluster_replica *out)
{
    okv_cluster_replica reps[OKV_CLUSTER_MAX_GROUPS];
    int found = 0;
    for (int id = 1; id <= c->n; id++) {
        if (!live(c, id))
            continue;
        int k = okv_cluster_replicas(c, id, reps, 1000);
        for (int i = 0; i < k; i++)
            if (reps[i].table_id == table_id && reps[i].partition == partition &&
                strcmp(reps[i].role, "leader") == 0 && (!found || reps[i].term > out->term)) {
                *out = reps[i];
                found = 1;
            }
    }
    return found;
}

uint64_t okv_cluster_leader(okv_cluster *c, uint32_t table_id, uint32_t partition)
{
    okv_cluster_replica r;
    return leader_replica(c, table_id, partition, &r) ? r.node : 0;
}

/* Every group that some live node holds, with its leader (0 if none). */
static int all_groups(okv_cluster *c, okv_cluster_replica *leaders)
{
    int ng = 0;
    for (int id = 1; id <= c->n; id++) {
        if (!live(c, id))
            continue;
        okv_cluster_replica reps[OKV_CLUSTER_MAX_GROUPS];
        int k = okv_cluster_replicas(c, id, reps, 1000);
        for (int i = 0; i < k; i++) {
            int g = 0;
            while (g < ng && (leaders[g].table_id != reps[i].table_id ||
                              leaders[g].partition != reps[i].partition))
                g++;
            if (g == ng) {
                if (ng == OKV_CLUSTER_MAX_GROUPS)
                    continue;
                memset(&leaders[ng], 0, sizeof leaders[ng]);
                leaders[ng].table_id = reps[i].table_id;
                leaders[ng].partition = reps[i].partition;
                ng++;
            }
            if (strcmp(reps[i].role, "leader") == 0 &&
                (leaders[g].node == 0 || reps[i].term > leaders[g].term))
                leaders[g] = reps[i];
        }
    }
    return ng;
}

int okv_cluster_wait_leaders(okv_cluster *c, int timeout_ms)
{
    int64_t end = okv_cluster_now_ms() + timeout_ms;
    do {
        okv_cluster_replica g[OKV_CLUSTER_MAX_GROUPS];
        int ng = all_groups(c, g), missing = 0;
        for (int i = 0; i < ng; i++)
            missing += g[i].node == 0;
        if (ng > 0 && missing == 0)
            return 0;
        okv_cluster_sleep_ms(50);
    } while (okv_cluster_now_ms() < end);
    return -1;
}

int okv_cluster_wait_caught_up(okv_cluster *c, int id, int timeout_ms)
{
    int64_t end = okv_cluster_now_ms() + timeout_ms;
    okv_cluster_replica g[OKV_CLUSTER_MAX_GROUPS];
    int ng;
    /* The target: each group's leader's commit index, sampled once. */
    for (;;) {
        ng = all_groups(c, g);
        int missing = 0;
        for (int i = 0; i < ng; i++)
            missing += g[i].node == 0;
        if (ng > 0 && missing == 0)
            break;
        if (okv_cluster_now_ms() >= end)
            return -1;
        okv_cluster_sleep_ms(50);
    }
    do {
        okv_cluster_replica mine[OKV_CLUSTER_MAX_GROUPS];
        int k = okv_cluster_replicas(c, id, mine, 1000), behind = 0;
        /* With RF < n a node holds only some groups: compare those. */
        for (int i = 0; k > 0 && i < ng; i++)
            for (int j = 0; j < k; j++)
                if (mine[j].table_id == g[i].table_id && mine[j].partition == g[i].partition)
                    behind += mine[j].applied < g[i].commit;
        if (k > 0 && behind == 0)
            return 0;
        okv_cluster_sleep_ms(50);
    } while (okv_cluster_now_ms() < end);
    return -1;
}

int okv_cluster_connect_one(okv_cluster *c, int id, okv_client **out)
{
    okv_options o = c->client_opts;
    o.listed_nodes_only = 1;
    return okv_connect(out, c->addr[id], &o);
}

/* The address node id logged ("serving metrics at http://ADDR/metrics"). */
static int metrics_address(okv_cluster *c, int id, char *out, size_t cap)
{
    FILE *f = fopen(c->node[id].log_path, "r");
    if (!f)
        return -1;
    char line[1024];
    int rc = -1;
    const char *tag = "serving metrics at http://";
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, tag);
        if (!at)
            continue;
        at += strlen(tag);
        const char *slash = strchr(at, '/');
        if (slash && (size_t)(slash - at) < cap) {
            memcpy(out, at, (size_t)(slash - at));
            out[slash - at] = '\0';
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

int okv_cluster_start_with_metrics(okv_cluster **out, const char *orderkvd, int n, int tick_ms,
                                   char metrics[][128])
{
    int rc = okv_cluster_start_ex(out, orderkvd, n, tick_ms, NULL,
                                  "--metrics-listen 127.0.0.1:0");
    if (rc == 0)
        rc = okv_cluster_wait_leaders(*out, 15000);
    for (int id = 1; rc == 0 && id <= n; id++)
        if ((rc = metrics_address(*out, id, metrics[id], 128)))
            fprintf(stderr, "node %d logged no metrics address\n", id);
    if (rc && *out)
        okv_cluster_dump_logs(*out, 30);
    return rc;
}
