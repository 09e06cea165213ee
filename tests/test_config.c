/*
 * mc_config: a config round-trips through mc_config_write and mc_config_snapshot (the file the
 * worker processes of a run load): every key comes back as loaded, relative paths resolved the
 * same way, quotes and backslashes in values intact; a snapshot never overwrites a file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailca/config.h"

static char g_dir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/mailca-test-config-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void load_ok(const char *path, mc_config *c)
{
    mc_errdetail err;
    mc_err_clear(&err);
    mc_err rc = mc_config_load(path, c, &err);
    if (rc != MC_OK)
        fail_msg("load %s: %s: %s", path, err.field, err.message);
}

/* Everything but where the file was (path, dir) is the same. */
static void assert_same(const mc_config *a, const mc_config *b)
{
    mc_config x = *a, y = *b;
    memset(x.path, 0, sizeof x.path);
    memset(y.path, 0, sizeof y.path);
    memset(x.dir, 0, sizeof x.dir);
    memset(y.dir, 0, sizeof y.dir);
    assert_memory_equal(&x, &y, sizeof x);
}

static const char CONFIG[] = "hsm:\n"
                             "  key: \"pkcs11:token=a%20b;object=\\\"q\\\" back\\\\slash\"\n"
                             "  pin_file: \"pin.txt\"\n"
                             "store:\n"
                             "  sqlite: \"state/mailca.db\"\n"
                             "engine:\n"
                             "  procs: auto\n"
                             "  workers: 3\n"
                             "  pin_cores: false\n"
                             "lint:\n"
                             "  enforced_set: \"mailca-lints-2026.11.2\"\n";

static void test_snapshot_roundtrip(void **state)
{
    (void)state;
    char path[512], snap[600], sub[512], copy[512];
    snprintf(path, sizeof path, "%s/mailca.yaml", g_dir);
    write_text(path, CONFIG);
    mc_config c, s, w;
    load_ok(path, &c);
    assert_string_equal(c.hsm_key, "pkcs11:token=a%20b;object=\"q\" back\\slash");
    assert_int_equal(c.procs, -1);
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.pin_cores, 0);
    char want[600];
    snprintf(want, sizeof want, "%s/state/mailca.db", g_dir);
    assert_string_equal(c.store_sqlite, want);

    /* the snapshot, in another folder, names the same files: its paths are absolute */
    snprintf(sub, sizeof sub, "%s/run", g_dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(snap, sizeof snap, "%s/config.yaml", sub);
    mc_errdetail err;
    assert_int_equal(mc_config_snapshot(&c, snap, &err), MC_OK);
    struct stat sb;
    assert_int_equal(stat(snap, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    load_ok(snap, &s);
    assert_same(&c, &s);

    /* never over an existing file: the run's own folder holds only what the run wrote */
    assert_int_equal(mc_config_snapshot(&c, snap, &err), MC_ERR_IO);
    assert_string_equal(err.field, snap);

    /* mc_config_write (init's) keeps paths relative to the folder: a copy beside the original
     * loads the same */
    snprintf(copy, sizeof copy, "%s/written.yaml", g_dir);
    assert_int_equal(mc_config_write(&c, copy, &err), MC_OK);
    load_ok(copy, &w);
    assert_same(&c, &w);
}

/* Loaded by a relative path from its folder, the config resolves its relative paths to
 * absolute ones, so its snapshot, loaded from another folder (a worker process's view), names
 * the same files. */
static void test_relative_load(void **state)
{
    (void)state;
    char path[512], snap[600], cwd[1024], want[700];
    snprintf(path, sizeof path, "%s/mailca.yaml", g_dir);
    write_text(path, CONFIG);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(g_dir), 0);
    mc_config c, s;
    load_ok("mailca.yaml", &c);
    assert_int_equal(chdir(cwd), 0);
    char real[600];
    assert_non_null(realpath(g_dir, real));
    snprintf(want, sizeof want, "%s/state/mailca.db", real);
    assert_string_equal(c.store_sqlite, want);
    snprintf(snap, sizeof snap, "%s/run-rel.yaml", g_dir);
    mc_errdetail err;
    assert_int_equal(mc_config_snapshot(&c, snap, &err), MC_OK);
    load_ok(snap, &s);
    assert_same(&c, &s);
    assert_string_equal(s.store_sqlite, want);
}

/* Values with newlines, tabs and other control characters survive the snapshot (YAML escapes),
 * so a worker process never fails to load what its engine loaded. */
static void test_snapshot_escapes(void **state)
{
    (void)state;
    char path[512], snap[600];
    snprintf(path, sizeof path, "%s/mailca.yaml", g_dir);
    write_text(path, "hsm:\n  pin_env: \"A\\nB\\tC\\x01D # not a comment\"\n"
                     "store:\n  sqlite: \"s.db\"\n");
    mc_config c, s;
    load_ok(path, &c);
    assert_string_equal(c.hsm_pin_env, "A\nB\tC\x01"
                                       "D # not a comment");
    snprintf(snap, sizeof snap, "%s/run-esc.yaml", g_dir);
    mc_errdetail err;
    assert_int_equal(mc_config_snapshot(&c, snap, &err), MC_OK);
    load_ok(snap, &s);
    assert_same(&c, &s);
}

/* ca.crl_shards: 1 by default; N > 1 wants "{shard}" in ca.crl_url and N = 1 refuses it (the
 * error names the key and the rule); out of 1..4096 is refused; the key round-trips. */
static void test_crl_shards(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/shards.yaml", g_dir);
    mc_config c;
    mc_errdetail err;
    write_text(path, "ca:\n  crl_url: \"http://c.test/ica.crl\"\n");
    load_ok(path, &c);
    assert_int_equal(c.ca_crl_shards, 1);
    write_text(path, "ca:\n  crl_url: \"http://c.test/crl/{shard}.crl\"\n  crl_shards: 8\n");
    load_ok(path, &c);
    assert_int_equal(c.ca_crl_shards, 8);
    assert_string_equal(c.ca_crl_url, "http://c.test/crl/{shard}.crl");
    char snap[300];
    snprintf(snap, sizeof snap, "%s/shards-written.yaml", g_dir);
    mc_errdetail werr;
    assert_int_equal(mc_config_write(&c, snap, &werr), MC_OK);
    mc_config back;
    load_ok(snap, &back);
    assert_int_equal(back.ca_crl_shards, 8);
    const struct {
        const char *text, *field, *rule;
    } bad[] = {
        {"ca:\n  crl_url: \"http://c.test/ica.crl\"\n  crl_shards: 8\n", "ca.crl_url",
         "ca.crl_shards"},
        {"ca:\n  crl_url: \"http://c.test/{shard}.crl\"\n", "ca.crl_url", "ca.crl_shards"},
        {"ca:\n  crl_url: \"http://c.test/{shard}/a.crl\"\n  crl_shards: 2\n", "ca.crl_url",
         "ca.crl_shards"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i].text);
        mc_err_clear(&err);
        assert_int_equal(mc_config_load(path, &c, &err), MC_ERR_CONFIG);
        assert_string_equal(err.field, bad[i].field);
        assert_string_equal(err.rule, bad[i].rule);
    }
    write_text(path, "ca:\n  crl_url: \"http://c.test/{shard}.crl\"\n  crl_shards: 4097\n");
    mc_err_clear(&err);
    assert_int_equal(mc_config_load(path, &c, &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "ca.crl_shards"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_shards, setup, teardown),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
