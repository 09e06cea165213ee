/*
 * Integration test of the Legal Entity Identifier (SBR 7.1.2.3 (l)) through the real command
 * line: `mailca init`, orders with a GLEIF-verified `lei` (docs/orders.md "Legal Entity
 * Identifier") written here, `mailca batch` with the shipped profiles. The organization and
 * sponsor certificates must carry the non-critical LEI extension (and the role for the sponsor)
 * as PrintableStrings and verify as S/MIME signing certificates with OpenSSL; orders the SBR
 * forbids (an LEI not FULLY_CORROBORATED, a role in an organization certificate, an LEI in a
 * mailbox certificate) must be rejected naming the field and the rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support/csrgen.h"
#include "support/itutil.h"

#define LEI "5493001KJTIIGC8Y1R12"
#define ROLE "Chief Financial Officer"

/* One order of the batch and what must come of it. */
typedef struct lcase {
    const char *id, *profile;
    const char *const *subject; /* key, value pairs, NULL-terminated */
    const char *vsources;       /* validation_sources of the lei; NULL: no lei */
    const char *role;           /* lei_role value, or NULL */
    const char *want_field;     /* NULL: issued; else rejected with this field */
    /* identity validations: 0 those the profile's type needs, an hour old; 1 none; 2 the
     * individual's 826 days old (one day past SBR 4.2.1's 825) */
    int identity;
    const char *want_rule; /* with want_field; NULL: SBR 7.1.2.3(l) */
} lcase;

static const char *const SUBJ_ORG[] = {"organization_name", "Example Ltd",
                                       "organization_identifier", "LEIXG-" LEI, NULL};
static const char *const SUBJ_SPONSOR[] = {"organization_name",
                                           "Example Ltd",
                                           "organization_identifier",
                                           "LEIXG-" LEI,
                                           "given_name",
                                           "Alice",
                                           NULL};

static const lcase CASES[] = {
    {"lei-org", "organization-strict", SUBJ_ORG, "FULLY_CORROBORATED", NULL, NULL, 0, NULL},
    {"lei-sponsor-role", "sponsor-strict", SUBJ_SPONSOR, "FULLY_CORROBORATED", ROLE, NULL, 0, NULL},
    {"lei-org-none", "organization-multipurpose", SUBJ_ORG, NULL, NULL, NULL, 0, NULL},
    {"lei-pending", "organization-strict", SUBJ_ORG, "PENDING", NULL, "lei.validation_sources", 0,
     NULL},
    {"lei-org-role", "organization-strict", SUBJ_ORG, "FULLY_CORROBORATED", ROLE, "lei_role", 0,
     NULL},
    {"lei-mailbox", "mailbox-strict", NULL, "FULLY_CORROBORATED", NULL, "lei", 0, NULL},
    /* SBR 3.2.3 / 4.2.1: the identity validations reach issuance */
    {"id-org-missing", "organization-multipurpose", SUBJ_ORG, NULL, NULL, "identity.organization",
     1, "SBR 3.2.3"},
    {"id-sponsor-old", "sponsor-strict", SUBJ_SPONSOR, NULL, NULL,
     "identity.individual.validated_at", 2, "SBR 4.2.1"},
};
#define NCASES (sizeof CASES / sizeof CASES[0])

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t l = strlen(s);
    return msgpack_pack_str(pk, l) || msgpack_pack_str_body(pk, s, l);
}

/* The csrgen order, then "subject", "lei" and "lei_role" as the case says. */
static int pack_order(const lcase *c, const mc_it_ca *ca, msgpack_sbuffer *sb)
{
    int64_t now = (int64_t)time(NULL);
    mc_csrgen_mailbox mb = {"alice@example.com", "3.2.2.2", now - 3600, "rv-lei"};
    mc_csrgen_order o = {.id = c->id,
                         .account = "acct-lei",
                         .profile = c->profile,
                         .usage = "signing",
                         .mailboxes = &mb,
                         .n_mailboxes = 1,
                         .csr = ca->csr,
                         .csr_len = ca->csr_len};
    if (c->identity != 1)
        mc_csrgen_order_identity(&o, now - 3600);
    if (c->identity == 2)
        o.individual_validated_at = now - 826 * 86400;
    msgpack_sbuffer tmp;
    msgpack_unpacked u;
    msgpack_sbuffer_init(&tmp);
    msgpack_unpacked_init(&u);
    int bad = mc_csrgen_order_pack(&o, &tmp) != 0 ||
              msgpack_unpack_next(&u, tmp.data, tmp.size, NULL) != MSGPACK_UNPACK_SUCCESS ||
              u.data.type != MSGPACK_OBJECT_MAP;
    if (!bad) {
        size_t ns = 0;
        while (c->subject && c->subject[2 * ns])
            ns++;
        msgpack_packer pk;
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        const msgpack_object_map *m = &u.data.via.map;
        bad |=
            msgpack_pack_map(&pk, m->size + (ns > 0) + (c->vsources != NULL) + (c->role != NULL));
        for (uint32_t i = 0; i < m->size; i++)
            bad |=
                msgpack_pack_object(&pk, m->ptr[i].key) || msgpack_pack_object(&pk, m->ptr[i].val);
        if (ns) {
            bad |= pack_str(&pk, "subject") || msgpack_pack_map(&pk, ns);
            for (size_t i = 0; i < 2 * ns; i++)
                bad |= pack_str(&pk, c->subject[i]);
        }
        if (c->vsources)
            bad |= pack_str(&pk, "lei") || msgpack_pack_map(&pk, 6) || pack_str(&pk, "value") ||
                   pack_str(&pk, LEI) || pack_str(&pk, "registration_status") ||
                   pack_str(&pk, "ISSUED") || pack_str(&pk, "entity_status") ||
                   pack_str(&pk, "ACTIVE") || pack_str(&pk, "validation_sources") ||
                   pack_str(&pk, c->vsources) || pack_str(&pk, "verified_at") ||
                   msgpack_pack_int64(&pk, now - 600) || pack_str(&pk, "reference") ||
                   pack_str(&pk, "gleif-it-1");
        if (c->role)
            bad |= pack_str(&pk, "lei_role") || msgpack_pack_map(&pk, 3) ||
                   pack_str(&pk, "value") || pack_str(&pk, c->role) ||
                   pack_str(&pk, "verified_at") || msgpack_pack_int64(&pk, now - 600) ||
                   pack_str(&pk, "reference") || pack_str(&pk, "role-it-1");
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&tmp);
    return bad ? -1 : 0;
}

/* Extension oid of x: 1 critical, 0 not, -1 absent; *val / *len the extnValue contents. */
static int ext_of(X509 *x, const char *oid, const unsigned char **val, int *len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    assert_non_null(o);
    int i = X509_get_ext_by_OBJ(x, o, -1);
    ASN1_OBJECT_free(o);
    if (i < 0)
        return -1;
    X509_EXTENSION *e = X509_get_ext(x, i);
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
    *val = ASN1_STRING_get0_data(v);
    *len = ASN1_STRING_length(v);
    return X509_EXTENSION_get_critical(e);
}

/* The extension holds exactly a PrintableString of want. */
static void expect_printable(X509 *x, const char *oid, const char *want)
{
    const unsigned char *v = NULL;
    int len = 0;
    assert_int_equal(ext_of(x, oid, &v, &len), 0); /* present, non-critical */
    size_t n = strlen(want);
    assert_int_equal(len, (int)n + 2);
    assert_int_equal(v[0], 0x13);
    assert_int_equal(v[1], (int)n);
    assert_memory_equal(v + 2, want, n);
}

static void test_lei_batch(void **state)
{
    (void)state;
    mc_it_ca ca;
    assert_int_equal(mc_it_ca_setup("lei", &ca), 0);
    char orders[800], results[800], cfg[800];
    snprintf(orders, sizeof orders, "%s/orders.msgpack", ca.dir);
    snprintf(results, sizeof results, "%s/results.msgpack", ca.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", ca.ca);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t i = 0; i < NCASES; i++)
        assert_int_equal(pack_order(&CASES[i], &ca, &sb), 0);
    assert_int_equal(mc_it_write_file(orders, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);

    mc_it_run r;
    mc_it_mailca(&r, "batch", "--config", cfg, orders, results, NULL);
    if (r.status != 0)
        fail_msg("mailca batch: exit %d: %s", r.status, r.err);
    /* this CA runs without CAA: the run says the SBR require it */
    if (!strstr(r.err, "CAA checking is off (caa.enabled: false): SBR 4.2.2.1 requires"))
        fail_msg("no CAA-off notice: %s", r.err);
    mc_it_run_free(&r);
    mc_it_results res = {0};
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, NCASES);
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *rr = &res.r[i];
        assert_true(rr->seq < NCASES);
        const lcase *c = &CASES[rr->seq];
        assert_string_equal(rr->order_id, c->id);
        if (c->want_field) {
            if (rr->status != MC_STATUS_REJECTED)
                fail_msg("%s: %s, want rejected", c->id, mc_status_name(rr->status));
            assert_string_equal(rr->error.field, c->want_field);
            assert_string_equal(rr->error.rule, c->want_rule ? c->want_rule : "SBR 7.1.2.3(l)");
            continue;
        }
        if (rr->status != MC_STATUS_ISSUED)
            fail_msg("%s: %s: %s [%s] %s", c->id, mc_status_name(rr->status), rr->error.field,
                     rr->error.rule, rr->error.message);
        const char *why = "";
        if (mc_it_verify(ca.root, ca.ica, rr->cert, rr->cert_len, X509_PURPOSE_SMIME_SIGN, &why) !=
            1)
            fail_msg("%s does not verify: %s", c->id, why);
        const unsigned char *p = rr->cert;
        X509 *x = d2i_X509(NULL, &p, (long)rr->cert_len);
        assert_non_null(x);
        const unsigned char *v;
        int len;
        if (c->vsources)
            expect_printable(x, "1.3.6.1.4.1.52266.1", LEI);
        else
            assert_int_equal(ext_of(x, "1.3.6.1.4.1.52266.1", &v, &len), -1);
        if (c->role)
            expect_printable(x, "1.3.6.1.4.1.52266.2", c->role);
        else
            assert_int_equal(ext_of(x, "1.3.6.1.4.1.52266.2", &v, &len), -1);
        X509_free(x);
    }
    mc_it_results_free(&res);
    /* provenance: the GLEIF record the CA verified, and the role's evidence, are recorded with
     * the certificate */
    char db[800];
    snprintf(db, sizeof db, "%s/mailca.db", ca.ca);
    sqlite3 *sdb = mc_it_db_open(db);
    assert_non_null(sdb);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(sdb,
                                        "SELECT order_id, evidence FROM intents WHERE order_id"
                                        " IN ('lei-org', 'lei-sponsor-role', 'lei-org-none')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *ev = (const char *)sqlite3_column_text(st, 1);
        rows++;
        /* this CA runs without CAA (caa.enabled false): each record says so */
        assert_non_null(strstr(ev, "\"caa_checked\":false"));
        if (strcmp(id, "lei-org-none") == 0) {
            assert_null(strstr(ev, "\"lei\""));
            continue;
        }
        assert_non_null(strstr(ev, "\"lei\":{\"value\":\"" LEI "\""));
        /* SBR 3.2.3, 4.2.1: the identity validation relied on */
        assert_non_null(strstr(ev, "\"identity\":{\"organization\":{\"validated_at\":"));
        assert_non_null(strstr(ev, "\"validation_sources\":\"FULLY_CORROBORATED\""));
        if (strcmp(id, "lei-sponsor-role") == 0) {
            assert_non_null(strstr(ev, "\"lei_role\":{\"value\":\"" ROLE "\""));
            assert_non_null(strstr(ev, "},\"individual\":{\"validated_at\":"));
        } else {
            assert_null(strstr(ev, "\"individual\""));
            assert_null(strstr(ev, "\"lei_role\""));
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(sdb);
    assert_int_equal(rows, 3);
    assert_int_equal(mc_it_ca_free(&ca), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lei_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
