/*
 * The audit log's writers and reader (include/mailca/audit.h): who is acting, event details as
 * JSON, and `mailca audit`.
 */
#include "mailca/audit.h"

#include "mailca/config.h"
#include "mailca/revoke.h"
#include "mailca/text.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *mc_audit_actor(char *buf, size_t cap)
{
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    uid_t uid = geteuid();
    const char *name =
        getpwuid_r(uid, &pw, pwbuf, sizeof pwbuf, &res) == 0 && res ? res->pw_name : "?";
    /* sudo names the person behind a root shell; the variable is the user's to set, so it is
     * reported as what sudo said, next to the real uid */
    const char *sudo = getenv("SUDO_USER");
    if (sudo && sudo[0] && uid == 0)
        snprintf(buf, cap, "user %s (uid %u) via sudo from %.64s", name, (unsigned)uid, sudo);
    else
        snprintf(buf, cap, "user %s (uid %u)", name, (unsigned)uid);
    return buf;
}

static void put(mc_audit_json *j, const char *s, size_t n)
{
    if (j->oom)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *p = realloc(j->p, cap);
        if (!p) {
            j->oom = 1;
            return;
        }
        j->p = p;
        j->cap = cap;
    }
    memcpy(j->p + j->len, s, n);
    j->len += n;
    j->p[j->len] = '\0';
}

/* A JSON string. Bytes that are not UTF-8 (an order's raw bytes quoted in a rejection message)
 * become U+FFFD: the record stays valid JSON and valid text for PostgreSQL, which refuses a
 * whole group of rows over one bad byte. */
static void put_str(mc_audit_json *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(j, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(j, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(j, e, 6);
        } else if (c < 0x80) {
            put(j, (const char *)&s[i], 1);
        } else {
            size_t k = mc_utf8_seq_len((const unsigned char *)s + i, n - i);
            if (k) {
                put(j, s + i, k);
                i += k - 1;
            } else {
                put(j, "\\ufffd", 6);
            }
        }
    }
    put(j, "\"", 1);
}

static void key(mc_audit_json *j, const char *k)
{
    if (j->members++)
        put(j, ",", 1);
    put_str(j, k, strlen(k));
    put(j, ":", 1);
}

void mc_audit_json_begin(mc_audit_json *j)
{
    memset(j, 0, sizeof *j);
    put(j, "{", 1);
}

void mc_audit_json_strn(mc_audit_json *j, const char *k, const char *val, size_t len)
{
    key(j, k);
    if (val)
        put_str(j, val, len);
    else
        put(j, "null", 4);
}

void mc_audit_json_str(mc_audit_json *j, const char *k, const char *val)
{
    mc_audit_json_strn(j, k, val, val ? strlen(val) : 0);
}

void mc_audit_json_int(mc_audit_json *j, const char *k, int64_t val)
{
    char b[24];
    key(j, k);
    put(j, b, (size_t)snprintf(b, sizeof b, "%lld", (long long)val));
}

void mc_audit_json_raw(mc_audit_json *j, const char *k, const char *json)
{
    key(j, k);
    put(j, json, strlen(json));
}

const char *mc_audit_json_end(mc_audit_json *j)
{
    put(j, "}", 1);
    return j->oom ? NULL : j->p;
}

void mc_audit_json_free(mc_audit_json *j)
{
    free(j->p);
    memset(j, 0, sizeof *j);
}

mc_err mc_audit_record(mc_store *s, const char *event, const char *subject, const char *detail,
                       mc_errdetail *err)
{
    char actor[MC_AUDIT_ACTOR_MAX];
    mc_audit_event ev = {.at = (int64_t)time(NULL),
                         .actor = mc_audit_actor(actor, sizeof actor),
                         .event = event,
                         .subject = subject,
                         .detail = detail};
    return mc_store_audit_append(s, &ev, 1, err);
}

/* --- mailca audit ---------------------------------------------------------------------------- */

static void print_event(void *arg, const mc_audit_event *ev)
{
    (void)arg;
    mc_audit_json j;
    char at[32];
    time_t t = (time_t)ev->at;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    mc_audit_json_begin(&j);
    mc_audit_json_int(&j, "id", ev->id);
    mc_audit_json_str(&j, "at", at);
    mc_audit_json_str(&j, "actor", ev->actor);
    mc_audit_json_str(&j, "event", ev->event);
    mc_audit_json_str(&j, "subject", ev->subject);
    /* the detail was written as JSON by mailca; printed as it is stored */
    if (ev->detail && ev->detail[0] == '{')
        mc_audit_json_raw(&j, "detail", ev->detail);
    else
        mc_audit_json_str(&j, "detail", ev->detail);
    const char *text = mc_audit_json_end(&j);
    if (text)
        puts(text);
    mc_audit_json_free(&j);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: mailca audit [--config FILE] [--since T] [--event NAME] [--after-id N]\n"
            "  the audit log (SBR 5.4.1) as JSON lines, oldest first\n"
            "  T: seconds since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ\n"
            "  NAME: ca.init run.start run.end order.rejected order.failed revoke.start revoke\n"
            "        crl.published ocsp.start ocsp.stop store.migrate\n");
    return 2;
}

int mc_audit_main(int argc, char **argv)
{
    static const struct option lo[] = {{"config", 1, 0, 'c'}, {"since", 1, 0, 's'},
                                       {"event", 1, 0, 'e'},  {"after-id", 1, 0, 'a'},
                                       {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    const char *cfgp = NULL, *event = NULL;
    int64_t since = 0, after = 0;
    int ch, rc = 1;
    mc_errdetail e;
    mc_config cfg;
    mc_store *s = NULL;
    char buf[600];
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            cfgp = optarg;
            break;
        case 's':
            if (mc_revoke_time_parse(optarg, "since", &since, &e) != MC_OK) {
                fprintf(stderr, "mailca audit: %s\n", mc_err_format(&e, buf, sizeof buf));
                return 2;
            }
            break;
        case 'e':
            event = optarg;
            break;
        case 'a': {
            char *end = NULL;
            long long v = strtoll(optarg, &end, 10);
            if (!end || *end || v < 0) {
                fprintf(stderr, "mailca audit: --after-id is an event id (0 or more)\n");
                return 2;
            }
            after = v;
            break;
        }
        default:
            return usage();
        }
    }
    if (optind != argc)
        return usage();
    if (mc_config_load(mc_config_path(cfgp), &cfg, &e) != MC_OK ||
        mc_store_open(cfg.store_sqlite, &s, &e) != MC_OK ||
        mc_store_audit_list(s, after, since, event, print_event, NULL, &e) != MC_OK)
        fprintf(stderr, "mailca audit: %s\n", mc_err_format(&e, buf, sizeof buf));
    else
        rc = 0;
    mc_store_close(s);
    return rc;
}
