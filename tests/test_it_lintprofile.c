/*
 * `mailca lint --profile NAME` (issue 3 item 6): a certificate issued by `mailca batch` under
 * mailbox-strict lints clean when judged as mailbox-strict of the same CA, and is refused with
 * error findings when judged as organization-strict (an organization certificate needs the
 * organization's name and identifier in its subject); an unknown profile is a usage error.
 * Also the lint set a new CA enforces (config lint.enforced_set).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailca/lint.h"
#include "support/itutil.h"

static mc_it_ca g;
static char g_cfg[700], g_pem[700];

/* A CA and one mailbox-strict certificate from it, written as PEM. */
static int group_setup(void **state)
{
    (void)state;
    char orders[700], results[700];
    if (mc_it_ca_setup("it-lintprofile-", &g) != 0)
        return -1;
    snprintf(g_cfg, sizeof g_cfg, "%s/mailca.yaml", g.ca);
    snprintf(orders, sizeof orders, "%s/orders.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/results.msgpack", g.dir);
    snprintf(g_pem, sizeof g_pem, "%s/leaf.pem", g.dir);
    mc_it_run r;
    int st =
        mc_it_mailca(&r, "gen-orders", "--count", "1", "--profile", "mailbox-strict", orders, NULL);
    mc_it_run_free(&r);
    if (st != 0)
        return -1;
    st = mc_it_mailca(&r, "batch", "--quiet", "--config", g_cfg, orders, results, NULL);
    mc_it_run_free(&r);
    if (st != 0)
        return -1;
    mc_it_results res;
    if (mc_it_results_load(results, &res) != 0)
        return -1;
    int ok = res.n == 1 && res.r[0].status == MC_STATUS_ISSUED &&
             mc_it_append_pem(g_pem, res.r[0].cert, res.r[0].cert_len) == 0;
    mc_it_results_free(&res);
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_it_ca_free(&g);
    return 0;
}

static int lint(const char *profile, mc_it_run *r)
{
    return mc_it_mailca(r, "lint", "--json", "--profile", profile, "--config", g_cfg, g_pem, NULL);
}

static void test_own_profile_passes(void **state)
{
    (void)state;
    mc_it_run r;
    int st = lint("mailbox-strict", &r);
    if (st != 0 || !strstr(r.out, "\"errors\":0"))
        fail_msg("exit %d: %s %s", st, r.out, r.err);
    mc_it_run_free(&r);
}

static void test_other_profile_fails(void **state)
{
    (void)state;
    mc_it_run r;
    int st = lint("organization-strict", &r);
    if (st != 1 || strstr(r.out, "\"errors\":0") || !strstr(r.out, "\"severity\":\"error\""))
        fail_msg("a mailbox certificate passed as organization-strict: exit %d: %s %s", st, r.out,
                 r.err);
    mc_it_run_free(&r);
}

static void test_unknown_profile_is_usage_error(void **state)
{
    (void)state;
    mc_it_run r;
    int st = lint("no-such-profile", &r);
    assert_int_equal(st, 2);
    assert_non_null(strstr(r.err, "no-such-profile"));
    mc_it_run_free(&r);
}

/* `mailca init` pins the new CA's lint set (lint.enforced_set: every lint of this build is
 * enforced; those a later upgrade adds warn until the operator raises it). A set newer than this
 * build (the binary rolled back after the set was raised) is accepted: `mailca batch` enforces
 * every lint it knows, says so once on stderr, and issues. A malformed set is refused, naming
 * the key, before anything is signed. */
static void test_enforced_set_config(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = (char *)mc_it_read_file(g_cfg, &len);
    assert_non_null(text);
    char want[128];
    snprintf(want, sizeof want, "enforced_set: \"%s\"", MC_LINT_SET_VERSION);
    const char *at = strstr(text, want);
    if (!at)
        fail_msg("%s has no '%s':\n%s", g_cfg, want, text);
    free(text);
    char cfg2[760], orders[700], results[700];
    snprintf(cfg2, sizeof cfg2, "%s/future-lints.yaml", g.ca);
    /* fresh order ids (gen-orders draws a random prefix): issued now, not an earlier result */
    snprintf(orders, sizeof orders, "%s/orders-future.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/results-future.msgpack", g.dir);
    mc_it_run r;
    int st =
        mc_it_mailca(&r, "gen-orders", "--count", "2", "--profile", "mailbox-strict", orders, NULL);
    mc_it_run_free(&r);
    assert_int_equal(st, 0);
    assert_int_equal(mc_it_config_set(g_cfg, cfg2, "enforced_set", "\"mailca-lints-2099.1.1\""), 0);
    st = mc_it_mailca(&r, "batch", "--quiet", "--config", cfg2, orders, results, NULL);
    char notice[256];
    snprintf(notice, sizeof notice,
             "lint.enforced_set mailca-lints-2099.1.1 is newer than this build's lint set %s: "
             "every lint of this build is enforced",
             MC_LINT_SET_VERSION);
    const char *first = strstr(r.err, notice);
    if (st != 0 || !first || strstr(first + 1, notice) || strstr(r.err, "warn instead"))
        fail_msg("exit %d: %s", st, r.err);
    mc_it_run_free(&r);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, 2);
    for (size_t i = 0; i < res.n; i++) {
        assert_int_equal(res.r[i].status, MC_STATUS_ISSUED);
        assert_string_equal(res.r[i].lint_version, MC_LINT_SET_VERSION);
    }
    mc_it_results_free(&res);
    /* malformed (a second spelling of the base set): refused, naming the key */
    snprintf(results, sizeof results, "%s/results-malformed.msgpack", g.dir);
    assert_int_equal(mc_it_config_set(g_cfg, cfg2, "enforced_set", "\"mailca-lints-2026.11.02\""),
                     0);
    st = mc_it_mailca(&r, "batch", "--quiet", "--config", cfg2, orders, results, NULL);
    if (st == 0 || !strstr(r.err, "lint.enforced_set") || !strstr(r.err, "not a lint set version"))
        fail_msg("exit %d: %s", st, r.err);
    mc_it_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_profile_passes),
        cmocka_unit_test(test_other_profile_fails),
        cmocka_unit_test(test_unknown_profile_is_usage_error),
        cmocka_unit_test(test_enforced_set_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
