/*
 * Worker processes (`mailca batch --procs N`): certificates issued through worker processes over
 * ipc:// verify like the threaded ones, and a worker process killed with SIGKILL in the middle of
 * a batch loses nothing: it is restarted, the orders it held are dispatched again (an intent it
 * recorded is re-signed with its serial), every order ends issued exactly once, every
 * certificate is in SQLite, and resubmitting the same orders returns the same certificates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/itutil.h"

#include "mailca/config.h"
#include "mailca/engine.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static mc_it_ca g;

static int group_setup(void **state)
{
    (void)state;
    return mc_it_ca_setup("it-procs-", &g);
}

static int group_teardown(void **state)
{
    (void)state;
    mc_it_ca_free(&g);
    return 0;
}

static void gen(const char *path, int n, const char *form)
{
    mc_it_run r;
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    int st = mc_it_mailca(&r, "gen-orders", "--count", count, "--key-form", form, path, NULL);
    if (st != 0)
        fail_msg("gen-orders: exit %d: %s", st, r.err);
    mc_it_run_free(&r);
}

/* Every seq 0..n-1 exactly once; returns the number issued. */
static size_t check_one_result_each(const mc_it_results *res, size_t n, size_t *failed)
{
    uint8_t *seen = calloc(n, 1);
    size_t issued = 0;
    *failed = 0;
    assert_non_null(seen);
    assert_int_equal(res->n, n);
    for (size_t i = 0; i < res->n; i++) {
        const mc_result *r = &res->r[i];
        assert_true(r->seq < n);
        assert_int_equal(seen[r->seq], 0);
        seen[r->seq] = 1;
        if (r->status == MC_STATUS_ISSUED)
            issued++;
        else {
            assert_int_equal(r->status, MC_STATUS_FAILED);
            (*failed)++;
        }
    }
    free(seen);
    return issued;
}

static void test_procs_issue(void **state)
{
    (void)state;
    char orders[700], results[700], cfg[700];
    int n = mc_it_scaled(400, 40);
    snprintf(orders, sizeof orders, "%s/p.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/p-results.msgpack", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    gen(orders, n, "csr");
    mc_it_run r;
    /* the config named relative to the working folder, as README's commands do: the worker
     * processes, which load the run's snapshot from elsewhere, find the same files */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(g.dir), 0);
    int st = mc_it_mailca(&r, "batch", "--quiet", "--procs", "2", "--config", "ca/mailca.yaml",
                          orders, results, NULL);
    assert_int_equal(chdir(cwd), 0);
    if (st != 0)
        fail_msg("batch --procs 2: exit %d: %s", st, r.err);
    mc_it_run_free(&r);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    size_t failed;
    assert_int_equal(check_one_result_each(&res, (size_t)n, &failed), (size_t)n);
    for (size_t i = 0; i < res.n; i++)
        assert_int_equal(mc_it_verify(g.root, g.ica, res.r[i].cert, res.r[i].cert_len,
                                      X509_PURPOSE_SMIME_SIGN, NULL),
                         1);
    mc_it_results_free(&res);
}

/* The pid of a `mailca worker` process whose parent is ppid, or 0. */
static pid_t find_worker(pid_t ppid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;
    while (d && !found && (e = readdir(d))) {
        char path[300], buf[512];
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int ok = fgets(buf, sizeof buf, f) != NULL;
        fclose(f);
        char *rp = ok ? strrchr(buf, ')') : NULL;
        int parent = 0;
        if (rp && sscanf(rp + 2, "%*c %d", &parent) == 1 && parent == ppid) {
            snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
            f = fopen(path, "r");
            size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f)
                fclose(f);
            buf[got] = '\0';
            if (got > 7 && strcmp(buf + strlen(buf) + 1, "worker") == 0)
                found = pid;
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* Starts `mailca batch --quiet ARGS...` in the background (ARGS: NULL-terminated, at most 16),
 * stdin on /dev/null, stderr into the file errlog (printed by batch_wait when the run fails). */
static pid_t batch_start(const char *const *args, const char *errlog)
{
    const char *argv[20] = {"mailca", "batch", "--quiet"};
    size_t k = 3;
    for (size_t i = 0; args[i] && k < sizeof argv / sizeof argv[0] - 1; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* close-on-exec: dup2 clears it on 0 and 2, and nothing else leaks into mailca */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        int log = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        dup2(null, 0);
        dup2(log >= 0 ? log : null, 2);
        execv(mc_it_bin(), (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits for batch; fails the test, with its stderr, unless it exited with status want. */
static void batch_wait(pid_t batch, const char *errlog, int want)
{
    int status = 0;
    assert_int_equal(waitpid(batch, &status, 0), batch);
    if (WIFEXITED(status) && WEXITSTATUS(status) == want)
        return;
    /* the log's last 8,000 bytes straight to stderr: cmocka's messages are cut at about 1 KiB,
     * and the end (the summary line, a sanitizer report) matters most */
    size_t len = 0;
    uint8_t *log = mc_it_read_file(errlog, &len);
    size_t from = len > 8000 ? len - 8000 : 0;
    fprintf(stderr, "batch stderr (%s):\n", errlog);
    if (log)
        fwrite(log + from, 1, len - from, stderr);
    free(log);
    fail_msg("batch: %s %d (want exit %d); its stderr is above",
             WIFEXITED(status) ? "exit" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), want);
}

/* A worker process of batch, once results holds min_bytes (certificates are flowing); fails
 * the test when none shows within 6 s. */
static pid_t worker_when_flowing(pid_t batch, const char *results, off_t min_bytes)
{
    pid_t w = 0;
    for (int i = 0; i < 3000 && !w; i++) {
        struct stat sb;
        if (stat(results, &sb) == 0 && sb.st_size > min_bytes)
            w = find_worker(batch);
        if (!w)
            usleep(2000);
    }
    assert_true(w > 0);
    return w;
}

/* `mailca batch --procs procs` with one worker process SIGKILLed once certificates are flowing;
 * the run must still exit 0. */
static void batch_kill_one_worker(const char *procs, const char *cfg, const char *orders,
                                  const char *results, const char *errlog)
{
    const char *args[] = {"--procs", procs, "--config", cfg, orders, results, NULL};
    pid_t batch = batch_start(args, errlog);
    pid_t victim = worker_when_flowing(batch, results, 200 * 1024);
    assert_int_equal(kill(victim, SIGKILL), 0);
    batch_wait(batch, errlog, 0);
}

/* SIGKILL one of `procs` worker processes once certificates are flowing. */
static void sigkill_run(const char *procs, int n)
{
    char orders[700], results[700], again[700], cfg[700], db[700], errlog[700];
    snprintf(orders, sizeof orders, "%s/k%s.msgpack", g.dir, procs);
    snprintf(errlog, sizeof errlog, "%s/k%s-stderr.txt", g.dir, procs);
    snprintf(results, sizeof results, "%s/k%s-results.msgpack", g.dir, procs);
    snprintf(again, sizeof again, "%s/k%s-again.msgpack", g.dir, procs);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    snprintf(db, sizeof db, "%s/mailca.db", g.ca);
    gen(orders, n, "public-key");
    sqlite3 *sdb = mc_it_db_open(db);
    assert_non_null(sdb);
    long long before = mc_it_db_count(sdb, "certificates");

    /* the dead worker process was restarted and the orders it held dispatched again: every
     * order issued in this run, none failed */
    batch_kill_one_worker(procs, cfg, orders, results, errlog);

    mc_it_results res;
    size_t failed = 0;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    size_t issued = check_one_result_each(&res, (size_t)n, &failed);
    assert_int_equal(failed, 0);
    assert_int_equal(issued, (size_t)n);
    assert_int_equal(mc_it_db_count(sdb, "certificates"), before + (long long)issued);
    assert_int_equal(mc_it_db_count(sdb, "intents"), mc_it_db_count(sdb, "certificates"));
    mc_it_results_free(&res);

    /* Resubmit: everything ends issued, one certificate per order. */
    mc_it_run r;
    int st = mc_it_mailca(&r, "batch", "--quiet", "--procs", procs, "--config", cfg, orders, again,
                          NULL);
    if (st != 0)
        fail_msg("resubmission: exit %d: %s", st, r.err);
    mc_it_run_free(&r);
    assert_int_equal(mc_it_results_load(again, &res), 0);
    assert_int_equal(check_one_result_each(&res, (size_t)n, &failed), (size_t)n);
    mc_it_results_free(&res);
    assert_int_equal(mc_it_db_count(sdb, "certificates"), before + n);
    assert_int_equal(mc_it_db_count(sdb, "intents"), mc_it_db_count(sdb, "certificates"));
    sqlite3_close(sdb);
}

/* Is pid gone (or a zombie nobody has reaped yet)? */
static int process_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    int ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    char *rp = ok ? strrchr(buf, ')') : NULL;
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

/* The engine process dies (SIGKILL) while its worker process has batches with signer threads
 * that have no deadline (sign_timeout_ms: 0, more sessions than workers): the worker process
 * is told by the kernel (parent-death signal), ends its ZeroMQ context, and must then exit,
 * not wait for signer answers that can no longer come. */
static void test_procs_engine_killed(void **state)
{
    (void)state;
    char orders[700], results[700], cfg[700], base[700], errlog[700];
    snprintf(orders, sizeof orders, "%s/orphan.msgpack", g.dir);
    snprintf(errlog, sizeof errlog, "%s/orphan-stderr.txt", g.dir);
    snprintf(results, sizeof results, "%s/orphan-results.msgpack", g.dir);
    snprintf(base, sizeof base, "%s/mailca.yaml", g.ca);
    snprintf(cfg, sizeof cfg, "%s/no-deadline.yaml", g.ca);
    assert_int_equal(mc_it_config_with_deadline(base, cfg, 0), 0);
    gen(orders, mc_it_scaled(40000, 4000), "public-key");

    const char *args[] = {"--procs",  "1", "--workers", "2",     "--sessions", "4",
                          "--config", cfg, orders,      results, NULL};
    pid_t batch = batch_start(args, errlog);
    pid_t worker = worker_when_flowing(batch, results, 100 * 1024);
    assert_int_equal(kill(batch, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(batch, &status, 0), batch);
    int gone = 0;
    for (int i = 0; i < 1000 && !gone; i++) { /* 10 s */
        gone = process_gone(worker);
        if (!gone)
            usleep(10000);
    }
    if (!gone) {
        kill(worker, SIGKILL);
        fail_msg("worker process %d still running 10 s after the engine died", (int)worker);
    }
}

static void test_procs_sigkill(void **state)
{
    (void)state;
    sigkill_run("2", mc_it_scaled(20000, 2000));
}

/* With one worker process, its death must not end the intake: the restart takes its place. */
static void test_procs_sigkill_only_process(void **state)
{
    (void)state;
    sigkill_run("1", mc_it_scaled(10000, 2000));
}

/* The config file is replaced by garbage while a run is going, then its only worker process is
 * SIGKILLed: the restarted process loads the config the run started with (the engine's
 * snapshot), not the file, so every order is still issued. Before the snapshot, the restart
 * read the broken file and the run's remaining orders failed. */
static void test_procs_config_edited_during_run(void **state)
{
    (void)state;
    char orders[700], results[700], cfg[700], edited[700], errlog[700];
    const int n = mc_it_scaled(10000, 2000);
    snprintf(orders, sizeof orders, "%s/edit.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/edit-results.msgpack", g.dir);
    snprintf(errlog, sizeof errlog, "%s/edit-stderr.txt", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    /* a copy beside the original: its relative paths name the same CA */
    snprintf(edited, sizeof edited, "%s/edited.yaml", g.ca);
    size_t len = 0;
    uint8_t *text = mc_it_read_file(cfg, &len);
    assert_non_null(text);
    assert_int_equal(mc_it_write_file(edited, text, len), 0);
    free(text);
    gen(orders, n, "public-key");
    const char *args[] = {"--procs", "1", "--config", edited, orders, results, NULL};
    pid_t batch = batch_start(args, errlog);
    pid_t victim = worker_when_flowing(batch, results, 200 * 1024);
    static const char garbage[] = "hsm: [this is not the config the run started with\n";
    assert_int_equal(mc_it_write_file(edited, garbage, sizeof garbage - 1), 0);
    assert_int_equal(kill(victim, SIGKILL), 0);
    batch_wait(batch, errlog, 0);

    uint8_t *log = mc_it_read_file(errlog, &len);
    assert_non_null(log);
    int restarted = strstr((char *)log, "worker process 0 restarted") != NULL;
    int refused = strstr((char *)log, "could not be restarted") != NULL;
    if (!restarted || refused)
        fail_msg("want a restart from the run's config: %.*s", (int)len, (char *)log);
    free(log);
    mc_it_results res;
    size_t failed = 0;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(check_one_result_each(&res, (size_t)n, &failed), (size_t)n);
    assert_int_equal(failed, 0);
    mc_it_results_free(&res);
}

/* Order ids are idempotency keys, and a stream may carry the same id many times, some of the
 * copies in flight at once (the later ones wait for the first: waiters). A worker process
 * SIGKILLed in the middle: every copy still gets one result, none failed, one certificate per
 * id, and every copy of an id returns the same serial. */
static void test_procs_sigkill_duplicate_ids(void **state)
{
    (void)state;
    char one[700], orders[700], results[700], cfg[700], db[700], errlog[700];
    const int ids = mc_it_scaled(1000, 100), copies = 20, n = ids * copies;
    snprintf(one, sizeof one, "%s/dup1.msgpack", g.dir);
    snprintf(orders, sizeof orders, "%s/dup.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/dup-results.msgpack", g.dir);
    snprintf(errlog, sizeof errlog, "%s/dup-stderr.txt", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    snprintf(db, sizeof db, "%s/mailca.db", g.ca);
    gen(one, ids, "public-key");
    size_t len = 0;
    uint8_t *buf = mc_it_read_file(one, &len);
    assert_non_null(buf);
    FILE *f = fopen(orders, "wb");
    assert_non_null(f);
    for (int k = 0; k < copies; k++) /* copies `ids` orders apart: several in flight at once */
        assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(buf);
    sqlite3 *sdb = mc_it_db_open(db);
    assert_non_null(sdb);
    long long before = mc_it_db_count(sdb, "certificates");

    batch_kill_one_worker("2", cfg, orders, results, errlog);

    mc_it_results res;
    size_t failed = 0;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(check_one_result_each(&res, (size_t)n, &failed), (size_t)n);
    /* gen-orders names order i "<prefix>-<i>": the serial of each id's first result */
    const mc_result **first = calloc((size_t)ids, sizeof *first);
    assert_non_null(first);
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *r = &res.r[i];
        const char *dash = memrchr(r->order_id, '-', r->order_id_len);
        assert_non_null(dash);
        int id = atoi(dash + 1);
        assert_true(id >= 0 && id < ids);
        if (!first[id])
            first[id] = r;
        else if (first[id]->serial_len != r->serial_len ||
                 memcmp(first[id]->serial, r->serial, r->serial_len) != 0)
            fail_msg("order id %.*s: two serials", (int)r->order_id_len, r->order_id);
    }
    free(first);
    mc_it_results_free(&res);
    assert_int_equal(mc_it_db_count(sdb, "certificates"), before + ids);
    assert_int_equal(mc_it_db_count(sdb, "intents"), mc_it_db_count(sdb, "certificates"));
    sqlite3_close(sdb);
}

/* engine.procs: auto (mc_engine_auto_procs): processes only for SoftHSM2, one per core, from 4
 * cores or with more sessions in flight than cores. */
static void test_auto_procs_rule(void **state)
{
    (void)state;
    assert_int_equal(mc_engine_auto_procs("SoftHSM", 2, 0), 0);
    assert_int_equal(mc_engine_auto_procs("SoftHSM", 2, 2), 0);
    assert_int_equal(mc_engine_auto_procs("SoftHSM", 2, 3), 2);
    assert_int_equal(mc_engine_auto_procs("SoftHSM", 2, 32), 2);
    assert_int_equal(mc_engine_auto_procs("SoftHSM", 4, 0), 4);
    assert_int_equal(mc_engine_auto_procs("SoftHSM", 16, 4), 16);
    assert_int_equal(mc_engine_auto_procs("SoftHSM", 1, 32), 0);
    assert_int_equal(mc_engine_auto_procs("Thales", 16, 64), 0);
    assert_int_equal(mc_engine_auto_procs("", 8, 32), 0);
    assert_int_equal(mc_engine_auto_procs(NULL, 8, 32), 0);
}

/* The key engine.procs takes auto (the default) or a count; anything else is refused naming it. */
static void test_auto_procs_config(void **state)
{
    (void)state;
    char path[700];
    const char *vals[] = {"auto", "3", "0", "many", "-1", "257"};
    const int want[] = {-1, 3, 0};
    snprintf(path, sizeof path, "%s/procs.yaml", g.dir);
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "engine:\n  procs: %s\n", vals[i]);
        assert_int_equal(fclose(f), 0);
        mc_config c;
        mc_errdetail e;
        mc_err rc = mc_config_load(path, &c, &e);
        if (i < 3) {
            assert_int_equal(rc, MC_OK);
            assert_int_equal(c.procs, want[i]);
        } else {
            assert_int_equal(rc, MC_ERR_CONFIG);
            assert_non_null(strstr(e.message, "engine.procs"));
            assert_non_null(strstr(e.message, "auto"));
        }
    }
    mc_config d;
    mc_errdetail e;
    snprintf(path, sizeof path, "%s/empty.yaml", g.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(mc_config_load(path, &d, &e), MC_OK);
    assert_int_equal(d.procs, -1);
}

/* `mailca batch` with the default (auto) against SoftHSM2 with more sessions than cores: the
 * module is recognised by its C_GetInfo manufacturerID and the workers run as processes. */
static void test_auto_procs_softhsm(void **state)
{
    (void)state;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 2)
        skip(); /* one core: auto keeps threads whatever the module */
    char orders[700], results[700], cfg[700], want[64];
    int n = mc_it_scaled(400, 40);
    snprintf(orders, sizeof orders, "%s/auto.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/auto-results.msgpack", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    gen(orders, n, "public-key");
    int sessions = (int)ncpu + 1, procs = mc_engine_auto_procs("SoftHSM", (int)ncpu, sessions);
    assert_true(procs > 0);
    char sess[16];
    snprintf(sess, sizeof sess, "%d", sessions);
    mc_it_run r;
    int st = mc_it_mailca(&r, "batch", "--sessions", sess, "--config", cfg, orders, results, NULL);
    if (st != 0)
        fail_msg("batch (procs auto): exit %d: %s", st, r.err);
    snprintf(want, sizeof want, " in %d processes", procs);
    if (!strstr(r.err, want))
        fail_msg("batch (procs auto) did not run %d worker processes: %s", procs, r.err);
    mc_it_run_free(&r);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    size_t failed;
    assert_int_equal(check_one_result_each(&res, (size_t)n, &failed), (size_t)n);
    mc_it_results_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_procs_issue),
        cmocka_unit_test(test_procs_sigkill),
        cmocka_unit_test(test_procs_sigkill_only_process),
        cmocka_unit_test(test_procs_sigkill_duplicate_ids),
        cmocka_unit_test(test_procs_engine_killed),
        cmocka_unit_test(test_auto_procs_rule),
        cmocka_unit_test(test_auto_procs_config),
        cmocka_unit_test(test_auto_procs_softhsm),
        cmocka_unit_test(test_procs_config_edited_during_run),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
