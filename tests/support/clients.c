/*
 * Real S/MIME client helpers (clients.h): run Debian's tools (NSS certutil/vfychain, OpenSSL,
 * gpgsm) with a timeout, and prepare what they read. Independent of the engine on purpose.
 */
#include "support/clients.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int mc_cl_exec_in(mc_it_run *r, int timeout_s, const char *in_path, const char *const *argv)
{
    return mc_it_exec(r, timeout_s, in_path, argv);
}

int mc_cl_exec(mc_it_run *r, int timeout_s, const char *const *argv)
{
    return mc_cl_exec_in(r, timeout_s, NULL, argv);
}

int mc_cl_order_pack(const mc_csrgen_order *o, const char *const *subject, msgpack_sbuffer *sb)
{
    msgpack_sbuffer tmp;
    msgpack_unpacked u;
    msgpack_sbuffer_init(&tmp);
    msgpack_unpacked_init(&u);
    int rc = -1;
    if (mc_csrgen_order_pack(o, &tmp) != 0 ||
        msgpack_unpack_next(&u, tmp.data, tmp.size, NULL) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP)
        goto done;
    size_t ns = 0;
    while (subject && subject[2 * ns])
        ns++;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    const msgpack_object_map *m = &u.data.via.map;
    int bad = msgpack_pack_map(&pk, m->size + (ns > 0));
    for (uint32_t i = 0; i < m->size; i++)
        bad |= msgpack_pack_object(&pk, m->ptr[i].key) || msgpack_pack_object(&pk, m->ptr[i].val);
    if (ns) {
        bad |= msgpack_pack_str(&pk, 7) || msgpack_pack_str_body(&pk, "subject", 7) ||
               msgpack_pack_map(&pk, ns);
        for (size_t i = 0; i < 2 * ns; i++) {
            size_t l = strlen(subject[i]);
            bad |= msgpack_pack_str(&pk, l) || msgpack_pack_str_body(&pk, subject[i], l);
        }
    }
    rc = bad ? -1 : 0;
done:
    if (rc != 0)
        fprintf(stderr, "cannot pack order %s\n", o->id ? o->id : "(no id)");
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&tmp);
    return rc;
}

int mc_cl_which(const char *name, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        int w = snprintf(out, cap, "%.*s/%s", (int)n, path, name);
        if (w > 0 && (size_t)w < cap && access(out, X_OK) == 0)
            return 0;
        path += n;
        if (*path == ':')
            path++;
    }
    return -1;
}

/* Opens path for writing with the given mode (created or truncated). NULL on failure. */
static FILE *open_mode(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    if (!f)
        fprintf(stderr, "clients: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

int mc_cl_key_pem(const char *path, EVP_PKEY *key)
{
    FILE *f = open_mode(path, 0600);
    if (!f)
        return -1;
    int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (fclose(f) != 0)
        ok = 0;
    ERR_clear_error();
    return ok ? 0 : -1;
}

int mc_cl_cert_pem(const char *path, X509 *cert, STACK_OF(X509) * chain)
{
    FILE *f = open_mode(path, 0644);
    if (!f)
        return -1;
    int ok = PEM_write_X509(f, cert) == 1;
    for (int i = 0; ok && i < sk_X509_num(chain); i++)
        ok = PEM_write_X509(f, sk_X509_value(chain, i)) == 1;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

int mc_cl_key_p12(const char *path, EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain,
                  const char *name, const char *pass, int legacy)
{
    int rc = -1;
    FILE *f = NULL;
    int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : 0;
    PKCS12 *p12 = PKCS12_create(pass, name, key, cert, chain, nid, nid, PKCS12_DEFAULT_ITER,
                                PKCS12_DEFAULT_ITER, 0);
    if (!p12)
        goto done;
    /* PKCS12_create made the MAC with its default (SHA-256 in OpenSSL 3); legacy readers want
     * SHA-1, so redo it. */
    if (legacy && PKCS12_set_mac(p12, pass, -1, NULL, 0, 2048, EVP_sha1()) != 1)
        goto done;
    if ((f = open_mode(path, 0600)) == NULL)
        goto done;
    if (i2d_PKCS12_fp(f, p12) != 1)
        goto done;
    rc = 0;
done:
    if (f && fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "clients: PKCS#12 %s failed\n", path);
    ERR_clear_error();
    PKCS12_free(p12);
    return rc;
}

/* Runs argv; on a non-zero exit prints the command's stderr and returns -1. */
static int run_quiet(const char *const *argv)
{
    mc_it_run r;
    int st = mc_cl_exec(&r, MC_CL_TIMEOUT, argv);
    if (st != 0)
        fprintf(stderr, "clients: %s exited with %d%s: %s%s\n", argv[0], st,
                r.timed_out ? " (timed out)" : "", r.err, r.out);
    mc_it_run_free(&r);
    return st == 0 ? 0 : -1;
}

int mc_cl_nssdb_create(const char *dir)
{
    char db[600];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    snprintf(db, sizeof db, "sql:%s", dir);
    const char *argv[] = {"certutil", "-N", "-d", db, "--empty-password", NULL};
    return run_quiet(argv);
}

int mc_cl_nssdb_add(const char *dir, const char *nick, const char *pem_path, const char *trust)
{
    char db[600];
    snprintf(db, sizeof db, "sql:%s", dir);
    const char *argv[] = {"certutil", "-A",  "-d", db,   "-n",     nick,
                          "-t",       trust, "-a", "-i", pem_path, NULL};
    return run_quiet(argv);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = open_mode(path, 0600);
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) != 0 || !ok ? -1 : 0;
}

int mc_cl_gnupg_start(mc_cl_gnupg *g, const char *home, X509 *root)
{
    char p[700], line[200];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    memset(g, 0, sizeof *g);
    if (snprintf(g->home, sizeof g->home, "%s", home) >= (int)sizeof g->home)
        return -1;
    if (mkdir(home, 0700) != 0 && errno != EEXIST)
        return -1;
    snprintf(p, sizeof p, "%s/gpg-agent.conf", home);
    if (write_text(p, "allow-loopback-pinentry\ndisable-scdaemon\n") != 0)
        return -1;
    snprintf(p, sizeof p, "%s/gpgsm.conf", home);
    if (write_text(p, "disable-dirmngr\ndisable-crl-checks\n") != 0)
        return -1;
    /* trustlist.txt: the root's SHA-1 fingerprint, colon separated, flag S (trusted for S/MIME).
     * gpg-agent reads it when gpgsm asks whether a root is trusted. */
    if (X509_digest(root, EVP_sha1(), md, &mdlen) != 1 || mdlen != 20)
        return -1;
    size_t n = 0;
    for (unsigned i = 0; i < mdlen; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%02X", i ? ":" : "", md[i]);
    snprintf(line + n, sizeof line - n, " S\n");
    snprintf(p, sizeof p, "%s/trustlist.txt", home);
    if (write_text(p, line) != 0)
        return -1;
    /* The agent is ours: started here on our home, killed by mc_cl_gnupg_stop. gpgconf
     * --launch detaches it from our pipes (gpg-agent --daemon itself would keep stderr open). */
    const char *argv[] = {"gpgconf", "--homedir", home, "--launch", "gpg-agent", NULL};
    if (run_quiet(argv) != 0) {
        mc_cl_gnupg_stop(g);
        return -1;
    }
    g->agent_running = 1;
    return 0;
}

void mc_cl_gnupg_stop(mc_cl_gnupg *g)
{
    if (!g->home[0])
        return;
    /* gpgconf kills the daemons whose sockets belong to this home only. */
    const char *argv[] = {"gpgconf", "--homedir", g->home, "--kill", "all", NULL};
    run_quiet(argv);
    g->agent_running = 0;
}
