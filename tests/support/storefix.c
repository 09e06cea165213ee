/*
 * Store fixtures shared by the store suites (storefix.h).
 */
#include "support/storefix.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/err.h"
#include "support/pgserver.h"

#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mc_sf_sqlite_setup(void **state)
{
    mc_sf *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *base = getenv("MAILCA_TEST_TMP");
    if (!base || !base[0])
        base = "/tmp";
    if (mkdir(base, 0700) != 0 && errno != EEXIST)
        goto fail;
    snprintf(f->dir, sizeof f->dir, "%s/mc-store-XXXXXX", base);
    if (!mkdtemp(f->dir))
        goto fail;
    snprintf(f->where, sizeof f->where, "%s/store.db", f->dir);
    *state = f;
    return 0;
fail:
    free(f);
    return -1;
}

int mc_sf_sqlite_teardown(void **state)
{
    mc_sf *f = *state;
    const char *dir = f->dir;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    int rc = rmdir(dir);
    free(f);
    return rc;
}

static int64_t sq_int(const char *db, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

static int sq_try(const char *db, const char *sql)
{
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open(db, &c), SQLITE_OK);
    int ok = sqlite3_exec(c, sql, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(c);
    return ok;
}

#ifdef MAILCA_HAVE_LIBPQ
static mc_pgserver *g_pgserver;   /* started here when MAILCA_TEST_PG_URI is unset */
static char g_pg_uri[512];        /* the database every test's schema lives in */
static unsigned g_schema_counter; /* schema names unique within this process */

int mc_sf_pg_group_setup(void **state)
{
    (void)state;
    const char *env = getenv("MAILCA_TEST_PG_URI");
    if (env && env[0]) {
        snprintf(g_pg_uri, sizeof g_pg_uri, "%s", env);
        return 0;
    }
    mc_errdetail err;
    mc_err_clear(&err);
    if (mc_pgserver_start(&g_pgserver, &err) != MC_OK) {
        fprintf(stderr, "private PostgreSQL server: %s\n", err.message);
        return -1;
    }
    snprintf(g_pg_uri, sizeof g_pg_uri, "%s", mc_pgserver_uri(g_pgserver));
    return 0;
}

int mc_sf_pg_group_teardown(void **state)
{
    (void)state;
    mc_pgserver_stop(g_pgserver);
    g_pgserver = NULL;
    return 0;
}

static void pg_silent(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *mc_sf_pg_connect(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK)
        print_error("raw connection: %s\n", PQerrorMessage(c));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQsetNoticeProcessor(c, pg_silent, NULL);
    return c;
}

static void pg_exec(const char *uri, const char *sql)
{
    PGconn *c = mc_sf_pg_connect(uri);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        print_error("%s: %s\n", sql, PQerrorMessage(c));
    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
}

static int64_t pg_int(const char *uri, const char *sql)
{
    PGconn *c = mc_sf_pg_connect(uri);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        print_error("%s: %s\n", sql, PQerrorMessage(c));
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int64_t v = -1;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        const char *t = PQgetvalue(r, 0, 0);
        v = strcmp(t, "t") == 0 ? 1 : strcmp(t, "f") == 0 ? 0 : strtoll(t, NULL, 10);
    }
    PQclear(r);
    PQfinish(c);
    return v;
}

static int pg_try(const char *uri, const char *sql)
{
    PGconn *c = mc_sf_pg_connect(uri);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    PQfinish(c);
    return ok;
}

/* A fresh schema; the store's URI selects it through search_path. */
int mc_sf_pg_setup(void **state)
{
    mc_sf *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->pg = 1;
    snprintf(f->schema, sizeof f->schema, "mc_t_%ld_%u", (long)getpid(), ++g_schema_counter);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", f->schema,
             f->schema);
    pg_exec(g_pg_uri, sql);
    snprintf(f->where, sizeof f->where, "%s%coptions=-csearch_path%%3D%s", g_pg_uri,
             strchr(g_pg_uri, '?') ? '&' : '?', f->schema);
    *state = f;
    return 0;
}

int mc_sf_pg_teardown(void **state)
{
    mc_sf *f = *state;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
    pg_exec(g_pg_uri, sql);
    free(f);
    return 0;
}
#endif

int64_t mc_sf_raw_int(const mc_sf *f, const char *sql)
{
#ifdef MAILCA_HAVE_LIBPQ
    if (f->pg)
        return pg_int(f->where, sql);
#endif
    return sq_int(f->where, sql);
}

void mc_sf_raw_exec(const mc_sf *f, const char *sql)
{
#ifdef MAILCA_HAVE_LIBPQ
    if (f->pg) {
        pg_exec(f->where, sql);
        return;
    }
#endif
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open(f->where, &c), SQLITE_OK);
    assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
}

int mc_sf_raw_try(const mc_sf *f, const char *sql)
{
#ifdef MAILCA_HAVE_LIBPQ
    if (f->pg)
        return pg_try(f->where, sql);
#endif
    return sq_try(f->where, sql);
}
