/*
 * Configuration file reader/writer. The key table below is the single source for names, types
 * and defaults (Redis-style), so `mailca init` writes what the loader accepts.
 */
#include "mailca/config.h"

#include "mailca/crl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

enum kind { K_STR, K_PATH, K_INT, K_BOOL };

static const struct key {
    const char *section, *name;
    enum kind kind;
    size_t off, size;
    const char *def;
    int min, max;
} keys[] = {
#define S(sec, nm, k, field, def)                                                                  \
    {                                                                                              \
        sec, nm, k, offsetof(mc_config, field), sizeof(((mc_config *)0)->field), def, 0, 0         \
    }
#define I(sec, nm, field, def, lo, hi)                                                             \
    {                                                                                              \
        sec, nm, K_INT, offsetof(mc_config, field), sizeof(int), def, lo, hi                       \
    }
    S("hsm", "module", K_PATH, hsm_module, MAILCA_SOFTHSM2_MODULE),
    S("hsm", "key", K_STR, hsm_key, ""),
    S("hsm", "pin_file", K_PATH, hsm_pin_file, ""),
    S("hsm", "pin_env", K_STR, hsm_pin_env, "MAILCA_PIN"),
    S("hsm", "softhsm2_conf", K_PATH, softhsm2_conf, ""),
    I("hsm", "sign_timeout_ms", hsm_sign_timeout_ms, "5000", 0, 600000),
    S("ca", "certificate", K_PATH, ca_certificate, ""),
    S("ca", "root", K_PATH, ca_root, ""),
    S("ca", "signature", K_STR, ca_signature, ""),
    S("ca", "crl_url", K_STR, ca_crl_url, ""),
    I("ca", "crl_shards", ca_crl_shards, "1", 1, MC_CRL_SHARDS_MAX),
    S("ca", "ocsp_url", K_STR, ca_ocsp_url, ""),
    S("ca", "ca_issuers_url", K_STR, ca_issuers_url, ""),
    S("ca", "cps_url", K_STR, ca_cps_url, ""),
    {"caa", "enabled", K_BOOL, offsetof(mc_config, caa_enabled), sizeof(int), "false", 0, 1},
    S("caa", "resolvers", K_STR, caa_resolvers, ""),
    S("caa", "issuer_domains", K_STR, caa_issuer_domains, ""),
    I("caa", "timeout_ms", caa_timeout_ms, "5000", 100, 60000),
    S("caa", "trust_anchor_file", K_PATH, caa_trust_anchor_file, ""),
    S("caa", "account_uri_prefix", K_STR, caa_account_uri_prefix, ""),
    S("caa", "perspectives", K_STR, caa_perspectives, ""),
    I("caa", "quorum", caa_quorum, "0", 0, 8),
    S("ct", "logs", K_STR, ct_logs, ""),
    S("ct", "profiles", K_STR, ct_profiles, ""),
    I("ct", "max_in_flight", ct_max_in_flight, "64", 1, 1024),
    I("ct", "timeout_ms", ct_timeout_ms, "30000", 100, 600000),
    S("store", "sqlite", K_PATH, store_sqlite, "mailca.db"),
    I("store", "retry_s", store_retry_s, "60", 0, 86400),
    S("lint", "enforced_set", K_STR, lint_enforced_set, ""),
    S("keys", "weak_rsa_blocklist", K_PATH, keys_weak_rsa_blocklist, ""),
    S("engine", "profiles", K_PATH, profiles, MAILCA_SOURCE_DIR "/profiles"),
    I("engine", "workers", workers, "0", 0, 1024),
    I("engine", "batch", batch, "256", 1, 4096),
    /* min -1: the key also takes "auto", stored as -1 (mc_engine_auto_procs) */
    I("engine", "procs", procs, "auto", -1, MC_CONFIG_PROCS_MAX),
    I("engine", "sessions", sessions, "0", 0, 4096),
    {"engine", "pin_cores", K_BOOL, offsetof(mc_config, pin_cores), sizeof(int), "true", 0, 1},
#undef S
#undef I
};
#define NKEYS (sizeof keys / sizeof keys[0])

static mc_err set_value(mc_config *c, const struct key *k, const char *v, const char *where,
                        mc_errdetail *err)
{
    char *dst = (char *)c + k->off;
    switch (k->kind) {
    case K_PATH:
        /* a URI (store.sqlite may be a postgresql:// one) is not a path relative to dir */
        if (v[0] && v[0] != '/' && !strstr(v, "://") && c->dir[0] && strcmp(c->dir, ".") != 0) {
            char buf[2 * MC_PATH_MAX];
            snprintf(buf, sizeof buf, "%s/%s", c->dir, v);
            if (strlen(buf) >= k->size)
                return mc_err_set(err, MC_ERR_CONFIG, where, NULL, "%s.%s: path too long",
                                  k->section, k->name);
            strcpy(dst, buf);
            return MC_OK;
        }
        /* fall through */
    case K_STR:
        if (strlen(v) >= k->size)
            return mc_err_set(err, MC_ERR_CONFIG, where, NULL, "%s.%s: longer than %zu bytes",
                              k->section, k->name, k->size - 1);
        strcpy(dst, v);
        return MC_OK;
    case K_INT: {
        if (k->min < 0 && strcmp(v, "auto") == 0) {
            *(int *)dst = -1;
            return MC_OK;
        }
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || *end || end == v || n < (k->min < 0 ? 0 : k->min) || n > k->max)
            return mc_err_set(err, MC_ERR_CONFIG, where, NULL,
                              "%s.%s: '%s' is not %san integer in [%d, %d]", k->section, k->name, v,
                              k->min < 0 ? "auto nor " : "", k->min < 0 ? 0 : k->min, k->max);
        *(int *)dst = (int)n;
        return MC_OK;
    }
    case K_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
            *(int *)dst = 1;
        else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
            *(int *)dst = 0;
        else
            return mc_err_set(err, MC_ERR_CONFIG, where, NULL, "%s.%s: '%s' is not true/false",
                              k->section, k->name, v);
        return MC_OK;
    }
    return MC_ERR_INTERNAL;
}

void mc_config_defaults(mc_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->dir, ".");
    for (size_t i = 0; i < NKEYS; i++)
        (void)set_value(c, &keys[i], keys[i].def, "defaults", NULL);
}

mc_err mc_config_load(const char *path, mc_config *out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    FILE *f = NULL;
    yaml_parser_t parser;
    yaml_event_t ev;
    int parser_ok = 0, have_ev = 0;
    char section[64] = "", key[64] = "";
    int depth = 0; /* mapping depth */
    char where[MC_ERR_FIELD_MAX];

    mc_config_defaults(out);
    char abs[PATH_MAX];
    if (snprintf(out->path, sizeof out->path, "%s", realpath(path, abs) ? abs : path) >=
        (int)sizeof out->path)
        return mc_err_set(err, MC_ERR_CONFIG, path, NULL, "path longer than %zu bytes",
                          sizeof out->path - 1);
    /* the folder relative paths are resolved against, made absolute: a config loaded by a
     * relative path names the same files from any working folder (the run's snapshot, which
     * worker processes load from elsewhere, writes them as resolved here) */
    char tmp[MC_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", out->path);
    char *slash = strrchr(tmp, '/');
    if (slash) {
        *slash = '\0';
        snprintf(out->dir, sizeof out->dir, "%s", tmp[0] ? tmp : "/");
    }
    f = fopen(path, "rb");
    if (!f) {
        rc = mc_err_set(err, MC_ERR_CONFIG, path, NULL, "cannot open: %s", strerror(errno));
        goto done;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = mc_err_set(err, MC_ERR_NOMEM, path, NULL, "yaml parser");
        goto done;
    }
    parser_ok = 1;
    yaml_parser_set_input_file(&parser, f);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = mc_err_set(err, MC_ERR_CONFIG, path, NULL, "line %zu: %s",
                            parser.problem_mark.line + 1,
                            parser.problem ? parser.problem : "YAML error");
            goto done;
        }
        have_ev = 1;
        snprintf(where, sizeof where, "%s:%zu", path, ev.start_mark.line + 1);
        if (ev.type == YAML_STREAM_END_EVENT)
            break;
        if (ev.type == YAML_MAPPING_START_EVENT) {
            if (++depth > 2 || (depth == 2 && !section[0])) {
                rc = mc_err_set(err, MC_ERR_CONFIG, where, NULL, "unexpected nested mapping");
                goto done;
            }
        } else if (ev.type == YAML_MAPPING_END_EVENT) {
            depth--;
            section[0] = key[0] = '\0';
        } else if (ev.type == YAML_SEQUENCE_START_EVENT) {
            rc = mc_err_set(err, MC_ERR_CONFIG, where, NULL, "lists are not used in this file");
            goto done;
        } else if (ev.type == YAML_SCALAR_EVENT) {
            const char *v = (const char *)ev.data.scalar.value;
            if (depth == 1) {
                int known = 0;
                for (size_t i = 0; i < NKEYS; i++)
                    known |= strcmp(keys[i].section, v) == 0;
                if (!known) {
                    rc = mc_err_set(err, MC_ERR_CONFIG, where, NULL, "unknown section '%s'", v);
                    goto done;
                }
                snprintf(section, sizeof section, "%s", v);
            } else if (depth == 2 && !key[0]) {
                snprintf(key, sizeof key, "%s", v);
            } else if (depth == 2) {
                const struct key *k = NULL;
                for (size_t i = 0; i < NKEYS; i++)
                    if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, key) == 0)
                        k = &keys[i];
                if (!k) {
                    rc = mc_err_set(err, MC_ERR_CONFIG, where, NULL, "unknown key '%s.%s'", section,
                                    key);
                    goto done;
                }
                if ((rc = set_value(out, k, v, where, err)) != MC_OK)
                    goto done;
                key[0] = '\0';
            } else {
                rc = mc_err_set(err, MC_ERR_CONFIG, where, NULL, "unexpected value '%s'", v);
                goto done;
            }
        }
        yaml_event_delete(&ev);
        have_ev = 0;
    }
    /* the CRL URL and the shard count agree: the placeholder iff partitioned (crl.h) */
    rc = mc_crl_url_check(out->ca_crl_url, (unsigned)out->ca_crl_shards, err);
done:
    if (have_ev)
        yaml_event_delete(&ev);
    if (parser_ok)
        yaml_parser_delete(&parser);
    if (f)
        fclose(f);
    return rc;
}

static const char *rel(const mc_config *c, const char *p)
{
    size_t n = strlen(c->dir);
    if (strcmp(c->dir, ".") != 0 && strncmp(p, c->dir, n) == 0 && p[n] == '/')
        return p + n + 1;
    return p;
}

/* A YAML double-quoted scalar: '"' and '\\' escaped (a label or URI may hold them), control
 * characters as \\xNN (a raw newline would fold into a space, others make the file unloadable). */
static void put_quoted(FILE *f, const char *v)
{
    fputc('"', f);
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Every key of the table; paths relative to c->dir unless absolute is set. */
static void write_keys(const mc_config *c, FILE *f, int absolute)
{
    const char *cur = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (strcmp(cur, k->section) != 0) {
            fprintf(f, "%s:\n", k->section);
            cur = k->section;
        }
        const char *v = (const char *)c + k->off;
        if (k->kind == K_INT && k->min < 0 && *(const int *)v < 0) {
            fprintf(f, "  %s: auto\n", k->name);
        } else if (k->kind == K_INT) {
            fprintf(f, "  %s: %d\n", k->name, *(const int *)v);
        } else if (k->kind == K_BOOL) {
            fprintf(f, "  %s: %s\n", k->name, *(const int *)v ? "true" : "false");
        } else if (k->kind == K_PATH && absolute && v[0] && v[0] != '/' && !strstr(v, "://")) {
            /* still relative: a default, resolved against the working folder; a snapshot
             * loaded from another folder must name the same file */
            char cwd[PATH_MAX], full[2 * PATH_MAX];
            snprintf(full, sizeof full, "%s/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", v);
            fprintf(f, "  %s: ", k->name);
            put_quoted(f, full);
            fputc('\n', f);
        } else {
            fprintf(f, "  %s: ", k->name);
            put_quoted(f, k->kind == K_PATH && !absolute ? rel(c, v) : v);
            fputc('\n', f);
        }
    }
}

const char *mc_config_path(const char *opt)
{
    if (opt)
        return opt;
    const char *env = getenv("MAILCA_CONFIG");
    return env && env[0] ? env : MC_DEFAULT_CONFIG;
}

mc_err mc_config_write(const mc_config *c, const char *path, mc_errdetail *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return mc_err_set(err, MC_ERR_IO, path, NULL, "cannot write: %s", strerror(errno));
    fprintf(f, "# mailca configuration (written by mailca init). Relative paths are relative to\n"
               "# this file. The PIN is not here: see hsm.pin_file / hsm.pin_env.\n");
    write_keys(c, f, 0);
    if (fclose(f) != 0)
        return mc_err_set(err, MC_ERR_IO, path, NULL, "write failed: %s", strerror(errno));
    return MC_OK;
}

mc_err mc_config_snapshot(const mc_config *c, const char *path, mc_errdetail *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return mc_err_set(err, MC_ERR_IO, path, NULL, "cannot write: %s", strerror(errno));
    }
    fprintf(f,
            "# mailca: the config of one run, as its engine loaded it (%s), for the worker\n"
            "# processes it starts or restarts. Removed at the end of the run.\n",
            c->path);
    write_keys(c, f, 1);
    if (fclose(f) != 0)
        return mc_err_set(err, MC_ERR_IO, path, NULL, "write failed: %s", strerror(errno));
    return MC_OK;
}

mc_err mc_config_read_pin(const mc_config *c, char *pin, size_t cap, mc_errdetail *err)
{
    const char *env = c->hsm_pin_env[0] ? getenv(c->hsm_pin_env) : NULL;
    if (env && env[0]) {
        if (strlen(env) >= cap)
            return mc_err_set(err, MC_ERR_CONFIG, c->hsm_pin_env, NULL, "PIN too long");
        strcpy(pin, env);
        return MC_OK;
    }
    if (!c->hsm_pin_file[0])
        return mc_err_set(err, MC_ERR_CONFIG, "hsm.pin_file", NULL,
                          "no PIN: set hsm.pin_file or the variable %s", c->hsm_pin_env);
    struct stat st;
    if (stat(c->hsm_pin_file, &st) != 0)
        return mc_err_set(err, MC_ERR_CONFIG, "hsm.pin_file", NULL, "%s: %s", c->hsm_pin_file,
                          strerror(errno));
    if (st.st_mode & 077)
        return mc_err_set(err, MC_ERR_CONFIG, "hsm.pin_file", NULL,
                          "%s is readable by group or others (mode %03o); chmod 600 it",
                          c->hsm_pin_file, (unsigned)(st.st_mode & 0777));
    FILE *f = fopen(c->hsm_pin_file, "r");
    if (!f)
        return mc_err_set(err, MC_ERR_CONFIG, "hsm.pin_file", NULL, "%s: %s", c->hsm_pin_file,
                          strerror(errno));
    size_t n = fread(pin, 1, cap - 1, f);
    fclose(f);
    pin[n] = '\0';
    while (n && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
        pin[--n] = '\0';
    if (!n)
        return mc_err_set(err, MC_ERR_CONFIG, "hsm.pin_file", NULL, "%s is empty", c->hsm_pin_file);
    return MC_OK;
}

void mc_config_apply_env(const mc_config *c)
{
    if (c->softhsm2_conf[0])
        setenv("SOFTHSM2_CONF", c->softhsm2_conf, 1);
}
