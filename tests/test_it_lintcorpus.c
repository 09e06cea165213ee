/*
 * Acceptance test of issue 3 ("hand-made certificates that break one rule each are each rejected
 * by `mailca lint` with the right lint id"): a corpus of certificates made here with OpenSSL
 * (tests/support/certgen: the OpenSSL object API and a software test CA, nothing checked in),
 * covering every certificate type and generation compliantly and then one broken rule per
 * certificate, is written to one PEM file and judged by the real binary, `mailca lint --json`,
 * the way a CA operator would lint certificates made elsewhere.
 *
 * For each certificate the set of lint ids found (errors and warnings) must be exactly the
 * expected set: the compliant ones none, each broken one the id of its rule (and, where one
 * defect necessarily breaks two rules, both). The exit status must be 1 for the corpus (error
 * findings), 0 for a file of the compliant certificates only, and a DER file is read too.
 *
 * `mailca lint` has no issuer context (issuer-dependent lints such as the AKI/SKI match are
 * skipped) and applies the rules in force at each certificate's notBefore.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/der.h"
#include "mailca/profile.h"
#include "mailca/x509.h"
#include "support/certgen.h"
#include "support/itutil.h"

#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OV "C=DE;O=Beispiel GmbH;OI=NTRDE-DER3306.HRB12345"
/* QCStatements: QcCompliance, QcType [esign] */
#define QCS_ESIGN                                                                                  \
    "30 1f 30 08 06 06 04 00 8e 46 01 01 30 13 06 06 04 00 8e 46 01 06 30 09 06 07 04 00 8e 46 "   \
    "01 06 01"
#define LEI_HEX "35 34 39 33 30 30 31 4b 4a 54 49 49 47 43 38 59 31 52 31 32"

/* ---- edits that need exact bytes (shared ones: certgen's cg_edit_* and cg_tbs_*; raw TBS
 * edits break the signature, which `mailca lint` does not verify) ---- */

static void e_alabel_ok(X509 *x)
{
    static const char m[] = "alice@" CG_MUENCHEN_A;
    assert_int_equal(cg_ext_san(x, m, CG_GREEK "@" CG_MUENCHEN_A), 0);
    assert_int_equal(cg_subject_cn(x, m), 0);
}

static void e_alabel_bad(X509 *x)
{
    static const char m[] = "alice@xn--zz.example";
    assert_int_equal(cg_ext_san(x, m, NULL), 0);
    assert_int_equal(cg_subject_cn(x, m), 0);
}

/* ---- the corpus ---- */

typedef struct ccase {
    const char *name;
    const char *ids; /* expected lint ids, comma separated, any order; "" none */
    CG_CASE_MEMBERS; /* the certificate: type (0: mailbox), gen (0: Strict), key, edits... */
    cg_tbs_fn post;
} ccase;

static const ccase CASES[] = {
    /* ---- compliant: every type x generation, several keys and usages ---- */
    {.name = "mailbox strict P-256", .ids = ""},
    {.name = "mailbox multipurpose RSA dual use",
     .ids = "",
     .gen = MC_GEN_MULTIPURPOSE,
     .key = CG_KEY_RSA2048,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyEncipherment"},
    {.name = "organization strict", .ids = "", .type = MC_TYPE_ORGANIZATION, .subj = OV},
    {.name = "organization multipurpose Ed25519 with LEI",
     .ids = "",
     .type = MC_TYPE_ORGANIZATION,
     .gen = MC_GEN_MULTIPURPOSE,
     .key = CG_KEY_ED25519,
     .subj = OV ";L=M\xc3\xbcnchen",
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 14 " LEI_HEX},
    {.name = "sponsor strict",
     .ids = "",
     .type = MC_TYPE_SPONSOR,
     .subj = OV ";GN=J\xc3\xb6rg;SN=M\xc3\xbcller"},
    {.name = "sponsor multipurpose pseudonym P-384",
     .ids = "",
     .type = MC_TYPE_SPONSOR,
     .gen = MC_GEN_MULTIPURPOSE,
     .key = CG_KEY_P384,
     .subj = OV ";P=Agent 47"},
    {.name = "individual strict EC key management",
     .ids = "",
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "C=GB;GN=Ada;SN=Lovelace",
     .conf_name = "keyUsage",
     .conf_value = "critical,keyAgreement"},
    {.name = "individual multipurpose, CN personal name",
     .ids = "",
     .type = MC_TYPE_INDIVIDUAL,
     .gen = MC_GEN_MULTIPURPOSE,
     .subj = "!C=GB;GN=Ada;SN=Lovelace;CN=Ada Lovelace"},
    {.name = "IDN mailbox as A-labels (rfc822Name and SmtpUTF8Mailbox)",
     .ids = "",
     .edit = e_alabel_ok},

    /* ---- one broken rule each ---- */
    {.name = "validity 826 days", .ids = "e_smime_validity_too_long", .validity = 826 * CG_DAY},
    {.name = "validity 825 days (warning)",
     .ids = "w_smime_validity_at_maximum",
     .validity = 825 * CG_DAY - 1},
    {.name = "Legacy generation issued after the sunset",
     .ids = "e_smime_legacy_generation_prohibited",
     .gen = MC_GEN_LEGACY},
    {.name = "serial with a padding byte",
     .ids = "e_serial_number_not_minimal_der",
     .post = cg_tbs_serial_padded},
    {.name = "GeneralizedTime before 2050",
     .ids = "e_validity_time_wrong_type",
     .post = cg_tbs_time_generalized},
    {.name = "subjectUniqueID",
     .ids = "e_cert_unique_identifier_present",
     .post = cg_tbs_unique_id},
    {.name = "no certificatePolicies",
     .ids = "e_smime_certificate_policies_missing",
     .del = CG_OID_POLICIES},
    {.name = "no cRLDistributionPoints", .ids = "e_smime_crldp_missing", .del = CG_OID_CRLDP},
    {.name = "https CRL",
     .ids = "e_smime_crldp_uri_not_http",
     .conf_name = "crlDistributionPoints",
     .conf_value = "URI:https://crl.example.com/ca.crl"},
    {.name = "no AIA", .ids = "w_smime_aia_missing", .del = CG_OID_AIA},
    {.name = "basicConstraints CA:TRUE",
     .ids = "e_smime_basic_constraints_ca",
     .conf_name = "basicConstraints",
     .conf_value = "critical,CA:TRUE"},
    {.name = "no keyUsage", .ids = "e_smime_key_usage_missing", .del = CG_OID_KU},
    {.name = "keyUsage not critical",
     .ids = "w_smime_key_usage_not_critical",
     .conf_name = "keyUsage",
     .conf_value = "digitalSignature"},
    {.name = "EC key with keyEncipherment",
     .ids = "e_smime_key_usage_bits",
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyEncipherment"},
    {.name = "Ed25519 with keyAgreement",
     .ids = "e_smime_key_usage_bits",
     .key = CG_KEY_ED25519,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyAgreement"},
    {.name = "no extKeyUsage", .ids = "e_smime_eku_missing", .del = CG_OID_EKU},
    {.name = "extKeyUsage without emailProtection",
     .ids = "e_smime_eku_email_protection_missing",
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "extendedKeyUsage",
     .conf_value = "clientAuth"},
    {.name = "serverAuth",
     .ids = "e_smime_eku_prohibited",
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "extendedKeyUsage",
     .conf_value = "emailProtection,serverAuth"},
    {.name = "Strict with clientAuth",
     .ids = "e_smime_eku_strict_other_purpose",
     .conf_name = "extendedKeyUsage",
     .conf_value = "emailProtection,clientAuth"},
    {.name = "no AKI", .ids = "e_smime_aki_missing", .del = CG_OID_AKI},
    {.name = "no SKI", .ids = "w_smime_ski_missing", .del = CG_OID_SKI},
    {.name = "no SAN",
     .ids = "e_smime_san_missing,e_smime_mailbox_cn_not_in_san",
     .del = CG_OID_SAN},
    {.name = "SAN with a dNSName",
     .ids = "e_smime_san_prohibited_name_type",
     .conf_name = "subjectAltName",
     .conf_value = "email:" CG_MAILBOX ",DNS:example.com"},
    {.name = "rfc822Name with two dots",
     .ids = "e_smime_san_rfc822_name_syntax",
     .mailbox = "alice..x@example.com"},
    {.name = "rfc822Name with a U-label domain",
     .ids = "e_smime_san_mailbox_domain_u_label",
     .edit = cg_edit_rfc822_ulabel},
    {.name = "rfc822Name with an invalid A-label",
     .ids = "e_smime_san_mailbox_domain_a_label_invalid",
     .edit = e_alabel_bad},
    {.name = "SmtpUTF8Mailbox with a U-label domain",
     .ids = "e_smime_san_mailbox_domain_u_label",
     .edit = cg_edit_smtputf8_ulabel},
    {.name = "SmtpUTF8Mailbox with an ASCII local part",
     .ids = "e_smime_san_smtputf8_mailbox_ascii_local_part",
     .edit = cg_edit_smtputf8_ascii},
    {.name = "unknown extension",
     .ids = "e_smime_ext_not_allowed",
     .raw_oid = "1.2.3.4.5",
     .raw_hex = "05 00"},
    {.name = "two SKIs",
     .ids = "e_ext_duplicate",
     .raw_oid = CG_OID_SKI,
     .raw_hex = "04 04 01 02 03 04",
     .raw_add = 1},
    {.name = "subjectDirectoryAttributes in Strict",
     .ids = "e_smime_ext_prohibited_for_profile",
     .raw_oid = CG_OID_SDA,
     .raw_hex = "30 1f 30 1d 06 08 2b 06 01 05 05 07 09 01 31 11 18 0f 31 39 38 30 30 31 30 31 "
                "31 32 30 30 30 30 5a"},
    {.name = "LEI in a mailbox-validated certificate",
     .ids = "e_smime_ext_prohibited_for_profile",
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 14 " LEI_HEX},
    {.name = "critical LEI",
     .ids = "e_smime_ext_critical",
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV,
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 14 " LEI_HEX,
     .raw_crit = 1},
    {.name = "LEI with a bad check digit",
     .ids = "e_smime_lei_malformed",
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV,
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 14 35 34 39 33 30 30 31 4b 4a 54 49 49 47 43 38 59 31 52 31 33"},
    /* SBR 7.1.2.3(k): qcStatements (RFC 3739 3.2.6, ETSI EN 319 412-5 4) */
    {.name = "sponsor strict with QcCompliance and QcType esign",
     .ids = "",
     .type = MC_TYPE_SPONSOR,
     .subj = OV ";GN=J\xc3\xb6rg;SN=M\xc3\xbcller",
     .raw_oid = CG_OID_QCS,
     .raw_hex = QCS_ESIGN},
    {.name = "critical qcStatements",
     .ids = "e_smime_ext_critical",
     .type = MC_TYPE_SPONSOR,
     .subj = OV ";GN=J\xc3\xb6rg;SN=M\xc3\xbcller",
     .raw_oid = CG_OID_QCS,
     .raw_hex = QCS_ESIGN,
     .raw_crit = 1},
    {.name = "QcCompliance with a statementInfo",
     .ids = "e_smime_qc_statements_malformed",
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV,
     .raw_oid = CG_OID_QCS,
     .raw_hex = "30 0c 30 0a 06 06 04 00 8e 46 01 01 05 00"},
    {.name = "QcType esign in an organization-validated certificate",
     .ids = "e_smime_qc_type_mismatch",
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV,
     .raw_oid = CG_OID_QCS,
     .raw_hex = QCS_ESIGN},
    {.name = "organizationName in a mailbox-validated certificate",
     .ids = "e_smime_subject_attribute_prohibited",
     .subj = "O=Beispiel GmbH"},
    {.name = "organization without organizationIdentifier",
     .ids = "e_smime_subject_attribute_required",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=DE;O=Beispiel GmbH"},
    {.name = "sponsor without name or pseudonym",
     .ids = "e_smime_subject_name_or_pseudonym_missing",
     .type = MC_TYPE_SPONSOR,
     .subj = OV},
    {.name = "individual pseudonym with givenName",
     .ids = "e_smime_subject_pseudonym_with_name",
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "C=GB;GN=Ada;P=Countess"},
    {.name = "countryName ZZ",
     .ids = "e_smime_country_name_invalid",
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "C=ZZ;GN=Ada;SN=Lovelace"},
    {.name = "organizationIdentifier with an unknown scheme",
     .ids = "e_smime_org_identifier_format",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=DE;O=Beispiel GmbH;OI=XYZDE-12345"},
    {.name = "organizationIdentifier country differs from countryName",
     .ids = "e_smime_org_identifier_country_mismatch",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=FR;O=Beispiel GmbH;OI=NTRDE-DER3306.HRB12345"},
    {.name = "streetAddress without locality or state",
     .ids = "e_smime_street_without_locality_or_state",
     .type = MC_TYPE_ORGANIZATION,
     .gen = MC_GEN_MULTIPURPOSE,
     .subj = OV ";STREET=Hauptstr. 1"},
    {.name = "organizationName n/a",
     .ids = "e_smime_subject_placeholder_value",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=DE;O=n/a;OI=NTRDE-DER3306.HRB12345"},
    {.name = "commonName is neither mailbox nor organization",
     .ids = "e_smime_cn_value_not_allowed",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "!C=DE;O=Beispiel GmbH;OI=NTRDE-DER3306.HRB12345;CN=Somebody Else"},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])

/* Builds case c's certificate DER into out (malloc'd). */
static size_t build(const ccase *c, uint8_t **out)
{
    cg_cert cert;
    assert_int_equal(cg_case_build(&c->cg, &cert), 0);
    size_t len = cert.len;
    *out = malloc(16384);
    assert_non_null(*out);
    if (c->post) {
        uint8_t tbs[16384];
        size_t tl = c->post(cert.tbs, cert.tbs_len, tbs, sizeof tbs);
        assert_true(tl > 0);
        mc_x509 x;
        assert_int_equal(mc_x509_parse_cert(cert.der, cert.len, &x, NULL), MC_OK);
        /* the outer AlgorithmIdentifier and signature BIT STRING as they were */
        len = cg_cert_assemble(tbs, tl, x.outer_sigalg.raw, x.outer_sigalg.rawlen, x.signature.raw,
                               x.signature.rawlen, *out, 16384);
        assert_true(len > 0);
    } else {
        assert_true(len <= 16384);
        memcpy(*out, cert.der, len);
    }
    cg_cert_free(&cert);
    return len;
}

/* The ids of one `mailca lint --json` line, sorted and comma-joined into out. */
static void line_ids(const char *line, size_t n, char *out, size_t cap)
{
    char ids[32][64];
    size_t k = 0;
    const char *p = line, *end = line + n;
    while ((p = memmem(p, (size_t)(end - p), "\"id\":\"", 6)) != NULL && k < 32) {
        p += 6;
        const char *q = memchr(p, '"', (size_t)(end - p));
        assert_non_null(q);
        snprintf(ids[k++], sizeof ids[0], "%.*s", (int)(q - p), p);
        p = q;
    }
    qsort(ids, k, sizeof ids[0], (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        strncat(out, i ? "," : "", cap - strlen(out) - 1);
        strncat(out, ids[i], cap - strlen(out) - 1);
    }
}

static void sorted(const char *ids, char *out, size_t cap)
{
    char buf[1024], line[1200];
    size_t o = 0;
    int n = snprintf(line, sizeof line, "{");
    snprintf(buf, sizeof buf, "%s", ids);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        n += snprintf(line + n, sizeof line - (size_t)n, "%s\"id\":\"%s\"", o++ ? "," : "", t);
    line_ids(line, (size_t)n, out, cap);
}

static struct {
    char dir[1024];
} g;

static int setup(void **state)
{
    (void)state;
    if (!mc_it_bin()) {
        fprintf(stderr, "MAILCA_BIN is not set\n");
        return -1;
    }
    return mc_it_tmpdir("it-lintcorpus-", g.dir, sizeof g.dir);
}

static int teardown(void **state)
{
    (void)state;
    if (g.dir[0] && !getenv("MAILCA_KEEP_TMP"))
        mc_it_rmtree(g.dir);
    return 0;
}

/* Runs `mailca lint --json` on files and checks each certificate's ids: a PEM line's index is
 * its position in the PEM (pem_cases maps it to the case), a DER file "cNN.der" is case NN. */
static int judge(const char *out, const size_t *pem_cases, size_t n_pem, size_t *seen)
{
    int failed = 0;
    for (const char *line = out; *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        const char *ix = memmem(line, n, "\"index\":", 8);
        const char *file = memmem(line, n, "\"file\":\"", 8);
        assert_non_null(ix);
        assert_non_null(file);
        assert_non_null(memmem(line, n, "\"lint_set\":\"", 12));
        size_t i = strtoul(ix + 8, NULL, 10);
        const char *q = memchr(file + 8, '"', n - (size_t)(file + 8 - line));
        assert_non_null(q);
        if (q - file > 12 && memcmp(q - 4, ".der", 4) == 0) {
            assert_int_equal(i, 0);
            i = strtoul(q - 6, NULL, 10);
        } else {
            assert_true(i < n_pem);
            i = pem_cases[i];
        }
        assert_true(i < N_CASES);
        char got[1024], want[1024];
        line_ids(line, n, got, sizeof got);
        sorted(CASES[i].ids, want, sizeof want);
        if (strcmp(got, want) != 0) {
            print_error("case %zu \"%s\": found {%s}, expected {%s}\n  %.*s\n", i, CASES[i].name,
                        got, want, (int)n, line);
            failed++;
        }
        (*seen)++;
        line = eol ? eol + 1 : line + n;
    }
    return failed;
}

static void test_corpus(void **state)
{
    (void)state;
    char corpus[1200], good[1200];
    char der[N_CASES][1200];
    const char *args[N_CASES + 4] = {"lint", "--json"};
    size_t pem_cases[N_CASES], n_pem = 0, n_der = 0, n_bad = 0, n_good = 0;
    snprintf(corpus, sizeof corpus, "%s/corpus.pem", g.dir);
    snprintf(good, sizeof good, "%s/good.pem", g.dir);
    /* Every certificate OpenSSL can read goes into one PEM file; those it cannot (e.g. a
     * non-minimal serial INTEGER) are linted as DER files, which mailca reads itself. */
    for (size_t i = 0; i < N_CASES; i++) {
        uint8_t *d = NULL;
        size_t len = build(&CASES[i], &d);
        if (mc_it_append_pem(corpus, d, len) == 0) {
            pem_cases[n_pem++] = i;
        } else {
            snprintf(der[n_der], sizeof der[0], "%s/c%02zu.der", g.dir, i);
            assert_int_equal(mc_it_write_file(der[n_der], d, len), 0);
            args[3 + n_der] = der[n_der];
            n_der++;
        }
        if (!CASES[i].ids[0]) {
            assert_int_equal(mc_it_append_pem(good, d, len), 0);
            n_good++;
        } else {
            n_bad++;
        }
        free(d);
    }
    assert_true(n_bad >= 40);
    assert_true(n_good >= 8);
    args[2] = corpus;
    args[3 + n_der] = NULL;

    mc_it_run r;
    assert_int_equal(mc_it_mailca_argv(&r, 120, args), 1); /* error findings: exit 1 */
    size_t seen = 0;
    int failed = judge(r.out, pem_cases, n_pem, &seen);
    mc_it_run_free(&r);
    assert_int_equal(failed, 0);
    assert_int_equal(seen, N_CASES);

    /* Exit status 0 only when no error finding; the text output names the ids too. */
    assert_int_equal(mc_it_mailca(&r, "lint", "--json", good, NULL), 0);
    mc_it_run_free(&r);
    assert_true(n_der > 0);
    assert_int_equal(mc_it_mailca(&r, "lint", der[0], NULL), 1);
    assert_non_null(strstr(r.out, "e_serial_number_not_minimal_der"));
    mc_it_run_free(&r);
}

/* `mailca lint --at T` applies the rules in force at T instead of at notBefore: a Legacy
 * certificate issued after the sunset (SBR 7.1.6.1) is clean at 2025-07-14, in error from
 * 2025-07-15; a T that is not a time is a usage error. */
static void test_at(void **state)
{
    (void)state;
    char f[1200];
    ccase c = {.name = "legacy", .ids = "e_smime_legacy_generation_prohibited"};
    c.gen = MC_GEN_LEGACY;
    uint8_t *d = NULL;
    size_t len = build(&c, &d);
    snprintf(f, sizeof f, "%s/legacy.pem", g.dir);
    assert_int_equal(mc_it_append_pem(f, d, len), 0);
    free(d);
    mc_it_run r;
    assert_int_equal(mc_it_mailca(&r, "lint", f, NULL), 1);
    assert_non_null(strstr(r.out, c.ids));
    mc_it_run_free(&r);
    assert_int_equal(mc_it_mailca(&r, "lint", "--at", "2025-07-14", f, NULL), 0);
    assert_null(strstr(r.out, c.ids));
    mc_it_run_free(&r);
    assert_int_equal(mc_it_mailca(&r, "lint", "--json", "--at", "2025-07-15T00:00:00Z", f, NULL),
                     1);
    assert_non_null(strstr(r.out, c.ids));
    mc_it_run_free(&r);
    assert_int_equal(mc_it_mailca(&r, "lint", "--at", "soon", f, NULL), 2);
    mc_it_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_at),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
