/*
 * NSD on 127.0.0.1 for `mailca bench --caa` (see nsd.h).
 */
#include "nsd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The running server's process group, for the exit and signal paths. */
static volatile sig_atomic_t g_pid;
static int g_hooks; /* atexit and signal handlers installed */
static struct sigaction g_old[3];
static const int g_sigs[3] = {SIGINT, SIGTERM, SIGHUP};

static void kill_group(void)
{
    pid_t p = (pid_t)g_pid;
    if (p > 0)
        kill(-p, SIGTERM);
}

static void on_exit_stop(void)
{
    pid_t p = (pid_t)g_pid;
    if (p <= 0)
        return;
    kill_group();
    for (int i = 0; i < 300 && waitpid(p, NULL, WNOHANG) == 0; i++)
        usleep(10000);
    kill(-p, SIGKILL);
    /* NSD's helpers outlive its main process by a moment; as their subreaper (below) we reap
     * them too, so no zombie is left to init */
    for (int i = 0; i < 100 && waitpid(-p, NULL, WNOHANG) >= 0; i++)
        usleep(10000);
    g_pid = 0;
}

/* Async-signal-safe: stop NSD, then let the signal do what it did before. */
static void on_signal(int sig)
{
    kill_group();
    g_pid = 0;
    for (int i = 0; i < 3; i++)
        if (g_sigs[i] == sig)
            sigaction(sig, &g_old[i], NULL);
    raise(sig);
}

static void hooks_install(void)
{
    if (g_hooks)
        return;
    g_hooks = 1;
    atexit(on_exit_stop);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) {
        sigaction(g_sigs[i], &sa, &g_old[i]);
        if (g_old[i].sa_handler == SIG_IGN) /* ignored before (nohup, `&`): stays ignored */
            sigaction(g_sigs[i], &g_old[i], NULL);
    }
}

/* A UDP port of 127.0.0.1 that is free now (NSD binds it right after). -1 on failure. */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

/* The first cap-1 bytes of a file (NUL-terminated) into buf; "" when it cannot be read. */
static void read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

static mc_err write_zone(const char *path, const char *suffix, unsigned n_domains,
                         const char *issuer, mc_errdetail *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return mc_err_set(err, MC_ERR_IO, path, NULL, "cannot create the zone file");
    /* TTL 1 h: the answers stay in mailca's cache for the whole run (caa.h: TTL clamped to
     * [min, 8 h]) */
    fprintf(f,
            "$ORIGIN %s.\n$TTL 3600\n@ IN SOA ns.%s. host.%s. 1 3600 600 86400 3600\n"
            "@ IN NS ns.%s.\nns IN A 127.0.0.1\n",
            suffix, suffix, suffix, suffix);
    for (unsigned i = 0; i < n_domains; i++)
        fprintf(f, "org%u IN CAA 0 issuemail \"%s\"\n", i, issuer);
    if (fclose(f) != 0)
        return mc_err_set(err, MC_ERR_IO, path, NULL, "cannot write the zone file");
    return MC_OK;
}

mc_err mc_bench_nsd_start(const char *dir, const char *suffix, unsigned n_domains,
                          const char *issuer, mc_bench_nsd *out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    char conf[1200], zone[1200], logp[1200], text[8192];
    memset(out, 0, sizeof *out);
    if (access(MC_BENCH_NSD, X_OK) != 0)
        return mc_err_set(err, MC_ERR_UNSUPPORTED, "nsd", NULL,
                          MC_BENCH_NSD " not found: install the Debian package nsd");
    if (g_pid > 0)
        return mc_err_set(err, MC_ERR_INTERNAL, "nsd", NULL, "NSD is already running");
    int port = free_port();
    if (port < 0)
        return mc_err_set(err, MC_ERR_IO, "nsd", NULL, "no free port on 127.0.0.1");
    snprintf(conf, sizeof conf, "%s/nsd.conf", dir);
    snprintf(zone, sizeof zone, "%s/bench.zone", dir);
    snprintf(logp, sizeof logp, "%s/nsd.log", dir);
    if ((rc = write_zone(zone, suffix, n_domains, issuer, err)) != MC_OK)
        return rc;
    FILE *f = fopen(conf, "w");
    if (!f)
        return mc_err_set(err, MC_ERR_IO, conf, NULL, "cannot create nsd.conf");
    fprintf(f,
            "server:\n  ip-address: 127.0.0.1@%d\n  username: \"\"\n  chroot: \"\"\n"
            "  zonesdir: \"%s\"\n  pidfile: \"%s/nsd.pid\"\n  xfrdfile: \"%s/xfrd.state\"\n"
            "  zonelistfile: \"%s/zone.list\"\n  database: \"\"\n  logfile: \"%s\"\n"
            "  server-count: 1\n  verbosity: 1\n"
            "remote-control:\n  control-enable: no\n"
            "zone:\n  name: \"%s.\"\n  zonefile: \"bench.zone\"\n",
            port, dir, dir, dir, dir, logp, suffix);
    if (fclose(f) != 0)
        return mc_err_set(err, MC_ERR_IO, conf, NULL, "cannot write nsd.conf");
    hooks_install();
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* NSD's orphaned helpers become ours to reap */
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return mc_err_set(err, MC_ERR_IO, "nsd", NULL, "fork failed");
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        setpgid(0, 0); /* NSD forks helpers: one group to stop them all */
        /* the bench dies, even by SIGKILL: NSD gets SIGTERM */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        execl(MC_BENCH_NSD, "nsd", "-d", "-c", conf, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also from here, so that a signal right now reaches the group */
    g_pid = pid;
    out->pid = pid;
    out->port = port;
    snprintf(out->resolver, sizeof out->resolver, "127.0.0.1@%d", port);
    /* Ready when the log says so (usually ~50 ms). */
    for (int i = 0; i < 1000; i++) {
        read_text(logp, text, sizeof text);
        if (strstr(text, "nsd started"))
            return MC_OK;
        if (strstr(text, "cannot") || waitpid(pid, NULL, WNOHANG) == pid)
            break;
        usleep(10000);
    }
    read_text(logp, text, sizeof text);
    mc_bench_nsd_stop(out);
    return mc_err_set(err, MC_ERR_IO, "nsd", NULL, "NSD did not start on 127.0.0.1@%d: %.300s",
                      port, text[0] ? text : "(no log)");
}

void mc_bench_nsd_stop(mc_bench_nsd *n)
{
    if (n->pid > 0 && n->pid == (pid_t)g_pid)
        on_exit_stop();
    n->pid = 0;
}
