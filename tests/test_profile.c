/*
 * Unit tests for profile loading and compilation (engine/profile.c): the shipped profiles, every
 * load error with its file:line and rule, the compiled constant extensions, and
 * mc_profile_check_order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailca/der.h"
#include "mailca/profile.h"
#include "mailca/tbs.h"
#include "support/testca.h"

typedef struct fixture {
    mc_testca ca;
    mc_issuer iss;
    mc_ca_urls urls;
    char dir[512];
} fixture;

static const mc_ca_urls default_urls = {
    .crl = "http://crl.example.com/ca.crl",
    .ocsp = "http://ocsp.example.com",
    .ca_issuers = "http://ca.example.com/ca.cer",
    .cps = "https://example.com/cps",
};

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || mc_testca_create(&f->ca, MC_TESTCA_P256, 0) != 0)
        return -1;
    mc_errdetail err;
    if (mc_issuer_from_der(f->ca.der, f->ca.der_len, MC_SIG_NONE, &f->iss, &err) != MC_OK)
        return -1;
    f->urls = default_urls;
    const char *tmp = getenv("MAILCA_TEST_TMP");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    if (system(cmd) != 0)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/profileXXXXXX", tmp);
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    mc_issuer_free(&f->iss);
    mc_testca_free(&f->ca);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Loads text as <dir>/<name> with the fixture's issuer and urls. */
static mc_err load_text(fixture *f, const char *name, const char *text, mc_profile **p,
                        mc_errdetail *err)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    write_file(path, text);
    mc_err_clear(err);
    return mc_profile_load(path, &f->iss, &f->urls, p, err);
}

static void expect_error(fixture *f, const char *text, mc_err code, const char *field,
                         const char *rule)
{
    mc_profile *p = NULL;
    mc_errdetail err;
    mc_err rc = load_text(f, "bad.yaml", text, &p, &err);
    if (rc != code || strcmp(err.field, field) != 0 || strcmp(err.rule, rule) != 0)
        print_error("got %d field '%s' rule '%s' (%s)\n", rc, err.field, err.rule, err.message);
    assert_int_equal(rc, code);
    assert_string_equal(err.field, field);
    assert_string_equal(err.rule, rule);
    assert_null(p);
}

static void expect_ok(fixture *f, const char *text, mc_profile **p)
{
    mc_errdetail err;
    mc_err rc = load_text(f, "good.yaml", text, p, &err);
    if (rc != MC_OK)
        print_error("%s: %s [%s]\n", err.field, err.message, err.rule);
    assert_int_equal(rc, MC_OK);
}

/* A valid base profile; the numbers are the line numbers the error tests rely on. */
#define L1 "name: t\n"
#define L2 "type: mailbox\n"
#define L3 "generation: strict\n"
#define L4 "validity_days: 730\n"
#define L5 "key_types: [rsa, p256]\n"
#define L6 "usages: [signing, dual]\n"
#define L7 "subject:\n"
#define L8 "  common_name: mailbox\n"
#define L9 "  email_address: none\n"
#define L10 "extended_key_usages: [emailProtection]\n"
#define BASE L1 L2 L3 L4 L5 L6 L7 L8 L9 L10

/* Walks the extensions in a DER run of Extension TLVs; returns how many, filling oids. */
static size_t ext_oids(const uint8_t *p, size_t len, mc_der_tlv *oids, mc_der_tlv *vals, size_t max)
{
    mc_der_cur c = mc_der_cur_make(p, len);
    size_t n = 0;
    while (!mc_der_cur_empty(&c)) {
        mc_der_tlv ext, oid, v;
        assert_int_equal(mc_der_expect(&c, MC_DER_SEQUENCE, &ext), MC_OK);
        mc_der_cur e = mc_der_cur_in(&ext);
        assert_int_equal(mc_der_expect(&e, MC_DER_OID, &oid), MC_OK);
        assert_int_equal(mc_der_peek(&e), MC_DER_OCTETSTRING); /* never critical */
        assert_int_equal(mc_der_expect(&e, MC_DER_OCTETSTRING, &v), MC_OK);
        assert_true(mc_der_cur_empty(&e));
        assert_true(n < max);
        oids[n] = oid;
        vals[n++] = v;
    }
    return n;
}

static const char *oid_str(const mc_der_tlv *t, char *buf, size_t n)
{
    return mc_der_oid_str(t->val, t->len, buf, n);
}

/* First policyIdentifier in a certificatePolicies value, dotted. */
static const char *first_policy(const mc_der_tlv *v, char *buf, size_t n, size_t *count)
{
    mc_der_cur c = mc_der_cur_make(v->val, v->len);
    mc_der_tlv seq, pi, oid;
    assert_int_equal(mc_der_expect(&c, MC_DER_SEQUENCE, &seq), MC_OK);
    mc_der_cur s = mc_der_cur_in(&seq);
    *count = 0;
    buf[0] = '\0';
    while (!mc_der_cur_empty(&s)) {
        assert_int_equal(mc_der_expect(&s, MC_DER_SEQUENCE, &pi), MC_OK);
        mc_der_cur pc = mc_der_cur_in(&pi);
        assert_int_equal(mc_der_expect(&pc, MC_DER_OID, &oid), MC_OK);
        if ((*count)++ == 0)
            oid_str(&oid, buf, n);
    }
    return buf;
}

static void check_shipped(fixture *f, const char *file, const char *name, mc_certtype type,
                          mc_generation gen, const char *policy, size_t n_eku)
{
    char path[700];
    snprintf(path, sizeof path, "%s/profiles/%s", MAILCA_SOURCE_DIR, file);
    mc_profile *p = NULL;
    mc_errdetail err;
    mc_err rc = mc_profile_load(path, &f->iss, &f->urls, &p, &err);
    if (rc)
        print_error("%s: %s [%s]\n", err.field, err.message, err.rule);
    assert_int_equal(rc, MC_OK);
    assert_string_equal(p->name, name);
    assert_int_equal(p->type, type);
    assert_int_equal(p->generation, gen);
    assert_int_equal(p->lint_only, 0);
    assert_int_equal(p->validity, 730 * 86400 - 1);
    assert_true(p->backdate >= 0 && p->backdate <= 3600);
    assert_true(p->keytypes & (1u << MC_KEY_P256));
    assert_true(p->keytypes & (1u << MC_KEY_ED25519));
    assert_true(p->keytypes & (1u << MC_KEY_ED448));
    assert_true(p->usages & (1u << MC_USAGE_DUAL));
    assert_ptr_equal(p->issuer, &f->iss);

    /* hash = SHA-256 of the file bytes */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static uint8_t buf[65536];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    uint8_t h[32];
    assert_true(EVP_Q_digest(NULL, "SHA256", NULL, buf, n, h, NULL));
    assert_memory_equal(h, p->hash, 32);

    /* ext_const: policies, CRL DP, AIA, AKI, in that order, all non-critical */
    mc_der_tlv oids[8], vals[8];
    char s[64];
    size_t ne = ext_oids(p->ext_const, p->ext_const_len, oids, vals, 8);
    assert_int_equal(ne, 4);
    assert_string_equal(oid_str(&oids[0], s, sizeof s), "2.5.29.32");
    assert_string_equal(oid_str(&oids[1], s, sizeof s), "2.5.29.31");
    assert_string_equal(oid_str(&oids[2], s, sizeof s), "1.3.6.1.5.5.7.1.1");
    assert_string_equal(oid_str(&oids[3], s, sizeof s), "2.5.29.35");
    size_t npol;
    assert_string_equal(first_policy(&vals[0], s, sizeof s, &npol), policy);
    assert_int_equal(npol, 1);
    /* AKI = SEQUENCE { [0] issuer SKI } and nothing else (SBR 7.1.2.3(g)) */
    mc_der_cur c = mc_der_cur_make(vals[3].val, vals[3].len);
    mc_der_tlv seq, kid;
    assert_int_equal(mc_der_expect(&c, MC_DER_SEQUENCE, &seq), MC_OK);
    mc_der_cur sc = mc_der_cur_in(&seq);
    assert_int_equal(mc_der_expect(&sc, MC_DER_CTX(0), &kid), MC_OK);
    assert_true(mc_der_cur_empty(&sc));
    assert_int_equal(kid.len, f->iss.ski_len);
    assert_memory_equal(kid.val, f->iss.ski, kid.len);

    /* ext_eku: one non-critical extKeyUsage */
    ne = ext_oids(p->ext_eku, p->ext_eku_len, oids, vals, 8);
    assert_int_equal(ne, 1);
    assert_string_equal(oid_str(&oids[0], s, sizeof s), "2.5.29.37");
    c = mc_der_cur_make(vals[0].val, vals[0].len);
    assert_int_equal(mc_der_expect(&c, MC_DER_SEQUENCE, &seq), MC_OK);
    sc = mc_der_cur_in(&seq);
    size_t k = 0;
    mc_der_tlv o;
    while (!mc_der_cur_empty(&sc)) {
        assert_int_equal(mc_der_expect(&sc, MC_DER_OID, &o), MC_OK);
        if (k++ == 0)
            assert_string_equal(oid_str(&o, s, sizeof s), "1.3.6.1.5.5.7.3.4");
    }
    assert_int_equal(k, n_eku);
    mc_profile_free(p);
}

static void test_shipped_profiles(void **state)
{
    fixture *f = *state;
    static const char *const types[] = {"", "mailbox", "organization", "sponsor", "individual"};
    for (int t = MC_TYPE_MAILBOX; t <= MC_TYPE_INDIVIDUAL; t++)
        for (int g = MC_GEN_MULTIPURPOSE; g <= MC_GEN_STRICT; g++) {
            char file[80], name[64], policy[32];
            snprintf(name, sizeof name, "%s-%s", types[t],
                     g == MC_GEN_STRICT ? "strict" : "multipurpose");
            snprintf(file, sizeof file, "%s.yaml", name);
            snprintf(policy, sizeof policy, "2.23.140.1.5.%d.%d", t, g);
            check_shipped(f, file, name, (mc_certtype)t, (mc_generation)g, policy,
                          g == MC_GEN_STRICT ? 1 : 2);
        }
}

static void test_profile_set(void **state)
{
    fixture *f = *state;
    mc_profile_set set;
    mc_errdetail err;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/profiles", MAILCA_SOURCE_DIR);
    assert_int_equal(mc_profile_set_load(dir, &f->iss, &f->urls, &set, &err), MC_OK);
    assert_int_equal(set.n, 8);
    const mc_profile *p = mc_profile_set_find(&set, "mailbox-strict", 14);
    assert_non_null(p);
    assert_int_equal(p->generation, MC_GEN_STRICT);
    assert_non_null(mc_profile_set_find(&set, "mailbox-multipurpose", 20));
    assert_null(mc_profile_set_find(&set, "mailbox-stric", 13));
    assert_null(mc_profile_set_find(&set, "nope", 4));
    mc_profile_set_free(&set);

    /* two files with one name */
    char sub[700], path[800];
    snprintf(sub, sizeof sub, "%s/set", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/a.yaml", sub);
    write_file(path, BASE);
    snprintf(path, sizeof path, "%s/b.yaml", sub);
    write_file(path, BASE);
    assert_int_equal(mc_profile_set_load(sub, &f->iss, &f->urls, &set, &err), MC_ERR_PROFILE);
    assert_string_equal(err.field, "b.yaml");
    assert_int_equal(set.n, 0);
}

static void test_base_ok(void **state)
{
    fixture *f = *state;
    mc_profile *p;
    expect_ok(f, BASE, &p);
    assert_int_equal(p->cn_mailbox, 1);
    assert_int_equal(p->email_attr, 0);
    assert_int_equal(p->backdate, 0);
    assert_int_equal(p->keytypes, (1u << MC_KEY_RSA) | (1u << MC_KEY_P256));
    assert_int_equal(p->usages, (1u << MC_USAGE_SIGNING) | (1u << MC_USAGE_DUAL));
    mc_profile_free(p);
}

static void test_unknown_key(void **state)
{
    fixture *f = *state;
    expect_error(f, L1 L2 L3 L4 L5 L6 "colour: blue\n" L7 L8 L9 L10, MC_ERR_PROFILE, "bad.yaml:7",
                 "");
    /* inside subject */
    expect_error(f, L1 L2 L3 L4 L5 L6 L7 L8 "  surname: mailbox\n" L9 L10, MC_ERR_PROFILE,
                 "bad.yaml:9", "");
    /* duplicate and missing keys */
    expect_error(f, BASE "validity_days: 700\n", MC_ERR_PROFILE, "bad.yaml:11", "");
    expect_error(f, L1 L2 L3 L5 L6 L7 L8 L9 L10, MC_ERR_PROFILE, "bad.yaml:1", "");
}

static void test_validity(void **state)
{
    fixture *f = *state;
    /* SBR 6.3.2: 825 days is the maximum (pass), 826 fails */
    expect_error(f, L1 L2 L3 "validity_days: 826\n" L5 L6 L7 L8 L9 L10, MC_ERR_PROFILE,
                 "bad.yaml:4", "SBR 6.3.2");
    mc_profile *p;
    expect_ok(f, L1 L2 L3 "validity_days: 825\n" L5 L6 L7 L8 L9 L10, &p);
    assert_int_equal(p->validity, 825LL * 86400 - 1);
    mc_profile_free(p);
    expect_error(f, L1 L2 L3 "validity_days: 0\n" L5 L6 L7 L8 L9 L10, MC_ERR_PROFILE, "bad.yaml:4",
                 "SBR 6.3.2");
    expect_error(f, L1 L2 L3 "validity_days: 30d\n" L5 L6 L7 L8 L9 L10, MC_ERR_PROFILE,
                 "bad.yaml:4", "");
    /* legacy allows 1185 but loads lint-only */
    expect_ok(f,
              L1 L2 "generation: legacy\n"
                    "validity_days: 1185\n" L5 L6 L7 L8 L9 L10,
              &p);
    assert_int_equal(p->lint_only, 1);
    mc_profile_free(p);
    expect_error(f,
                 L1 L2 "generation: legacy\n"
                       "validity_days: 1186\n" L5 L6 L7 L8 L9 L10,
                 MC_ERR_PROFILE, "bad.yaml:4", "SBR 6.3.2");
    /* backdate: small only */
    expect_ok(f, BASE "backdate: 3600\n", &p);
    assert_int_equal(p->backdate, 3600);
    mc_profile_free(p);
    expect_error(f, BASE "backdate: 3601\n", MC_ERR_PROFILE, "bad.yaml:11", "");
}

static void test_eku(void **state)
{
    fixture *f = *state;
    mc_profile *p;
    /* SBR 7.1.2.3(f): strict is emailProtection only */
    expect_error(f,
                 L1 L2 L3 L4 L5 L6 L7 L8 L9 "extended_key_usages:\n  - emailProtection\n"
                                            "  - clientAuth\n",
                 MC_ERR_PROFILE, "bad.yaml:12", "SBR 7.1.2.3(f)");
    /* multipurpose may add clientAuth; the variant for keys that can neither sign nor agree
     * leaves it out (RFC 5280 4.2.1.12) and is otherwise the same */
    static const uint8_t client_auth[] = {0x06, 0x08, 0x2b, 0x06, 0x01,
                                          0x05, 0x05, 0x07, 0x03, 0x02};
    expect_ok(f,
              L1 L2 "generation: multipurpose\n" L4 L5 L6 L7 L8 L9
                    "extended_key_usages: [emailProtection, clientAuth]\n",
              &p);
    assert_non_null(memmem(p->ext_eku, p->ext_eku_len, client_auth, sizeof client_auth));
    assert_null(memmem(p->ext_eku_nosign, p->ext_eku_nosign_len, client_auth, sizeof client_auth));
    assert_int_equal(p->ext_eku_len, p->ext_eku_nosign_len + sizeof client_auth);
    mc_profile_free(p);
    expect_ok(f, BASE, &p);
    assert_int_equal(p->ext_eku_len, p->ext_eku_nosign_len);
    assert_memory_equal(p->ext_eku, p->ext_eku_nosign, p->ext_eku_len);
    mc_profile_free(p);
    /* never serverAuth / codeSigning / timeStamping / anyExtendedKeyUsage */
    const char *refused[] = {"serverAuth", "codeSigning", "timeStamping", "anyExtendedKeyUsage"};
    for (size_t i = 0; i < 4; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 L1 L2 "generation: multipurpose\n" L4 L5 L6 L7 L8 L9
                       "extended_key_usages: [emailProtection, %s]\n",
                 refused[i]);
        expect_error(f, text, MC_ERR_PROFILE, "bad.yaml:10", "SBR 7.1.2.3(f)");
    }
    /* emailProtection is required */
    expect_error(f,
                 L1 L2 "generation: multipurpose\n" L4 L5 L6 L7 L8 L9
                       "extended_key_usages: [clientAuth]\n",
                 MC_ERR_PROFILE, "bad.yaml:10", "SBR 7.1.2.3(f)");
    expect_error(f, L1 L2 L3 L4 L5 L6 L7 L8 L9 "extended_key_usages: [documentSigning]\n",
                 MC_ERR_PROFILE, "bad.yaml:10", "SBR 7.1.2.4");
}

static void test_key_types_usages(void **state)
{
    fixture *f = *state;
    expect_error(f, L1 L2 L3 L4 "key_types: [rsa, dsa]\n" L6 L7 L8 L9 L10, MC_ERR_PROFILE,
                 "bad.yaml:5", "SBR 6.1.5");
    expect_error(f, L1 L2 L3 L4 "key_types: []\n" L6 L7 L8 L9 L10, MC_ERR_PROFILE, "bad.yaml:5",
                 "");
    expect_error(f, L1 L2 L3 L4 L5 "usages: [signing, encryption]\n" L7 L8 L9 L10, MC_ERR_PROFILE,
                 "bad.yaml:6", "SBR 7.1.2.3(e)");
    /* SBR 7.1.2.3(e): an Ed25519 key can only sign */
    expect_error(f,
                 L1 L2 L3 L4 "key_types: [p256, ed25519]\n"
                             "usages: [key-management]\n" L7 L8 L9 L10,
                 MC_ERR_PROFILE, "bad.yaml:6", "SBR 7.1.2.3(e)");
    mc_profile *p;
    expect_ok(f,
              L1 L2 L3 L4 "key_types: [p256, ed25519]\n"
                          "usages: [signing]\n" L7 L8 L9 L10,
              &p);
    mc_profile_free(p);

    /* SBR 6.1.5, 7.1.3.1.3: curve448 keys as id-Ed448, signing only (7.1.2.3(e)) */
    expect_ok(f,
              L1 L2 L3 L4 "key_types: [ed448]\n"
                          "usages: [signing]\n" L7 L8 L9 L10,
              &p);
    assert_int_equal(p->keytypes, 1u << MC_KEY_ED448);
    mc_profile_free(p);
    expect_error(f,
                 L1 L2 L3 L4 "key_types: [ed448]\n"
                             "usages: [key-management, dual]\n" L7 L8 L9 L10,
                 MC_ERR_PROFILE, "bad.yaml:6", "SBR 7.1.2.3(e)");
    expect_error(f, L1 L2 L3 L4 "key_types: [ed448, p256, ed448]\n" L6 L7 L8 L9 L10, MC_ERR_PROFILE,
                 "bad.yaml:5", "");
    /* X448 is no certifiable key; the message lists what is */
    mc_errdetail err;
    p = NULL;
    assert_int_equal(
        load_text(f, "bad.yaml", L1 L2 L3 L4 "key_types: [x448]\n" L6 L7 L8 L9 L10, &p, &err),
        MC_ERR_PROFILE);
    assert_null(p);
    assert_string_equal(err.rule, "SBR 6.1.5");
    assert_non_null(strstr(err.message, "'x448' (rsa, p256, p384, p521, ed25519, ed448)"));
}

static void test_type_generation(void **state)
{
    fixture *f = *state;
    /* SBR 7.1.4.2.4: an organization profile must require organizationName */
    expect_error(f, L1 "type: organization\n" L3 L4 L5 L6 L7 L8 L9 L10, MC_ERR_PROFILE,
                 "bad.yaml:7", "SBR 7.1.4.2.4");
    /* SBR 7.1.2.3(l): the LEI extension is prohibited in mailbox certificates */
    expect_error(f, BASE "legal_entity_identifier: optional\n", MC_ERR_PROFILE, "bad.yaml:11",
                 "SBR 7.1.2.3(l)");
    expect_error(f, L1 "type: person\n" L3 L4 L5 L6 L7 L8 L9 L10, MC_ERR_PROFILE, "bad.yaml:2",
                 "SBR 1.2");
    expect_error(f, L1 L2 "generation: relaxed\n" L4 L5 L6 L7 L8 L9 L10, MC_ERR_PROFILE,
                 "bad.yaml:3", "SBR 1.2");
    expect_error(f, "name: Bad Name\n" L2 L3 L4 L5 L6 L7 L8 L9 L10, MC_ERR_PROFILE, "bad.yaml:1",
                 "");
}

static void test_bad_yaml(void **state)
{
    fixture *f = *state;
    /* unclosed flow sequence: libyaml reports it where it notices */
    mc_profile *p = NULL;
    mc_errdetail err;
    mc_err rc = load_text(f, "bad.yaml", L1 L2 L3 L4 "key_types: [rsa, p256\n", &p, &err);
    assert_int_equal(rc, MC_ERR_PROFILE);
    assert_null(p);
    assert_true(strncmp(err.field, "bad.yaml:", 9) == 0);
    assert_string_equal(err.rule, "");
    assert_non_null(strstr(err.message, "YAML syntax"));
    /* a tab-indented line */
    expect_error(f, L1 L2 L3 L4 L5 L6 L7 "\tcommon_name: mailbox\n", MC_ERR_PROFILE, "bad.yaml:8",
                 "");
    /* aliases */
    expect_error(f,
                 L1 L2 L3 L4 "key_types: &k [rsa]\n"
                             "usages: *k\n" L7 L8 L9 L10,
                 MC_ERR_PROFILE, "bad.yaml:6", "");
    /* a list where a value belongs, and two documents */
    expect_error(f, "name: [a, b]\n" L2, MC_ERR_PROFILE, "bad.yaml:1", "");
    expect_error(f, BASE "---\n" BASE, MC_ERR_PROFILE, "bad.yaml:11", "");
    expect_error(f, "- a\n- b\n", MC_ERR_PROFILE, "bad.yaml:1", "");
}

static void test_policies(void **state)
{
    fixture *f = *state;
    mc_profile *p;
    expect_ok(f, BASE "certificate_policies: [1.3.6.1.4.1.55555.1.2]\ninclude_cps: true\n", &p);
    mc_der_tlv oids[8], vals[8];
    assert_int_equal(ext_oids(p->ext_const, p->ext_const_len, oids, vals, 8), 4);
    char s[64];
    size_t n;
    assert_string_equal(first_policy(&vals[0], s, sizeof s, &n), "2.23.140.1.5.1.3");
    assert_int_equal(n, 2);
    /* the CPS URI is in the policies extension */
    assert_non_null(memmem(vals[0].val, vals[0].len, default_urls.cps, strlen(default_urls.cps)));
    mc_profile_free(p);

    /* SBR 7.1.2.3(a): the reserved OID is added automatically, exactly once */
    expect_error(f, BASE "certificate_policies: [2.23.140.1.5.1.3]\n", MC_ERR_PROFILE,
                 "bad.yaml:11", "SBR 7.1.2.3(a)");
    expect_error(f, BASE "certificate_policies: [2.5.29.32.0]\n", MC_ERR_PROFILE, "bad.yaml:11",
                 "SBR 7.1.6.4");
    expect_error(f, BASE "certificate_policies: [2.23.140.1.2.1]\n", MC_ERR_PROFILE, "bad.yaml:11",
                 "SBR 7.1.6.4");
    expect_error(f, BASE "certificate_policies: [not.an.oid]\n", MC_ERR_PROFILE, "bad.yaml:11", "");
    expect_error(f, BASE "include_cps: yes\n", MC_ERR_PROFILE, "bad.yaml:11", "");
    /* non_repudiation: a boolean, off unless set */
    expect_error(f, BASE "non_repudiation: yes\n", MC_ERR_PROFILE, "bad.yaml:11", "");
    expect_ok(f, BASE "non_repudiation: true\n", &p);
    assert_int_equal(p->non_repudiation, 1);
    mc_profile_free(p);
    expect_ok(f, BASE, &p);
    assert_int_equal(p->non_repudiation, 0);
    mc_profile_free(p);

    /* S/MIME capabilities add one more constant extension */
    expect_ok(f, BASE "smime_capabilities: [aes256-gcm, aes128-cbc]\n", &p);
    assert_int_equal(ext_oids(p->ext_const, p->ext_const_len, oids, vals, 8), 5);
    assert_string_equal(oid_str(&oids[4], s, sizeof s), "1.2.840.113549.1.9.15");
    mc_profile_free(p);
    expect_error(f, BASE "smime_capabilities: [des-cbc]\n", MC_ERR_PROFILE, "bad.yaml:11", "");
}

static void test_urls(void **state)
{
    fixture *f = *state;
    mc_profile *p;
    /* SBR 7.1.2.3(b): CRL URL required and http only */
    f->urls.crl = "https://crl.example.com/ca.crl";
    expect_error(f, BASE, MC_ERR_CONFIG, "ca.crl_url", "SBR 7.1.2.3(b)");
    f->urls.crl = "ldap://crl.example.com/cn=ca";
    expect_error(f, BASE, MC_ERR_CONFIG, "ca.crl_url", "SBR 7.1.2.3(b)");
    f->urls.crl = NULL;
    expect_error(f, BASE, MC_ERR_CONFIG, "ca.crl_url", "SBR 7.1.2.3(b)");
    f->urls.crl = "http://";
    expect_error(f, BASE, MC_ERR_CONFIG, "ca.crl_url", "SBR 7.1.2.3(b)");
    f->urls.crl = "http://crl.example.com/a b.crl";
    expect_error(f, BASE, MC_ERR_CONFIG, "ca.crl_url", "SBR 7.1.2.3(b)");
    f->urls.crl = "HTTP://crl.example.com/ca.crl";
    expect_ok(f, BASE, &p);
    mc_profile_free(p);
    f->urls = default_urls;
    /* SBR 7.1.2.3(c): AIA http only */
    f->urls.ocsp = "https://ocsp.example.com";
    expect_error(f, BASE, MC_ERR_CONFIG, "ca.ocsp_url", "SBR 7.1.2.3(c)");
    f->urls = default_urls;
    f->urls.ca_issuers = "ftp://ca.example.com/ca.cer";
    expect_error(f, BASE, MC_ERR_CONFIG, "ca.issuers_url", "SBR 7.1.2.3(c)");
    /* no AIA at all is allowed (SHOULD, not SHALL): three extensions */
    f->urls = default_urls;
    f->urls.ocsp = "";
    f->urls.ca_issuers = NULL;
    expect_ok(f, BASE, &p);
    mc_der_tlv oids[8], vals[8];
    assert_int_equal(ext_oids(p->ext_const, p->ext_const_len, oids, vals, 8), 3);
    mc_profile_free(p);
    /* SBR 7.1.2.3(a): CPS http or https, and present when asked for */
    f->urls = default_urls;
    f->urls.cps = "ftp://example.com/cps";
    expect_error(f, BASE "include_cps: true\n", MC_ERR_CONFIG, "ca.cps_url", "SBR 7.1.2.3(a)");
    expect_ok(f, BASE "include_cps: false\n", &p); /* not used, not checked */
    mc_profile_free(p);
    f->urls.cps = NULL;
    expect_error(f, BASE "include_cps: true\n", MC_ERR_CONFIG, "bad.yaml:11", "SBR 7.1.2.3(a)");
    f->urls = default_urls;
}

static void test_issuer_without_ski(void **state)
{
    fixture *f = *state;
    mc_issuer copy = f->iss;
    copy.ski_len = 0;
    char path[700];
    snprintf(path, sizeof path, "%s/x.yaml", f->dir);
    write_file(path, BASE);
    mc_profile *p = NULL;
    mc_errdetail err;
    assert_int_equal(mc_profile_load(path, &copy, &f->urls, &p, &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 7.1.2.3(g)");
    assert_null(p);
}

/* An order with one P-256 (or other) key and the given mailboxes. */
static void make_order(mc_order *o, mc_keytype k, mc_usage u, const char *mailbox)
{
    static const uint8_t fake_spki[] = {0x30, 0x00};
    memset(o, 0, sizeof *o);
    o->keytype = k;
    o->usage = u;
    o->spki = fake_spki; /* check_order only needs to know the CSR was checked */
    o->spki_len = sizeof fake_spki;
    o->n_mailboxes = 1;
    o->mailboxes[0].address.p = mailbox;
    o->mailboxes[0].address.len = strlen(mailbox);
}

static void expect_order(const mc_profile *p, const mc_order *o, int64_t now, mc_err code,
                         const char *field, const char *rule)
{
    mc_errdetail err;
    mc_err_clear(&err);
    mc_err rc = mc_profile_check_order(p, o, now, &err);
    if (rc != code)
        print_error("%s: %s [%s]\n", err.field, err.message, err.rule);
    assert_int_equal(rc, code);
    assert_string_equal(err.field, field);
    assert_string_equal(err.rule, rule);
}

static void test_check_order(void **state)
{
    fixture *f = *state;
    mc_profile *p;
    expect_ok(f,
              L1 L2 L3 L4 "key_types: [p256, ed25519]\n"
                          "usages: [signing, key-management]\n" L7 L8 L9 L10,
              &p);
    const int64_t now = 1767225600; /* 2026-01-01 */
    mc_order o;
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
    expect_order(p, &o, now, MC_OK, "", "");
    o.usage = MC_USAGE_KEYMGMT;
    expect_order(p, &o, now, MC_OK, "", "");
    /* the profile does not list dual */
    o.usage = MC_USAGE_DUAL;
    expect_order(p, &o, now, MC_ERR_INVALID, "usage", "profile usages");
    /* SBR 7.1.2.3(e): Ed25519 signs only */
    make_order(&o, MC_KEY_ED25519, MC_USAGE_SIGNING, "alice@example.com");
    expect_order(p, &o, now, MC_OK, "", "");
    o.usage = MC_USAGE_KEYMGMT;
    expect_order(p, &o, now, MC_ERR_INVALID, "usage", "SBR 7.1.2.3(e)");
    /* key type not in the profile */
    make_order(&o, MC_KEY_RSA, MC_USAGE_SIGNING, "alice@example.com");
    expect_order(p, &o, now, MC_ERR_INVALID, "csr", "profile key_types");
    make_order(&o, MC_KEY_ED448, MC_USAGE_SIGNING, "alice@example.com");
    expect_order(p, &o, now, MC_ERR_INVALID, "csr", "profile key_types");
    mc_profile_free(p);
    /* SBR 7.1.2.3(e): Ed448 signs only */
    expect_ok(f,
              L1 L2 L3 L4 "key_types: [p256, ed448]\n"
                          "usages: [signing, key-management, dual]\n" L7 L8 L9 L10,
              &p);
    make_order(&o, MC_KEY_ED448, MC_USAGE_SIGNING, "alice@example.com");
    expect_order(p, &o, now, MC_OK, "", "");
    o.usage = MC_USAGE_KEYMGMT;
    expect_order(p, &o, now, MC_ERR_INVALID, "usage", "SBR 7.1.2.3(e)");
    o.usage = MC_USAGE_DUAL;
    expect_order(p, &o, now, MC_ERR_INVALID, "usage", "SBR 7.1.2.3(e)");
    mc_profile_free(p);
    expect_ok(f,
              L1 L2 L3 L4 "key_types: [p256, ed25519]\n"
                          "usages: [signing, key-management]\n" L7 L8 L9 L10,
              &p);
    /* SBR 7.1.2.3(h): at least one mailbox */
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
    o.n_mailboxes = 0;
    expect_order(p, &o, now, MC_ERR_INVALID, "mailboxes", "SBR 7.1.2.3(h)");
    /* domains as A-labels only; UTF-8 local parts are fine (SmtpUTF8Mailbox) */
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING,
               "alice@b\xc3\xbc"
               "cher.example");
    expect_order(p, &o, now, MC_ERR_INVALID, "mailboxes[0].address", "SBR 7.1.4.2.1");
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "j\xc3\xb6rg@xn--bcher-kva.example");
    expect_order(p, &o, now, MC_OK, "", "");
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "no-at-sign.example");
    expect_order(p, &o, now, MC_ERR_INVALID, "mailboxes[0].address", "SBR 1.6.1");
    /* unchecked CSR */
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
    o.spki = NULL;
    expect_order(p, &o, now, MC_ERR_INVALID, "csr", "SBR 6.1.5");
    mc_profile_free(p);

    /* SBR 7.1.6.1: legacy loads, but issues nothing from 2025-07-15 */
    expect_ok(f, L1 L2 "generation: legacy\n" L4 "key_types: [p256, ed25519]\n" L6 L7 L8 L9 L10,
              &p);
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
    expect_order(p, &o, MC_PROFILE_LEGACY_END - 1, MC_OK, "", "");
    expect_order(p, &o, MC_PROFILE_LEGACY_END, MC_ERR_PROFILE, "profile", "SBR 7.1.6.1");
    expect_order(p, &o, now, MC_ERR_PROFILE, "profile", "SBR 7.1.6.1");
    mc_profile_free(p);
}

/* An organization profile; line numbers matter for the error tests below. */
#define O1 "name: o\n"
#define O2 "type: organization\n"
#define O3 "generation: strict\n"
#define O4 "validity_days: 730\n"
#define O5 "key_types: [p256]\n"
#define O6 "usages: [signing]\n"
#define O7 "subject:\n"
#define O8 "  common_name: [organization-name, mailbox]\n"
#define O9 "  email_address: none\n"
#define O10 "  organization_name: required\n"
#define O11 "  organization_identifier: required\n"
#define O12 "  country: optional\n"
#define O13 "extended_key_usages: [emailProtection]\n"
#define OBASE O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 O12
#define IND(gen, subj)                                                                             \
    "name: i\ntype: individual\ngeneration: " gen "\nvalidity_days: 730\nkey_types: [p256]\n"      \
    "usages: [signing]\nsubject:\n  email_address: none\n" subj                                    \
    "extended_key_usages: [emailProtection]\n"

static void test_subject(void **state)
{
    fixture *f = *state;
    mc_profile *p;
    expect_ok(f, OBASE O13, &p);
    assert_int_equal(p->subj[MC_SA_ORGANIZATION], MC_PROFILE_ATTR_REQUIRED);
    assert_int_equal(p->subj[MC_SA_COUNTRY], MC_PROFILE_ATTR_OPTIONAL);
    assert_int_equal(p->subj[MC_SA_STATE], MC_PROFILE_ATTR_ABSENT);
    assert_int_equal(p->cn_default, MC_CN_ORGANIZATION);
    assert_int_equal(p->cn_choices, (1u << MC_CN_ORGANIZATION) | (1u << MC_CN_MAILBOX));
    assert_int_equal(p->cn_mailbox, 0);
    mc_profile_free(p);
    /* SBR 7.1.4.2.3: a mailbox profile has no countryName */
    expect_error(f, L1 L2 L3 L4 L5 L6 L7 L8 L9 "  country: optional\n" L10, MC_ERR_PROFILE,
                 "bad.yaml:10", "SBR 7.1.4.2.3");
    /* serialNumber is allowed everywhere */
    expect_ok(f, L1 L2 L3 L4 L5 L6 L7 L8 L9 "  serial_number: optional\n" L10, &p);
    mc_profile_free(p);
    /* SBR 7.1.4.2.4: organizationName and organizationIdentifier are SHALL, street is SHALL NOT
     * in Strict but MAY in Multipurpose */
    expect_error(f, O1 O2 O3 O4 O5 O6 O7 O8 O9 "  organization_name: optional\n" O11 O12 O13,
                 MC_ERR_PROFILE, "bad.yaml:10", "SBR 7.1.4.2.4");
    expect_error(f, O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O12 O13, MC_ERR_PROFILE, "bad.yaml:7",
                 "SBR 7.1.4.2.4");
    expect_error(f, OBASE "  locality: optional\n  street: optional\n" O13, MC_ERR_PROFILE,
                 "bad.yaml:14", "SBR 7.1.4.2.4");
    expect_error(f, OBASE "  given_name: optional\n" O13, MC_ERR_PROFILE, "bad.yaml:13",
                 "SBR 7.1.4.2.4");
    expect_ok(f,
              O1 O2 "generation: multipurpose\n" O4 O5 O6 O7 O8 O9 O10 O11 O12
                    "  locality: optional\n  street: optional\n  postal_code: required\n" O13,
              &p);
    mc_profile_free(p);
    /* SBR 7.1.4.2.2(j)(k)(m): street needs locality or state; locality, postal code need country */
    expect_error(f,
                 O1 O2 "generation: multipurpose\n" O4 O5 O6 O7 O8 O9 O10 O11 O12
                       "  street: optional\n" O13,
                 MC_ERR_PROFILE, "bad.yaml:13", "SBR 7.1.4.2.2(j)");
    expect_error(f, O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 "  locality: optional\n" O13, MC_ERR_PROFILE,
                 "bad.yaml:12", "SBR 7.1.4.2.2(k)");
    expect_error(f,
                 O1 O2 "generation: multipurpose\n" O4 O5 O6 O7 O8 O9 O10 O11
                       "  postal_code: optional\n" O13,
                 MC_ERR_PROFILE, "bad.yaml:12", "SBR 7.1.4.2.2(m)");
    /* SBR 7.1.4.2.2(a): what commonName may hold per type, and its source must exist */
    expect_error(f, O1 O2 O3 O4 O5 O6 O7 "  common_name: personal-name\n" O9 O10 O11 O12 O13,
                 MC_ERR_PROFILE, "bad.yaml:8", "SBR 7.1.4.2.2(a)");
    expect_error(f, L1 L2 L3 L4 L5 L6 L7 "  common_name: organization-name\n" L9 L10,
                 MC_ERR_PROFILE, "bad.yaml:8", "SBR 7.1.4.2.2(a)");
    expect_error(f, IND("strict", "  common_name: pseudonym\n  surname: optional\n"),
                 MC_ERR_PROFILE, "bad.yaml:9", "SBR 7.1.4.2.2(a)");
    expect_error(f, IND("strict", "  common_name: [mailbox, nickname]\n  surname: optional\n"),
                 MC_ERR_PROFILE, "bad.yaml:9", "SBR 7.1.4.2.2(a)");
    /* SBR 7.1.4.2.6 Note 2: names or a pseudonym; 7.1.4.2.2(f): never both required */
    expect_error(f, IND("strict", "  common_name: mailbox\n  title: optional\n"), MC_ERR_PROFILE,
                 "bad.yaml:7", "SBR 7.1.4.2.6");
    expect_ok(f, IND("legacy", "  common_name: mailbox\n  title: optional\n"), &p);
    mc_profile_free(p);
    expect_error(f,
                 IND("strict", "  common_name: mailbox\n  surname: required\n"
                               "  pseudonym: required\n"),
                 MC_ERR_PROFILE, "bad.yaml:11", "SBR 7.1.4.2.2(f)");
    /* values and keys */
    expect_error(f, OBASE "  state: maybe\n" O13, MC_ERR_PROFILE, "bad.yaml:13", "");
    expect_error(f, OBASE "  department: optional\n" O13, MC_ERR_PROFILE, "bad.yaml:13", "");
    expect_error(f, OBASE "  country: required\n" O13, MC_ERR_PROFILE, "bad.yaml:13", "");
    expect_error(f, O1 O2 O3 O4 O5 O6 O7 "  common_name: []\n" O9 O10 O11 O12 O13, MC_ERR_PROFILE,
                 "bad.yaml:8", "");
}

/* The order's subject against the profile. */
static void test_check_order_subject(void **state)
{
    fixture *f = *state;
    const int64_t now = 1767225600;
    mc_profile *op, *ip;
    expect_ok(f, OBASE "  organizational_unit: optional\n  locality: optional\n" O13, &op);
    expect_ok(f,
              IND("strict", "  common_name: [personal-name, pseudonym, mailbox]\n"
                            "  given_name: optional\n  surname: optional\n  pseudonym: optional\n"),
              &ip);
    mc_order o;
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
#define SET(a, v) (o.subject.attr[a] = (mc_str){v, strlen(v)})
    /* organization: O and organizationIdentifier required (SBR 7.1.4.2.4) */
    expect_order(op, &o, now, MC_ERR_INVALID, "subject.organization_name", "SBR 7.1.4.2.4");
    SET(MC_SA_ORGANIZATION, "Example Ltd");
    expect_order(op, &o, now, MC_ERR_INVALID, "subject.organization_identifier", "SBR 7.1.4.2.4");
    SET(MC_SA_ORG_IDENTIFIER, "NTRGB-12345678");
    expect_order(op, &o, now, MC_OK, "", "");
    assert_int_equal(mc_profile_cn_source(op, &o), MC_CN_ORGANIZATION);
    /* the profile's allowlist: a forbidden-by-SBR attribute and a not-listed one */
    SET(MC_SA_SURNAME, "Smith");
    expect_order(op, &o, now, MC_ERR_INVALID, "subject.surname", "SBR 7.1.4.2.4");
    o.subject.attr[MC_SA_SURNAME].len = 0;
    SET(MC_SA_STATE, "London");
    expect_order(op, &o, now, MC_ERR_INVALID, "subject.state", "profile subject");
    o.subject.attr[MC_SA_STATE].len = 0;
    /* SBR 7.1.4.2.2(k) */
    SET(MC_SA_LOCALITY, "London");
    expect_order(op, &o, now, MC_ERR_INVALID, "subject.locality", "SBR 7.1.4.2.2(k)");
    SET(MC_SA_COUNTRY, "GB");
    expect_order(op, &o, now, MC_OK, "", "");
    /* commonName choices from the profile's list only */
    o.subject.cn = MC_CN_MAILBOX;
    expect_order(op, &o, now, MC_OK, "", "");
    o.subject.cn = MC_CN_NONE;
    expect_order(op, &o, now, MC_ERR_INVALID, "subject.common_name", "profile subject");
    mc_profile_free(op);

    /* individual */
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
    expect_order(ip, &o, now, MC_ERR_INVALID, "subject", "SBR 7.1.4.2.6");
    SET(MC_SA_GIVEN_NAME, "Alice");
    expect_order(ip, &o, now, MC_OK, "", "");
    SET(MC_SA_PSEUDONYM, "Agent 7");
    expect_order(ip, &o, now, MC_ERR_INVALID, "subject.pseudonym", "SBR 7.1.4.2.2(f)");
    o.subject.attr[MC_SA_GIVEN_NAME].len = 0;
    /* default CN is personal-name: no names, so the order must pick */
    expect_order(ip, &o, now, MC_ERR_INVALID, "subject.common_name", "SBR 7.1.4.2.2(a)");
    o.subject.cn = MC_CN_PSEUDONYM;
    expect_order(ip, &o, now, MC_OK, "", "");
    /* RFC 5280 ub-common-name: 64 */
    SET(MC_SA_PSEUDONYM, "A pseudonym that is much longer than the sixty-four characters of a CN");
    expect_order(ip, &o, now, MC_ERR_INVALID, "subject.common_name", "RFC 5280 App. A");
    o.subject.attr[MC_SA_PSEUDONYM].len = 0;
    o.subject.cn = MC_CN_PERSONAL_NAME;
    SET(MC_SA_GIVEN_NAME, "Alexandra Maria Theodora Konstantina Eleni");
    SET(MC_SA_SURNAME, "Papadopoulou-Vasilopoulou");
    expect_order(ip, &o, now, MC_ERR_INVALID, "subject.common_name", "RFC 5280 App. A");
    o.subject.cn = MC_CN_MAILBOX;
    expect_order(ip, &o, now, MC_OK, "", "");
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING,
               "a-very-long-local-part-for-testing-the-limit@subdomain.example.com");
    SET(MC_SA_SURNAME, "Smith");
    o.subject.cn = MC_CN_MAILBOX;
    expect_order(ip, &o, now, MC_ERR_INVALID, "subject.common_name", "RFC 5280 App. A");
    o.subject.cn = MC_CN_DEFAULT;
    expect_order(ip, &o, now, MC_OK, "", "");
#undef SET
    mc_profile_free(ip);
}

#define SPONSOR_LEI                                                                                \
    "name: s\ntype: sponsor\ngeneration: strict\nvalidity_days: 730\nkey_types: [p256]\n"          \
    "usages: [signing]\nsubject:\n  common_name: [personal-name]\n  email_address: none\n"         \
    "  organization_name: required\n  organization_identifier: required\n"                         \
    "  given_name: optional\nextended_key_usages: [emailProtection]\n"                             \
    "legal_entity_identifier: optional\n"

/* SBR 7.1.2.3(l): which profiles may allow an LEI, and which orders may carry one. */
static void test_lei(void **state)
{
    fixture *f = *state;
    const int64_t now = 1767225600;
    /* prohibited in individual (and mailbox, test_type_generation) certificates */
    expect_error(
        f,
        IND("strict",
            "  common_name: [personal-name]\n  given_name: optional\n") "legal_entity_identifier: "
                                                                        "optional\n",
        MC_ERR_PROFILE, "bad.yaml:12", "SBR 7.1.2.3(l)");
    expect_error(f, OBASE O13 "legal_entity_identifier: maybe\n", MC_ERR_PROFILE, "bad.yaml:14",
                 "SBR 7.1.2.3(l)");
    mc_profile *op, *oreq, *onone, *sp;
    expect_ok(f, OBASE O13 "legal_entity_identifier: optional\n", &op);
    assert_int_equal(op->lei, MC_PROFILE_ATTR_OPTIONAL);
    expect_ok(f, OBASE O13 "legal_entity_identifier: required\n", &oreq);
    assert_int_equal(oreq->lei, MC_PROFILE_ATTR_REQUIRED);
    expect_ok(f, OBASE O13, &onone);
    assert_int_equal(onone->lei, MC_PROFILE_ATTR_ABSENT);
    expect_ok(f, SPONSOR_LEI, &sp);

    mc_order o;
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
    o.subject.attr[MC_SA_ORGANIZATION] = (mc_str){"Example Ltd", 11};
    o.subject.attr[MC_SA_ORG_IDENTIFIER] = (mc_str){"LEIXG-5493001KJTIIGC8Y1R12", 26};
    expect_order(op, &o, now, MC_OK, "", "");
    expect_order(oreq, &o, now, MC_ERR_INVALID, "lei", "SBR 7.1.2.3(l)");
    o.lei.value = (mc_str){"5493001KJTIIGC8Y1R12", 20};
    expect_order(op, &o, now, MC_OK, "", "");
    expect_order(oreq, &o, now, MC_OK, "", "");
    /* a profile that does not list legal_entity_identifier */
    expect_order(onone, &o, now, MC_ERR_INVALID, "lei", "SBR 7.1.2.3(l)");
    /* the role: never in organization certificates */
    o.lei_role.value = (mc_str){"Director", 8};
    expect_order(op, &o, now, MC_ERR_INVALID, "lei_role", "SBR 7.1.2.3(l)");
    /* sponsor: LEI and role */
    o.subject.attr[MC_SA_GIVEN_NAME] = (mc_str){"Alice", 5};
    expect_order(sp, &o, now, MC_OK, "", "");
    o.lei.value.len = 0;
    o.lei_role.value.len = 0;
    expect_order(sp, &o, now, MC_OK, "", "");
    mc_profile_free(op);
    mc_profile_free(oreq);
    mc_profile_free(onone);
    mc_profile_free(sp);
}

/* SBR 7.1.2.3(k): qc_statements compile into a non-critical qcStatements extension (RFC 3739
 * 3.2.6, ETSI EN 319 412-5 4) whose statements must fit the type; refused in mailbox profiles. */
#define QC_OV                                                                                      \
    "qc_statements:\n  compliance: true\n  sscd: true\n  type: eseal\n  semantics: legal\n"        \
    "  pds:\n    en: https://pki.example.com/pds-en.pdf\n  legislation: [CH]\n"
/* the same statements as encoded by an independent DER encoder (tests/test_lint.c HX_QCS_OV) */
#define QC_OV_DER                                                                                  \
    "30 81 86 30 15 06 08 2b 06 01 05 05 07 0b 02 30 09 06 07 04 00 8b ec 49 01 02 30 08 06 06 "   \
    "04 00 8e 46 01 01 30 08 06 06 04 00 8e 46 01 04 30 34 06 06 04 00 8e 46 01 05 30 2a 30 28 "   \
    "16 22 68 74 74 70 73 3a 2f 2f 70 6b 69 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d 2f 70 64 73 2d "   \
    "65 6e 2e 70 64 66 13 02 65 6e 30 13 06 06 04 00 8e 46 01 06 30 09 06 07 04 00 8e 46 01 06 "   \
    "02 30 0e 06 06 04 00 8e 46 01 07 30 04 13 02 43 48"

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned v;
    int k;
    while (sscanf(h, " %2x%n", &v, &k) == 1 && n < cap) {
        out[n++] = (uint8_t)v;
        h += k;
    }
    return n;
}

static void test_qc_statements(void **state)
{
    fixture *f = *state;
    mc_profile *p;
    expect_ok(f, OBASE O13 QC_OV, &p);
    mc_der_tlv oids[16], vals[16];
    size_t n = ext_oids(p->ext_const, p->ext_const_len, oids, vals, 16);
    char b[64];
    assert_string_equal(oid_str(&oids[n - 1], b, sizeof b), "1.3.6.1.5.5.7.1.3");
    uint8_t want[256];
    size_t wl = unhex(QC_OV_DER, want, sizeof want);
    assert_int_equal(wl, 0x89);
    assert_int_equal(vals[n - 1].len, wl);
    assert_memory_equal(vals[n - 1].val, want, wl);
    mc_profile_free(p);
    /* sponsor: esign, natural person semantics, retention, PDS in two languages */
    expect_ok(f,
              SPONSOR_LEI "qc_statements:\n  type: esign\n  semantics: natural\n"
                          "  retention_years: 15\n  pds:\n    de: https://pki.example.com/de.pdf\n"
                          "    en: https://pki.example.com/en.pdf\n",
              &p);
    mc_profile_free(p);
    /* no qc_statements: no extension */
    expect_ok(f, OBASE O13, &p);
    n = ext_oids(p->ext_const, p->ext_const_len, oids, vals, 16);
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(oid_str(&oids[i], b, sizeof b), "1.3.6.1.5.5.7.1.3");
    mc_profile_free(p);

    /* SBR 7.1.2.4: a mailbox-validated certificate validates no identity to qualify */
    expect_error(f, BASE "qc_statements:\n  compliance: true\n", MC_ERR_PROFILE, "bad.yaml:11",
                 "SBR 7.1.2.4");
    expect_error(f, OBASE O13 "qc_statements: {}\n", MC_ERR_PROFILE, "bad.yaml:14",
                 "SBR 7.1.2.3(k)");
    expect_error(f, OBASE O13 "qc_statements:\n  compliance: false\n", MC_ERR_PROFILE,
                 "bad.yaml:14", "SBR 7.1.2.3(k)");
    /* ETSI EN 319 412-5 4.2.3: eseal for legal persons, esign for natural ones, never web */
    expect_error(f, OBASE O13 "qc_statements:\n  compliance: true\n  type: esign\n", MC_ERR_PROFILE,
                 "bad.yaml:16", "ETSI EN 319 412-5 4.2.3");
    expect_error(f, OBASE O13 "qc_statements:\n  type: web\n", MC_ERR_PROFILE, "bad.yaml:15",
                 "ETSI EN 319 412-5 4.2.3");
    expect_error(f, SPONSOR_LEI "qc_statements:\n  type: eseal\n", MC_ERR_PROFILE, "bad.yaml:16",
                 "ETSI EN 319 412-5 4.2.3");
    expect_error(f, OBASE O13 "qc_statements:\n  semantics: natural\n", MC_ERR_PROFILE,
                 "bad.yaml:15", "ETSI EN 319 412-1 5.1");
    /* ETSI EN 319 412-5 4.3.4: https PDS URLs, ISO 639-1 languages, one in English */
    expect_error(f, OBASE O13 "qc_statements:\n  pds:\n    en: http://pki.example.com/pds\n",
                 MC_ERR_PROFILE, "bad.yaml:16", "ETSI EN 319 412-5 4.3.4");
    expect_error(f, OBASE O13 "qc_statements:\n  pds:\n    eng: https://pki.example.com/pds\n",
                 MC_ERR_PROFILE, "bad.yaml:16", "ETSI EN 319 412-5 4.3.4");
    expect_error(f, OBASE O13 "qc_statements:\n  pds:\n    de: https://pki.example.com/pds\n",
                 MC_ERR_PROFILE, "bad.yaml:15", "ETSI EN 319 412-5 4.3.4");
    expect_error(f, OBASE O13 "qc_statements:\n  legislation: [che]\n", MC_ERR_PROFILE,
                 "bad.yaml:15", "ETSI EN 319 412-5 4.2.4");
    expect_error(f, OBASE O13 "qc_statements:\n  retention_years: 0\n", MC_ERR_PROFILE,
                 "bad.yaml:15", "ETSI EN 319 412-5 4.3.3");
    expect_error(f, OBASE O13 "qc_statements:\n  sscd: yes\n", MC_ERR_PROFILE, "bad.yaml:15", "");
    expect_error(f, OBASE O13 "qc_statements:\n  compliance: true\n  limit: 5\n", MC_ERR_PROFILE,
                 "bad.yaml:16", "");
    expect_error(f, OBASE O13 "qc_statements:\n  sscd: true\n  sscd: true\n", MC_ERR_PROFILE,
                 "bad.yaml:16", "");
}

/* The mapping walk every level shares (root, subject, qc_statements, qc_statements.pds): the
 * messages name the level's key or what was expected, at the key's file:line. */
static void expect_message(fixture *f, const char *text, const char *field, const char *message)
{
    expect_error(f, text, MC_ERR_PROFILE, field, "");
    mc_profile *p = NULL;
    mc_errdetail err;
    assert_int_equal(load_text(f, "bad.yaml", text, &p, &err), MC_ERR_PROFILE);
    assert_string_equal(err.message, message);
}

static void test_mapping_errors(void **state)
{
    fixture *f = *state;
    expect_message(f, BASE "[a]: b\n", "bad.yaml:11", "expected a key");
    expect_message(f, BASE "colour: blue\n", "bad.yaml:11", "unknown key 'colour'");
    expect_message(f, BASE "name: u\n", "bad.yaml:11", "duplicate key 'name'");
    expect_message(f, L1 L2 L3 L4 L5 L6 "subject: [a]\n", "bad.yaml:7",
                   "expected a mapping (common_name, email_address, ...)");
    expect_message(f, L1 L2 L3 L4 L5 L6 L7 L8 L9 "  [x]: y\n" L10, "bad.yaml:10", "expected a key");
    expect_message(f, L1 L2 L3 L4 L5 L6 L7 L8 L9 "  email_address: none\n" L10, "bad.yaml:10",
                   "duplicate key 'subject.email_address'");
    expect_message(f, L1 L2 L3 L4 L5 L6 L7 "  common_name: [mailbox, [x]]\n" L9 L10, "bad.yaml:8",
                   "list items must be single values");
    expect_message(f, L1 L2 L3 L4 L5 L6 L7 "  common_name: []\n" L9 L10, "bad.yaml:8",
                   "subject.common_name is empty");
    expect_message(f, BASE "qc_statements: []\n", "bad.yaml:11",
                   "expected a mapping of statements");
    expect_message(f, BASE "qc_statements:\n  [a]: b\n", "bad.yaml:12", "expected a key");
    expect_message(f, BASE "qc_statements:\n  sscd: true\n  sscd: false\n", "bad.yaml:13",
                   "duplicate key 'qc_statements.sscd'");
    expect_message(f, BASE "qc_statements:\n  pds: [a]\n", "bad.yaml:12",
                   "expected a mapping of language: https URL");
    expect_message(f, BASE "qc_statements:\n  pds:\n    [en]: https://x.example\n", "bad.yaml:13",
                   "expected a language code");
    expect_message(f,
                   BASE "qc_statements:\n  pds:\n    en: https://x.example\n"
                        "    en: https://y.example\n",
                   "bad.yaml:14", "PDS language 'en' listed twice");
}

/* A multipurpose organization profile that allows every address attribute, each optional. */
#define OADDR                                                                                      \
    O1 O2 "generation: multipurpose\n" O4 O5 O6 O7 O8 O9 O10 O11 O12                               \
          "  locality: optional\n  state: optional\n  street: optional\n  postal_code: "           \
          "optional\n" O13
/* A sponsor profile without given_name, surname or pseudonym (line 7 is "subject:"). */
#define SPONSOR_SUBJ(gen, subj)                                                                    \
    "name: s\ntype: sponsor\ngeneration: " gen "\nvalidity_days: 730\nkey_types: [p256]\n"         \
    "usages: [signing]\nsubject:\n  common_name: mailbox\n  email_address: none\n"                 \
    "  organization_name: required\n  organization_identifier: required\n" subj                    \
    "extended_key_usages: [emailProtection]\n"
#define SPONSOR_NO_NAMES(gen) SPONSOR_SUBJ(gen, "")

/* Load-time: SBR 7.1.4.2.2(l) (stateOrProvinceName only with countryName) and SBR 7.1.4.2.5
 * Note 2 (sponsor Multipurpose/Strict: givenName and/or surname, or pseudonym). */
static void test_subject_state_sponsor(void **state)
{
    fixture *f = *state;
    mc_profile *p;
    /* (l): state with country loads, without it is refused at the state line */
    expect_ok(f, OBASE "  state: optional\n" O13, &p);
    assert_int_equal(p->subj[MC_SA_STATE], MC_PROFILE_ATTR_OPTIONAL);
    mc_profile_free(p);
    expect_error(f, O1 O2 O3 O4 O5 O6 O7 O8 O9 O10 O11 "  state: optional\n" O13, MC_ERR_PROFILE,
                 "bad.yaml:12", "SBR 7.1.4.2.2(l)");
    /* 7.1.4.2.5 Note 2: a sponsor profile that can carry no name at all */
    expect_error(f, SPONSOR_NO_NAMES("strict"), MC_ERR_PROFILE, "bad.yaml:7", "SBR 7.1.4.2.5");
    expect_error(f, SPONSOR_NO_NAMES("multipurpose"), MC_ERR_PROFILE, "bad.yaml:7",
                 "SBR 7.1.4.2.5");
    /* Note 1: Legacy may omit them; one of the three is enough otherwise */
    expect_ok(f, SPONSOR_NO_NAMES("legacy"), &p);
    mc_profile_free(p);
    expect_ok(f, SPONSOR_SUBJ("strict", "  pseudonym: optional\n"), &p);
    mc_profile_free(p);
}

/* Order-time SBR 7.1.4.2.2(j)(l)(m): streetAddress only with localityName or
 * stateOrProvinceName; stateOrProvinceName and postalCode only with countryName. */
static void test_check_order_address(void **state)
{
    fixture *f = *state;
    const int64_t now = 1767225600;
    mc_profile *p;
    expect_ok(f, OADDR, &p);
    mc_order o;
#define SET(a, v) (o.subject.attr[a] = (mc_str){v, strlen(v)})
#define BASE_ORDER()                                                                               \
    do {                                                                                           \
        make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");                        \
        SET(MC_SA_ORGANIZATION, "Example Ltd");                                                    \
        SET(MC_SA_ORG_IDENTIFIER, "NTRGB-12345678");                                               \
    } while (0)
    /* (j) */
    BASE_ORDER();
    SET(MC_SA_COUNTRY, "GB");
    SET(MC_SA_STREET, "1 High Street");
    expect_order(p, &o, now, MC_ERR_INVALID, "subject.street", "SBR 7.1.4.2.2(j)");
    SET(MC_SA_LOCALITY, "London");
    expect_order(p, &o, now, MC_OK, "", "");
    o.subject.attr[MC_SA_LOCALITY].len = 0;
    SET(MC_SA_STATE, "Greater London");
    expect_order(p, &o, now, MC_OK, "", "");
    /* (l) */
    BASE_ORDER();
    SET(MC_SA_STATE, "Greater London");
    expect_order(p, &o, now, MC_ERR_INVALID, "subject.state", "SBR 7.1.4.2.2(l)");
    SET(MC_SA_COUNTRY, "GB");
    expect_order(p, &o, now, MC_OK, "", "");
    /* (m) */
    BASE_ORDER();
    SET(MC_SA_POSTAL_CODE, "SW1A 1AA");
    expect_order(p, &o, now, MC_ERR_INVALID, "subject.postal_code", "SBR 7.1.4.2.2(m)");
    SET(MC_SA_COUNTRY, "GB");
    expect_order(p, &o, now, MC_OK, "", "");
#undef BASE_ORDER
#undef SET
    mc_profile_free(p);
}

/* Order-time SBR 7.1.4.2.2(a): a commonName that holds the pseudonym needs subject:pseudonym. */
static void test_check_order_cn_pseudonym(void **state)
{
    fixture *f = *state;
    const int64_t now = 1767225600;
    mc_profile *p;
    expect_ok(f,
              IND("strict", "  common_name: [personal-name, pseudonym, mailbox]\n"
                            "  given_name: optional\n  surname: optional\n  pseudonym: optional\n"),
              &p);
    mc_order o;
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
    o.subject.attr[MC_SA_GIVEN_NAME] = (mc_str){"Alice", 5};
    o.subject.cn = MC_CN_PSEUDONYM;
    expect_order(p, &o, now, MC_ERR_INVALID, "subject.common_name", "SBR 7.1.4.2.2(a)");
    o.subject.cn = MC_CN_PERSONAL_NAME;
    expect_order(p, &o, now, MC_OK, "", "");
    o.subject.attr[MC_SA_GIVEN_NAME].len = 0;
    o.subject.attr[MC_SA_PSEUDONYM] = (mc_str){"Agent 7", 7};
    o.subject.cn = MC_CN_PSEUDONYM;
    expect_order(p, &o, now, MC_OK, "", "");
    mc_profile_free(p);
}

/* Order-time sponsor rules: SBR 7.1.4.2.5 Note 2 (names or a pseudonym) and SBR 7.1.2.3(l)
 * (a role LEI only where the sponsor profile allows an LEI). */
static void test_check_order_sponsor(void **state)
{
    fixture *f = *state;
    const int64_t now = 1767225600;
    mc_profile *sp, *snolei;
    expect_ok(f, SPONSOR_LEI, &sp);
    expect_ok(f, SPONSOR_SUBJ("strict", "  given_name: optional\n"), &snolei);
    assert_int_equal(snolei->lei, MC_PROFILE_ATTR_ABSENT);
    mc_order o;
    make_order(&o, MC_KEY_P256, MC_USAGE_SIGNING, "alice@example.com");
    o.subject.attr[MC_SA_ORGANIZATION] = (mc_str){"Example Ltd", 11};
    o.subject.attr[MC_SA_ORG_IDENTIFIER] = (mc_str){"LEIXG-5493001KJTIIGC8Y1R12", 26};
    /* Note 2 */
    expect_order(sp, &o, now, MC_ERR_INVALID, "subject", "SBR 7.1.4.2.5");
    expect_order(snolei, &o, now, MC_ERR_INVALID, "subject", "SBR 7.1.4.2.5");
    o.subject.attr[MC_SA_GIVEN_NAME] = (mc_str){"Alice", 5};
    expect_order(sp, &o, now, MC_OK, "", "");
    expect_order(snolei, &o, now, MC_OK, "", "");
    /* 7.1.2.3(l): LEI and role pass where the profile allows an LEI */
    o.lei.value = (mc_str){"5493001KJTIIGC8Y1R12", 20};
    o.lei_role.value = (mc_str){"Director", 8};
    expect_order(sp, &o, now, MC_OK, "", "");
    /* without legal_entity_identifier the LEI itself is refused first */
    expect_order(snolei, &o, now, MC_ERR_INVALID, "lei", "SBR 7.1.2.3(l)");
    /* a role alone (order decoding refuses it, so only a hand-built order gets here) */
    o.lei.value.len = 0;
    expect_order(snolei, &o, now, MC_ERR_INVALID, "lei_role", "SBR 7.1.2.3(l)");
    mc_profile_free(sp);
    mc_profile_free(snolei);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_profiles),
        cmocka_unit_test(test_profile_set),
        cmocka_unit_test(test_base_ok),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_eku),
        cmocka_unit_test(test_key_types_usages),
        cmocka_unit_test(test_type_generation),
        cmocka_unit_test(test_bad_yaml),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_issuer_without_ski),
        cmocka_unit_test(test_check_order),
        cmocka_unit_test(test_subject),
        cmocka_unit_test(test_check_order_subject),
        cmocka_unit_test(test_lei),
        cmocka_unit_test(test_qc_statements),
        cmocka_unit_test(test_mapping_errors),
        cmocka_unit_test(test_subject_state_sponsor),
        cmocka_unit_test(test_check_order_address),
        cmocka_unit_test(test_check_order_cn_pseudonym),
        cmocka_unit_test(test_check_order_sponsor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
