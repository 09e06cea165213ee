/*
 * Acceptance test of issue 3: certificates mailca issues work in real S/MIME software.
 *
 * For every profile x subscriber key type x usage (the usage changes keyUsage, SBR 7.1.2.3(e)),
 * the test makes the subscriber key itself, orders a certificate through `mailca batch` (CA keys
 * in SoftHSM2, made by `mailca init`), and then lets Debian's own clients judge the leaf against
 * the mailca root:
 *
 *   - NSS (vfychain + certutil, the library Thunderbird uses): the leaf validates for e-mail
 *     signing exactly when it has digitalSignature, for e-mail encryption when its key can
 *     encrypt (keyEncipherment for RSA, keyAgreement for EC) and not for RSA signing-only
 *     leaves, and for TLS client authentication exactly when the profile lists clientAuth, the
 *     key can sign and the issuing CA's extKeyUsage allows clientAuth; without the mailca root
 *     in the database nothing validates.
 *   - OpenSSL (`openssl verify`, `openssl cms`): the same purposes as far as OpenSSL can judge
 *     them; a message signed with the leaf key verifies against the root; a message encrypted to
 *     the leaf decrypts with the leaf key.
 *   - gpgsm (GnuPG, its own gpg-agent started and killed here): imports root, issuing CA and leaf
 *     and verifies the OpenSSL signature, warning exactly for leaves that may not sign; for RSA
 *     it encrypts to encryption certificates (OpenSSL decrypts) and refuses signing-only ones,
 *     imports the key as PKCS#12 and signs only with leaves that may sign (OpenSSL verifies).
 *   - NSS CMS (cmsutil, Thunderbird's S/MIME code): trusts OpenSSL's signatures exactly for
 *     leaves that may sign; for RSA it imports the key as PKCS#12, signs and encrypts, and
 *     OpenSSL and NSS read the results.
 *
 * Every client is run on every case. Where a client cannot judge a combination (DESIGN.md "Real
 * S/MIME clients"), the test asserts nothing about it and the comment at the check says why.
 * Adding a profile is one row of PROFILES, a key type one row of KEYS.
 *
 * All eight profiles are covered with every subscriber key type (P-256, P-384, P-521, RSA-2048,
 * -3072, -4096, Ed25519, Ed448): mailbox with every usage, organization, sponsor and individual
 * (strict and multipurpose, with the subject attributes each requires) with one certificate per key
 * type. Their orders give the mailbox domain as a U-label IDN (bücher.example): the engine converts
 * it to its A-label (SBR 7.1.4.2.1), the certificate's rfc822Name must carry the A-label form, and
 * the clients find the certificate by it. Two more rows per group: organization and sponsor
 * profiles with qcStatements (SBR 7.1.2.3(k)), and mailboxes with a non-ASCII local part, which
 * the certificate carries as an otherName SmtpUTF8Mailbox only (RFC 9598, SBR 7.1.4.2.1).
 *
 * X25519/X448 key-management certificates are not tested: SBR 6.1.5 and 7.1.3.1 allow no such
 * subscriber key (only id-Ed25519/id-Ed448 for curve25519/curve448, signing only per 7.1.2.3(e)),
 * so mailca refuses them (test_lint, "X25519 SPKI").
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
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support/clients.h"
#include "support/csrgen.h"
#include "support/itutil.h"

/* Subject attributes of the orders (docs/orders.md "Subject"): key, value, ..., NULL. The CA
 * verified them (SBR 3.2.3, 3.2.4); the profiles decide which are required. */
static const char *const SUBJ_ORG[] = {"organization_name",
                                       "Beispiel GmbH",
                                       "organization_identifier",
                                       "NTRDE-DER3306.HRB12345",
                                       "country",
                                       "DE",
                                       "locality",
                                       "M\xc3\xbcnchen",
                                       NULL};
static const char *const SUBJ_SPONSOR[] = {"organization_name",
                                           "Beispiel GmbH",
                                           "organization_identifier",
                                           "NTRDE-DER3306.HRB12345",
                                           "country",
                                           "DE",
                                           "given_name",
                                           "J\xc3\xb6rg",
                                           "surname",
                                           "M\xc3\xbcller",
                                           "title",
                                           "Engineer",
                                           NULL};
static const char *const SUBJ_INDIVIDUAL[] = {"given_name", "Ada", "surname", "Lovelace",
                                              "country",    "GB",  NULL};
/* SBR 7.1.4.2.2(a)(f): a pseudonym as commonName, without given name or surname */
static const char *const SUBJ_PSEUDONYM[] = {
    "pseudonym", "Countess of Code", "common_name", "pseudonym", "country", "GB", NULL};

/* qcStatements (SBR 7.1.2.3(k), ETSI EN 319 412-5 4) appended to a shipped profile: the
 * shipped ones carry none (only a CA issuing EU qualified certificates may say so). */
#define QC_ESEAL                                                                                   \
    "qc_statements:\n  compliance: true\n  type: eseal\n  semantics: legal\n"                      \
    "  pds:\n    en: https://pki.example.com/pds-en.pdf\n  legislation: [CH]\n"
#define QC_ESIGN                                                                                   \
    "qc_statements:\n  compliance: true\n  sscd: true\n  type: esign\n  semantics: natural\n"      \
    "  retention_years: 15\n" NON_REPUDIATION
/* what a qualified eSign profile adds (ETSI EN 319 412-2 4.3.2): the clients must take it */
#define NON_REPUDIATION "non_repudiation: true\n"

/* A profile under test. client_auth: its extended_key_usages has clientAuth. subject: the
 * orders' subject attributes (NULL: none). idn: the orders' mailbox domain is a U-label IDN.
 * core_keys: one certificate per key type (dual use, or the key's only usage), which keeps the
 * test under a minute; the other rows every usage of every key type. base, qc: the profile is the
 * shipped profile base renamed to name with the qc_statements qc appended (NULL: name is the
 * shipped file itself). utf8: the orders' mailbox has a non-ASCII local part, so the certificate
 * carries it as an otherName SmtpUTF8Mailbox (RFC 9598, SBR 7.1.4.2.1); such rows and qc rows issue
 * one dual-use certificate per key in keys (a NULL-terminated list of KEYS names). */
typedef struct profile_row {
    const char *name;
    int client_auth;
    const char *const *subject;
    int idn;
    int core_keys;
    const char *base;
    const char *qc;
    int utf8;
    const char *const *keys;
} profile_row;

static const char *const FEW_KEYS[] = {"p256", "rsa2048", NULL};

static const profile_row PROFILES[] = {
    {"mailbox-strict", 0, NULL, 0, 0, NULL, NULL, 0,
     NULL}, /* SBR 7.1.2.3(f) Strict: emailProtection only */
    {"mailbox-multipurpose", 1, NULL, 0, 0, NULL, NULL, 0,
     NULL}, /* Multipurpose: emailProtection, clientAuth */
    {"organization-strict", 0, SUBJ_ORG, 1, 1, NULL, NULL, 0, NULL},
    {"organization-multipurpose", 1, SUBJ_ORG, 1, 1, NULL, NULL, 0, NULL},
    {"sponsor-strict", 0, SUBJ_SPONSOR, 1, 1, NULL, NULL, 0, NULL},
    {"sponsor-multipurpose", 1, SUBJ_SPONSOR, 1, 1, NULL, NULL, 0, NULL},
    {"individual-strict", 0, SUBJ_INDIVIDUAL, 1, 1, NULL, NULL, 0, NULL},
    {"individual-multipurpose", 1, SUBJ_PSEUDONYM, 1, 1, NULL, NULL, 0, NULL},
    /* qcStatements: eseal for organizations, esign for natural persons */
    {"organization-strict-qc", 0, SUBJ_ORG, 1, 1, "organization-strict", QC_ESEAL, 0, FEW_KEYS},
    {"sponsor-multipurpose-qc", 1, SUBJ_SPONSOR, 1, 1, "sponsor-multipurpose", QC_ESIGN, 0,
     FEW_KEYS},
    /* SmtpUTF8Mailbox: ASCII and IDN domain */
    {"mailbox-strict", 0, NULL, 0, 0, NULL, NULL, 1, FEW_KEYS},
    {"sponsor-strict", 0, SUBJ_SPONSOR, 1, 1, NULL, NULL, 1, FEW_KEYS},
};
#define N_PROFILES (sizeof PROFILES / sizeof PROFILES[0])

/* The IDN mailbox domain as ordered (U-label) and as certified (A-label, RFC 9598 3). */
#define IDN_DOMAIN_U                                                                               \
    "b\xc3\xbc"                                                                                    \
    "cher.example.com"
#define IDN_DOMAIN_A "xn--bcher-kva.example.com"

/* A subscriber key type. only_profile / only_usage (NULL: all) keep slow or restricted rows to
 * the cases that make sense. */
typedef struct key_row {
    const char *name;
    mc_keytype type;
    unsigned rsa_bits;
    const char *only_profile;
    const char *only_usage;
    const char *md; /* digest for message signatures (gpgsm wants SHA-384 with P-384) */
} key_row;

static const key_row KEYS[] = {
    {"p256", MC_KEY_P256, 0, NULL, NULL, "sha256"},
    {"p384", MC_KEY_P384, 0, NULL, NULL, "sha384"},
    {"p521", MC_KEY_P521, 0, NULL, NULL, "sha512"},
    {"rsa2048", MC_KEY_RSA, 2048, NULL, NULL, "sha256"},
    {"rsa3072", MC_KEY_RSA, 3072, NULL, NULL, "sha256"},
    {"rsa4096", MC_KEY_RSA, 4096, NULL, "dual", "sha256"}, /* one usage: RSA-4096 is slow */
    {"ed25519", MC_KEY_ED25519, 0, NULL, "signing", NULL}, /* SBR 7.1.2.3(e): signing only */
    {"ed448", MC_KEY_ED448, 0, NULL, "signing", NULL},     /* SBR 7.1.2.3(e): signing only */
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

static const char *const USAGES[] = {"signing", "key-management", "dual"};

#define MAX_CASES 128

typedef struct tcase {
    char id[96]; /* profile/key/usage, the order id too */
    const profile_row *prof;
    const key_row *key;
    const char *usage;
    int signs;    /* keyUsage has digitalSignature */
    int encrypts; /* keyUsage has keyEncipherment (RSA) or keyAgreement (EC) */
    char dir[700];
    char leaf[760], keyf[760], msg[760];
    char mailbox[64];       /* as the certificate carries it (A-label domain) */
    char order_mailbox[64]; /* as the order gave it */
    char fpr[48];           /* SHA-1 fingerprint, hex (gpgsm selects SmtpUTF8 leaves by it) */
    /* The order's subject: the profile's attributes and a serialNumber of its own (NSS keeps
     * one nickname per subject DN, so leaves must not share one), key, value, ..., NULL. */
    const char *subject[24];
    char serial[16];
    X509 *x;
    /* Set by test_openssl_cms_sign for gpgsm and NSS: the detached signature OpenSSL made. */
    char sig[760];
    int have_sig;
    char nick[16]; /* its NSS nickname */
} tcase;

static struct {
    mc_it_ca ca;
    char root[700], ica[700], nss[700];
    EVP_PKEY *keys[N_KEYS];
    tcase c[MAX_CASES];
    size_t n;
    mc_cl_gnupg gpg;
    int ica_client_auth; /* the issuing CA's extKeyUsage lets it issue clientAuth leaves */
    char *fails;         /* failures of the running test, one line each */
    size_t fails_len;
    int n_checks; /* assertions made by the running test */
} g;

static int is_rsa(const tcase *t)
{
    return t->key->type == MC_KEY_RSA;
}

static int is_ec(const tcase *t)
{
    return t->key->type == MC_KEY_P256 || t->key->type == MC_KEY_P384 ||
           t->key->type == MC_KEY_P521;
}

/* Whether the whole key list of a row names this key row. */
static int row_has_key(const profile_row *p, const key_row *k)
{
    for (size_t i = 0; p->keys[i]; i++)
        if (strcmp(p->keys[i], k->name) == 0)
            return 1;
    return 0;
}

static int is_ed(const tcase *t)
{
    return t->key->type == MC_KEY_ED25519 || t->key->type == MC_KEY_ED448;
}

/* Records a failure; the test reports them all at its end (one failing client case does not
 * hide the others). */
static void note(const tcase *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const tcase *t, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(line, sizeof line, "%s: ", t ? t->id : "-");
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t l = strlen(line);
    char *p = realloc(g.fails, g.fails_len + l + 2);
    assert_non_null(p);
    g.fails = p;
    memcpy(g.fails + g.fails_len, line, l);
    g.fails_len += l;
    g.fails[g.fails_len++] = '\n';
    g.fails[g.fails_len] = '\0';
}

static void begin(void)
{
    free(g.fails);
    g.fails = NULL;
    g.fails_len = 0;
    g.n_checks = 0;
}

static void end(const char *what)
{
    assert_true(g.n_checks > 0);
    if (g.fails_len) {
        /* cmocka cuts long messages: the whole list goes to stderr first. */
        fprintf(stderr, "%s failures:\n%s", what, g.fails);
        fail_msg("%s: failures listed above", what);
    }
    fprintf(stderr, "%s: %d checks over %zu certificates\n", what, g.n_checks, g.n);
}

/* Runs a client; returns its exit status and keeps its output in r (caller frees). */
static int run(mc_it_run *r, const char *const *argv)
{
    return mc_cl_exec(r, MC_CL_TIMEOUT, argv);
}

/* Checks that a client's verdict (ok) is the one expected (want), noting the output if not. */
static void expect(const tcase *t, const char *what, int ok, int want, const mc_it_run *r)
{
    g.n_checks++;
    if (ok != want)
        note(t, "%s: %s, expected it to %s (exit %d%s)\n  stdout: %.1500s\n  stderr: %.1500s", what,
             ok ? "accepted" : "refused", want ? "accept" : "refuse", r->status,
             r->timed_out ? ", timed out" : "", r->out, r->err);
}

/* out = dir/name; the test fails when it does not fit. */
static void join(char *out, size_t cap, const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    assert_true(dl + 1 + nl < cap);
    memmove(out, dir, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, name, nl + 1);
}

/* ---- setup: one CA, one key per key type, one batch with every case ---- */

static int build_cases(void)
{
    for (size_t p = 0; p < N_PROFILES; p++)
        for (size_t k = 0; k < N_KEYS; k++)
            for (size_t u = 0; u < sizeof USAGES / sizeof USAGES[0]; u++) {
                const key_row *kr = &KEYS[k];
                if (kr->only_profile && strcmp(kr->only_profile, PROFILES[p].name) != 0)
                    continue;
                if (kr->only_usage && strcmp(kr->only_usage, USAGES[u]) != 0)
                    continue;
                /* rows with a key list and core_keys rows: one certificate per key type (dual
                 * use, the most the key allows; the usage changes keyUsage the same way in
                 * every profile, and the mailbox rows cover every usage) */
                if (PROFILES[p].keys && !row_has_key(&PROFILES[p], kr))
                    continue;
                if ((PROFILES[p].keys || PROFILES[p].core_keys) && !kr->only_usage &&
                    strcmp(USAGES[u], "dual") != 0)
                    continue;
                if (g.n == MAX_CASES)
                    return -1;
                tcase *t = &g.c[g.n];
                t->prof = &PROFILES[p];
                t->key = kr;
                t->usage = USAGES[u];
                t->signs = strcmp(t->usage, "key-management") != 0;
                t->encrypts = strcmp(t->usage, "signing") != 0;
                snprintf(t->id, sizeof t->id, "%s%s/%s/%s", t->prof->name,
                         t->prof->utf8 ? "-utf8" : "", kr->name, t->usage);
                /* a non-ASCII local part: "jörg.caseN" */
                const char *lp = t->prof->utf8 ? "j\xc3\xb6rg.case" : "case";
                if (PROFILES[p].idn) {
                    snprintf(t->mailbox, sizeof t->mailbox, "%s%zu@%s", lp, g.n, IDN_DOMAIN_A);
                    snprintf(t->order_mailbox, sizeof t->order_mailbox, "%s%zu@%s", lp, g.n,
                             IDN_DOMAIN_U);
                } else {
                    snprintf(t->mailbox, sizeof t->mailbox, "%s%zu@clients.example.com", lp, g.n);
                    memcpy(t->order_mailbox, t->mailbox, sizeof t->mailbox);
                }
                snprintf(t->nick, sizeof t->nick, "c%02zu", g.n);
                size_t ns = 0;
                for (; PROFILES[p].subject && PROFILES[p].subject[ns]; ns++) {
                    assert_true(ns + 3 < sizeof t->subject / sizeof t->subject[0]);
                    t->subject[ns] = PROFILES[p].subject[ns];
                }
                if (PROFILES[p].subject) {
                    /* with semanticsId-Natural a natural person identifier (ETSI EN 319 412-1
                     * 5.1.3: e_qc_natural_serial_number_format) */
                    snprintf(t->serial, sizeof t->serial,
                             PROFILES[p].qc && strstr(PROFILES[p].qc, "semantics: natural")
                                 ? "PNODE-%zu"
                                 : "CASE-%zu",
                             g.n);
                    t->subject[ns++] = "serial_number";
                    t->subject[ns++] = t->serial;
                }
                t->subject[ns] = NULL;
                join(t->dir, sizeof t->dir, g.ca.dir, t->nick);
                join(t->leaf, sizeof t->leaf, t->dir, "leaf.pem");
                join(t->keyf, sizeof t->keyf, t->dir, "key.pem");
                join(t->msg, sizeof t->msg, t->dir, "msg.txt");
                g.n++;
            }
    return 0;
}

/* Points the CA's config at a folder holding copies of exactly the profiles of PROFILES (from
 * the source tree's profiles/, file <name>.yaml), so that profiles other engineers are adding
 * meanwhile cannot change what this test issues. */
static int use_profiles(const char *cfg)
{
    char dir[800], src[1200], dst[1200];
    int rc = -1;
    size_t len = 0;
    snprintf(dir, sizeof dir, "%s/profiles", g.ca.dir);
    if (mkdir(dir, 0700) != 0)
        return -1;
    for (size_t p = 0; p < N_PROFILES; p++) {
        size_t n = 0;
        const profile_row *pr = &PROFILES[p];
        snprintf(src, sizeof src, "%s/profiles/%s.yaml", MAILCA_SOURCE_DIR,
                 pr->base ? pr->base : pr->name);
        snprintf(dst, sizeof dst, "%s/%s.yaml", dir, pr->name);
        uint8_t *y = mc_it_read_file(src, &n);
        int w = -1;
        if (y && pr->base) {
            /* the base profile renamed, with the qc_statements appended */
            char old[128], *at;
            snprintf(old, sizeof old, "\nname: %s\n", pr->base);
            at = strstr((char *)y, old);
            FILE *f = at ? fopen(dst, "wb") : NULL;
            if (f) {
                int ok = fprintf(f, "%.*s\nname: %s\n%s%s", (int)(at - (char *)y), (char *)y,
                                 pr->name, at + strlen(old), pr->qc) > 0;
                w = fclose(f) == 0 && ok ? 0 : -1;
            }
        } else if (y) {
            w = mc_it_write_file(dst, y, n);
        }
        free(y);
        if (w != 0) {
            fprintf(stderr, "cannot copy %s\n", src);
            return -1;
        }
    }
    uint8_t *c = mc_it_read_file(cfg, &len);
    /* engine.profiles (other sections may have a profiles key of their own) */
    char *engine = c ? strstr((char *)c, "\nengine:\n") : NULL;
    char *line = engine ? strstr(engine, "\n  profiles: ") : NULL;
    char *eol = line ? strchr(line + 1, '\n') : NULL;
    FILE *f = eol ? fopen(cfg, "wb") : NULL;
    if (f) {
        int ok = fprintf(f, "%.*s\n  profiles: \"%s\"%s", (int)(line - (char *)c), (char *)c, dir,
                         eol) > 0;
        rc = fclose(f) == 0 && ok ? 0 : -1;
    }
    if (rc != 0)
        fprintf(stderr, "cannot set engine.profiles in %s\n", cfg);
    free(c);
    return rc;
}

/* Whether gn is the SmtpUTF8Mailbox otherName (RFC 9598 3: UTF8String) holding exactly mb. */
static int is_smtputf8(const GENERAL_NAME *gn, const char *mb)
{
    if (!gn || gn->type != GEN_OTHERNAME ||
        OBJ_obj2nid(gn->d.otherName->type_id) != NID_id_on_SmtpUTF8Mailbox)
        return 0;
    const ASN1_TYPE *v = gn->d.otherName->value;
    return v && v->type == V_ASN1_UTF8STRING && (size_t)v->value.utf8string->length == strlen(mb) &&
           memcmp(v->value.utf8string->data, mb, strlen(mb)) == 0;
}

/* The certificate carries what was ordered: the mailbox as the only SAN entry, an rfc822Name
 * with the A-label domain (SBR 7.1.4.2.1, RFC 9598 3) or, for a non-ASCII local part, an
 * otherName SmtpUTF8Mailbox (and then no rfc822Name, no emailAddress), every ordered subject
 * attribute, a non-critical qcStatements exactly when the profile has qc_statements, and the
 * key usage and key purposes the profile and usage call for. */
static int check_names(const tcase *t)
{
    static const struct {
        const char *key;
        int nid;
    } attrs[] = {{"organization_name", NID_organizationName},
                 {"organization_identifier", NID_organizationIdentifier},
                 {"country", NID_countryName},
                 {"locality", NID_localityName},
                 {"given_name", NID_givenName},
                 {"surname", NID_surname},
                 {"pseudonym", NID_pseudonym},
                 {"title", NID_title},
                 {"serial_number", NID_serialNumber}};
    int rc = -1;
    GENERAL_NAMES *san = X509_get_ext_d2i(t->x, NID_subject_alt_name, NULL, NULL);
    const GENERAL_NAME *gn =
        san && sk_GENERAL_NAME_num(san) == 1 ? sk_GENERAL_NAME_value(san, 0) : NULL;
    const ASN1_IA5STRING *e = gn && gn->type == GEN_EMAIL ? gn->d.rfc822Name : NULL;
    if (t->prof->utf8 ? !is_smtputf8(gn, t->mailbox)
                      : (!e || (size_t)e->length != strlen(t->mailbox) ||
                         memcmp(e->data, t->mailbox, strlen(t->mailbox)) != 0)) {
        fprintf(stderr, "%s: the SAN is not the one %s %s\n", t->id,
                t->prof->utf8 ? "SmtpUTF8Mailbox" : "rfc822Name", t->mailbox);
        goto done;
    }
    const X509_NAME *subj = X509_get_subject_name(t->x);
    if (t->prof->utf8 && X509_NAME_get_index_by_NID(subj, NID_pkcs9_emailAddress, -1) >= 0) {
        fprintf(stderr, "%s: an emailAddress for a non-ASCII mailbox\n", t->id);
        goto done;
    }
    int qc = X509_get_ext_by_NID(t->x, NID_qcStatements, -1);
    if ((qc >= 0) != (t->prof->qc != NULL) ||
        (qc >= 0 && X509_EXTENSION_get_critical(X509_get_ext(t->x, qc)))) {
        fprintf(stderr, "%s: qcStatements %s\n", t->id,
                qc < 0        ? "missing"
                : t->prof->qc ? "critical"
                              : "present");
        goto done;
    }
    /* nonRepudiation beside digitalSignature exactly when the profile asks for it */
    int nr_want = t->signs && t->prof->qc && strstr(t->prof->qc, NON_REPUDIATION);
    if (((X509_get_key_usage(t->x) & KU_NON_REPUDIATION) != 0) != nr_want) {
        fprintf(stderr, "%s: nonRepudiation %s\n", t->id, nr_want ? "missing" : "present");
        goto done;
    }
    /* clientAuth where the profile lists it and the key can sign or agree (RFC 5280
     * 4.2.1.12): not on RSA key-management leaves */
    int ca_want = t->prof->client_auth && (t->signs || !is_rsa(t));
    if (((X509_get_extended_key_usage(t->x) & XKU_SSL_CLIENT) != 0) != ca_want) {
        fprintf(stderr, "%s: clientAuth %s\n", t->id, ca_want ? "missing" : "present");
        goto done;
    }
    for (size_t i = 0; t->subject[i]; i += 2)
        for (size_t a = 0; a < sizeof attrs / sizeof attrs[0]; a++) {
            if (strcmp(attrs[a].key, t->subject[i]) != 0)
                continue;
            int at = X509_NAME_get_index_by_NID(subj, attrs[a].nid, -1);
            const ASN1_STRING *v =
                at < 0 ? NULL : X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at));
            const char *want = t->subject[i + 1];
            if (!v || (size_t)ASN1_STRING_length(v) != strlen(want) ||
                memcmp(ASN1_STRING_get0_data(v), want, strlen(want)) != 0) {
                fprintf(stderr, "%s: subject %s is not \"%s\"\n", t->id, attrs[a].key, want);
                goto done;
            }
        }
    rc = 0;
done:
    GENERAL_NAMES_free(san);
    return rc;
}

static int issue_all(void)
{
    char orders[800], results[800], cfg[800];
    int rc = -1;
    uint8_t *csr[N_KEYS] = {0};
    size_t csr_len[N_KEYS] = {0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mc_it_results res = {0};
    mc_it_run r = {0};

    for (size_t k = 0; k < N_KEYS; k++) {
        g.keys[k] = mc_csrgen_key(KEYS[k].type, KEYS[k].rsa_bits);
        csr[k] = g.keys[k] ? mc_csrgen_csr(g.keys[k], NULL, 0, &csr_len[k]) : NULL;
        if (!csr[k]) {
            fprintf(stderr, "cannot make a %s key and CSR\n", KEYS[k].name);
            goto done;
        }
    }
    int64_t validated = (int64_t)time(NULL) - 3600;
    for (size_t i = 0; i < g.n; i++) {
        tcase *t = &g.c[i];
        size_t k = (size_t)(t->key - KEYS);
        mc_csrgen_mailbox mb = {t->order_mailbox, "3.2.2.2", validated, "rv-clients"};
        mc_csrgen_order o = {.id = t->id,
                             .account = "acct-clients",
                             .profile = t->prof->name,
                             .usage = t->usage,
                             .mailboxes = &mb,
                             .n_mailboxes = 1,
                             .csr = csr[k],
                             .csr_len = csr_len[k]};
        /* the identity validations its type rests on (SBR 3.2.3, 3.2.4) */
        mc_csrgen_order_identity(&o, validated);
        if (mc_cl_order_pack(&o, t->subject, &sb) != 0)
            goto done;
    }
    snprintf(orders, sizeof orders, "%s/orders.msgpack", g.ca.dir);
    snprintf(results, sizeof results, "%s/results.msgpack", g.ca.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca.ca);
    if (mc_it_write_file(orders, sb.data, sb.size) != 0 || use_profiles(cfg) != 0)
        goto done;
    if (mc_it_mailca(&r, "batch", "--config", cfg, orders, results, NULL) != 0) {
        fprintf(stderr, "mailca batch: exit %d: %s\n", r.status, r.err);
        goto done;
    }
    if (mc_it_results_load(results, &res) != 0 || res.n != g.n) {
        fprintf(stderr, "results: %zu for %zu orders\n", res.n, g.n);
        goto done;
    }
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *rr = &res.r[i];
        if (rr->seq >= g.n || strcmp(rr->order_id, g.c[rr->seq].id) != 0) {
            fprintf(stderr, "result %zu: seq %llu, order %s out of place\n", i,
                    (unsigned long long)rr->seq, rr->order_id);
            goto done;
        }
        tcase *t = &g.c[rr->seq];
        if (rr->status != MC_STATUS_ISSUED) {
            fprintf(stderr, "%s: %s: %s: %s: %s [%s]\n", t->id, mc_status_name(rr->status),
                    mc_err_name(rr->error.code), rr->error.field, rr->error.message,
                    rr->error.rule);
            goto done;
        }
        const unsigned char *p = rr->cert;
        t->x = d2i_X509(NULL, &p, (long)rr->cert_len);
        if (!t->x || check_names(t) != 0)
            goto done;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdl = 0;
        if (!X509_digest(t->x, EVP_sha1(), md, &mdl))
            goto done;
        for (unsigned j = 0; j < mdl && 2 * j + 2 < sizeof t->fpr; j++)
            snprintf(t->fpr + 2 * j, 3, "%02X", md[j]);
        size_t k = (size_t)(t->key - KEYS);
        char body[256];
        int bl = snprintf(body, sizeof body,
                          "Content-Type: text/plain\r\n\r\nHello from mailca, %s.\r\n", t->id);
        if (!t->x || mkdir(t->dir, 0700) != 0 || mc_cl_cert_pem(t->leaf, t->x, NULL) != 0 ||
            mc_cl_key_pem(t->keyf, g.keys[k]) != 0 || mc_it_write_file(t->msg, body, (size_t)bl))
            goto done;
    }
    rc = 0;
done:
    mc_it_run_free(&r);
    mc_it_results_free(&res);
    msgpack_sbuffer_destroy(&sb);
    for (size_t k = 0; k < N_KEYS; k++)
        free(csr[k]);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    static const char *const tools[] = {"certutil", "vfychain", "cmsutil", "pk12util",
                                        "openssl",  "gpgsm",    "gpgconf", "gpg-agent"};
    char path[1024];
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (mc_cl_which(tools[i], path, sizeof path) != 0) {
            fprintf(stderr, "%s is not installed (scripts/install-deps.sh installs it)\n",
                    tools[i]);
            return -1;
        }
    if (mc_it_ca_setup("it-clients-", &g.ca) != 0)
        return -1;
    snprintf(g.root, sizeof g.root, "%s/root.pem", g.ca.ca);
    snprintf(g.ica, sizeof g.ica, "%s/issuing-ca.pem", g.ca.ca);
    if (build_cases() != 0 || issue_all() != 0)
        return -1;
    /* Multipurpose leaves may carry clientAuth, but relying parties also want it allowed by the
     * issuing CA's extKeyUsage (SBR 7.1.2.2(g): emailProtection SHALL be present, other values
     * MAY). What the CA allows decides what the TLS client checks below expect. */
    g.ica_client_auth = !(X509_get_extension_flags(g.ca.ica) & EXFLAG_XKUSAGE) ||
                        (X509_get_extended_key_usage(g.ca.ica) & XKU_SSL_CLIENT);

    /* NSS: the root trusted as a CA for TLS clients and e-mail (what Thunderbird's built-in or
     * user-imported root would be), the issuing CA present without trust of its own. */
    snprintf(g.nss, sizeof g.nss, "%s/nssdb", g.ca.dir);
    if (mc_cl_nssdb_create(g.nss) != 0 ||
        mc_cl_nssdb_add(g.nss, "mailca root", g.root, "CT,C,") != 0 ||
        mc_cl_nssdb_add(g.nss, "mailca issuing", g.ica, ",,") != 0)
        return -1;

    /* GnuPG: a home of our own with the root in trustlist.txt and our own gpg-agent; root and
     * issuing CA imported (the leaves are imported by the test). */
    snprintf(path, sizeof path, "%s/gnupg", g.ca.dir);
    if (mc_cl_gnupg_start(&g.gpg, path, g.ca.root) != 0)
        return -1;
    mc_it_run r;
    const char *imp[] = {"gpgsm",    "--homedir", g.gpg.home, "--batch",
                         "--import", g.root,      g.ica,      NULL};
    int st = run(&r, imp);
    if (st != 0) {
        fprintf(stderr, "gpgsm --import root, issuing CA: exit %d: %s\n", st, r.err);
        mc_cl_gnupg_stop(&g.gpg); /* cmocka skips the group teardown after a failed setup */
    }
    mc_it_run_free(&r);
    return st == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_cl_gnupg_stop(&g.gpg);
    for (size_t i = 0; i < g.n; i++)
        X509_free(g.c[i].x);
    for (size_t k = 0; k < N_KEYS; k++)
        EVP_PKEY_free(g.keys[k]);
    X509_free(g.ca.root);
    X509_free(g.ca.ica);
    EVP_PKEY_free(g.ca.key);
    free(g.ca.csr);
    free(g.fails);
    if (g.ca.dir[0] && !getenv("MAILCA_KEEP_TMP"))
        mc_it_rmtree(g.ca.dir);
    return 0;
}

/* ---- NSS ---- */

/* vfychain against the trust of the database in dir: 0 = TLS client, 4 = e-mail signer, 5 =
 * e-mail recipient. Returns 1 when NSS says the chain is good for that usage. */
static int nss_verify_in(const char *dir, const tcase *t, const char *usage, mc_it_run *r)
{
    char db[760];
    snprintf(db, sizeof db, "sql:%s", dir);
    const char *argv[] = {"vfychain", "-d", db, "-u", usage, "-a", t->leaf, NULL};
    int st = run(r, argv);
    return st == 0 && (strstr(r->out, "Chain is good!") || strstr(r->err, "Chain is good!"));
}

static int nss_verify(const tcase *t, const char *usage, mc_it_run *r)
{
    return nss_verify_in(g.nss, t, usage, r);
}

static void test_nss(void **state)
{
    (void)state;
    begin();
    /* The trust anchor matters: a database without the mailca root refuses the first leaf
     * (which may sign). */
    char empty[800];
    mc_it_run r0;
    join(empty, sizeof empty, g.ca.dir, "nssdb-empty");
    assert_int_equal(mc_cl_nssdb_create(empty), 0);
    assert_true(g.n > 0 && g.c[0].signs);
    expect(&g.c[0], "NSS vfychain e-mail signer without the root",
           nss_verify_in(empty, &g.c[0], "4", &r0), 0, &r0);
    mc_it_run_free(&r0);
    for (size_t i = 0; i < g.n; i++) {
        const tcase *t = &g.c[i];
        mc_it_run r;
        /* NSS 3.87 cannot sign or verify messages with Ed25519 or Ed448 (DESIGN.md), but
         * validating an EdDSA leaf's chain and keyUsage needs no EdDSA (the issuing CA signs
         * with its own key), so Ed25519 and Ed448 leaves are judged here like the others. */
        /* certUsageEmailSigner: chain to a root trusted for e-mail, emailProtection, and
         * digitalSignature (or nonRepudiation, which mailca never sets). */
        int ok = nss_verify(t, "4", &r);
        expect(t, "NSS vfychain e-mail signer", ok, t->signs, &r);
        mc_it_run_free(&r);
        /* certUsageEmailRecipient: keyEncipherment for RSA, keyAgreement for EC keys. NSS also
         * accepts an EC key with digitalSignature only (CERT_CheckKeyUsage: "accept either
         * signature or agreement"), so it cannot tell EC signing-only leaves from encryption
         * ones: for those nothing is asserted. */
        ok = nss_verify(t, "5", &r);
        if (t->encrypts || !is_ec(t))
            expect(t, "NSS vfychain e-mail recipient", ok, t->encrypts, &r);
        mc_it_run_free(&r);
        /* certUsageSSLClient: only Multipurpose profiles add clientAuth (SBR 7.1.2.3(f)), NSS
         * wants digitalSignature for it, and the issuing CA's extKeyUsage must allow it too. */
        ok = nss_verify(t, "0", &r);
        expect(t, "NSS vfychain TLS client", ok,
               t->prof->client_auth && t->signs && g.ica_client_auth, &r);
        mc_it_run_free(&r);
    }
    end("NSS");
}

/* ---- OpenSSL ---- */

static int ossl_verify(const tcase *t, const char *purpose, mc_it_run *r)
{
    const char *argv[] = {"openssl", "verify",   "-CAfile", g.root,  "-untrusted",
                          g.ica,     "-purpose", purpose,   t->leaf, NULL};
    int st = run(r, argv);
    return st == 0 && strstr(r->out, ": OK") != NULL;
}

static void test_openssl_verify(void **state)
{
    (void)state;
    begin();
    for (size_t i = 0; i < g.n; i++) {
        const tcase *t = &g.c[i];
        mc_it_run r;
        int ok = ossl_verify(t, "smimesign", &r);
        expect(t, "openssl verify -purpose smimesign", ok, t->signs, &r);
        mc_it_run_free(&r);
        /* OpenSSL 3.0's smimeencrypt demands keyEncipherment whatever the key (DESIGN.md): it
         * cannot judge EC encryption certificates (keyAgreement), so only RSA is asserted. */
        if (is_rsa(t)) {
            ok = ossl_verify(t, "smimeencrypt", &r);
            expect(t, "openssl verify -purpose smimeencrypt", ok, t->encrypts, &r);
            mc_it_run_free(&r);
        }
        /* sslclient: emailProtection-only (Strict) leaves must fail; Multipurpose ones pass
         * when the issuing CA's extKeyUsage allows clientAuth and the key usage suits a TLS
         * client for OpenSSL: digitalSignature, or keyAgreement (ECDH client certificates, so
         * EC key-management leaves pass too); RSA keyEncipherment alone does not. */
        ok = ossl_verify(t, "sslclient", &r);
        expect(t, "openssl verify -purpose sslclient", ok,
               t->prof->client_auth && g.ica_client_auth &&
                   (t->signs || (!is_rsa(t) && t->encrypts)),
               &r);
        mc_it_run_free(&r);
    }
    end("OpenSSL verify");
}

/* Signs t->msg with the leaf key (detached, DER, issuing CA included) into out. */
static int cms_sign(const tcase *t, const char *out, mc_it_run *r)
{
    const char *argv[] = {"openssl",  "cms",    "-sign", "-binary",   "-in", t->msg, "-signer",
                          t->leaf,    "-inkey", t->keyf, "-certfile", g.ica, "-md",  t->key->md,
                          "-outform", "DER",    "-out",  out,         NULL};
    return run(r, argv) == 0;
}

static int cms_verify(const tcase *t, const char *sig, const char *content, mc_it_run *r)
{
    const char *argv[] = {"openssl",  "cms",       "-verify",  "-binary",   "-inform", "DER",
                          "-in",      sig,         "-content", content,     "-CAfile", g.root,
                          "-purpose", "smimesign", "-out",     "/dev/null", NULL};
    (void)t;
    return run(r, argv) == 0 && strstr(r->err, "Verification successful") != NULL;
}

static void test_openssl_cms_sign(void **state)
{
    (void)state;
    begin();
    for (size_t i = 0; i < g.n; i++) {
        tcase *t = &g.c[i];
        mc_it_run r;
        if (is_ed(t)) {
            /* OpenSSL 3.0's CMS cannot sign or verify with Ed25519 or Ed448 (DESIGN.md): "no
             * default digest", and with -md sha512 or shake256 "invalid digest" (RFC 8419 is
             * not implemented before OpenSSL 3.2). */
            continue;
        }
        join(t->sig, sizeof t->sig, t->dir, "openssl.p7s");
        int ok = cms_sign(t, t->sig, &r);
        /* Signing itself only needs the key: OpenSSL signs with any leaf. */
        expect(t, "openssl cms -sign", ok, 1, &r);
        mc_it_run_free(&r);
        if (!ok)
            continue;
        t->have_sig = 1;
        /* Verification judges the signer certificate for smimesign: digitalSignature. */
        ok = cms_verify(t, t->sig, t->msg, &r);
        expect(t, "openssl cms -verify", ok, t->signs, &r);
        mc_it_run_free(&r);
        if (t->signs) {
            /* The same signature over other content must fail. */
            char other[800];
            snprintf(other, sizeof other, "%s/other.txt", t->dir);
            assert_int_equal(mc_it_write_file(other, "tampered\r\n", 10), 0);
            ok = cms_verify(t, t->sig, other, &r);
            expect(t, "openssl cms -verify of other content", ok, 0, &r);
            mc_it_run_free(&r);
        }
    }
    end("OpenSSL CMS signing");
}

/* Whether file a and b hold the same bytes. */
static int same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    uint8_t *pa = mc_it_read_file(a, &la), *pb = mc_it_read_file(b, &lb);
    int same = pa && pb && la == lb && memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    return same;
}

static int cms_decrypt(const tcase *t, const char *enc, const char *out, mc_it_run *r)
{
    const char *argv[] = {"openssl", "cms",   "-decrypt", "-binary", "-inform", "DER", "-in", enc,
                          "-recip",  t->leaf, "-inkey",   t->keyf,   "-out",    out,   NULL};
    return run(r, argv) == 0 && same_file(out, t->msg);
}

static void test_openssl_cms_encrypt(void **state)
{
    (void)state;
    begin();
    for (size_t i = 0; i < g.n; i++) {
        const tcase *t = &g.c[i];
        if (!t->encrypts)
            continue; /* OpenSSL's CMS does not judge the recipient's keyUsage: nothing to see */
        char enc[800], dec[800];
        mc_it_run r;
        snprintf(enc, sizeof enc, "%s/openssl.p7m", t->dir);
        snprintf(dec, sizeof dec, "%s/openssl.dec", t->dir);
        /* RSA: key transport (keyEncipherment); EC: ECDH key agreement (keyAgreement). */
        const char *argv[] = {"openssl", "cms",   "-encrypt", "-binary", "-aes-256-cbc",
                              "-in",     t->msg,  "-outform", "DER",     "-out",
                              enc,       t->leaf, NULL};
        int ok = run(&r, argv) == 0;
        expect(t, "openssl cms -encrypt", ok, 1, &r);
        mc_it_run_free(&r);
        if (!ok)
            continue;
        ok = cms_decrypt(t, enc, dec, &r);
        expect(t, "openssl cms -decrypt", ok, 1, &r);
        mc_it_run_free(&r);
    }
    end("OpenSSL CMS encryption");
}

/* ---- gpgsm ---- */

static int gpgsm(mc_it_run *r, const char *in, const char *const *args)
{
    const char *argv[32] = {"gpgsm", "--homedir", g.gpg.home, "--batch", "--status-fd", "1"};
    size_t n = 6;
    while (*args && n < 31)
        argv[n++] = *args++;
    argv[n] = NULL;
    return mc_cl_exec_in(r, MC_CL_TIMEOUT, in, argv);
}

/* How gpgsm is told which certificate to use: its mailbox, but for an SmtpUTF8Mailbox its
 * fingerprint. gpgsm 2.2.40 imports, validates and verifies with such a leaf, but reads only
 * rfc822Name as a mailbox: the otherName gives the certificate no e-mail user ID, so "-r
 * <jörg...@...>" finds nothing (a client limitation: RFC 9598 3 forbids an rfc822Name for a
 * non-ASCII local part). */
static const char *gpgsm_who(const tcase *t)
{
    return t->prof->utf8 ? t->fpr : t->mailbox;
}

static void test_gpgsm(void **state)
{
    (void)state;
    begin();
    for (size_t i = 0; i < g.n; i++) {
        const tcase *t = &g.c[i];
        mc_it_run r;
        /* gpgsm 2.2.40 imports EdDSA leaves too (their chain is the CA's ECDSA or RSA), but
         * has no EdDSA signatures in X.509 and OpenSSL made none for them (above): for Ed25519
         * and Ed448 leaves the import is all it can judge. */
        const char *imp[] = {"--import", t->leaf, NULL};
        int ok = gpgsm(&r, NULL, imp) == 0 && strstr(r.out, "IMPORT_OK") != NULL;
        expect(t, "gpgsm --import", ok, 1, &r);
        mc_it_run_free(&r);
        if (!t->have_sig)
            continue;
        if (t->key->type == MC_KEY_P521) {
            /* gpgsm 2.2.40 cannot verify any ECDSA P-521 signature: "DSA requires the hash
             * length to be a multiple of 8 bits" (it takes the 521-bit curve order for the hash
             * length); OpenSSL and NSS verify the same signature, the chain is judged above. */
            continue;
        }
        /* The OpenSSL signature: a good signature by a certificate that chains to the trusted
         * root. gpgsm checks the signer's keyUsage (digitalSignature or nonRepudiation) but
         * only warns ("certificate should not have been used for signing", status ERROR
         * verify.keyusage) and still calls the signature good: so the signature must be good
         * for every leaf, and the warning must come exactly for leaves that may not sign. */
        const char *ver[] = {"--verify", t->sig, t->msg, NULL};
        int st = gpgsm(&r, NULL, ver);
        ok = st == 0 && strstr(r.out, "[GNUPG:] GOODSIG") && strstr(r.out, "[GNUPG:] VALIDSIG") &&
             strstr(r.out, "[GNUPG:] TRUST_FULLY");
        expect(t, "gpgsm --verify (chain, signature)", ok, 1, &r);
        ok = strstr(r.out, "[GNUPG:] ERROR verify.keyusage") == NULL;
        expect(t, "gpgsm --verify (signer keyUsage)", ok, t->signs, &r);
        mc_it_run_free(&r);
    }
    end("gpgsm");
}

/* The first case certifying key row k (its certificate goes into the PKCS#12 files). */
static const tcase *first_case_of(size_t k)
{
    for (size_t i = 0; i < g.n; i++)
        if (g.c[i].key == &KEYS[k])
            return &g.c[i];
    return NULL;
}

static EVP_PKEY *key_of(const tcase *t)
{
    return g.keys[t->key - KEYS];
}

#define P12_PASS "mailca-test"

static void test_gpgsm_encrypt(void **state)
{
    (void)state;
    begin();
    for (size_t i = 0; i < g.n; i++) {
        const tcase *t = &g.c[i];
        if (!is_rsa(t)) {
            /* gpgsm 2.2.40 cannot encrypt to EC certificates (DESIGN.md; it answers "Wrong key
             * usage" even with keyAgreement) and Ed25519 / Ed448 cannot encrypt at all. */
            continue;
        }
        char enc[800], dec[800];
        mc_it_run r;
        join(enc, sizeof enc, t->dir, "gpgsm.p7m");
        join(dec, sizeof dec, t->dir, "gpgsm.dec");
        remove(enc);
        /* gpgsm checks the recipient's keyUsage: keyEncipherment for RSA. */
        const char *args[] = {"--output", enc, "--encrypt", "-r", gpgsm_who(t), t->msg, NULL};
        int ok = gpgsm(&r, NULL, args) == 0 && strstr(r.out, "INV_RECP") == NULL;
        expect(t, "gpgsm --encrypt", ok, t->encrypts, &r);
        mc_it_run_free(&r);
        if (!ok || !t->encrypts)
            continue;
        ok = cms_decrypt(t, enc, dec, &r);
        expect(t, "openssl cms -decrypt of gpgsm's message", ok, 1, &r);
        mc_it_run_free(&r);
    }
    end("gpgsm encryption");
}

/* The key files gpg-agent keeps (private-keys-v1.d), as "name/name/..." in out. */
static void agent_key_files(char *out, size_t cap)
{
    char dir[800];
    join(dir, sizeof dir, g.gpg.home, "private-keys-v1.d");
    out[0] = '\0';
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.' && n + strlen(e->d_name) + 2 < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s/", e->d_name);
    closedir(d);
}

/* Removes the key files not named in before (agent_key_files): what a bad import added. */
static void agent_drop_new_keys(const char *before)
{
    char now[4096], dir[800], path[1200];
    agent_key_files(now, sizeof now);
    join(dir, sizeof dir, g.gpg.home, "private-keys-v1.d");
    for (char *name = now, *slash; (slash = strchr(name, '/')) != NULL; name = slash + 1) {
        *slash = '\0';
        char want[300];
        if (snprintf(want, sizeof want, "%s/", name) < (int)sizeof want && !strstr(before, want) &&
            snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path)
            remove(path);
    }
}

/* Signs msg with the key of case t, gpgsm choosing the certificate by t's mailbox. */
static int gpgsm_sign(mc_it_run *r, const tcase *t, const char *pass, const char *sig)
{
    remove(sig);
    /* gpgsm picks the certificate by its mailbox and refuses signers without
     * digitalSignature / nonRepudiation. */
    const char *args[] = {"--pinentry-mode", "loopback", "--passphrase-fd", "0",    "--output", sig,
                          "--detach-sign",   "-u",       gpgsm_who(t),      t->msg, NULL};
    return gpgsm(r, pass, args) == 0 && strstr(r->out, "SIG_CREATED") != NULL;
}

/* A case of key k whose certificate signs (NULL if none). */
static const tcase *signing_case_of(size_t k)
{
    for (size_t i = 0; i < g.n; i++)
        if (g.c[i].key == &KEYS[k] && g.c[i].signs)
            return &g.c[i];
    return NULL;
}

/* Needs test_gpgsm's leaf imports (cmocka runs the tests in order). */
static void test_gpgsm_sign(void **state)
{
    (void)state;
    begin();
    /* Each RSA key once, as PKCS#12 with the legacy algorithms gpgsm 2.2 reads (it cannot read
     * OpenSSL 3's default PKCS#12), with its first certificate. gpgsm 2.2.40 crashes
     * (SIGSEGV after decrypting the key bag) importing any PKCS#12 with an EC key, whatever
     * the encryption or the key encoding, so it cannot sign with EC keys here; it has no EdDSA
     * signatures in X.509 at all (Ed25519, Ed448). */
    for (size_t k = 0; k < N_KEYS; k++) {
        const tcase *t = first_case_of(k);
        if (!t || !is_rsa(t))
            continue;
        char p12[800], pass[800];
        mc_it_run r;
        join(p12, sizeof p12, t->dir, "key-legacy.p12");
        join(pass, sizeof pass, t->dir, "p12.pass");
        assert_int_equal(mc_it_write_file(pass, P12_PASS "\n", strlen(P12_PASS) + 1), 0);
        const char *args[] = {
            "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", p12, NULL};
        /* gpgsm 2.2.40 fails to decrypt about one PKCS#12 key bag in 60 ("decryption failed;
         * trying charset ..."), the same file every time, files from `openssl pkcs12 -export
         * -legacy` too: it depends on the random salt. Rarely it reports the key imported and
         * then cannot use it ("error creating signature: Unmatched parentheses in
         * S-expression", seen once for an RSA-4096 key that imported and signed fine from a
         * new file). So each import is proved by a signature; on failure the key file it left
         * is removed and a fresh file (new salt) is tried, up to 4 in all. */
        const tcase *probe = signing_case_of(k);
        char before[4096], sig[800];
        join(sig, sizeof sig, t->dir, "gpgsm-probe.p7s");
        agent_key_files(before, sizeof before);
        int ok = 0;
        for (int attempt = 0; attempt < 4 && !ok; attempt++) {
            if (attempt) {
                mc_it_run_free(&r);
                agent_drop_new_keys(before);
            }
            assert_int_equal(mc_cl_key_p12(p12, key_of(t), t->x, NULL, t->nick, P12_PASS, 1), 0);
            ok = gpgsm(&r, pass, args) == 0 && strstr(r.out, "IMPORT_RES") != NULL &&
                 strstr(r.err, "secret keys imported: 1") != NULL;
            if (ok && probe) {
                mc_it_run_free(&r);
                ok = gpgsm_sign(&r, probe, pass, sig);
            }
            if (!ok && attempt < 3)
                fprintf(stderr,
                        "%s: gpgsm could not import or use its PKCS#12 (%s), making a "
                        "new one\n",
                        t->id, strstr(r.err, "error") ? strstr(r.err, "error") : "?");
        }
        expect(t, "gpgsm --import of the legacy PKCS#12 and a signature with it", ok, 1, &r);
        mc_it_run_free(&r);
    }
    for (size_t i = 0; i < g.n; i++) {
        const tcase *t = &g.c[i];
        if (!is_rsa(t))
            continue; /* no key in gpgsm: see above */
        char sig[800], pass[800];
        mc_it_run r;
        join(sig, sizeof sig, t->dir, "gpgsm.p7s");
        join(pass, sizeof pass, first_case_of((size_t)(t->key - KEYS))->dir, "p12.pass");
        int ok = gpgsm_sign(&r, t, pass, sig);
        expect(t, "gpgsm --detach-sign", ok, t->signs, &r);
        mc_it_run_free(&r);
        if (!ok || !t->signs)
            continue;
        ok = cms_verify(t, sig, t->msg, &r);
        expect(t, "openssl cms -verify of gpgsm's signature", ok, 1, &r);
        mc_it_run_free(&r);
    }
    end("gpgsm signing");
}

/* ---- NSS CMS (cmsutil: the S/MIME code Thunderbird runs) ---- */

static int nss_cmsutil(mc_it_run *r, const char *const *args)
{
    char db[760];
    snprintf(db, sizeof db, "sql:%s", g.nss);
    const char *argv[32] = {"cmsutil", "-d", db};
    size_t n = 3;
    while (*args && n < 31)
        argv[n++] = *args++;
    argv[n] = NULL;
    return run(r, argv);
}

/* Whether NSS finds a good signature by a signer it trusts for e-mail signing in sig (detached
 * over content): what Thunderbird shows as a valid signature. */
static int nss_sig_good(const char *sig, const char *content, mc_it_run *r)
{
    const char *args[] = {"-D", "-i", sig, "-c", content, "-n", "-u", "4", "-h", "1", NULL};
    return nss_cmsutil(r, args) == 0 && strstr(r->out, "signer0.status=GoodSignature") != NULL;
}

static void test_nss_cms(void **state)
{
    (void)state;
    begin();
    /* Every leaf in the database under its nickname, then each key once as PKCS#12 in OpenSSL
     * 3's default format (NSS reads it), which ties the key to all leaves certifying it. */
    for (size_t i = 0; i < g.n; i++) {
        const tcase *t = &g.c[i];
        if (is_ed(t))
            continue; /* NSS 3.87 cannot store Ed25519 or Ed448 certificates
                         (certutil -A: SEC_ERROR_ADDING_CERT) */
        assert_int_equal(mc_cl_nssdb_add(g.nss, t->nick, t->leaf, ",,"), 0);
    }
    for (size_t k = 0; k < N_KEYS; k++) {
        const tcase *t = first_case_of(k);
        if (!t || is_ed(t))
            continue; /* NSS 3.87 has no Ed25519 or Ed448 keys (pk12util -i of an Ed448 key:
                         SEC_ERROR_PKCS12_UNABLE_TO_IMPORT_KEY) */
        char p12[800], db[760];
        mc_it_run r;
        join(p12, sizeof p12, t->dir, "key.p12");
        snprintf(db, sizeof db, "sql:%s", g.nss);
        assert_int_equal(mc_cl_key_p12(p12, key_of(t), t->x, NULL, t->nick, P12_PASS, 0), 0);
        const char *argv[] = {"pk12util", "-i", p12, "-d", db, "-W", P12_PASS, "-K", "", NULL};
        int ok = run(&r, argv) == 0;
        expect(t, "pk12util -i (OpenSSL 3 PKCS#12)", ok, 1, &r);
        mc_it_run_free(&r);
    }
    for (size_t i = 0; i < g.n; i++) {
        const tcase *t = &g.c[i];
        mc_it_run r;
        if (is_ed(t))
            continue; /* NSS 3.87 cannot sign, verify or encrypt with Ed25519 or Ed448 */
        /* OpenSSL's signature (made for every leaf): NSS trusts the signer for e-mail signing
         * exactly when the leaf has digitalSignature. */
        if (t->have_sig) {
            int ok = nss_sig_good(t->sig, t->msg, &r);
            expect(t, "cmsutil -D of OpenSSL's signature", ok, t->signs, &r);
            mc_it_run_free(&r);
        }
        /* NSS signs (-Y NONE: no encryption-key preference attribute, which would look the
         * certificate up as an e-mail recipient too) only with leaves that may sign. RSA only:
         * cmsutil 3.87 makes ECDSA signatures that neither NSS nor OpenSSL verify, even with a
         * key and self-signed certificate NSS made itself, so NSS cannot sign with EC keys. */
        if (!is_rsa(t))
            continue;
        char sig[800];
        join(sig, sizeof sig, t->dir, "nss.p7s");
        remove(sig);
        const char *sargs[] = {"-S",     "-N", t->nick, "-Y", "NONE", "-T", "-H",
                               "SHA256", "-i", t->msg,  "-o", sig,    NULL};
        int ok = nss_cmsutil(&r, sargs) == 0;
        expect(t, "cmsutil -S", ok, t->signs, &r);
        mc_it_run_free(&r);
        if (ok && t->signs) {
            ok = nss_sig_good(sig, t->msg, &r);
            expect(t, "cmsutil -D of its own signature", ok, 1, &r);
            mc_it_run_free(&r);
            ok = cms_verify(t, sig, t->msg, &r);
            expect(t, "openssl cms -verify of NSS's signature", ok, 1, &r);
            mc_it_run_free(&r);
        }
        /* NSS 3.87 has no ECDH in its CMS (DESIGN.md): encryption only for RSA. cmsutil -E
         * does not judge the recipient's keyUsage (Thunderbird validates the recipient for
         * e-mail encryption first: test_nss does that with vfychain -u 5), so nothing is
         * asserted for signing-only leaves. */
        if (!t->encrypts)
            continue;
        char enc[800], dec[800];
        join(enc, sizeof enc, t->dir, "nss.p7m");
        join(dec, sizeof dec, t->dir, "nss.dec");
        remove(enc);
        const char *eargs[] = {"-E", "-r", t->nick, "-i", t->msg, "-o", enc, NULL};
        ok = nss_cmsutil(&r, eargs) == 0;
        expect(t, "cmsutil -E", ok, 1, &r);
        mc_it_run_free(&r);
        if (!ok)
            continue;
        ok = cms_decrypt(t, enc, dec, &r);
        expect(t, "openssl cms -decrypt of NSS's message", ok, 1, &r);
        mc_it_run_free(&r);
        remove(dec);
        const char *dargs[] = {"-D", "-i", enc, "-o", dec, NULL};
        ok = nss_cmsutil(&r, dargs) == 0 && same_file(dec, t->msg);
        expect(t, "cmsutil -D of its own message", ok, 1, &r);
        mc_it_run_free(&r);
    }
    end("NSS CMS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nss),
        cmocka_unit_test(test_openssl_verify),
        cmocka_unit_test(test_openssl_cms_sign),
        cmocka_unit_test(test_openssl_cms_encrypt),
        cmocka_unit_test(test_gpgsm),
        cmocka_unit_test(test_gpgsm_encrypt),
        cmocka_unit_test(test_gpgsm_sign),
        cmocka_unit_test(test_nss_cms),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
