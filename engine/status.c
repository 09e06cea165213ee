/*
 * `mailca status`: the health of what a run depends on, checked now: each token named by
 * hsm.key (opened, logged in, the key found and a test signature verified: what the engine does
 * at start), the store (certificates, intents left without a certificate by an earlier run, the
 * CT outbox). Exit status 0 when everything answers, 1 when something does not: usable from a
 * monitoring probe. A running engine reports its own token health in its summary. (Opening the
 * store migrates an older schema, as every mailca command that opens it does.)
 */
#include "mailca/cli.h"
#include "mailca/config.h"
#include "mailca/hsm.h"
#include "mailca/store.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

/* Writes s as a JSON string (quotes and escapes). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

typedef struct token_check {
    char uri[MC_PATH_MAX * 4];
    char what[200]; /* the token as the engine names it, or the URI */
    int ok;
    char key[32];
    char error[MC_ERR_MSG_MAX];
} token_check;

/* Opens one key URI as the engine would (mc_hsm_open checks the key with a test signature). */
static void check_token(const mc_config *cfg, const char *uri, const char *pin, token_check *t)
{
    mc_hsm *h = NULL;
    mc_errdetail e;
    mc_hsm_config hc = {
        .module = strstr(uri, "module-path=") ? NULL : cfg->hsm_module, .key_uri = uri, .pin = pin};
    snprintf(t->uri, sizeof t->uri, "%s", uri);
    snprintf(t->what, sizeof t->what, "%s", uri);
    if (mc_hsm_open(&hc, &h, &e) != MC_OK) {
        t->ok = 0;
        mc_err_format(&e, t->error, sizeof t->error);
        return;
    }
    t->ok = 1;
    const char *d = mc_hsm_token_desc(h);
    snprintf(t->what, sizeof t->what, "%s", d + strspn(d, " "));
    snprintf(t->key, sizeof t->key, "%s", mc_keytype_name(mc_hsm_keytype(h)));
    mc_hsm_close(h);
}

int mc_status_main(int argc, char **argv)
{
    const char *cfgp = NULL;
    int json = 0, ch, bad = 0;
    static const struct option lo[] = {
        {"config", 1, 0, 'c'}, {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == 'c')
            cfgp = optarg;
        else if (ch == 'j')
            json = 1;
        else {
            fprintf(ch == 'h' ? stdout : stderr,
                    "usage: mailca status [--config FILE] [--json]\n"
                    "  checks each token of hsm.key (login, key, test signature) and the store\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    cfgp = mc_config_path(cfgp);
    mc_config cfg;
    mc_errdetail e;
    if (mc_config_load(cfgp, &cfg, &e) != MC_OK) {
        char m[MC_ERR_MSG_MAX + 64];
        fprintf(stderr, "mailca status: %s\n", mc_err_format(&e, m, sizeof m));
        return 1;
    }
    mc_config_apply_env(&cfg);

    /* tokens */
    token_check tokens[16];
    size_t nt = 0;
    char pin[256];
    int have_pin = mc_config_read_pin(&cfg, pin, sizeof pin, &e) == MC_OK;
    char pin_error[MC_ERR_MSG_MAX] = "";
    if (!have_pin)
        mc_err_format(&e, pin_error, sizeof pin_error);
    char *list = strdup(cfg.hsm_key), *save = NULL;
    for (char *u = list ? strtok_r(list, " \t\r\n", &save) : NULL; u && nt < 16;
         u = strtok_r(NULL, " \t\r\n", &save)) {
        token_check *t = &tokens[nt++];
        memset(t, 0, sizeof *t);
        if (have_pin) {
            check_token(&cfg, u, pin, t);
        } else {
            snprintf(t->uri, sizeof t->uri, "%s", u);
            snprintf(t->what, sizeof t->what, "%s", u);
            snprintf(t->error, sizeof t->error, "%s", pin_error);
        }
        bad |= !t->ok;
    }
    free(list);
    OPENSSL_cleanse(pin, sizeof pin);
    bad |= nt == 0;

    /* store */
    mc_store *s = NULL;
    int64_t certs = -1, pending = -1, ct_pending = -1, ct_done = -1, ct_rejected = -1;
    char store_error[MC_ERR_MSG_MAX] = "", durability[96] = "";
    int durable = 1; /* until the store says otherwise (a store that failed is reported so) */
    uint64_t crl_number = 0;
    int64_t crl_this = 0, crl_next = 0;
    /* partitioned CRLs: how many shards have a published CRL, the oldest and the earliest
     * nextUpdate among each shard's latest */
    const int64_t shards = cfg.ca_crl_shards > 1 ? cfg.ca_crl_shards : 0;
    int64_t sh_have = 0, sh_this = 0, sh_next = 0;
    struct stat sb;
    /* a SQLite store that is not there is reported, not created (opening creates a store) */
    if (strncmp(cfg.store_sqlite, "postgres", 8) != 0 && stat(cfg.store_sqlite, &sb) != 0) {
        snprintf(store_error, sizeof store_error, "%.200s: no such store", cfg.store_sqlite);
        bad = 1;
    } else if (mc_store_open(cfg.store_sqlite, &s, &e) != MC_OK ||
               mc_store_counts(s, &certs, &pending, &e) != MC_OK ||
               mc_store_ct_counts(s, &ct_pending, &ct_done, &ct_rejected, &e) != MC_OK ||
               mc_store_durability(s, durability, sizeof durability, &durable, &e) != MC_OK ||
               mc_store_crl_latest(s, &crl_number, &crl_this, &crl_next, &e) != MC_OK ||
               mc_store_crl_shards_latest(s, &sh_have, &sh_this, &sh_next, &e) != MC_OK) {
        mc_err_format(&e, store_error, sizeof store_error);
        bad = 1;
    }
    /* SBR 4.9.7: a CRL at least every seven days, and never past its nextUpdate */
    const int64_t now = (int64_t)time(NULL);
    const char *crl_state = !store_error[0] && crl_number == 0 ? "none made yet (mailca crl)"
                            : crl_next && crl_next < now       ? "EXPIRED: nextUpdate has passed"
                            : crl_this && now - crl_this > 7 * 86400
                                ? "OVERDUE: older than the 7 days of SBR 4.9.7"
                                : "current";
    /* sharded: every shard URL must serve a current CRL, so the oldest shard decides, and a
     * shard without one is as bad as an expired one. A full CRL once published (the URL of
     * certificates issued before sharding) is judged too. */
    const char *shard_state = "";
    if (shards) {
        shard_state = store_error[0]             ? ""
                      : sh_have == 0             ? "none made yet (mailca crl --out-dir)"
                      : sh_have < shards         ? "INCOMPLETE: a shard has no CRL published"
                      : sh_next && sh_next < now ? "EXPIRED: a shard's nextUpdate has passed"
                      : sh_this && now - sh_this > 7 * 86400
                          ? "OVERDUE: a shard is older than the 7 days of SBR 4.9.7"
                          : "current";
        bad |= shard_state[0] == 'E' || shard_state[0] == 'O' || shard_state[0] == 'I';
        if (crl_number == 0)
            crl_state = "none (no full CRL: only shards)";
    }
    /* commits a power loss can undo break the write-ahead of intent: SQLite below FULL,
     * PostgreSQL with synchronous_commit or fsync off */
    bad |= !durable;
    /* a CRL past its nextUpdate or older than a week fails the check (monitoring pages on it) */
    bad |= crl_state[0] == 'E' || crl_state[0] == 'O';
    const char *backend = s ? mc_store_backend(s) : "";
    char backend_buf[32];
    snprintf(backend_buf, sizeof backend_buf, "%s", backend);
    mc_store_close(s);

    if (json) {
        printf("{\"config\":");
        json_str(stdout, cfgp);
        printf(",\"ok\":%s,\"tokens\":[", bad ? "false" : "true");
        for (size_t i = 0; i < nt; i++) {
            printf("%s{\"token\":", i ? "," : "");
            json_str(stdout, tokens[i].what);
            printf(",\"ok\":%s", tokens[i].ok ? "true" : "false");
            if (tokens[i].ok) {
                printf(",\"key\":");
                json_str(stdout, tokens[i].key);
            } else {
                printf(",\"error\":");
                json_str(stdout, tokens[i].error);
            }
            printf("}");
        }
        printf("],\"store\":{\"backend\":");
        json_str(stdout, backend_buf);
        if (store_error[0]) {
            printf(",\"error\":");
            json_str(stdout, store_error);
        } else {
            printf(",\"certificates\":%lld,\"pending_intents\":%lld,\"ct_pending\":%lld,"
                   "\"ct_done\":%lld,\"ct_rejected\":%lld,\"durability\":",
                   (long long)certs, (long long)pending, (long long)ct_pending, (long long)ct_done,
                   (long long)ct_rejected);
            json_str(stdout, durability);
            printf(",\"crl\":{\"number\":%llu,\"this_update\":%lld,\"next_update\":%lld,"
                   "\"state\":",
                   (unsigned long long)crl_number, (long long)crl_this, (long long)crl_next);
            json_str(stdout, crl_state);
            printf("}");
            if (shards) {
                printf(",\"crl_shards\":{\"shards\":%lld,\"published\":%lld,"
                       "\"oldest_this_update\":%lld,\"earliest_next_update\":%lld,\"state\":",
                       (long long)shards, (long long)sh_have, (long long)sh_this,
                       (long long)sh_next);
                json_str(stdout, shard_state);
                printf("}");
            }
        }
        printf("}}\n");
        return bad ? 1 : 0;
    }
    printf("mailca status: %s\n", cfgp);
    printf("hsm: %zu token(s) in hsm.key\n", nt);
    for (size_t i = 0; i < nt; i++) {
        if (tokens[i].ok)
            printf("  %s: ok (%s key, test signature verified)\n", tokens[i].what, tokens[i].key);
        else
            printf("  %s: FAILED: %s\n", tokens[i].what, tokens[i].error);
    }
    if (store_error[0])
        printf("store: FAILED: %s\n", store_error);
    else
        printf("store: %s: %lld certificate(s), %lld intent(s) without a certificate%s\n"
               "  commits: %s%s\n"
               "ct outbox: %lld pending, %lld done, %lld rejected\n",
               backend_buf, (long long)certs, (long long)pending,
               pending > 0 ? " (resubmit those orders: the recorded TBS is re-signed)" : "",
               durability, durable ? "" : " (NOT DURABLE: a power loss can undo commits)",
               (long long)ct_pending, (long long)ct_done, (long long)ct_rejected);
    if (!store_error[0]) {
        char t1[32] = "-", t2[32] = "-";
        struct tm tm;
        time_t a = (time_t)crl_this, b = (time_t)crl_next;
        if (crl_number) {
            strftime(t1, sizeof t1, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&a, &tm));
            strftime(t2, sizeof t2, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&b, &tm));
        }
        printf("crl: %s (number %llu, thisUpdate %s, nextUpdate %s)\n", crl_state,
               (unsigned long long)crl_number, t1, t2);
        if (shards) {
            char s1[32] = "-", s2[32] = "-";
            time_t c = (time_t)sh_this, d = (time_t)sh_next;
            if (sh_have) {
                strftime(s1, sizeof s1, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&c, &tm));
                strftime(s2, sizeof s2, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&d, &tm));
            }
            printf("crl shards: %s (%lld of %lld published, oldest thisUpdate %s, earliest "
                   "nextUpdate %s)\n",
                   shard_state, (long long)sh_have, (long long)shards, s1, s2);
        }
    }
    return bad ? 1 : 0;
}
