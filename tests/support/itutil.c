/*
 * Integration test helpers (itutil.h): run the mailca binary as a user would, read what it
 * wrote (results stream, SQLite store, PEM files) and judge certificates with OpenSSL. Kept
 * apart from the engine on purpose: tests check the binary's output with independent code.
 */
#include "support/itutil.h"
#include "support/csrgen.h"

#include "mailca/order.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <msgpack.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *mc_it_bin(void)
{
    const char *b = getenv("MAILCA_BIN");
    return b && b[0] ? b : NULL;
}

int mc_it_tmpdir(const char *prefix, char *out, size_t cap)
{
    const char *base = getenv("MAILCA_TEST_TMP");
    if (!base || !base[0])
        base = "/tmp";
    if (mkdir(base, 0700) != 0 && errno != EEXIST)
        return -1;
    int n = snprintf(out, cap, "%s/%sXXXXXX", base, prefix);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdtemp(out) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int mc_it_rmtree(const char *path)
{
    /* FTW_DEPTH: children before their directory; FTW_PHYS: never follow symlinks. */
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Appends what fd has to read into *buf. Returns 0 at EOF, 1 when more may come, -1 on error. */
static int drain(int fd, char **buf, size_t *len, size_t *cap)
{
    char tmp[8192];
    ssize_t got = read(fd, tmp, sizeof tmp);
    if (got < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -1;
    if (got == 0)
        return 0;
    if (*len + (size_t)got + 1 > *cap) {
        size_t nc = *cap ? *cap : 16384;
        while (nc < *len + (size_t)got + 1)
            nc *= 2;
        char *p = realloc(*buf, nc);
        if (!p)
            return -1;
        *buf = p;
        *cap = nc;
    }
    memcpy(*buf + *len, tmp, (size_t)got);
    *len += (size_t)got;
    (*buf)[*len] = '\0';
    return 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int mc_it_exec(mc_it_run *r, int timeout_s, const char *in_path, const char *const *argv)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    size_t ocap = 0, ecap = 0;
    pid_t pid = -1;
    memset(r, 0, sizeof *r);
    r->status = -1;
    if (pipe(po) != 0 || pipe(pe) != 0) {
        fprintf(stderr, "itutil: pipe: %s\n", strerror(errno));
        goto done;
    }
    pid = fork();
    if (pid < 0)
        goto done;
    if (pid == 0) {
        /* Own process group, so that a timeout kills whatever the tool started too. */
        setpgid(0, 0);
        int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(126);
        close(po[0]);
        close(pe[0]);
        setenv("LC_ALL", "C", 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with the kill below */
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    double deadline = now_s() + timeout_s;
    int open_o = 1, open_e = 1;
    while (open_o || open_e) {
        struct pollfd fds[2] = {{open_o ? po[0] : -1, POLLIN, 0}, {open_e ? pe[0] : -1, POLLIN, 0}};
        double left = deadline - now_s();
        if (left <= 0) {
            kill(-pid, SIGKILL); /* the process group of the child we forked */
            r->timed_out = 1;
            break;
        }
        int pr = poll(fds, 2, (int)(left * 1000) + 1);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        if (open_o && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            open_o = drain(po[0], &r->out, &r->out_len, &ocap) > 0;
        if (open_e && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            open_e = drain(pe[0], &r->err, &r->err_len, &ecap) > 0;
    }
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(ws))
        r->status = WEXITSTATUS(ws);
    else if (WIFSIGNALED(ws))
        r->status = 128 + WTERMSIG(ws);
    if (r->status == 127)
        fprintf(stderr, "itutil: cannot run %s (not installed?)\n", argv[0]);
done:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    if (!r->out)
        r->out = calloc(1, 1);
    if (!r->err)
        r->err = calloc(1, 1);
    return r->status;
}

int mc_it_mailca_argv(mc_it_run *r, int timeout_s, const char *const *args)
{
    const char *bin = mc_it_bin();
    size_t n = 0;
    while (args[n])
        n++;
    const char **argv = calloc(n + 2, sizeof *argv);
    if (!bin || !argv) {
        fprintf(stderr, "itutil: cannot run mailca (MAILCA_BIN %s)\n", bin ? bin : "unset");
        free(argv);
        memset(r, 0, sizeof *r);
        r->status = -1;
        r->out = calloc(1, 1);
        r->err = calloc(1, 1);
        return -1;
    }
    argv[0] = bin;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = args[i];
    int st = mc_it_exec(r, timeout_s, NULL, argv);
    free(argv);
    return st;
}

int mc_it_mailca(mc_it_run *r, ...)
{
    const char *args[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, r);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 63;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return mc_it_mailca_argv(r, 300, args);
}

void mc_it_run_free(mc_it_run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

uint8_t *mc_it_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int mc_it_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int bad = len && fwrite(data, 1, len, f) != len;
    return fclose(f) != 0 || bad ? -1 : 0;
}

int mc_it_replace_file(const char *path, const char *text)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.new", path) >= sizeof tmp ||
        mc_it_write_file(tmp, text, strlen(text)) != 0)
        return -1;
    return rename(tmp, path) == 0 ? 0 : -1;
}

int mc_it_scaled(int n, int floor)
{
    const char *v = getenv("MAILCA_TEST_SCALE");
    int d = v ? atoi(v) : 1;
    return d > 1 ? (n / d > floor ? n / d : floor) : n;
}

int mc_it_append_pem(const char *path, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    FILE *f = x ? fopen(path, "ab") : NULL;
    int ok = f && PEM_write_X509(f, x) == 1;
    if (f && fclose(f) != 0)
        ok = 0;
    X509_free(x);
    return ok ? 0 : -1;
}

/* Makes r own its variable parts: copies of order_id and cert, and its pointers re-aimed at its
 * own store (the decoder pointed them into the store of the mc_result it filled). */
static int result_own(mc_result *r)
{
    char *id = malloc(r->order_id_len + 1);
    uint8_t *cert = r->cert_len ? malloc(r->cert_len) : NULL;
    if (!id || (r->cert_len && !cert)) {
        free(id);
        free(cert);
        r->order_id = NULL;
        r->cert = NULL;
        return -1;
    }
    if (r->order_id_len)
        memcpy(id, r->order_id, r->order_id_len);
    id[r->order_id_len] = '\0';
    if (cert)
        memcpy(cert, r->cert, r->cert_len);
    r->order_id = id;
    r->cert = cert;
    return 0;
}

static void result_repoint(mc_result *r)
{
    if (r->serial)
        r->serial = r->store.serial;
    if (r->lint_version)
        r->lint_version = r->store.lint_version;
    if (r->warnings)
        r->warnings = r->store.warnings;
}

int mc_it_results_load(const char *path, mc_it_results *out)
{
    size_t len = 0, cap = 0;
    int rc = -1;
    msgpack_unpacker up;
    msgpack_unpacked res;
    memset(out, 0, sizeof *out);
    uint8_t *buf = mc_it_read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "itutil: cannot read %s\n", path);
        return -1;
    }
    if (!msgpack_unpacker_init(&up, len + 16)) {
        free(buf);
        return -1;
    }
    msgpack_unpacked_init(&res);
    if (!msgpack_unpacker_reserve_buffer(&up, len + 1))
        goto done;
    memcpy(msgpack_unpacker_buffer(&up), buf, len);
    msgpack_unpacker_buffer_consumed(&up, len);
    msgpack_unpack_return ret;
    while ((ret = msgpack_unpacker_next(&up, &res)) == MSGPACK_UNPACK_SUCCESS) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 1024;
            mc_result *p = realloc(out->r, cap * sizeof *p);
            if (!p)
                goto done;
            out->r = p;
            for (size_t i = 0; i < out->n; i++)
                result_repoint(&out->r[i]);
        }
        mc_result *r = &out->r[out->n];
        mc_errdetail e;
        memset(r, 0, sizeof *r);
        if (mc_result_decode(&res.data, r, &e) != MC_OK) {
            char b[600];
            fprintf(stderr, "itutil: %s: result %zu does not decode: %s\n", path, out->n,
                    mc_err_format(&e, b, sizeof b));
            memset(r, 0, sizeof *r);
            goto done;
        }
        if (result_own(r) != 0)
            goto done;
        out->n++;
    }
    if (ret != MSGPACK_UNPACK_CONTINUE ||
        msgpack_unpacker_message_size(&up) != msgpack_unpacker_parsed_size(&up)) {
        fprintf(stderr, "itutil: %s: malformed or incomplete msgpack after %zu results\n", path,
                out->n);
        goto done;
    }
    rc = 0;
done:
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
    free(buf);
    return rc;
}

void mc_it_results_free(mc_it_results *res)
{
    for (size_t i = 0; i < res->n; i++) {
        free((void *)res->r[i].order_id);
        free((void *)res->r[i].cert);
    }
    free(res->r);
    memset(res, 0, sizeof *res);
}

static char *dup_str(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

int mc_it_orders_load(const char *path, mc_it_orders *out)
{
    size_t len = 0, cap = 0, off = 0;
    int rc = -1;
    msgpack_unpacked res;
    memset(out, 0, sizeof *out);
    uint8_t *buf = mc_it_read_file(path, &len);
    if (!buf)
        return -1;
    msgpack_unpacked_init(&res);
    msgpack_unpack_return ret;
    while ((ret = msgpack_unpack_next(&res, (const char *)buf, len, &off)) ==
           MSGPACK_UNPACK_SUCCESS) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 1024;
            mc_it_order *p = realloc(out->o, cap * sizeof *p);
            if (!p)
                goto done;
            out->o = p;
        }
        mc_it_order *o = &out->o[out->n++];
        memset(o, 0, sizeof *o);
        mc_order ord;
        mc_errdetail e;
        if (mc_order_decode(&res.data, &ord, &e) != MC_OK)
            continue;
        static const char *const usages[] = {"", "signing", "key-management", "dual"};
        o->valid = 1;
        o->id = dup_str(ord.id.p, ord.id.len);
        o->mailbox = dup_str(ord.mailboxes[0].address.p, ord.mailboxes[0].address.len);
        o->usage = dup_str(usages[ord.usage], strlen(usages[ord.usage]));
        o->csr = malloc(ord.csr_len);
        o->csr_len = ord.csr_len;
        if (!o->id || !o->mailbox || !o->usage || !o->csr)
            goto done;
        memcpy(o->csr, ord.csr, ord.csr_len);
    }
    if (ret != MSGPACK_UNPACK_CONTINUE || off != len)
        goto done;
    rc = 0;
done:
    msgpack_unpacked_destroy(&res);
    free(buf);
    return rc;
}

void mc_it_orders_free(mc_it_orders *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->o[i].id);
        free(o->o[i].mailbox);
        free(o->o[i].usage);
        free(o->o[i].csr);
    }
    free(o->o);
    memset(o, 0, sizeof *o);
}

STACK_OF(X509) * mc_it_pem_load(const char *path)
{
    FILE *f = fopen(path, "rb");
    STACK_OF(X509) *s = f ? sk_X509_new_null() : NULL;
    X509 *x;
    while (s && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(s, x)) {
            X509_free(x);
            break;
        }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    if (f)
        fclose(f);
    if (s && sk_X509_num(s) == 0) {
        sk_X509_free(s);
        s = NULL;
    }
    return s;
}

X509 *mc_it_pem_first(const char *path)
{
    STACK_OF(X509) *s = mc_it_pem_load(path);
    X509 *x = s ? sk_X509_shift(s) : NULL;
    sk_X509_pop_free(s, X509_free);
    return x;
}

int mc_it_verify_crl(X509 *root, X509 *ica, X509_CRL *crl, X509 *leaf, int *error)
{
    int rc = -1;
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    *error = 0;
    if (st && ctx && chain && X509_STORE_add_cert(st, root) == 1 &&
        X509_STORE_add_crl(st, crl) == 1 && sk_X509_push(chain, ica) > 0 &&
        X509_STORE_CTX_init(ctx, st, leaf, chain) == 1) {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK);
        rc = X509_verify_cert(ctx) == 1;
        *error = X509_STORE_CTX_get_error(ctx);
    }
    ERR_clear_error();
    sk_X509_free(chain);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return rc;
}

int mc_it_verify(X509 *root, X509 *ica, const uint8_t *der, size_t len, int purpose,
                 const char **why)
{
    int rc = -1;
    const unsigned char *p = der;
    X509 *leaf = d2i_X509(NULL, &p, (long)len);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (why)
        *why = "internal failure";
    if (!leaf || p != der + len) {
        if (why)
            *why = "the certificate DER does not parse (or has trailing bytes)";
        goto done;
    }
    if (!store || !ctx || !chain || X509_STORE_add_cert(store, root) != 1 ||
        !sk_X509_push(chain, ica) || X509_STORE_CTX_init(ctx, store, leaf, chain) != 1)
        goto done;
    if (purpose != X509_PURPOSE_ANY && X509_STORE_CTX_set_purpose(ctx, purpose) != 1)
        goto done;
    int v = X509_verify_cert(ctx);
    if (v == 1) {
        rc = 1;
    } else if (v == 0) {
        rc = 0;
        if (why)
            *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    }
done:
    ERR_clear_error();
    sk_X509_free(chain); /* ica stays the caller's */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(leaf);
    return rc;
}

sqlite3 *mc_it_db_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "itutil: sqlite open %s: %s\n", path, db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

int mc_it_db_cert(sqlite3 *db, const uint8_t *serial, size_t serial_len, uint8_t **der,
                  size_t *der_len)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    *der = NULL;
    *der_len = 0;
    if (sqlite3_prepare_v2(db, "SELECT der FROM certificates WHERE serial = ?", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_bind_blob(st, 1, serial, (int)serial_len, SQLITE_STATIC) != SQLITE_OK)
        goto done;
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        rc = 0;
    } else if (s == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        if (n > 0 && p && (*der = malloc((size_t)n)) != NULL) {
            memcpy(*der, p, (size_t)n);
            *der_len = (size_t)n;
            rc = 1;
        }
    }
done:
    if (rc < 0)
        fprintf(stderr, "itutil: sqlite: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

long long mc_it_db_count(sqlite3 *db, const char *table)
{
    char sql[128];
    sqlite3_stmt *st = NULL;
    long long n = -1;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "itutil: sqlite: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return n;
}

int mc_it_ca_setup(const char *prefix, mc_it_ca *g)
{
    char p[1024];
    mc_it_run r;
    memset(g, 0, sizeof *g);
    if (!mc_it_bin()) {
        fprintf(stderr, "MAILCA_BIN is not set (run through ctest)\n");
        return -1;
    }
    if (mc_it_tmpdir(prefix, g->dir, sizeof g->dir) != 0)
        return -1;
    snprintf(g->ca, sizeof g->ca, "%s/ca", g->dir);
    /* a CA configured as in production: URLs under a delegated domain (the default
     * pki.mailca.test gets w_smime_uri_host_reserved on every certificate) */
    int st = mc_it_mailca(&r, "init", "--dir", g->ca, "--base-url", MC_IT_BASE_URL, NULL);
    if (st != 0)
        fprintf(stderr, "mailca init: exit %d: %s\n", st, r.err);
    mc_it_run_free(&r);
    if (st != 0)
        return -1;
    snprintf(p, sizeof p, "%s/root.pem", g->ca);
    g->root = mc_it_pem_first(p);
    snprintf(p, sizeof p, "%s/issuing-ca.pem", g->ca);
    g->ica = mc_it_pem_first(p);
    g->key = mc_csrgen_key(MC_KEY_P256, 0);
    g->csr = g->key ? mc_csrgen_csr(g->key, NULL, 0, &g->csr_len) : NULL;
    return g->root && g->ica && g->csr ? 0 : -1;
}

int mc_it_ca_free(mc_it_ca *ca)
{
    X509_free(ca->root);
    X509_free(ca->ica);
    EVP_PKEY_free(ca->key);
    free(ca->csr);
    ca->root = ca->ica = NULL;
    ca->key = NULL;
    ca->csr = NULL;
    if (!ca->dir[0] || getenv("MAILCA_KEEP_TMP"))
        return 0;
    return mc_it_rmtree(ca->dir);
}

int mc_it_config_set(const char *in, const char *out_path, const char *key, const char *value)
{
    size_t len = 0;
    const char *dot = strchr(key, '.');
    const char *name = dot ? dot + 1 : key;
    size_t kl = strlen(name), sl = dot ? (size_t)(dot - key) : 0;
    char *y = (char *)mc_it_read_file(in, &len);
    FILE *out = y ? fopen(out_path, "w") : NULL;
    int set = 0, in_section = !dot;
    if (!out) {
        free(y);
        return -1;
    }
    for (char *line = strtok(y, "\n"); line; line = strtok(NULL, "\n")) {
        if (dot && line[0] != ' ' && line[0] != '#')
            in_section = strncmp(line, key, sl) == 0 && line[sl] == ':';
        if (!set && in_section && strncmp(line, "  ", 2) == 0 && strncmp(line + 2, name, kl) == 0 &&
            line[2 + kl] == ':') {
            fprintf(out, "  %s: %s\n", name, value);
            set = 1;
        } else {
            fprintf(out, "%s\n", line);
        }
    }
    int rc = fclose(out) == 0 && set ? 0 : -1;
    free(y);
    return rc;
}

int mc_it_config_with_deadline(const char *in, const char *out_path, int ms)
{
    size_t len = 0;
    char *y = (char *)mc_it_read_file(in, &len);
    FILE *out = y ? fopen(out_path, "w") : NULL;
    int set = 0;
    if (!out) {
        free(y);
        return -1;
    }
    for (char *line = strtok(y, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "  sign_timeout_ms:", 18) == 0)
            continue;
        fprintf(out, "%s\n", line);
        if (!set && strncmp(line, "  module:", 9) == 0) {
            fprintf(out, "  sign_timeout_ms: %d\n", ms);
            set = 1;
        }
    }
    int rc = fclose(out) == 0 && set ? 0 : -1;
    free(y);
    return rc;
}
