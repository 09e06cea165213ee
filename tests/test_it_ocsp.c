/*
 * `mailca ocsp serve` end to end, on SQLite and on PostgreSQL: a CA made by `mailca init` (its
 * key in SoftHSM2), two certificates issued with `mailca batch`, one revoked for keyCompromise
 * with `mailca revoke`; the responder started on 127.0.0.1 with an ephemeral port, asked by the
 * `openssl ocsp` command (POST, with a nonce) for the good, the revoked and a never-issued
 * serial, each answer's signature verified by OpenSSL against the issuing CA chained to the
 * root; the same request sent with HTTP GET (libcurl, RFC 5019 encoding) and POST answers the
 * same; an oversize body is refused; SIGTERM stops it with exit status 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mailca/ocsp.h"
#include "support/itutil.h"
#include "support/pgserver.h"

static struct {
    mc_it_ca it;
    char cfg[1024];
    mc_pgserver *pg;
    pid_t running; /* a responder not stopped yet (a failed check): killed before the next */
} g;

static void reap_running(void)
{
    if (g.running > 0) {
        kill(g.running, SIGKILL);
        waitpid(g.running, NULL, 0);
        g.running = 0;
    }
}

static int group_setup(void **state)
{
    (void)state;
    if (mc_it_ca_setup("it-ocsp-", &g.it) != 0)
        return -1;
    snprintf(g.cfg, sizeof g.cfg, "%s/mailca.yaml", g.it.ca);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    reap_running();
    mc_pgserver_stop(g.pg);
    curl_global_cleanup();
    mc_it_ca_free(&g.it);
    return 0;
}

static void run_ok(const char *const *args, const char *want)
{
    mc_it_run r;
    mc_it_mailca_argv(&r, 300, args);
    if (r.status != 0 || (want && !strstr(r.out, want) && !strstr(r.err, want)))
        fail_msg("mailca %s: exit %d, want \"%s\": out %s err %s", args[0], r.status,
                 want ? want : "", r.out, r.err);
    mc_it_run_free(&r);
}

/* The responder as a child process: pid, port, and its stderr in a file. */
typedef struct responder {
    pid_t pid;
    int port;
    FILE *out;      /* its stdout */
    char line[512]; /* its first line */
} responder;

static void responder_start(responder *rs, const char *cfg, const char *errlog)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        FILE *e = fopen(errlog, "w");
        if (e)
            dup2(fileno(e), 2);
        close(fds[0]);
        close(fds[1]);
        const char *bin = mc_it_bin();
        execl(bin, bin, "ocsp", "serve", "--config", cfg, "--listen", "127.0.0.1:0",
              "--validity-hours", "24", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    rs->pid = pid;
    g.running = pid;
    rs->out = fdopen(fds[0], "r");
    assert_non_null(rs->out);
    struct pollfd pf = {.fd = fds[0], .events = POLLIN};
    char line[512] = "";
    /* the first line says where it listens (port 0: the kernel picked one) */
    if (poll(&pf, 1, 60000) != 1 || !fgets(line, sizeof line, rs->out)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        g.running = 0;
        size_t n = 0;
        char *log = (char *)mc_it_read_file(errlog, &n);
        fail_msg("mailca ocsp serve did not start: %s", log ? log : "(no log)");
    }
    const char *at = strstr(line, "http://127.0.0.1:");
    assert_non_null(at);
    rs->port = atoi(at + strlen("http://127.0.0.1:"));
    snprintf(rs->line, sizeof rs->line, "%s", line);
    assert_true(rs->port > 0);
}

/* SIGTERM: a clean stop with exit status 0 and its summary line. */
static void responder_stop(responder *rs)
{
    assert_int_equal(kill(rs->pid, SIGTERM), 0);
    int st = 0;
    assert_int_equal(waitpid(rs->pid, &st, 0), rs->pid);
    g.running = 0;
    char line[512] = "";
    int said = fgets(line, sizeof line, rs->out) && strstr(line, "stopped on signal 15");
    fclose(rs->out);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(said);
}

/* `openssl ocsp` against the responder; its stdout and stderr together in *all (freed by the
 * caller). Returns the exit status. */
static int openssl_ocsp(const responder *rs, const char *const *extra, char **all)
{
    char url[64], ica[700], root[700];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", rs->port);
    snprintf(ica, sizeof ica, "%s/issuing-ca.pem", g.it.ca);
    snprintf(root, sizeof root, "%s/root.pem", g.it.ca);
    const char *argv[24] = {"openssl", "ocsp", "-issuer",       ica, "-url",     url,
                            "-CAfile", root,   "-verify_other", ica, "-timeout", "30"};
    size_t n = 12;
    for (; *extra && n < 23; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    mc_it_run r;
    int st = mc_it_exec(&r, 60, NULL, argv);
    size_t len = r.out_len + r.err_len + 1;
    *all = malloc(len);
    assert_non_null(*all);
    snprintf(*all, len, "%s%s", r.out, r.err);
    mc_it_run_free(&r);
    return st;
}

typedef struct http_resp {
    uint8_t *body;
    size_t len;
    long code;
    char type[128], cache[128], expires[64];
} http_resp;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    http_resp *h = arg;
    uint8_t *b = realloc(h->body, h->len + size * n);
    if (!b)
        return 0;
    memcpy(b + h->len, p, size * n);
    h->body = b;
    h->len += size * n;
    return size * n;
}

static void header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (n > nl && strncasecmp(line, name, nl) == 0) {
        size_t v = n - nl;
        while (v && (line[nl + v - 1] == '\r' || line[nl + v - 1] == '\n'))
            v--;
        snprintf(out, cap, "%.*s", (int)v, line + nl);
    }
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    http_resp *h = arg;
    header_value(p, size * n, "Content-Type: ", h->type, sizeof h->type);
    header_value(p, size * n, "Cache-Control: ", h->cache, sizeof h->cache);
    header_value(p, size * n, "Expires: ", h->expires, sizeof h->expires);
    return size * n;
}

/* GET url, or POST body when body is not NULL. */
static void http(const char *url, const uint8_t *body, size_t len, http_resp *h)
{
    memset(h, 0, sizeof *h);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/ocsp-request");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        fail_msg("HTTP %s: %s", url, curl_easy_strerror(rc));
}

/* The status of leaf in the DER response, its signature verified against the issuing CA
 * chained to the root. */
static int verified_status(const uint8_t *der, size_t len, X509 *leaf, int *reason)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    assert_non_null(resp);
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    assert_non_null(bs);
    X509_STORE *st = X509_STORE_new();
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509_STORE_add_cert(st, g.it.root);
    sk_X509_push(certs, g.it.ica);
    assert_int_equal(OCSP_basic_verify(bs, certs, st, 0), 1);
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, g.it.ica);
    int status = -1;
    ASN1_GENERALIZEDTIME *tu = NULL, *nu = NULL;
    assert_int_equal(OCSP_resp_find_status(bs, id, &status, reason, NULL, &tu, &nu), 1);
    assert_int_equal(OCSP_check_validity(tu, nu, 300, -1), 1);
    OCSP_CERTID_free(id);
    sk_X509_free(certs);
    X509_STORE_free(st);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return status;
}

/* GET {url}/{url-encoded base64 of the DER request} (RFC 5019 5). */
static void get_url(const responder *rs, const uint8_t *der, size_t len, char *url, size_t cap)
{
    char b64[4096];
    assert_true(len < 2000);
    int n = EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    int k = snprintf(url, cap, "http://127.0.0.1:%d/", rs->port);
    for (int i = 0; i < n; i++) {
        char ch = b64[i];
        if (ch == '+' || ch == '/' || ch == '=')
            k += snprintf(url + k, cap - (size_t)k, "%%%02X", (unsigned)ch);
        else
            url[k++] = ch;
    }
    url[k] = 0;
}

static X509 *der_cert(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    return x;
}

/* Issues two certificates with cfg, revokes the second, and checks the responder. */
static void check_backend(const char *cfg, const char *tag, const char *backend)
{
    char orders[1100], results[1100], good[1100], revoked[1100], errlog[1100];
    snprintf(orders, sizeof orders, "%s/%s-orders.msgpack", g.it.dir, tag);
    snprintf(results, sizeof results, "%s/%s-results.msgpack", g.it.dir, tag);
    snprintf(good, sizeof good, "%s/%s-good.pem", g.it.dir, tag);
    snprintf(revoked, sizeof revoked, "%s/%s-revoked.pem", g.it.dir, tag);
    snprintf(errlog, sizeof errlog, "%s/%s-ocsp.log", g.it.dir, tag);
    const char *gen[] = {"gen-orders", "--count", "2", "--pool", "2", orders, NULL};
    run_ok(gen, NULL);
    const char *batch[] = {"batch", "--config", cfg, orders, results, NULL};
    run_ok(batch, "2 orders: 2 issued, 0 rejected, 0 failed");
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, 2);
    assert_int_equal(mc_it_append_pem(good, res.r[0].cert, res.r[0].cert_len), 0);
    assert_int_equal(mc_it_append_pem(revoked, res.r[1].cert, res.r[1].cert_len), 0);
    X509 *xg = der_cert(res.r[0].cert, res.r[0].cert_len);
    X509 *xr = der_cert(res.r[1].cert, res.r[1].cert_len);
    char hex[64] = "";
    const ASN1_INTEGER *sn = X509_get0_serialNumber(xr);
    for (int i = 0; i < sn->length; i++)
        snprintf(hex + 2 * i, 3, "%02x", sn->data[i]);
    const char *rv[] = {"revoke",   "--config",      cfg, "--serial", hex,
                        "--reason", "keyCompromise", NULL};
    run_ok(rv, "1 revoked (keyCompromise)");
    mc_it_results_free(&res);

    responder rs;
    reap_running();
    responder_start(&rs, cfg, errlog);
    if (!strstr(rs.line, backend))
        fail_msg("the responder does not use the %s store: %s", backend, rs.line);
    char *all = NULL;
    /* good, with openssl's default nonce: verified against the CA and echoed */
    const char *q_good[] = {"-cert", good, NULL};
    if (openssl_ocsp(&rs, q_good, &all) != 0 || !strstr(all, "Response verify OK") ||
        !strstr(all, ": good") || strstr(all, "WARNING"))
        fail_msg("openssl ocsp (good): %s", all);
    free(all);
    /* revoked, with its reason */
    const char *q_rev[] = {"-cert", revoked, NULL};
    if (openssl_ocsp(&rs, q_rev, &all) != 0 || !strstr(all, "Response verify OK") ||
        !strstr(all, ": revoked") || !strstr(all, "Reason: keyCompromise"))
        fail_msg("openssl ocsp (revoked): %s", all);
    free(all);
    /* a serial this CA never issued: unknown, never good (SBR 4.9.10) */
    const char *q_unused[] = {"-serial", "0x7e0123456789abcdef0123456789abcdef", NULL};
    if (openssl_ocsp(&rs, q_unused, &all) != 0 || !strstr(all, "Response verify OK") ||
        !strstr(all, ": unknown"))
        fail_msg("openssl ocsp (never issued): %s", all);
    free(all);
    /* both at once, without a nonce, SHA-256 CertIDs */
    const char *q_both[] = {"-no_nonce", "-sha256", "-cert", good, "-cert", revoked, NULL};
    if (openssl_ocsp(&rs, q_both, &all) != 0 || !strstr(all, "Response verify OK") ||
        !strstr(all, ": good") || !strstr(all, ": revoked"))
        fail_msg("openssl ocsp (two CertIDs): %s", all);
    free(all);

    /* GET (SBR 4.9.10, RFC 5019 5) and POST of one nonce-less request answer the same */
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    assert_non_null(OCSP_request_add0_id(req, OCSP_cert_to_id(NULL, xr, g.it.ica)));
    uint8_t *der = NULL;
    int dlen = i2d_OCSP_REQUEST(req, &der);
    assert_true(dlen > 0);
    OCSP_REQUEST_free(req);
    char url[4096], post_url[64];
    get_url(&rs, der, (size_t)dlen, url, sizeof url);
    snprintf(post_url, sizeof post_url, "http://127.0.0.1:%d/", rs.port);
    http_resp hg, hp;
    http(url, NULL, 0, &hg);
    http(post_url, der, (size_t)dlen, &hp);
    assert_int_equal(hg.code, 200);
    assert_int_equal(hp.code, 200);
    assert_string_equal(hg.type, "application/ocsp-response");
    assert_string_equal(hp.type, "application/ocsp-response");
    assert_non_null(strstr(hg.cache, "max-age="));
    assert_true(atoi(strstr(hg.cache, "max-age=") + 8) <= MC_OCSP_CACHE_SECONDS);
    assert_true(hg.expires[0] != 0);
    int reason = -9;
    assert_int_equal(verified_status(hg.body, hg.len, xr, &reason), V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
    assert_int_equal(hg.len, hp.len); /* the same signed answer (the responder's cache) */
    assert_memory_equal(hg.body, hp.body, hg.len);
    free(hg.body);
    free(hp.body);
    OPENSSL_free(der);
    /* GET of the good one */
    req = OCSP_REQUEST_new();
    assert_non_null(OCSP_request_add0_id(req, OCSP_cert_to_id(NULL, xg, g.it.ica)));
    der = NULL;
    dlen = i2d_OCSP_REQUEST(req, &der);
    OCSP_REQUEST_free(req);
    get_url(&rs, der, (size_t)dlen, url, sizeof url);
    http(url, NULL, 0, &hg);
    assert_int_equal(verified_status(hg.body, hg.len, xg, &reason), V_OCSP_CERTSTATUS_GOOD);
    free(hg.body);
    OPENSSL_free(der);
    /* two GETs on one connection: the answer keeps HTTP keep-alive (no new connection) */
    CURL *ka = curl_easy_init();
    assert_non_null(ka);
    curl_easy_setopt(ka, CURLOPT_URL, url);
    curl_easy_setopt(ka, CURLOPT_WRITEFUNCTION, on_body);
    for (int i = 0; i < 2; i++) {
        memset(&hg, 0, sizeof hg);
        curl_easy_setopt(ka, CURLOPT_WRITEDATA, &hg);
        assert_int_equal(curl_easy_perform(ka), CURLE_OK);
        long conns = -1;
        curl_easy_getinfo(ka, CURLINFO_NUM_CONNECTS, &conns);
        assert_int_equal(conns, i == 0 ? 1 : 0);
        assert_int_equal(verified_status(hg.body, hg.len, xg, &reason), V_OCSP_CERTSTATUS_GOOD);
        free(hg.body);
    }
    curl_easy_cleanup(ka);
    /* a GET path that is no request: malformedRequest (5 bytes, status 1) */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/not-base64!", rs.port);
    http(url, NULL, 0, &hg);
    assert_int_equal(hg.code, 200);
    static const uint8_t malformed[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
    assert_int_equal(hg.len, sizeof malformed);
    assert_memory_equal(hg.body, malformed, sizeof malformed);
    free(hg.body);
    /* an oversize body is refused */
    uint8_t *big = calloc(1, MC_OCSP_REQUEST_MAX + 1);
    assert_non_null(big);
    http(post_url, big, MC_OCSP_REQUEST_MAX + 1, &hp);
    assert_int_equal(hp.code, 413);
    free(hp.body);
    free(big);
    /* another method */
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, post_url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    memset(&hp, 0, sizeof hp);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &hp);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &hp.code);
    curl_easy_cleanup(c);
    free(hp.body);
    assert_int_equal(hp.code, 405);
    responder_stop(&rs);
    /* SBR 5.4.1 2.vi: the serving period is in the audit log, with what it answered */
    mc_it_run ar;
    assert_int_equal(mc_it_mailca(&ar, "audit", "--config", cfg, "--event", "ocsp.stop", NULL), 0);
    const char *last = ar.out, *p;
    while ((p = strstr(last + 1, "\"event\":\"ocsp.stop\"")))
        last = p;
    assert_non_null(strstr(last, "\"event\":\"ocsp.stop\""));
    assert_null(strstr(last, "\"answered\":0,"));
    assert_non_null(strstr(last, "\"signal\":15"));
    mc_it_run_free(&ar);
    assert_int_equal(mc_it_mailca(&ar, "audit", "--config", cfg, "--event", "ocsp.start", NULL), 0);
    assert_non_null(strstr(ar.out, "\"subject\":\"127.0.0.1:0\""));
    mc_it_run_free(&ar);
    X509_free(xg);
    X509_free(xr);
    /* the PIN never reaches the log */
    size_t n = 0;
    char *log = (char *)mc_it_read_file(errlog, &n);
    char pinpath[700];
    snprintf(pinpath, sizeof pinpath, "%s/pin", g.it.ca);
    char *pin = (char *)mc_it_read_file(pinpath, &n);
    assert_non_null(log);
    assert_non_null(pin);
    pin[strcspn(pin, "\r\n")] = 0;
    assert_true(strlen(pin) >= 8);
    assert_null(strstr(log, pin));
    free(pin);
    free(log);
}

static void test_sqlite(void **state)
{
    (void)state;
    check_backend(g.cfg, "sqlite", "sqlite");
}

static void test_postgresql(void **state)
{
    (void)state;
    mc_errdetail err;
    if (mc_pgserver_start(&g.pg, &err) != MC_OK)
        fail_msg("PostgreSQL test server: %s", err.message);
    char cfg[1100], value[600];
    snprintf(cfg, sizeof cfg, "%s/mailca-pg.yaml", g.it.ca);
    snprintf(value, sizeof value, "\"%s\"", mc_pgserver_uri(g.pg));
    assert_int_equal(mc_it_config_set(g.cfg, cfg, "store.sqlite", value), 0);
    check_backend(cfg, "pg", "postgresql");
}

/* Refused before anything is served: a validity outside 8 hours .. 10 days (SBR 4.9.10), a
 * listen address that is none, and a ca.certificate whose key is not the HSM's (the start-up
 * self-check verifies one signed answer with OpenSSL). */
static void test_refused_at_start(void **state)
{
    (void)state;
    mc_it_run r;
    const char *args[] = {"ocsp",     "serve",       "--config",         g.cfg,
                          "--listen", "127.0.0.1:0", "--validity-hours", "241",
                          NULL};
    mc_it_mailca_argv(&r, 60, args);
    if (r.status != 1 || !strstr(r.err, "SBR 4.9.10"))
        fail_msg("--validity-hours 241: exit %d: %s", r.status, r.err);
    mc_it_run_free(&r);
    const char *noport[] = {"ocsp", "serve", "--config", g.cfg, "--listen", "localhost", NULL};
    mc_it_mailca_argv(&r, 60, noport);
    if (r.status != 1 || !strstr(r.err, "listen"))
        fail_msg("--listen localhost: exit %d: %s", r.status, r.err);
    mc_it_run_free(&r);
    char cfg[1100], root[700];
    snprintf(cfg, sizeof cfg, "%s/mailca-rootcert.yaml", g.it.ca);
    snprintf(root, sizeof root, "\"%s/root.pem\"", g.it.ca);
    assert_int_equal(mc_it_config_set(g.cfg, cfg, "ca.certificate", root), 0);
    const char *wrong[] = {"ocsp", "serve", "--config", cfg, "--listen", "127.0.0.1:0", NULL};
    mc_it_mailca_argv(&r, 60, wrong);
    if (r.status != 1 || !strstr(r.err, "self-check") || strstr(r.out, "listening"))
        fail_msg("ca.certificate not the HSM key's: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_at_start),
        cmocka_unit_test(test_sqlite),
        cmocka_unit_test(test_postgresql),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
