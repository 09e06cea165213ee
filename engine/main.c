/*
 * The mailca command line, git style: `mailca <command> [options]`. Commands parse their own
 * options; every failure prints the error detail (field, rule, message) and exits non-zero.
 * Secrets are never taken from argv: the PIN comes from the configured file or environment.
 */
#include "mailca/ca.h"
#include "mailca/cli.h"
#include "mailca/hsmpool.h"
#include "mailca/issuer.h"
#include "mailca/profile.h"
#include "mailca/config.h"
#include "mailca/audit.h"
#include "mailca/crl.h"
#include "mailca/ct.h"
#include "mailca/engine.h"
#include "mailca/lint.h"
#include "mailca/ocsp.h"
#include "mailca/query.h"
#include "mailca/revoke.h"
#include "mailca/store.h"
#include "mailca/x509.h"

#include <fcntl.h>
#include <getopt.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_DIR "mailca-state"

static int report(const char *cmd, const mc_errdetail *e)
{
    char buf[600];
    fprintf(stderr, "mailca %s: %s\n", cmd, mc_err_format(e, buf, sizeof buf));
    return 1;
}

static int cmd_help(FILE *f)
{
    fprintf(
        f,
        "usage: mailca <command> [options]\n\n"
        "commands:\n"
        "  init [--dir DIR] [--key SPEC] [--org NAME] [--base-url URL]\n"
        "        create a CA on a private SoftHSM2 token (default dir %s, key p256;\n"
        "        also p384, ed25519, rsa2048 (PKCS#1 v1.5), rsa2048-pss (RSASSA-PSS))\n"
        "  batch [--config FILE] [--workers N] [--procs N|auto] [--sessions N] [--batch N] "
        "[--quiet]\n"
        "        ORDERS RESULTS\n"
        "        issue certificates for a msgpack stream of orders (docs/orders.md)\n"
        "        (--procs N spreads workers over N processes; auto, the default:\n"
        "         one per core for SoftHSM2 from 4 cores or more sessions than cores)\n"
        "  gen-orders [--count N] [--key SPEC] [--key-form csr|public-key] [--profile NAME]\n"
        "             [--usage signing|key-management|dual] [--pool KEYS]\n"
        "             [--domains N] [--domain-suffix S] OUT\n"
        "        write N demo orders with fresh CSRs, mailboxes user<i>@org<i mod N>.S\n"
        "        (default 20 domains under example.com); subject key SPEC: p256 (default),\n"
        "        p384, p521, ed25519, ed448, rsa2048, rsa3072, rsa4096\n"
        "  bench [options]   certs/sec against the raw C_Sign rate (mailca bench --help)\n"
        "  status [--config FILE] [--json]  check each HSM token and the store now\n"
        "  lint [--json] [--at T] [--profile NAME [--config FILE]] FILE...\n"
        "        lint certificates (PEM or DER) against the S/MIME BRs; with a profile, as that\n"
        "        profile of this CA would issue them; the rules in force at each notBefore,\n"
        "        or at T (seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ) with --at\n"
        "  store migrate [--config FILE | PATH | postgresql://URI]  upgrade a store's schema\n"
        "  ct drain [--config FILE]  submit the Certificate Transparency outbox\n"
        "  query [--config FILE] [selectors...] [--count | --format jsonl|csv] [--fields F,...]\n"
        "        the incident inventory: list (or count) the certificates the selectors\n"
        "        select, all of them with none (mailca query --help lists the selectors)\n"
        "  revoke [--config FILE] selectors... --reason NAME [--dry-run]\n"
        "        revoke the certificates the selectors (as query's, at least one) select\n"
        "  crl [--config FILE] --out FILE [--next-update-days D]  a full CRL of the revoked\n"
        "        certificates, signed in the HSM (DER; nextUpdate D days on, 1..10, default 7)\n"
        "  crl [--config FILE] --out-dir DIR [--next-update-days D]  with ca.crl_shards > 1:\n"
        "        one CRL per shard (DIR/<last path segment of its URL>), each with a critical\n"
        "        issuingDistributionPoint\n"
        "  audit [--config FILE] [--since T] [--event NAME] [--after-id N]  the audit log\n"
        "        (SBR 5.4.1: runs, rejected orders, revocations, CRLs) as JSON lines\n"
        "  ocsp serve [--config FILE] --listen ADDRESS:PORT [--validity-hours H]\n"
        "        an OCSP responder (RFC 6960/5019, GET and POST) answering from the store,\n"
        "        signed in the HSM by the CA; H 8..240 (SBR 4.9.10), default 96; SIGTERM stops it\n"
        "  version, help\n\n"
        "The config file defaults to $MAILCA_CONFIG or %s/mailca.yaml.\n"
        "The HSM PIN is read from hsm.pin_file or the variable named by hsm.pin_env.\n",
        DEFAULT_DIR, DEFAULT_DIR);
    return 0;
}

static int cmd_init(int argc, char **argv)
{
    mc_ca_init_opts o = {.dir = DEFAULT_DIR,
                         .keytype = MC_KEY_P256,
                         .org = "mailca Demo",
                         .base_url = "http://pki.mailca.test"};
    static const struct option lo[] = {{"dir", 1, 0, 'd'},  {"key", 1, 0, 'k'},
                                       {"org", 1, 0, 'o'},  {"base-url", 1, 0, 'u'},
                                       {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'd':
            o.dir = optarg;
            break;
        case 'o':
            o.org = optarg;
            break;
        case 'u':
            o.base_url = optarg;
            break;
        case 'k':
            if (!mc_issuer_keyspec_parse(optarg, &o.keytype, &o.rsa_bits, &o.sigalg)) {
                fprintf(stderr, "mailca init: --key: issuing keys are p256, p384, ed25519, "
                                "rsa2048+ (PKCS#1 v1.5) or rsa2048-pss+ (RSASSA-PSS)\n");
                return 2;
            }
            break;
        case 'h':
            return cmd_help(stdout);
        default:
            return 2;
        }
    }
    if (strncmp(o.base_url, "http://", 7) != 0) {
        /* SBR 7.1.2.2(b),(c): CRL and caIssuers URLs are HTTP */
        fprintf(stderr, "mailca init: --base-url must be an http:// URL (SBR 7.1.2.2(b))\n");
        return 2;
    }
    mc_errdetail e;
    if (mc_ca_init(&o, &e) != MC_OK)
        return report("init", &e);
    if (mc_lint_url_host_reserved(o.base_url, strlen(o.base_url)))
        fprintf(stderr,
                "mailca init: note: the CRL, OCSP and CA-issuers URLs are under %s, a "
                "special-use name relying parties cannot reach: give --base-url with the CA's "
                "public repository before issuing publicly-trusted certificates (every "
                "certificate gets the warning w_smime_uri_host_reserved until then)\n",
                o.base_url);
    printf("mailca init: CA ready in %s (issuing key %s in a SoftHSM2 token; config "
           "%s/mailca.yaml; PIN in %s/pin, mode 0600)\n",
           o.dir, o.sigalg ? mc_sigalg_name(o.sigalg) : mc_keytype_name(o.keytype), o.dir, o.dir);
    return 0;
}

/* One line per token of the HSM pool when there are several, or when one failed: what each
 * signed, and whether it is out of service (issue 4: health is visible). */
static void print_token_health(mc_engine *eng)
{
    size_t n = mc_engine_tokens(eng);
    for (size_t i = 0; i < n; i++) {
        mc_hsmpool_health h;
        if (mc_engine_token_health(eng, i, &h) != MC_OK || (n == 1 && h.failures == 0))
            continue;
        fprintf(stderr,
                "mailca batch: hsm%s: %llu signatures, %llu failures (%llu C_Sign abandoned "
                "after the deadline), %s (taken out %u time%s)\n",
                h.name, (unsigned long long)h.signatures, (unsigned long long)h.failures,
                (unsigned long long)h.hangs, h.in_service ? "in service" : "out of service",
                h.times_out, h.times_out == 1 ? "" : "s");
    }
}

static int cmd_batch(int argc, char **argv)
{
    const char *cfgopt = NULL;
    mc_engine_opts eo = {.progress = 1, .procs = MC_ENGINE_PROCS_CONFIG};
    static const struct option lo[] = {
        {"config", 1, 0, 'c'}, {"workers", 1, 0, 'w'},  {"batch", 1, 0, 'b'}, {"quiet", 0, 0, 'q'},
        {"procs", 1, 0, 'p'},  {"sessions", 1, 0, 's'}, {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            cfgopt = optarg;
            break;
        case 'w':
            eo.workers = atoi(optarg);
            break;
        case 'b':
            eo.batch = atoi(optarg);
            break;
        case 'p':
            if (strcmp(optarg, "auto") == 0) {
                eo.procs = MC_ENGINE_PROCS_AUTO;
            } else {
                char *end;
                long n = strtol(optarg, &end, 10);
                if (*end || end == optarg || n < 0 || n > MC_CONFIG_PROCS_MAX) {
                    fprintf(stderr,
                            "mailca batch: --procs: '%s' is not auto nor an integer in "
                            "[0, %d]\n",
                            optarg, MC_CONFIG_PROCS_MAX);
                    return 2;
                }
                eo.procs = (int)n;
            }
            break;
        case 's':
            eo.sessions = atoi(optarg);
            break;
        case 'q':
            eo.progress = 0;
            break;
        case 'h':
            return cmd_help(stdout);
        default:
            return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: mailca batch [--config FILE] ORDERS RESULTS\n");
        return 2;
    }
    mc_config cfg;
    mc_errdetail e;
    mc_engine *eng = NULL;
    mc_run_stats st;
    if (mc_config_load(mc_config_path(cfgopt), &cfg, &e) != MC_OK)
        return report("batch", &e);
    if (mc_engine_open(&cfg, &eo, &eng, &e) != MC_OK)
        return report("batch", &e);
    int64_t pending = 0, certs = 0;
    if (mc_engine_pending(eng, &pending, &certs, &e) == MC_OK && pending > 0)
        fprintf(stderr,
                "mailca batch: %lld intent(s) from an earlier run have no certificate; "
                "resubmitting those orders re-signs the recorded TBS\n",
                (long long)pending);
    FILE *in = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "rb");
    FILE *out = strcmp(argv[optind + 1], "-") == 0 ? stdout : fopen(argv[optind + 1], "wb");
    if (!in || !out) {
        mc_err_set(&e, MC_ERR_IO, !in ? argv[optind] : argv[optind + 1], NULL, "cannot open");
        mc_engine_close(eng);
        return report("batch", &e);
    }
    struct stat sb;
    uint64_t size = fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
    mc_err rc = mc_engine_run(eng, in, size, out, &st, &e);
    if (in != stdin)
        fclose(in);
    if (out != stdout && fclose(out) != 0 && rc == MC_OK)
        rc = mc_err_set(&e, MC_ERR_IO, argv[optind + 1], NULL, "write failed");
    print_token_health(eng);
    mc_engine_close(eng);
    if (rc != MC_OK)
        return report("batch", &e);
    char where[40] = ""; /* threads of this process unless worker processes ran */
    if (st.procs > 0)
        snprintf(where, sizeof where, " in %d process%s", st.procs, st.procs > 1 ? "es" : "");
    fprintf(stderr,
            "mailca batch: %llu orders: %llu issued, %llu rejected, %llu failed in %.2f s "
            "(%.0f certs/sec, %d worker%s%s; latency p50 %.2f ms, p99 %.2f ms)\n",
            (unsigned long long)st.orders, (unsigned long long)st.issued,
            (unsigned long long)st.rejected, (unsigned long long)st.failed, st.seconds,
            st.seconds > 0 ? (double)st.issued / st.seconds : 0.0, st.workers,
            st.workers == 1 ? "" : "s", where, st.p50_ms, st.p99_ms);
    return st.failed ? 3 : 0;
}

static int cmd_gen_orders(int argc, char **argv)
{
    uint64_t n = 1000;
    mc_keytype kt = MC_KEY_P256;
    unsigned bits = 0;
    const char *profile = "mailbox-strict", *use = "signing";
    mc_key_form form = MC_KEY_FORM_CSR;
    unsigned pool = 0; /* keys generated, reused round-robin; 0 = min(count, 64) */
    unsigned domains = MC_ORDERS_DOMAINS_DEFAULT;
    const char *suffix = MC_ORDERS_SUFFIX_DEFAULT;
    static const struct option lo[] = {
        {"count", 1, 0, 'n'},   {"key", 1, 0, 'k'},           {"profile", 1, 0, 'p'},
        {"usage", 1, 0, 'u'},   {"key-form", 1, 0, 'f'},      {"pool", 1, 0, 'P'},
        {"domains", 1, 0, 'D'}, {"domain-suffix", 1, 0, 'S'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'n':
            n = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            if (!mc_keyspec_parse(optarg, &kt, &bits)) {
                fprintf(stderr, "mailca gen-orders: unknown key '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p':
            profile = optarg;
            break;
        case 'u':
            use = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "csr") == 0)
                form = MC_KEY_FORM_CSR;
            else if (strcmp(optarg, "public-key") == 0)
                form = MC_KEY_FORM_PUBLIC_KEY;
            else {
                fprintf(stderr, "mailca gen-orders: --key-form is csr or public-key\n");
                return 2;
            }
            break;
        case 'P':
            pool = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'D': {
            char *end = NULL;
            unsigned long d = strtoul(optarg, &end, 10);
            if (!end || *end || d == 0 || d > 1000000) {
                fprintf(stderr, "mailca gen-orders: --domains is 1..1000000, not '%s'\n", optarg);
                return 2;
            }
            domains = (unsigned)d;
            break;
        }
        case 'S':
            suffix = optarg;
            break;
        default:
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "usage: mailca gen-orders [--count N] [--key SPEC] [--domains N] "
                        "[--domain-suffix S] OUT\n");
        return 2;
    }
    FILE *f = fopen(argv[optind], "wb");
    mc_errdetail e;
    char prefix[64];
    mc_orders_id_prefix(prefix, sizeof prefix, "demo");
    if (!f) {
        mc_err_set(&e, MC_ERR_IO, argv[optind], NULL, "cannot create");
        return report("gen-orders", &e);
    }
    mc_err rc = mc_orders_generate_domains(f, n, kt, bits, form, profile, use, prefix,
                                           pool ? pool : (unsigned)(n < 64 ? (n ? n : 1) : 64),
                                           domains, suffix, &e);
    if (fclose(f) != 0 && rc == MC_OK)
        rc = mc_err_set(&e, MC_ERR_IO, argv[optind], NULL, "write failed");
    return rc == MC_OK ? 0 : report("gen-orders", &e);
}

/* `mailca store migrate [--config FILE | WHERE]`: brings a store's schema to this version. */
static int cmd_store(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "migrate") != 0) {
        fprintf(stderr, "usage: mailca store migrate [--config FILE | PATH | postgresql://...]\n");
        return 2;
    }
    const char *where = NULL, *cfgopt = NULL;
    if (argc == 3)
        where = argv[2];
    else if (argc == 4 && strcmp(argv[2], "--config") == 0)
        cfgopt = argv[3];
    else if (argc != 2) {
        fprintf(stderr, "usage: mailca store migrate [--config FILE | PATH | postgresql://...]\n");
        return 2;
    }
    mc_config cfg;
    mc_errdetail e;
    if (!where) {
        if (mc_config_load(mc_config_path(cfgopt), &cfg, &e) != MC_OK)
            return report("store", &e);
        where = cfg.store_sqlite;
    }
    if (mc_store_migrate(where, &e) != MC_OK)
        return report("store", &e);
    printf("mailca store: schema version %d\n", mc_store_schema_version());
    return 0;
}

/* `mailca ct drain [--config FILE]`: submits what the CT outbox holds, until nothing is due. */
static int cmd_ct(int argc, char **argv)
{
    const char *cfgopt = NULL;
    if (argc < 2 || strcmp(argv[1], "drain") != 0 ||
        !(argc == 2 || (argc == 4 && strcmp(argv[2], "--config") == 0))) {
        fprintf(stderr, "usage: mailca ct drain [--config FILE]\n");
        return 2;
    }
    if (argc == 4)
        cfgopt = argv[3];
    mc_config cfg;
    mc_ct_config cc;
    mc_errdetail e;
    mc_store *s = NULL;
    mc_ct *ct = NULL;
    mc_ct_stats st = {0};
    if (mc_config_load(mc_config_path(cfgopt), &cfg, &e) != MC_OK)
        return report("ct", &e);
    mc_ct_config_defaults(&cc);
    snprintf(cc.profiles, sizeof cc.profiles, "%s", cfg.ct_profiles);
    cc.max_in_flight = cfg.ct_max_in_flight;
    cc.timeout_ms = cfg.ct_timeout_ms;
    mc_err rc = mc_ct_config_add_logs(&cc, cfg.ct_logs, &e);
    if (rc == MC_OK && (rc = mc_store_open(cfg.store_sqlite, &s, &e)) == MC_OK &&
        (rc = mc_ct_new(&cc, &ct, &e)) == MC_OK)
        rc = mc_ct_drain(ct, s, NULL, &st, &e);
    mc_ct_free(ct);
    mc_store_close(s);
    if (rc != MC_OK)
        return report("ct", &e);
    printf("mailca ct: %zu submitted with a verified SCT, %zu to retry later, %zu refused by "
           "a log\n",
           st.done, st.retried, st.rejected);
    return 0;
}

/* `mailca worker`: the body of a worker process, started by the engine (not for users). */
static int cmd_worker(int argc, char **argv)
{
    const char *cfgp = NULL;
    mc_engine_proc wp = {.threads = 1, .signers = 1, .cpu0 = -1};
    int ch;
    mc_engine_opts eo = {0};
    static const struct option lo[] = {{"config", 1, 0, 'c'},
                                       {"orders", 1, 0, 'o'},
                                       {"intents", 1, 0, 'i'},
                                       {"results", 1, 0, 'r'},
                                       {"threads", 1, 0, 't'},
                                       {"cpu", 1, 0, 'u'},
                                       {"batch", 1, 0, 'b'},
                                       {"no-lint", 0, 0, 'n'},
                                       {"signers", 1, 0, 's'},
                                       {"id", 1, 0, 'd'},
                                       {0, 0, 0, 0}};
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == 'c')
            cfgp = optarg;
        else if (ch == 'o')
            wp.ep_orders = optarg;
        else if (ch == 'i')
            wp.ep_intents = optarg;
        else if (ch == 'r')
            wp.ep_results = optarg;
        else if (ch == 't')
            wp.threads = atoi(optarg);
        else if (ch == 'u')
            wp.cpu0 = atoi(optarg);
        else if (ch == 'b')
            eo.batch = atoi(optarg);
        else if (ch == 'n')
            eo.no_lint = 1;
        else if (ch == 's')
            wp.signers = atoi(optarg);
        else if (ch == 'd')
            wp.id = (uint32_t)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (!cfgp || !wp.ep_orders || !wp.ep_intents || !wp.ep_results || wp.threads < 1 ||
        wp.id == 0) {
        fprintf(stderr, "mailca worker: started by the engine (mailca batch --procs N)\n");
        return 2;
    }
    mc_config cfg;
    mc_errdetail e;
    mc_engine *eng = NULL;
    eo.workers = wp.threads;
    eo.worker_process = 1;
    if (mc_config_load(cfgp, &cfg, &e) != MC_OK || mc_engine_open(&cfg, &eo, &eng, &e) != MC_OK)
        return report("worker", &e);
    /* tell the engine this process is ready (fd 3, see spawn_worker) */
    if (fcntl(3, F_GETFD) != -1) {
        if (write(3, "R", 1) != 1)
            fprintf(stderr, "mailca worker: cannot report readiness\n");
        close(3);
    }
    mc_err rc = mc_engine_serve_worker(eng, &wp, &e);
    mc_engine_close(eng);
    return rc == MC_OK ? 0 : report("worker", &e);
}

/* Reads PEM (one or more certificates) or DER; calls fn for each certificate's DER. */
static int lint_file(const char *path, int json, const mc_lint_ctx *base, int64_t at,
                     int *any_error)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mailca lint: %s: cannot open\n", path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *p = realloc(buf, cap);
            if (!p)
                break;
            buf = p;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (!got)
            break;
        len += got;
    }
    fclose(f);
    int idx = 0, rc = 0;
    const char *pem_tag = "-----BEGIN CERTIFICATE-----";
    int is_pem = len > 0 && memmem(buf, len, pem_tag, strlen(pem_tag)) != NULL;
    BIO *bio = is_pem ? BIO_new_mem_buf(buf, (int)len) : NULL;
    for (;;) {
        uint8_t *der = NULL;
        int dlen = 0;
        if (is_pem) {
            X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
            if (!x)
                break;
            dlen = i2d_X509(x, &der);
            X509_free(x);
        } else if (idx == 0) {
            der = OPENSSL_memdup(buf, len);
            dlen = (int)len;
        } else {
            break;
        }
        mc_x509 x;
        mc_errdetail e;
        mc_lint_result lr;
        memset(&lr, 0, sizeof lr);
        mc_lint_ctx ctx = *base;
        if (mc_x509_parse_cert(der, (size_t)dlen, &x, &e) != MC_OK) {
            char b[600];
            if (json)
                printf("{\"file\":\"%s\",\"index\":%d,\"parse_error\":\"%s\"}\n", path, idx,
                       mc_err_format(&e, b, sizeof b));
            else
                printf("%s[%d]: not a certificate: %s\n", path, idx,
                       mc_err_format(&e, b, sizeof b));
            *any_error = 1;
        } else {
            ctx.now = at ? at : x.nb; /* the rules in force when it was issued, or at --at */
            mc_lint_run(&x, &ctx, &lr);
            if (lr.errors)
                *any_error = 1;
            if (json) {
                printf("{\"file\":\"%s\",\"index\":%d,\"lint_set\":\"%s\",\"errors\":%d,"
                       "\"warnings\":%d,\"findings\":[",
                       path, idx, MC_LINT_SET_VERSION, lr.errors, lr.warnings);
                for (size_t i = 0; i < lr.n; i++) {
                    printf("%s{\"id\":\"%s\",\"severity\":\"%s\",\"section\":\"%s\","
                           "\"detail\":\"",
                           i ? "," : "", lr.f[i].lint->id,
                           lr.f[i].severity == MC_LINT_ERROR     ? "error"
                           : lr.f[i].severity == MC_LINT_WARNING ? "warning"
                                                                 : "notice",
                           lr.f[i].lint->section);
                    for (const char *p = lr.f[i].detail; *p; p++)
                        printf((*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
                    printf("\"}");
                }
                printf("]}\n");
            } else {
                printf("%s[%d]: %d error(s), %d warning(s)\n", path, idx, lr.errors, lr.warnings);
                for (size_t i = 0; i < lr.n; i++)
                    printf("  %-7s %-40s %s: %s\n",
                           lr.f[i].severity == MC_LINT_ERROR     ? "ERROR"
                           : lr.f[i].severity == MC_LINT_WARNING ? "WARNING"
                                                                 : "NOTICE",
                           lr.f[i].lint->id, lr.f[i].lint->section, lr.f[i].detail);
            }
        }
        OPENSSL_free(der);
        idx++;
    }
    if (idx == 0) {
        fprintf(stderr, "mailca lint: %s: no certificate found\n", path);
        rc = 1;
    }
    BIO_free(bio);
    free(buf);
    return rc;
}

/* `mailca lint [--json] [--at T] [--profile NAME [--config FILE]] FILE...`: with a profile, the
 * certificates are judged as that profile of this CA would issue them (its type, generation and
 * extensions, and the issuer-dependent lints against the configured issuing CA). */
static int cmd_lint(int argc, char **argv)
{
    int json = 0, any_error = 0, rc = 0, ch;
    const char *profile = NULL, *cfgopt = NULL;
    int64_t at = 0;
    mc_errdetail ae;
    static const struct option lo[] = {{"json", 0, 0, 'j'},
                                       {"at", 1, 0, 'a'},
                                       {"profile", 1, 0, 'p'},
                                       {"config", 1, 0, 'c'},
                                       {0, 0, 0, 0}};
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == 'j')
            json = 1;
        else if (ch == 'a') {
            char b[600];
            if (mc_revoke_time_parse(optarg, "--at", &at, &ae) != MC_OK) {
                fprintf(stderr, "mailca lint: %s\n", mc_err_format(&ae, b, sizeof b));
                return 2;
            }
            if (at <= 0) {
                fprintf(stderr, "mailca lint: --at: '%s' is not after 1970\n", optarg);
                return 2;
            }
        } else if (ch == 'p')
            profile = optarg;
        else if (ch == 'c')
            cfgopt = optarg;
        else
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr,
                "usage: mailca lint [--json] [--at T] [--profile NAME [--config FILE]] FILE...\n");
        return 2;
    }
    mc_lint_ctx base = {.now = (int64_t)time(NULL)};
    mc_issuer issuer;
    mc_profile_set set;
    int loaded = 0;
    memset(&set, 0, sizeof set);
    if (profile) {
        mc_config cfg;
        mc_errdetail e;
        mc_sigalg alg = MC_SIG_NONE;
        if (mc_config_load(mc_config_path(cfgopt), &cfg, &e) != MC_OK)
            return report("lint", &e);
        if (cfg.ca_signature[0] && (alg = mc_sigalg_from_name(cfg.ca_signature)) == MC_SIG_NONE) {
            fprintf(stderr, "mailca lint: ca.signature: unknown algorithm '%s'\n",
                    cfg.ca_signature);
            return 2;
        }
        mc_ca_urls urls = {.crl = cfg.ca_crl_url[0] ? cfg.ca_crl_url : NULL,
                           .ocsp = cfg.ca_ocsp_url[0] ? cfg.ca_ocsp_url : NULL,
                           .ca_issuers = cfg.ca_issuers_url[0] ? cfg.ca_issuers_url : NULL,
                           .cps = cfg.ca_cps_url[0] ? cfg.ca_cps_url : NULL,
                           .crl_shards = (unsigned)cfg.ca_crl_shards};
        if (mc_issuer_load(cfg.ca_certificate, alg, &issuer, &e) != MC_OK)
            return report("lint", &e);
        if (mc_profile_set_load(cfg.profiles, &issuer, &urls, &set, &e) != MC_OK) {
            mc_issuer_free(&issuer);
            return report("lint", &e);
        }
        loaded = 1;
        base.profile = mc_profile_set_find(&set, profile, strlen(profile));
        base.issuer = &issuer;
        if (!base.profile) {
            fprintf(stderr, "mailca lint: --profile: no profile '%s' in %s\n", profile,
                    cfg.profiles);
            rc = 2;
            goto done;
        }
    }
    for (int i = optind; i < argc; i++)
        rc |= lint_file(argv[i], json, &base, at, &any_error);
    rc = rc ? 2 : any_error ? 1 : 0;
done:
    if (loaded) {
        mc_profile_set_free(&set);
        mc_issuer_free(&issuer);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_help(stderr), 2;
    const char *cmd = argv[1];
    argc--;
    argv++;
    optind = 1;
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return cmd_help(stdout);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mailca %s (lint set %s)\n", MAILCA_VERSION, MC_LINT_SET_VERSION);
        return 0;
    }
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc, argv);
    if (strcmp(cmd, "batch") == 0)
        return cmd_batch(argc, argv);
    if (strcmp(cmd, "gen-orders") == 0)
        return cmd_gen_orders(argc, argv);
    if (strcmp(cmd, "bench") == 0)
        return mc_bench_main(argc, argv);
    if (strcmp(cmd, "status") == 0)
        return mc_status_main(argc, argv);
    if (strcmp(cmd, "lint") == 0)
        return cmd_lint(argc, argv);
    if (strcmp(cmd, "worker") == 0)
        return cmd_worker(argc, argv);
    if (strcmp(cmd, "store") == 0)
        return cmd_store(argc, argv);
    if (strcmp(cmd, "ct") == 0)
        return cmd_ct(argc, argv);
    if (strcmp(cmd, "revoke") == 0)
        return mc_revoke_main(argc, argv);
    if (strcmp(cmd, "query") == 0)
        return mc_query_main(argc, argv);
    if (strcmp(cmd, "crl") == 0)
        return mc_crl_main(argc, argv);
    if (strcmp(cmd, "ocsp") == 0)
        return mc_ocsp_main(argc, argv);
    if (strcmp(cmd, "audit") == 0)
        return mc_audit_main(argc, argv);
    fprintf(stderr, "mailca: unknown command '%s' (see mailca help)\n", cmd);
    return 2;
}
