/*
 * lint.enforced_set end to end (README, docs/orders.md "warnings"): the set the config names
 * must reach the workers that lint, as threads and as worker processes (`--procs 2`, which
 * re-read the config). The lint is e_qc_natural_serial_number_format, an error lint with a
 * `since` tag: a qualified profile of natural-person semantics (written here; the shipped
 * profiles carry no qc_statements) and an order whose subject serialNumber is not a natural
 * person identifier trigger it and nothing else. Under the set `mailca init` writes the order is
 * rejected naming the lint; under a set older than the lint it is issued, the lint id is in the
 * result's warnings and in intents.lint_warnings, and stderr names it. In every run two control
 * orders (an ordinary mailbox-strict one, and the qualified profile with a well-formed
 * serialNumber) are issued, so a rejection cannot come from a failing batch or profile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mailca/config.h"
#include "mailca/lint.h"
#include "support/csrgen.h"
#include "support/itutil.h"

#define LINT_ID "e_qc_natural_serial_number_format"
/* The set just before the lint came in (its since: mailca-lints-2026.11.24.4); test_sets_fit
 * checks that against the lint table. */
#define OLD_SET "mailca-lints-2026.11.24.3"
#define BAD_SERIAL "CASE-86" /* not <type><country>-<id> (ETSI EN 319 412-1 5.1.3) */
#define GOOD_SERIAL "PNODE-1234567890"
#define QC_PROFILE "individual-strict-qc"

/* An individual-validated Strict profile with qualified statements of natural-person semantics
 * (docs/profiles.md "qc_statements"): with it, a subject serialNumber must be a natural person
 * identifier. */
static const char QC_YAML[] = "name: " QC_PROFILE "\n"
                              "type: individual\n"
                              "generation: strict\n"
                              "validity_days: 730\n"
                              "backdate: 60\n"
                              "key_types: [p256]\n"
                              "usages: [signing]\n"
                              "subject:\n"
                              "  common_name: personal-name\n"
                              "  email_address: none\n"
                              "  given_name: optional\n"
                              "  surname: optional\n"
                              "  serial_number: optional\n"
                              "extended_key_usages: [emailProtection]\n"
                              "certificate_policies: []\n"
                              "include_cps: false\n"
                              "qc_statements:\n"
                              "  compliance: true\n"
                              "  sscd: true\n"
                              "  type: esign\n"
                              "  semantics: natural\n";

static struct {
    mc_it_ca it;
    char cfg_default[800]; /* mailca.yaml as init wrote it, engine.profiles pointed at ours */
    char cfg_old[800];     /* the same with lint.enforced_set = OLD_SET */
    char store[1024];      /* store.sqlite as the config resolves it */
} g;

/* A CA, a profile folder with the shipped mailbox-strict and QC_PROFILE, and the two configs
 * (beside mailca.yaml, so its relative paths hold). */
static int group_setup(void **state)
{
    (void)state;
    char dir[700], src[1024], dst[800], base[700];
    if (mc_it_ca_setup("it-enforced-", &g.it) != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s/profiles", g.it.dir);
    snprintf(src, sizeof src, "%s/profiles/mailbox-strict.yaml", MAILCA_SOURCE_DIR);
    size_t n = 0;
    uint8_t *y = mc_it_read_file(src, &n);
    int ok = y && mkdir(dir, 0700) == 0;
    snprintf(dst, sizeof dst, "%s/mailbox-strict.yaml", dir);
    ok = ok && mc_it_write_file(dst, y, n) == 0;
    free(y);
    snprintf(dst, sizeof dst, "%s/" QC_PROFILE ".yaml", dir);
    ok = ok && mc_it_write_file(dst, QC_YAML, strlen(QC_YAML)) == 0;
    snprintf(base, sizeof base, "%s/mailca.yaml", g.it.ca);
    snprintf(g.cfg_default, sizeof g.cfg_default, "%s/default-set.yaml", g.it.ca);
    snprintf(g.cfg_old, sizeof g.cfg_old, "%s/old-set.yaml", g.it.ca);
    char qdir[710];
    snprintf(qdir, sizeof qdir, "\"%s\"", dir);
    ok = ok && mc_it_config_set(base, g.cfg_default, "engine.profiles", qdir) == 0 &&
         mc_it_config_set(g.cfg_default, g.cfg_old, "enforced_set", "\"" OLD_SET "\"") == 0;
    mc_config cfg;
    mc_errdetail err;
    ok = ok && mc_config_load(g.cfg_default, &cfg, &err) == MC_OK;
    if (ok)
        snprintf(g.store, sizeof g.store, "%s", cfg.store_sqlite);
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_it_ca_free(&g.it);
    return 0;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t l = strlen(s);
    return msgpack_pack_str(pk, l) || msgpack_pack_str_body(pk, s, l);
}

/* Appends one order to sb: the csrgen order, plus a subject (given_name, surname and
 * serialNumber serial) when serial is not NULL. */
static void pack_order(msgpack_sbuffer *sb, const char *id, const char *profile, const char *serial)
{
    char mbox[160];
    snprintf(mbox, sizeof mbox, "%s@example.org", id);
    mc_csrgen_mailbox mb = {mbox, "3.2.2.2", (int64_t)time(NULL) - 3600, "ticket-enforced"};
    mc_csrgen_order o = {.id = id,
                         .account = "acct-it",
                         .profile = profile,
                         .usage = "signing",
                         .mailboxes = &mb,
                         .n_mailboxes = 1,
                         .csr = g.it.csr,
                         .csr_len = g.it.csr_len};
    mc_csrgen_order_identity(&o, (int64_t)time(NULL) - 3600);
    msgpack_sbuffer tmp;
    msgpack_unpacked u;
    msgpack_sbuffer_init(&tmp);
    msgpack_unpacked_init(&u);
    assert_int_equal(mc_csrgen_order_pack(&o, &tmp), 0);
    assert_int_equal(msgpack_unpack_next(&u, tmp.data, tmp.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    const msgpack_object_map *m = &u.data.via.map;
    int bad = msgpack_pack_map(&pk, m->size + (serial != NULL));
    for (uint32_t i = 0; i < m->size; i++)
        bad |= msgpack_pack_object(&pk, m->ptr[i].key) || msgpack_pack_object(&pk, m->ptr[i].val);
    if (serial)
        bad |= pack_str(&pk, "subject") || msgpack_pack_map(&pk, 3) ||
               pack_str(&pk, "given_name") || pack_str(&pk, "Alice") || pack_str(&pk, "surname") ||
               pack_str(&pk, "Example") || pack_str(&pk, "serial_number") || pack_str(&pk, serial);
    assert_int_equal(bad, 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&tmp);
}

/* Whether the comma-separated list holds id as a whole entry. */
static int list_has(const char *list, const char *id)
{
    size_t l = strlen(id);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == l && memcmp(p, id, l) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static const mc_result *find(const mc_it_results *res, const char *id)
{
    for (size_t i = 0; i < res->n; i++)
        if (strcmp(res->r[i].order_id, id) == 0)
            return &res->r[i];
    fail_msg("no result for order %s", id);
    return NULL;
}

static void assert_issued(const mc_result *r)
{
    if (r->status != MC_STATUS_ISSUED)
        fail_msg("%s: %s: %s: %s [%s]", r->order_id, mc_status_name(r->status), r->error.field,
                 r->error.message, r->error.rule);
    const char *why = NULL;
    if (mc_it_verify(g.it.root, g.it.ica, r->cert, r->cert_len, X509_PURPOSE_SMIME_SIGN, &why) != 1)
        fail_msg("%s does not verify: %s", r->order_id, why ? why : "");
}

/* The store's intents.lint_warnings of an order, or NULL when it has no intent (caller
 * frees); *certs: its rows in certificates; enforced (when it has an intent): its
 * intents.lint_enforced, the set its issuance enforced. */
static char *store_warnings(const char *id, long long *certs, char enforced[64])
{
    sqlite3 *db = mc_it_db_open(g.store);
    assert_non_null(db);
    sqlite3_stmt *st = NULL;
    char *w = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT lint_warnings, lint_enforced FROM intents"
                                        " WHERE order_id = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    enforced[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        w = strdup(t ? (const char *)t : "");
        assert_non_null(w);
        const unsigned char *le = sqlite3_column_text(st, 1);
        snprintf(enforced, 64, "%s", le ? (const char *)le : "(null)");
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM certificates WHERE order_id = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *certs = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return w;
}

/* The subject serialNumber of a DER certificate is want and it has qcStatements: the lint's
 * conditions hold for what was issued. */
static void assert_bad_serial_issued(const mc_result *r)
{
    const unsigned char *p = r->cert;
    X509 *x = d2i_X509(NULL, &p, (long)r->cert_len);
    assert_non_null(x);
    char sn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_serialNumber, sn, sizeof sn);
    assert_string_equal(sn, BAD_SERIAL);
    assert_true(X509_get_ext_by_NID(x, NID_qcStatements, -1) >= 0);
    X509_free(x);
}

/* Certificates issued so far with LINT_ID demoted (one per run under OLD_SET). */
static int demoted_issued;

/* One batch of three orders (tag makes the ids fresh: the store answers a known id with its
 * earlier result): control "<tag>-mailbox", control "<tag>-qc-good" and "<tag>-qc-bad", under
 * cfg with procs ("0": threads). old_set: cfg enforces OLD_SET, so the bad order must be issued
 * with LINT_ID as a warning; else it must be rejected by LINT_ID. */
static void run_case(const char *tag, const char *cfg, const char *procs, int old_set)
{
    char orders[900], results[900], id_mb[64], id_good[64], id_bad[64], want[96];
    snprintf(orders, sizeof orders, "%s/%s-orders.msgpack", g.it.dir, tag);
    snprintf(results, sizeof results, "%s/%s-results.msgpack", g.it.dir, tag);
    snprintf(id_mb, sizeof id_mb, "%s-mailbox", tag);
    snprintf(id_good, sizeof id_good, "%s-qc-good", tag);
    snprintf(id_bad, sizeof id_bad, "%s-qc-bad", tag);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_order(&sb, id_mb, "mailbox-strict", NULL);
    pack_order(&sb, id_good, QC_PROFILE, GOOD_SERIAL);
    pack_order(&sb, id_bad, QC_PROFILE, BAD_SERIAL);
    assert_int_equal(mc_it_write_file(orders, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);

    mc_it_run r;
    /* with --procs, --workers counts the threads of each process */
    int threads = strcmp(procs, "0") == 0;
    mc_it_mailca(&r, "batch", "--config", cfg, "--workers", threads ? "2" : "1", "--procs", procs,
                 orders, results, NULL);
    if (r.status != 0)
        fail_msg("%s: mailca batch exited with %d%s\nstderr: %s", tag, r.status,
                 r.timed_out ? " (timed out)" : "", r.err);
    snprintf(want, sizeof want, "3 orders: %d issued, %d rejected, 0 failed", old_set ? 3 : 2,
             old_set ? 0 : 1);
    if (!strstr(r.err, want))
        fail_msg("%s: summary lacks \"%s\": %s", tag, want, r.err);
    /* the mode asked for is the mode that ran */
    if ((strstr(r.err, " in 2 processes") == NULL) != threads)
        fail_msg("%s: --procs %s but the summary says otherwise: %s", tag, procs, r.err);
    /* the start notice names the lint exactly when it is not enforced (on its line: lints
     * added later may join the list) */
    char notice[160];
    snprintf(notice, sizeof notice, "lint.enforced_set %s: ", OLD_SET);
    const char *at = strstr(r.err, notice);
    const char *eol = at ? strchr(at, '\n') : NULL;
    if (old_set && (!at || !eol || !strstr(at, LINT_ID) || strstr(at, LINT_ID) > eol))
        fail_msg("%s: stderr lacks \"%s ... %s\": %s", tag, notice, LINT_ID, r.err);
    /* said once per run, by the engine, not again by each worker process */
    if (at && strstr(at + 1, notice))
        fail_msg("%s: the notice is repeated: %s", tag, r.err);
    if (!old_set && strstr(r.err, "warn instead of blocking"))
        fail_msg("%s: a notice under the default set: %s", tag, r.err);
    mc_it_run_free(&r);

    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, 3);
    size_t issued = 0, rejected = 0;
    for (size_t i = 0; i < res.n; i++) {
        issued += res.r[i].status == MC_STATUS_ISSUED;
        rejected += res.r[i].status == MC_STATUS_REJECTED;
    }
    assert_int_equal(issued, old_set ? 3 : 2);
    assert_int_equal(rejected, old_set ? 0 : 1);

    const mc_result *mb = find(&res, id_mb), *good = find(&res, id_good), *bad = find(&res, id_bad);
    assert_issued(mb);
    assert_issued(good);
    assert_false(list_has(mb->warnings, LINT_ID));
    assert_false(list_has(good->warnings, LINT_ID));
    long long certs = -1;
    char *w, enforced[64];
    /* the set each certificate's issuance enforced is recorded with it */
    const char *want_set = old_set ? OLD_SET : MC_LINT_SET_VERSION;
    if (old_set) {
        assert_issued(bad);
        if (!list_has(bad->warnings, LINT_ID))
            fail_msg("%s: warnings \"%s\" lack %s", tag, bad->warnings ? bad->warnings : "(none)",
                     LINT_ID);
        assert_bad_serial_issued(bad);
        w = store_warnings(id_bad, &certs, enforced);
        if (!w || !list_has(w, LINT_ID))
            fail_msg("%s: intents.lint_warnings \"%s\" lacks %s", tag, w ? w : "(no intent)",
                     LINT_ID);
        assert_int_equal(certs, 1);
        assert_string_equal(enforced, want_set);
        /* an incident query finds every certificate issued with the lint demoted, and only
         * those: one per run under the old set so far */
        demoted_issued++;
        char want_sel[96];
        snprintf(want_sel, sizeof want_sel, "dry run, nothing written: %d selected, %d would be",
                 demoted_issued, demoted_issued);
        mc_it_run rv;
        mc_it_mailca(&rv, "revoke", "--config", cfg, "--lint-warning", LINT_ID, "--reason",
                     "superseded", "--dry-run", NULL);
        if (rv.status != 0 || !strstr(rv.out, want_sel))
            fail_msg("%s: revoke --lint-warning: exit %d, want \"%s\": %s %s", tag, rv.status,
                     want_sel, rv.out, rv.err);
        mc_it_run_free(&rv);
    } else {
        if (bad->status != MC_STATUS_REJECTED)
            fail_msg("%s: %s %s, want rejected by %s", tag, id_bad, mc_status_name(bad->status),
                     LINT_ID);
        assert_int_equal(bad->error.code, MC_ERR_LINT);
        assert_string_equal(bad->error.rule, LINT_ID);
        assert_non_null(strstr(bad->error.message, BAD_SERIAL));
        w = store_warnings(id_bad, &certs, enforced);
        assert_null(w);
        assert_int_equal(certs, 0);
    }
    free(w);
    w = store_warnings(id_good, &certs, enforced);
    assert_non_null(w);
    assert_false(list_has(w, LINT_ID));
    assert_int_equal(certs, 1);
    assert_string_equal(enforced, want_set);
    free(w);
    mc_it_results_free(&res);
}

/* The cases below mean what they say: the lint is an error lint added after OLD_SET and
 * enforced by the set `mailca init` writes. */
static void test_sets_fit(void **state)
{
    (void)state;
    size_t n = 0;
    const mc_lint_def *d = mc_lint_defs(&n), *lint = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].id, LINT_ID) == 0)
            lint = &d[i];
    assert_non_null(lint);
    assert_int_equal(lint->severity, MC_LINT_ERROR);
    assert_non_null(lint->since);
    assert_true(mc_lint_set_cmp(OLD_SET, lint->since) < 0);
    assert_true(mc_lint_set_cmp(MC_LINT_SET_VERSION, lint->since) >= 0);
    char want[128];
    snprintf(want, sizeof want, "\n  enforced_set: \"%s\"\n", MC_LINT_SET_VERSION);
    char *text = (char *)mc_it_read_file(g.cfg_default, &n);
    assert_non_null(text);
    if (!strstr(text, want))
        fail_msg("%s lacks %s", g.cfg_default, want);
    free(text);
}

static void test_threads_default_set_rejects(void **state)
{
    (void)state;
    run_case("threads-default", g.cfg_default, "0", 0);
}

static void test_threads_old_set_warns(void **state)
{
    (void)state;
    run_case("threads-old", g.cfg_old, "0", 1);
}

static void test_procs_default_set_rejects(void **state)
{
    (void)state;
    run_case("procs-default", g.cfg_default, "2", 0);
}

static void test_procs_old_set_warns(void **state)
{
    (void)state;
    run_case("procs-old", g.cfg_old, "2", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sets_fit),
        cmocka_unit_test(test_threads_default_set_rejects),
        cmocka_unit_test(test_threads_old_set_warns),
        cmocka_unit_test(test_procs_default_set_rejects),
        cmocka_unit_test(test_procs_old_set_warns),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
