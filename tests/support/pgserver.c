/*
 * Test support: a private PostgreSQL server (see pgserver.h). Uses only the server's programs,
 * no libpq, so it links into every test.
 */
#include "support/pgserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG_DBNAME "mailca_test"

struct mc_pgserver {
    char bindir[512];
    char dir[64];   /* /tmp/mc-pg-XXXXXX: short, the socket path must fit 107 bytes */
    char data[128]; /* dir/data */
    char log[128];  /* dir/server.log: initdb, pg_ctl and createdb output */
    char password[33];
    char uri[256];
    char opts[256]; /* the server options of pg_ctl start (port, socket dir, listen address) */
    uid_t uid;      /* who runs the server: ourselves, or an unprivileged user when root */
    gid_t gid;
    int running;
};

/* The highest-sorting /usr/lib/postgresql/<version>/bin with an initdb, or $MAILCA_PG_BINDIR. */
static int find_bindir(char *out, size_t cap)
{
    const char *env = getenv("MAILCA_PG_BINDIR");
    if (env && env[0])
        return snprintf(out, cap, "%s", env) < (int)cap ? 0 : -1;
    glob_t g;
    int rc = -1;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        const char *best = g.gl_pathv[g.gl_pathc - 1];
        size_t n = strlen(best) - strlen("/initdb");
        if (n < cap) {
            memcpy(out, best, n);
            out[n] = '\0';
            rc = 0;
        }
    }
    globfree(&g);
    return rc;
}

/* Runs bindir/prog with args (NULL-terminated) as pg->uid, output appended to pg->log. extra_env
 * ("NAME=value") may be NULL. Returns the exit status, or -1 when it could not run. */
static int run_as(const mc_pgserver *pg, const char *prog, const char *const *args,
                  const char *extra_env)
{
    char path[640];
    const char *argv[16];
    size_t k = 0;
    snprintf(path, sizeof path, "%s/%s", pg->bindir, prog);
    argv[k++] = path;
    for (size_t j = 0; args[j] && k < 15; j++)
        argv[k++] = args[j];
    argv[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The child: only async-signal-safe calls until exec, then _exit on any failure. */
        if (getuid() != pg->uid) {
            if (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0)
                _exit(126);
        }
        int fd = open(pg->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
            close(nul);
        }
        if (chdir(pg->dir) != 0)
            _exit(126);
        if (extra_env)
            putenv((char *)extra_env);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A port on 127.0.0.1 that was free a moment ago (the kernel's pick). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void dump_log(const mc_pgserver *pg)
{
    FILE *fp = fopen(pg->log, "r");
    if (!fp)
        return;
    char line[512];
    fprintf(stderr, "--- %s ---\n", pg->log);
    while (fgets(line, sizeof line, fp))
        fputs(line, stderr);
    fclose(fp);
}

const char *mc_pgserver_uri(const mc_pgserver *pg)
{
    return pg ? pg->uri : "";
}

void mc_pgserver_stop(mc_pgserver *pg)
{
    if (!pg)
        return;
    if (pg->running) {
        const char *args[] = {"-D", pg->data, "-m", "fast", "-w", "-t", "60", "stop", NULL};
        if (run_as(pg, "pg_ctl", args, NULL) != 0)
            dump_log(pg);
    }
    if (pg->dir[0])
        nftw(pg->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(pg);
}

mc_err mc_pgserver_start(mc_pgserver **out, mc_errdetail *err)
{
    mc_err e = MC_OK;
    char pwfile[160], port_s[16], pwenv[64];
    *out = NULL;
    mc_pgserver *pg = calloc(1, sizeof *pg);
    if (!pg)
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "pgserver: out of memory");
    if (find_bindir(pg->bindir, sizeof pg->bindir) != 0) {
        e = mc_err_set(err, MC_ERR_CONFIG, "MAILCA_PG_BINDIR", NULL,
                       "pgserver: no /usr/lib/postgresql/*/bin/initdb (install postgresql-15) "
                       "and MAILCA_PG_BINDIR unset");
        goto done;
    }
    pg->uid = getuid();
    pg->gid = getgid();
    if (geteuid() == 0) {
        /* initdb refuses root: the server runs as an unprivileged system user. */
        const struct passwd *pw = getpwnam("postgres");
        if (!pw)
            pw = getpwnam("nobody");
        if (!pw) {
            e = mc_err_set(err, MC_ERR_CONFIG, "user", NULL,
                           "pgserver: running as root and neither user postgres nor nobody "
                           "exists");
            goto done;
        }
        pg->uid = pw->pw_uid;
        pg->gid = pw->pw_gid;
    }
    snprintf(pg->dir, sizeof pg->dir, "/tmp/mc-pg-XXXXXX");
    if (!mkdtemp(pg->dir)) {
        pg->dir[0] = '\0';
        e = mc_err_set(err, MC_ERR_IO, "dir", NULL, "pgserver: mkdtemp: %s", strerror(errno));
        goto done;
    }
    if (chown(pg->dir, pg->uid, pg->gid) != 0) {
        e = mc_err_set(err, MC_ERR_IO, "dir", NULL, "pgserver: chown %s: %s", pg->dir,
                       strerror(errno));
        goto done;
    }
    snprintf(pg->data, sizeof pg->data, "%s/data", pg->dir);
    snprintf(pg->log, sizeof pg->log, "%s/server.log", pg->dir);
    snprintf(pwfile, sizeof pwfile, "%s/pw", pg->dir);

    /* A random password: the server listens on 127.0.0.1, where other local users could reach
     * it for as long as it runs. */
    uint8_t rnd[16];
    FILE *fp = fopen("/dev/urandom", "rb");
    size_t got = fp ? fread(rnd, 1, sizeof rnd, fp) : 0;
    if (fp)
        fclose(fp);
    if (got != sizeof rnd) {
        e = mc_err_set(err, MC_ERR_IO, "random", NULL, "pgserver: /dev/urandom unreadable");
        goto done;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(pg->password + 2 * i, 3, "%02x", rnd[i]);
    int fd = open(pwfile, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, pg->password, strlen(pg->password)) != (ssize_t)strlen(pg->password) ||
        fchown(fd, pg->uid, pg->gid) != 0) {
        e = mc_err_set(err, MC_ERR_IO, "pwfile", NULL, "pgserver: write %s: %s", pwfile,
                       strerror(errno));
        if (fd >= 0)
            close(fd);
        goto done;
    }
    close(fd);

    /* --no-sync: a throwaway cluster; the server itself keeps its normal durability settings,
     * so commit costs measured against it are real ones. */
    char pwopt[200];
    snprintf(pwopt, sizeof pwopt, "--pwfile=%s", pwfile);
    const char *init_args[] = {"-D",
                               pg->data,
                               "-U",
                               "postgres",
                               pwopt,
                               "--auth-host=scram-sha-256",
                               "--auth-local=trust",
                               "-E",
                               "UTF8",
                               "--locale=C",
                               "--no-sync",
                               NULL};
    if (run_as(pg, "initdb", init_args, NULL) != 0) {
        dump_log(pg);
        e = mc_err_set(err, MC_ERR_IO, "initdb", NULL, "pgserver: initdb -D %s failed (see %s)",
                       pg->data, pg->log);
        goto done;
    }
    /* The port may be taken between free_port and the server's bind: try a few. */
    int port = -1;
    for (int attempt = 0; attempt < 3 && !pg->running; attempt++) {
        port = free_port();
        if (port < 0)
            continue;
        snprintf(pg->opts, sizeof pg->opts, "-p %d -k %s -c listen_addresses=127.0.0.1", port,
                 pg->dir);
        const char *start_args[] = {"-D", pg->data, "-l", pg->log, "-o", pg->opts,
                                    "-w", "-t",     "60", "start", NULL};
        if (run_as(pg, "pg_ctl", start_args, NULL) == 0)
            pg->running = 1;
    }
    if (!pg->running) {
        dump_log(pg);
        e = mc_err_set(err, MC_ERR_IO, "pg_ctl", NULL, "pgserver: pg_ctl start failed (see %s)",
                       pg->log);
        goto done;
    }
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(pwenv, sizeof pwenv, "PGPASSWORD=%s", pg->password);
    const char *db_args[] = {"-h", "127.0.0.1", "-p", port_s, "-U", "postgres", PG_DBNAME, NULL};
    if (run_as(pg, "createdb", db_args, pwenv) != 0) {
        dump_log(pg);
        e = mc_err_set(err, MC_ERR_IO, "createdb", NULL, "pgserver: createdb %s failed", PG_DBNAME);
        goto done;
    }
    snprintf(pg->uri, sizeof pg->uri, "postgresql://postgres:%s@127.0.0.1:%d/%s", pg->password,
             port, PG_DBNAME);
done:
    if (e) {
        mc_pgserver_stop(pg);
        return e;
    }
    *out = pg;
    return MC_OK;
}

mc_err mc_pgserver_halt(mc_pgserver *pg, mc_errdetail *err)
{
    if (!pg || !pg->running)
        return mc_err_set(err, MC_ERR_INVALID, "pg", NULL, "pgserver halt: not running");
    /* -m immediate: the postmaster and its backends quit at once, without a checkpoint, and
     * every client connection is cut, as in a crash; the next start recovers from the WAL. */
    const char *args[] = {"-D", pg->data, "-m", "immediate", "-w", "-t", "60", "stop", NULL};
    if (run_as(pg, "pg_ctl", args, NULL) != 0) {
        dump_log(pg);
        return mc_err_set(err, MC_ERR_IO, "pg_ctl", NULL, "pgserver: pg_ctl stop failed (see %s)",
                          pg->log);
    }
    pg->running = 0;
    return MC_OK;
}

mc_err mc_pgserver_resume(mc_pgserver *pg, mc_errdetail *err)
{
    if (!pg || pg->running)
        return mc_err_set(err, MC_ERR_INVALID, "pg", NULL, "pgserver resume: already running");
    const char *args[] = {"-D", pg->data, "-l", pg->log, "-o", pg->opts,
                          "-w", "-t",     "60", "start", NULL};
    if (run_as(pg, "pg_ctl", args, NULL) != 0) {
        dump_log(pg);
        return mc_err_set(err, MC_ERR_IO, "pg_ctl", NULL,
                          "pgserver: pg_ctl start (resume) failed (see %s)", pg->log);
    }
    pg->running = 1;
    return MC_OK;
}
