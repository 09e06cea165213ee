/*
 * Integration test of mc_caa against a real authoritative DNS server: NSD (Debian package nsd)
 * started on 127.0.0.1 with a free high port and zones for each CAA case, queried through
 * libunbound forwarding to it. Each case asserts the decision, rule and reason; then the cache:
 * TTL, lookups counted per domain, concurrent lookups coalesced; then SERVFAIL (a zone NSD cannot
 * load), a resolver that never answers (timeout) and, when ldnsutils is installed, DNSSEC with a
 * correctly signed record and a tampered one. NSD is stopped at the end.
 *
 * Multi-perspective corroboration (SBR 4.2.2.2): a second NSD on another port serves a variant of
 * the mcit zone (the perspective "b"); the checks agree, disagree (a deny at either perspective
 * refuses), and a silent perspective fails the quorum (tempfail) or, with a smaller quorum, does
 * not; silent perspectives are asked in parallel.
 *
 * The cache as the engine uses it (issue 6): 2,000 orders over 20 domains through `mailca batch`
 * make exactly 20 lookups, and `mailca bench --caa` (its own NSD) reports one lookup per domain.
 *
 * Skips (cmocka skip, with a message) only when /usr/sbin/nsd is missing; CI installs nsd and
 * ldnsutils (scripts/install-deps.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/caa.h"
#include "support/itutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NSD "/usr/sbin/nsd"
#define ISSUER "ca.mailca.test"
#define ACCT "https://acme.mailca.test/acct/42"
#define NOW ((int64_t)time(NULL))

typedef struct fixture {
    char dir[1024];
    pid_t nsd;
    int port;
    char resolver[64];
    int signed_ok;      /* ldnsutils signed the zone */
    char ta_file[1200]; /* its DNSKEY, the trust anchor */
    int silent_fd;      /* a UDP socket that never answers */
    int silent_port;
    char dir_b[1024]; /* the second NSD (perspective "b") */
    pid_t nsd_b;
    int port_b;
    char resolver_b[64];
} fixture;

static const char *ZONE_TEST =
    "$ORIGIN mcit.\n"
    "$TTL 300\n"
    "@ IN SOA ns.mcit. host.mcit. 1 3600 600 86400 60\n"
    "@ IN NS ns.mcit.\n"
    "ns IN A 127.0.0.1\n"
    "permit IN CAA 0 issuemail \"ca.mailca.test\"\n"
    "permit IN CAA 0 issue \"other-ca.example\"\n"
    "other IN CAA 0 issuemail \"other-ca.example\"\n"
    "other IN CAA 0 issue \"ca.mailca.test\"\n"
    "deny IN CAA 0 issuemail \";\"\n"
    "acct IN CAA 0 issuemail \"ca.mailca.test; accounturi=" ACCT "\"\n"
    "methods IN CAA 0 issuemail \"ca.mailca.test; validationmethods=email-reply-00\"\n"
    "crit IN CAA 128 tbs \"x\"\n"
    "crit IN CAA 0 issuemail \"ca.mailca.test\"\n"
    "alias IN CNAME alias2.mcit.\n"
    "alias2 IN CNAME target.mcit.\n"
    "target IN CAA 0 issuemail \"other-ca.example\"\n"
    "parent IN CAA 0 issuemail \"other-ca.example\"\n"
    "deep.sub.parent IN A 127.0.0.1\n"
    "open IN A 127.0.0.1\n"
    "split IN CAA 0 issuemail \"ca.mailca.test\"\n"
    "split2 IN CAA 0 issuemail \";\"\n";
/* ... and c0.mcit .. c19.mcit, each with an issuemail for us (added in group_setup). */

/* What perspective "b" sees: the same permission for permit.mcit in a different RRset (answers
 * need not be byte-identical, SBR 4.2.2.1), and split/split2 the other way round. */
static const char *ZONE_B = "$ORIGIN mcit.\n"
                            "$TTL 300\n"
                            "@ IN SOA ns.mcit. host.mcit. 1 3600 600 86400 60\n"
                            "@ IN NS ns.mcit.\n"
                            "ns IN A 127.0.0.1\n"
                            "permit IN CAA 0 issuemail \"ca.mailca.test\"\n"
                            "split IN CAA 0 issuemail \";\"\n"
                            "split2 IN CAA 0 issuemail \"ca.mailca.test\"\n";

static const char *ZONE_SIGNED = "$ORIGIN signed.mcit.\n"
                                 "$TTL 300\n"
                                 "@ IN SOA ns.mcit. host.mcit. 1 3600 600 86400 60\n"
                                 "@ IN NS ns.mcit.\n"
                                 "good IN CAA 0 issuemail \"ca.mailca.test\"\n"
                                 "bad IN CAA 0 issuemail \"other-ca.example\"\n";

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) || rc ? -1 : 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

/* A UDP port on 127.0.0.1 that is free now (NSD binds it right after). */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

/* Signs signed.mcit with ldnsutils, then tampers with bad.signed.mcit's CAA value (the RRSIG no
 * longer matches: a validating resolver must call it bogus). 0 when done, -1 when ldnsutils is
 * missing or failed. */
static int sign_zone(fixture *fx)
{
    if (access("/usr/bin/ldns-keygen", X_OK) || access("/usr/bin/ldns-signzone", X_OK))
        return -1;
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && k=$(ldns-keygen -a ECDSAP256SHA256 -k signed.mcit) && "
             "ldns-signzone -f signed.zone.signed signed.zone \"$k\" && cp \"$k.key\" ta.key",
             fx->dir);
    if (system(cmd) != 0)
        return -1;
    char path[1200];
    snprintf(path, sizeof path, "%s/signed.zone.signed", fx->dir);
    char *z = read_file(path);
    char *p = z ? strstr(z, "\"other-ca.example\"") : NULL;
    if (!p) {
        free(z);
        return -1;
    }
    /* A value that would authorise us if it were believed. */
    size_t off = (size_t)(p - z);
    char *t = malloc(strlen(z) + 16);
    memcpy(t, z, off);
    strcpy(t + off, "\"ca.mailca.test\"");
    strcat(t, p + strlen("\"other-ca.example\""));
    int rc = write_file(fx->dir, "signed.zone.signed", t);
    free(t);
    free(z);
    snprintf(fx->ta_file, sizeof fx->ta_file, "%s/ta.key", fx->dir);
    return rc;
}

/* Starts NSD in dir on a free port with the zone statements `zones` (zone files in dir). */
static int nsd_start(const char *dir, const char *zones, pid_t *pid_out, int *port_out)
{
    char conf[8192];
    int port = free_port();
    if (port < 0)
        return -1;
    snprintf(conf, sizeof conf,
             "server:\n  ip-address: 127.0.0.1@%d\n  username: \"\"\n  chroot: \"\"\n"
             "  zonesdir: \"%s\"\n  pidfile: \"%s/nsd.pid\"\n  xfrdfile: \"%s/xfrd.state\"\n"
             "  zonelistfile: \"%s/zone.list\"\n  database: \"\"\n  logfile: \"%s/nsd.log\"\n"
             "  server-count: 1\n  verbosity: 1\n"
             "remote-control:\n  control-enable: no\n"
             "%s",
             port, dir, dir, dir, dir, dir, zones);
    if (write_file(dir, "nsd.conf", conf))
        return -1;
    char cpath[1200], lpath[1200];
    snprintf(cpath, sizeof cpath, "%s/nsd.conf", dir);
    snprintf(lpath, sizeof lpath, "%s/nsd.log", dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        setpgid(0, 0); /* NSD forks helpers: one group to stop them all */
        execl(NSD, "nsd", "-d", "-c", cpath, (char *)NULL);
        _exit(127);
    }
    *pid_out = pid;
    *port_out = port;
    /* Ready when the log says so (usually ~50 ms). */
    for (int i = 0; i < 500; i++) {
        char *log = read_file(lpath);
        int up = log && strstr(log, "nsd started");
        int dead = log && strstr(log, "cannot");
        free(log);
        if (up)
            return 0;
        if (dead || waitpid(pid, NULL, WNOHANG) == pid)
            break;
        usleep(10000);
    }
    char *log = read_file(lpath);
    fprintf(stderr, "nsd did not start:\n%s\n", log ? log : "(no log)");
    free(log);
    return -1;
}

static int start_nsd(fixture *fx)
{
    char zones[1024];
    snprintf(zones, sizeof zones,
             "zone:\n  name: mcit.\n  zonefile: test.zone\n"
             /* No file: NSD answers SERVFAIL for names in this zone. */
             "zone:\n  name: servfail.mcit.\n  zonefile: missing.zone\n"
             "%s",
             fx->signed_ok ? "zone:\n  name: signed.mcit.\n  zonefile: signed.zone.signed\n" : "");
    return nsd_start(fx->dir, zones, &fx->nsd, &fx->port);
}

static void nsd_stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(-*pid, SIGTERM);
        for (int i = 0; i < 300 && waitpid(*pid, NULL, WNOHANG) == 0; i++)
            usleep(10000);
        kill(-*pid, SIGKILL);
        waitpid(*pid, NULL, WNOHANG);
        *pid = 0;
    }
}

static void stop_nsd(fixture *fx)
{
    nsd_stop(&fx->nsd);
    nsd_stop(&fx->nsd_b);
}

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    *state = fx;
    if (access(NSD, X_OK) != 0)
        return 0; /* each test skips */
    char zone[8192];
    size_t zl = (size_t)snprintf(zone, sizeof zone, "%s", ZONE_TEST);
    for (int i = 0; i < 20; i++)
        zl += (size_t)snprintf(zone + zl, sizeof zone - zl,
                               "c%d IN CAA 0 issuemail \"ca.mailca.test\"\n"
                               "org%d.eng IN CAA 0 issuemail \"ca.mailca.test\"\n",
                               i, i);
    if (mc_it_tmpdir("caa", fx->dir, sizeof fx->dir) || write_file(fx->dir, "test.zone", zone) ||
        write_file(fx->dir, "signed.zone", ZONE_SIGNED))
        return -1;
    fx->signed_ok = sign_zone(fx) == 0;
    if (!fx->signed_ok)
        fprintf(stderr, "ldns-keygen/ldns-signzone missing or failed: the DNSSEC case will be "
                        "skipped (install Debian package ldnsutils)\n");
    if (start_nsd(fx))
        return -1;
    snprintf(fx->resolver, sizeof fx->resolver, "127.0.0.1@%d", fx->port);
    if (mc_it_tmpdir("caa-b", fx->dir_b, sizeof fx->dir_b) ||
        write_file(fx->dir_b, "test.zone", ZONE_B) ||
        nsd_start(fx->dir_b, "zone:\n  name: mcit.\n  zonefile: test.zone\n", &fx->nsd_b,
                  &fx->port_b))
        return -1;
    snprintf(fx->resolver_b, sizeof fx->resolver_b, "127.0.0.1@%d", fx->port_b);
    /* The silent resolver: bound, never read. */
    fx->silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fx->silent_fd < 0 || bind(fx->silent_fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fx->silent_fd, (struct sockaddr *)&a, &l))
        return -1;
    fx->silent_port = ntohs(a.sin_port);
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    stop_nsd(fx);
    if (fx->silent_fd > 0)
        close(fx->silent_fd);
    if (fx->dir[0])
        mc_it_rmtree(fx->dir);
    if (fx->dir_b[0])
        mc_it_rmtree(fx->dir_b);
    free(fx);
    return 0;
}

static mc_caa_ctx *ctx_for(const fixture *fx, const char *resolver, const char *ta_file,
                           unsigned timeout_ms, unsigned fail_ttl)
{
    mc_caa_config cfg = {.issuers = {"mailca.example", ISSUER},
                         .n_issuers = 2,
                         .resolvers = {resolver},
                         .n_resolvers = 1,
                         .timeout_ms = timeout_ms,
                         .ta_file = ta_file,
                         .fail_ttl = fail_ttl};
    mc_caa_ctx *c = NULL;
    mc_errdetail err;
    if (mc_caa_ctx_new(&cfg, &c, &err) != MC_OK)
        fail_msg("mc_caa_ctx_new: %s", err.message);
    return c;
}

#define NEED_NSD(fx)                                                                               \
    do {                                                                                           \
        if (access(NSD, X_OK) != 0) {                                                              \
            fprintf(stderr, "SKIP: " NSD " not found: install the Debian package nsd (CI: add it " \
                            "to scripts/install-deps.sh)\n");                                      \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* One check with its expected outcome. */
static void expect(mc_caa_ctx *c, const char *domain, const char *acct, mc_vmethod m,
                   mc_caa_decision want, mc_err want_rc, const char *rule, const char *reason_part,
                   mc_caa_result *res)
{
    mc_errdetail err;
    mc_err rc = mc_caa_check(c, domain, acct, m, NOW, res, &err);
    if (rc != want_rc || res->decision != want || strcmp(res->rule, rule) != 0 ||
        !strstr(res->reason, reason_part))
        fail_msg("%s: rc %d decision %d rule \"%s\" reason \"%s\"; wanted rc %d decision %d rule "
                 "\"%s\" reason containing \"%s\"",
                 domain, rc, res->decision, res->rule, res->reason, want_rc, want, rule,
                 reason_part);
    if (rc != MC_OK) {
        assert_string_equal(err.rule, rule);
        assert_string_equal(err.field, "domain");
    }
}

static void test_cases(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    mc_caa_ctx *c = ctx_for(fx, fx->resolver, NULL, 3000, 0);
    mc_caa_result r;

    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4",
           "issuemail \"ca.mailca.test\" authorises ca.mailca.test", &r);
    assert_string_equal(r.relevant, "permit.mcit");
    assert_int_equal(r.n_records, 2);
    assert_int_equal(r.ttl, 300);
    assert_int_equal(r.rcode, 0);
    assert_string_equal(r.records[r.matched].tag, "issuemail");
    assert_string_equal(r.resolver, fx->resolver);
    assert_int_equal(r.dnssec, MC_CAA_DNSSEC_INSECURE);
    /* Upper case and a trailing dot are the same domain. */
    expect(c, "PERMIT.Mcit.", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "", &r);

    expect(c, "other.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "RFC 9495 4",
           "no issuemail property names mailca.example (issuemail: \"other-ca.example\")", &r);
    expect(c, "deny.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "RFC 9495 4",
           "(issuemail: \";\")", &r);

    expect(c, "acct.mcit", ACCT, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "accounturi", &r);
    expect(c, "acct.mcit", "https://acme.mailca.test/acct/43", MC_VM_EMAIL, MC_CAA_DENY,
           MC_CAA_ERR_DENIED, "RFC 8657 3",
           "the order's account is \"https://acme.mailca.test/acct/43\"", &r);
    expect(c, "acct.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "RFC 8657 3",
           "(none)", &r);

    expect(c, "methods.mcit", NULL, MC_VM_ACME, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "", &r);
    expect(c, "methods.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "RFC 8657 4",
           "validationmethods=email-reply-00, the mailbox was validated with ca-smime-email", &r);

    expect(c, "crit.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "RFC 8659 4.1",
           "CAA record 128 tbs \"x\" is critical", &r);

    /* CNAME chain alias -> alias2 -> target: target's RRset is the relevant one. */
    expect(c, "alias.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "RFC 9495 4",
           "\"other-ca.example\"", &r);
    assert_string_equal(r.relevant, "alias.mcit");
    assert_string_equal(r.canonical, "target.mcit");

    /* Tree climbing: deep.sub.parent (A only, no CAA), sub.parent (NXDOMAIN... empty
     * non-terminal), parent (issuemail for another CA). */
    expect(c, "deep.sub.parent.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED,
           "RFC 9495 4", "\"other-ca.example\"", &r);
    assert_string_equal(r.relevant, "parent.mcit");
    assert_string_equal(r.domain, "deep.sub.parent.mcit");
    /* No CAA anywhere up to the TLD: the Relevant RRset is empty, issuance allowed. */
    expect(c, "open.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4",
           "the Relevant RRset is empty", &r);
    assert_string_equal(r.relevant, "");
    assert_int_equal(r.ttl, 60); /* negative answers: the SOA minimum */
    expect(c, "nothing.here.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4",
           "the Relevant RRset is empty", &r);
    assert_int_equal(r.rcode, 0); /* "mcit." itself: NOERROR, no data */

    /* The mailbox helper: domain of the address, method of the mailbox, field of the mailbox. */
    mc_order o;
    memset(&o, 0, sizeof o);
    o.n_mailboxes = 2;
    o.mailboxes[0].address = (mc_str){"a@permit.mcit", 13};
    o.mailboxes[0].method = MC_VM_EMAIL;
    o.mailboxes[1].address = (mc_str){"b@methods.mcit", 14};
    o.mailboxes[1].method = MC_VM_EMAIL;
    mc_errdetail err;
    assert_int_equal(mc_caa_check_mailbox(c, &o, 0, NULL, NOW, &r, &err), MC_OK);
    assert_int_equal(mc_caa_check_mailbox(c, &o, 1, NULL, NOW, &r, &err), MC_CAA_ERR_DENIED);
    assert_string_equal(err.field, "mailboxes[1].address");
    assert_string_equal(err.rule, "RFC 8657 4");

    /* Provenance JSON of a real answer. */
    char json[MC_CAA_JSON_MAX];
    assert_int_equal(mc_caa_check(c, "alias.mcit", NULL, MC_VM_EMAIL, NOW, &r, &err),
                     MC_CAA_ERR_DENIED);
    assert_int_equal(mc_caa_result_json(&r, json, sizeof json, NULL), MC_OK);
    assert_non_null(strstr(json, "\"decision\":\"deny\""));
    assert_non_null(strstr(json, "\"canonical\":\"target.mcit\""));
    assert_non_null(strstr(json, "\"cached\":true"));
    assert_non_null(
        strstr(json, "{\"flags\":0,\"tag\":\"issuemail\",\"value\":\"other-ca.example\"}"));
    mc_caa_ctx_free(c);
}

static void test_servfail(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    mc_caa_ctx *c = ctx_for(fx, fx->resolver, NULL, 3000, 0);
    mc_caa_result r;
    expect(c, "x.servfail.mcit", NULL, MC_VM_EMAIL, MC_CAA_TEMPFAIL, MC_CAA_ERR_TEMPFAIL,
           "SBR 4.2.2.1", "CAA lookup of x.servfail.mcit: SERVFAIL", &r);
    assert_true(r.retryable);
    assert_int_equal(r.rcode, 2);
    /* fail_ttl 0: a failure is not remembered, the next check asks again. */
    mc_caa_stats before, after;
    mc_caa_stats_get(c, &before);
    expect(c, "x.servfail.mcit", NULL, MC_VM_EMAIL, MC_CAA_TEMPFAIL, MC_CAA_ERR_TEMPFAIL,
           "SBR 4.2.2.1", "SERVFAIL", &r);
    mc_caa_stats_get(c, &after);
    assert_int_equal(after.queries, before.queries + 1);
    /* A SERVFAIL does not poison other domains. */
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "", &r);
    mc_caa_ctx_free(c);
}

static void test_timeout(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    char silent[64];
    snprintf(silent, sizeof silent, "127.0.0.1@%d", fx->silent_port);
    mc_caa_ctx *c = ctx_for(fx, silent, NULL, 300, 10);
    mc_caa_result r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_TEMPFAIL, MC_CAA_ERR_TEMPFAIL, "SBR 4.2.2.1",
           "timeout after 300 ms", &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(s >= 0.29 && s < 2.0);
    assert_true(r.retryable);
    assert_non_null(strstr(r.reason, silent));
    /* fail_ttl 10 s: remembered within, asked again after. */
    int64_t now = NOW;
    mc_errdetail err;
    mc_caa_stats st;
    assert_int_equal(mc_caa_check(c, "permit.mcit", NULL, MC_VM_EMAIL, now + 5, &r, &err),
                     MC_CAA_ERR_TEMPFAIL);
    assert_true(r.cached);
    mc_caa_stats_get(c, &st);
    assert_int_equal(st.queries, 1);
    assert_int_equal(mc_caa_check(c, "permit.mcit", NULL, MC_VM_EMAIL, now + 11, &r, &err),
                     MC_CAA_ERR_TEMPFAIL);
    mc_caa_stats_get(c, &st);
    assert_int_equal(st.queries, 2);
    mc_caa_ctx_free(c);
}

static void test_dnssec(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    if (!fx->signed_ok) {
        fprintf(stderr, "SKIP: ldns-keygen/ldns-signzone not found: install the Debian package "
                        "ldnsutils (CI: add it to scripts/install-deps.sh)\n");
        skip();
    }
    mc_caa_ctx *c = ctx_for(fx, fx->resolver, fx->ta_file, 3000, 0);
    mc_caa_result r;
    expect(c, "good.signed.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "", &r);
    assert_int_equal(r.dnssec, MC_CAA_DNSSEC_SECURE);
    /* The tampered record would authorise us if it were believed. */
    expect(c, "bad.signed.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "SBR 4.2.2.1",
           "DNSSEC validation of CAA at bad.signed.mcit failed", &r);
    assert_int_equal(r.dnssec, MC_CAA_DNSSEC_BOGUS);
    assert_false(r.retryable);
    /* Without the trust anchor the same tampered answer is believed (what the anchor buys). */
    mc_caa_ctx *plain = ctx_for(fx, fx->resolver, NULL, 3000, 0);
    expect(plain, "bad.signed.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "", &r);
    assert_int_equal(r.dnssec, MC_CAA_DNSSEC_INSECURE);
    mc_caa_ctx_free(plain);
    mc_caa_ctx_free(c);
}

static void test_cache_ttl(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    mc_caa_ctx *c = ctx_for(fx, fx->resolver, NULL, 3000, 0);
    mc_caa_result r;
    mc_errdetail err;
    mc_caa_stats st;
    int64_t now = NOW;
    /* 1000 checks over 5 domains: 5 DNS queries. */
    for (int i = 0; i < 1000; i++) {
        char d[32];
        snprintf(d, sizeof d, "c%d.mcit", i % 5);
        assert_int_equal(mc_caa_check(c, d, NULL, MC_VM_EMAIL, now, &r, &err), MC_OK);
        assert_int_equal(r.cached, i >= 5);
    }
    mc_caa_stats_get(c, &st);
    assert_int_equal(st.checks, 1000);
    assert_int_equal(st.lookups, 5);
    assert_int_equal(st.queries, 5);
    assert_int_equal(st.cache_hits, 995);
    /* TTL 300: cached until now + 299, asked again at now + 300. */
    assert_int_equal(mc_caa_check(c, "c0.mcit", NULL, MC_VM_EMAIL, now + 299, &r, &err), MC_OK);
    assert_true(r.cached);
    assert_int_equal(r.checked_at, now);
    assert_int_equal(mc_caa_check(c, "c0.mcit", NULL, MC_VM_EMAIL, now + 300, &r, &err), MC_OK);
    assert_false(r.cached);
    assert_int_equal(r.checked_at, now + 300);
    mc_caa_stats_get(c, &st);
    assert_int_equal(st.queries, 6);
    mc_caa_ctx_free(c);
}

typedef struct worker_arg {
    mc_caa_ctx *c;
    pthread_barrier_t *start;
    int n, domains;
    int64_t now;
    int failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    pthread_barrier_wait(a->start);
    for (int i = 0; i < a->n; i++) {
        char d[32];
        mc_caa_result r;
        mc_errdetail err;
        snprintf(d, sizeof d, "c%d.mcit", i % a->domains);
        if (mc_caa_check(a->c, a->domains == 1 ? "permit.mcit" : d, NULL, MC_VM_EMAIL, a->now, &r,
                         &err) != MC_OK)
            a->failures++;
    }
    return NULL;
}

static void run_threads(mc_caa_ctx *c, int per_thread, int domains)
{
    pthread_t t[4];
    worker_arg a[4];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 4);
    for (int i = 0; i < 4; i++) {
        a[i] = (worker_arg){c, &start, per_thread, domains, NOW, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
    }
    pthread_barrier_destroy(&start);
}

static void test_cache_concurrent(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    /* 4 threads, one domain, started together: one DNS query, the others wait for it. */
    mc_caa_ctx *c = ctx_for(fx, fx->resolver, NULL, 3000, 0);
    mc_caa_stats st;
    run_threads(c, 1, 1);
    mc_caa_stats_get(c, &st);
    assert_int_equal(st.checks, 4);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.queries, 1);
    assert_int_equal(st.cache_hits, 3);
    mc_caa_ctx_free(c);

    /* 100,000 mailboxes in 20 domains from 4 threads: 20 queries. */
    c = ctx_for(fx, fx->resolver, NULL, 3000, 0);
    run_threads(c, 25000, 20);
    mc_caa_stats_get(c, &st);
    assert_int_equal(st.checks, 100000);
    assert_int_equal(st.lookups, 20);
    assert_int_equal(st.queries, 20);
    assert_int_equal(st.cache_hits, 100000 - 20);
    mc_caa_ctx_free(c);
}

/* ---- multi-perspective corroboration (SBR 4.2.2.2 -> TLS BR 3.2.2.9) ---- */

/* A context over perspectives given as "name=resolver" strings (quorum 0: the default). */
static mc_caa_ctx *mpic_ctx(const char *const *specs, size_t n, unsigned quorum,
                            unsigned timeout_ms)
{
    mc_caa_config cfg = {.issuers = {ISSUER},
                         .n_issuers = 1,
                         .timeout_ms = timeout_ms,
                         .quorum = quorum,
                         .n_perspectives = n};
    char names[MC_CAA_PERSPECTIVES_MAX][16];
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(specs[i], '=');
        snprintf(names[i], sizeof names[i], "%.*s", (int)(eq - specs[i]), specs[i]);
        cfg.perspectives[i].name = names[i];
        cfg.perspectives[i].resolvers[0] = eq + 1;
        cfg.perspectives[i].n_resolvers = 1;
    }
    mc_caa_ctx *c = NULL;
    mc_errdetail err;
    if (mc_caa_ctx_new(&cfg, &c, &err) != MC_OK)
        fail_msg("mc_caa_ctx_new: %s (%s)", err.message, err.field);
    return c;
}

static void json_has(const mc_caa_result *r, const char *part)
{
    char json[MC_CAA_JSON_MAX];
    assert_int_equal(mc_caa_result_json(r, json, sizeof json, NULL), MC_OK);
    if (!strstr(json, part))
        fail_msg("JSON lacks %s: %s", part, json);
}

/* Both perspectives permit (with different RRsets): permit, each perspective logged, each with
 * its own cache. */
static void test_mpic_agree(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    char a[80], b[80];
    snprintf(a, sizeof a, "a=%s", fx->resolver);
    snprintf(b, sizeof b, "b=%s", fx->resolver_b);
    const char *specs[] = {a, b};
    mc_caa_ctx *c = mpic_ctx(specs, 2, 0, 3000);
    mc_caa_result r;
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4",
           "authorises ca.mailca.test (2 of 2 perspectives permit, quorum 2)", &r);
    assert_int_equal(r.quorum, 2); /* the default for a primary and one remote perspective */
    assert_int_equal(r.permits, 2);
    assert_int_equal(r.n_perspectives, 2);
    assert_string_equal(r.views[0].name, "a");
    assert_string_equal(r.views[1].name, "b");
    assert_int_equal(r.views[0].n_records, 2); /* not byte-identical: still corroborating */
    assert_int_equal(r.views[1].n_records, 1);
    assert_string_equal(r.views[1].resolver, fx->resolver_b);
    assert_int_equal(r.n_records, 2); /* the primary's RRset is recorded */
    assert_string_equal(r.resolver, "mpic:a,b");
    assert_false(r.cached);
    json_has(&r, "\"quorum\":2,\"permits\":2,\"perspectives\":[{\"name\":\"a\",\"decision\":"
                 "\"permit\"");
    json_has(&r, "{\"name\":\"b\",\"decision\":\"permit\"");
    /* Cached per perspective: one query each, then none. */
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "", &r);
    assert_true(r.cached);
    mc_caa_stats sa, sb, all;
    assert_int_equal(mc_caa_stats_perspective(c, 0, &sa), MC_OK);
    assert_int_equal(mc_caa_stats_perspective(c, 1, &sb), MC_OK);
    mc_caa_stats_get(c, &all);
    assert_int_equal(sa.queries, 1);
    assert_int_equal(sb.queries, 1);
    assert_int_equal(sa.cache_hits, 1);
    assert_int_equal(all.checks, 2);
    assert_int_equal(all.queries, 2);
    /* An empty Relevant RRset at both (b climbs to mcit. as well). */
    expect(c, "open.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4",
           "the Relevant RRset is empty", &r);
    mc_caa_ctx_free(c);
}

/* A prohibition at either perspective refuses issuance. */
static void test_mpic_deny(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    char a[80], b[80];
    snprintf(a, sizeof a, "a=%s", fx->resolver);
    snprintf(b, sizeof b, "b=%s", fx->resolver_b);
    const char *specs[] = {a, b};
    /* Even a quorum of 1 (the primary alone would do) does not outvote a deny. */
    mc_caa_ctx *c = mpic_ctx(specs, 2, 1, 3000);
    mc_caa_result r;
    expect(c, "split.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "RFC 9495 4",
           "perspective b: no issuemail property names ca.mailca.test (issuemail: \";\")", &r);
    assert_int_equal(r.views[0].decision, MC_CAA_PERMIT);
    assert_int_equal(r.views[1].decision, MC_CAA_DENY);
    assert_int_equal(r.permits, 1);
    assert_false(r.retryable);
    json_has(&r, "\"decision\":\"deny\"");
    json_has(&r, "{\"name\":\"b\",\"decision\":\"deny\",\"rule\":\"RFC 9495 4\"");
    expect(c, "split2.mcit", NULL, MC_VM_EMAIL, MC_CAA_DENY, MC_CAA_ERR_DENIED, "RFC 9495 4",
           "perspective a: ", &r);
    assert_int_equal(r.views[1].decision, MC_CAA_PERMIT);
    /* The single-perspective contexts see only their own answer. */
    mc_caa_ctx *only_a = ctx_for(fx, fx->resolver, NULL, 3000, 0);
    expect(only_a, "split.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "", &r);
    mc_caa_ctx_free(only_a);
    mc_caa_ctx_free(c);
}

/* A perspective that does not answer: quorum 2 -> tempfail (fail closed); quorum 1 -> permit;
 * a silent primary -> tempfail whatever the quorum. */
static void test_mpic_quorum(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    char a[80], s[80];
    snprintf(a, sizeof a, "a=%s", fx->resolver);
    snprintf(s, sizeof s, "s=127.0.0.1@%d", fx->silent_port);
    const char *specs[] = {a, s};
    mc_caa_ctx *c = mpic_ctx(specs, 2, 2, 300);
    mc_caa_result r;
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_TEMPFAIL, MC_CAA_ERR_TEMPFAIL, "SBR 4.2.2.2",
           "1 of 2 perspectives permit, quorum 2; s: CAA lookup of permit.mcit failed: timeout "
           "after 300 ms",
           &r);
    assert_true(r.retryable);
    assert_int_equal(r.views[0].decision, MC_CAA_PERMIT);
    assert_int_equal(r.views[1].decision, MC_CAA_TEMPFAIL);
    json_has(&r, "{\"name\":\"s\",\"decision\":\"tempfail\"");
    mc_caa_ctx_free(c);

    c = mpic_ctx(specs, 2, 1, 300);
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4",
           "(1 of 2 perspectives permit, quorum 1)", &r);
    assert_int_equal(r.views[1].decision, MC_CAA_TEMPFAIL);
    mc_caa_ctx_free(c);

    const char *silent_primary[] = {s, a};
    c = mpic_ctx(silent_primary, 2, 1, 300);
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_TEMPFAIL, MC_CAA_ERR_TEMPFAIL, "SBR 4.2.2.1",
           "primary perspective s: CAA lookup of permit.mcit failed", &r);
    assert_int_equal(r.permits, 1);
    mc_caa_ctx_free(c);
}

/* Lookups of the perspectives run in parallel: two silent perspectives cost one timeout, not
 * two; three perspectives need 2 permits by default (one remote may fail to corroborate). */
static void test_mpic_parallel(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    char a[80], s1[80], s2[80], b[80];
    snprintf(a, sizeof a, "a=%s", fx->resolver);
    snprintf(b, sizeof b, "b=%s", fx->resolver_b);
    snprintf(s1, sizeof s1, "s1=127.0.0.1@%d", fx->silent_port);
    snprintf(s2, sizeof s2, "s2=127.0.0.1@%d", fx->silent_port);
    const char *specs[] = {a, s1, s2};
    mc_caa_ctx *c = mpic_ctx(specs, 3, 1, 300);
    mc_caa_result r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4", "", &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (!(secs >= 0.29 && secs < 0.55))
        fail_msg("3 perspectives, 2 silent, timeout 300 ms: %.3f s", secs);
    mc_caa_ctx_free(c);

    const char *three[] = {a, b, s1};
    c = mpic_ctx(three, 3, 0, 300);
    expect(c, "permit.mcit", NULL, MC_VM_EMAIL, MC_CAA_PERMIT, MC_OK, "RFC 9495 4",
           "(2 of 3 perspectives permit, quorum 2)", &r);
    mc_caa_ctx_free(c);
}

/* Writes cfg's config to out with CAA on: resolver and issuer_domains. */
static void caa_config(const char *cfg, const char *out, const char *resolver, const char *issuers)
{
    FILE *f = fopen(cfg, "r"), *o = fopen(out, "w");
    char line[1024], section[64] = "";
    assert_non_null(f);
    assert_non_null(o);
    while (fgets(line, sizeof line, f)) {
        if (line[0] != ' ' && line[0] != '#')
            sscanf(line, "%63[^:]", section);
        if (strcmp(section, "caa") == 0 && strstr(line, "enabled:"))
            fputs("  enabled: true\n", o);
        else if (strcmp(section, "caa") == 0 && strstr(line, "resolvers:"))
            fprintf(o, "  resolvers: \"%s\"\n", resolver);
        else if (strcmp(section, "caa") == 0 && strstr(line, "issuer_domains:"))
            fprintf(o, "  issuer_domains: \"%s\"\n", issuers);
        else
            fputs(line, o);
    }
    fclose(f);
    assert_int_equal(fclose(o), 0);
}

/* SQL count of the provenance rows (intents.evidence) matching both LIKE patterns. */
static long long evidence_count(sqlite3 *db, const char *like1, const char *like2)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM intents WHERE evidence LIKE ?1 AND evidence "
                           "LIKE ?2",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, like1, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_bind_text(st, 2, like2, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Issue 6: 100,000 mailboxes in 20 domains make about 20 lookups. Scaled down: 2,000 orders
 * over 20 domains (`mailca gen-orders --domains 20`) through `mailca batch` with CAA on: every
 * order is issued, and exactly one certificate per domain has a CAA result that came from a DNS
 * lookup ("cached":false in its provenance; coalesced waits and cache hits say true). Were the
 * cache broken, all 2,000 would say false. */
static void test_engine_cache(void **state)
{
    fixture *fx = *state;
    NEED_NSD(fx);
    if (!mc_it_bin())
        skip();
    mc_it_ca ca;
    assert_int_equal(mc_it_ca_setup("caa-engine-", &ca), 0);
    char orders[700], results[700], cfg[700], caa_cfg[700], db[700];
    snprintf(orders, sizeof orders, "%s/orders.msgpack", ca.dir);
    snprintf(results, sizeof results, "%s/results.msgpack", ca.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", ca.ca);
    snprintf(caa_cfg, sizeof caa_cfg, "%s/mailca-caa.yaml", ca.ca);
    snprintf(db, sizeof db, "%s/mailca.db", ca.ca);
    caa_config(cfg, caa_cfg, fx->resolver, ISSUER);
    mc_it_run r;
    int st = mc_it_mailca(&r, "gen-orders", "--count", "2000", "--domains", "20", "--domain-suffix",
                          "eng.mcit", orders, NULL);
    if (st != 0)
        fail_msg("gen-orders: exit %d: %s", st, r.err);
    mc_it_run_free(&r);
    /* worker threads (--procs 0): the cache is per process, so worker processes (what auto
     * picks for SoftHSM2 from 4 cores) would each look every domain up once */
    st = mc_it_mailca(&r, "batch", "--quiet", "--procs", "0", "--config", caa_cfg, orders, results,
                      NULL);
    if (st != 0)
        fail_msg("batch: exit %d: %s", st, r.err);
    mc_it_run_free(&r);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, 2000);
    for (size_t i = 0; i < res.n; i++)
        if (res.r[i].status != MC_STATUS_ISSUED)
            fail_msg("order %s: status %d: %s", res.r[i].order_id, res.r[i].status,
                     res.r[i].error.message);
    mc_it_results_free(&res);
    sqlite3 *sdb = mc_it_db_open(db);
    assert_non_null(sdb);
    assert_int_equal(evidence_count(sdb, "%\"caa\":[{%\"decision\":\"permit\"%", "%"), 2000);
    assert_int_equal(evidence_count(sdb, "%caa_checked%", "%"), 0);
    assert_int_equal(evidence_count(sdb, "%\"cached\":false%", "%"), 20);
    assert_int_equal(evidence_count(sdb, "%\"cached\":true%", "%"), 1980);
    for (int k = 0; k < 20; k++) {
        char dom[64];
        snprintf(dom, sizeof dom, "%%\"domain\":\"org%d.eng.mcit\"%%", k);
        assert_int_equal(evidence_count(sdb, dom, "%\"cached\":false%"), 1);
        assert_int_equal(evidence_count(sdb, dom, "%"), 100);
    }
    sqlite3_close(sdb);
    mc_it_rmtree(ca.dir);
    X509_free(ca.root);
    X509_free(ca.ica);
    EVP_PKEY_free(ca.key);
    free(ca.csr);
}

/* `mailca bench --caa` end to end on a small run: its own NSD, CAA off then on, one lookup per
 * domain (the bench exits 1 otherwise), and NSD gone afterwards. */
static void test_bench_caa(void **state)
{
    (void)state;
    if (access(NSD, X_OK) != 0)
        skip();
    if (!mc_it_bin())
        skip();
    char dir[1024];
    assert_int_equal(mc_it_tmpdir("caa-bench-", dir, sizeof dir), 0);
    char state_dir[1100];
    snprintf(state_dir, sizeof state_dir, "%s/b", dir);
    mc_it_run r;
    int st = mc_it_mailca(&r, "bench", "--caa", "--orders", "600", "--domains", "7", "--rounds",
                          "1", "--dir", state_dir, NULL);
    if (st != 0)
        fail_msg("bench --caa: exit %d:\n%s\n%s", st, r.out, r.err);
    assert_non_null(strstr(r.out, "600 checks, 7 lookups (cache misses), 593 cache hits"));
    assert_non_null(strstr(r.out, "CAA off"));
    assert_non_null(strstr(r.out, "on/off"));
    mc_it_run_free(&r);
    /* NSD wrote its pid file; the process is gone (or a zombie of init's) */
    char pidpath[1200];
    snprintf(pidpath, sizeof pidpath, "%s/nsd/nsd.pid", state_dir);
    char *pidtext = read_file(pidpath);
    if (pidtext && atoi(pidtext) > 0) {
        char stat[64];
        snprintf(stat, sizeof stat, "/proc/%d/stat", atoi(pidtext));
        char *t = read_file(stat);
        char *p = t ? strrchr(t, ')') : NULL;
        if (p && p[1] == ' ' && p[2] != 'Z')
            fail_msg("NSD (pid %d) still runs after the bench", atoi(pidtext));
        free(t);
    }
    free(pidtext);
    mc_it_rmtree(dir);
}

/* SBR 4.2.2.1: CAA on needs the CA's Issuer Domain Names; the engine refuses to open without
 * one (caa.issuer_domains empty, or only separators), naming the config key and the rule. With
 * one, the same config opens (an empty orders stream: no lookup, so no NSD needed). */
static void test_engine_no_issuer_domains(void **state)
{
    (void)state;
    if (!mc_it_bin())
        skip();
    mc_it_ca ca;
    assert_int_equal(mc_it_ca_setup("caa-noissuer-", &ca), 0);
    char orders[700], results[700], cfg[700], caa_cfg[700];
    snprintf(orders, sizeof orders, "%s/orders.msgpack", ca.dir);
    snprintf(results, sizeof results, "%s/results.msgpack", ca.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", ca.ca);
    snprintf(caa_cfg, sizeof caa_cfg, "%s/mailca-caa.yaml", ca.ca);
    FILE *f = fopen(orders, "wb");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
    static const char *const none[] = {"", " , ,"};
    mc_it_run r;
    for (size_t i = 0; i < 2; i++) {
        caa_config(cfg, caa_cfg, "127.0.0.1@53", none[i]);
        int st = mc_it_mailca(&r, "batch", "--quiet", "--procs", "0", "--config", caa_cfg, orders,
                              results, NULL);
        if (st != 1 || !strstr(r.err, "caa.issuer_domains") || !strstr(r.err, "[SBR 4.2.2.1]"))
            fail_msg("issuer_domains \"%s\": exit %d: %s", none[i], st, r.err);
        mc_it_run_free(&r);
    }
    caa_config(cfg, caa_cfg, "127.0.0.1@53", ISSUER);
    int st = mc_it_mailca(&r, "batch", "--quiet", "--procs", "0", "--config", caa_cfg, orders,
                          results, NULL);
    if (st != 0)
        fail_msg("issuer_domains \"" ISSUER "\": exit %d: %s", st, r.err);
    mc_it_run_free(&r);
    mc_it_rmtree(ca.dir);
    X509_free(ca.root);
    X509_free(ca.ica);
    EVP_PKEY_free(ca.key);
    free(ca.csr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_servfail),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_dnssec),
        cmocka_unit_test(test_cache_ttl),
        cmocka_unit_test(test_cache_concurrent),
        cmocka_unit_test(test_mpic_agree),
        cmocka_unit_test(test_mpic_deny),
        cmocka_unit_test(test_mpic_quorum),
        cmocka_unit_test(test_mpic_parallel),
        cmocka_unit_test(test_engine_cache),
        cmocka_unit_test(test_bench_caa),
        cmocka_unit_test(test_engine_no_issuer_domains),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
