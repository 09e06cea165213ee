/*
 * Test support: a private PostgreSQL server for the tests of the PostgreSQL store backend.
 *
 * mc_pgserver_start runs the server binaries of the PostgreSQL package (Debian: postgresql-15,
 * /usr/lib/postgresql/<version>/bin; $MAILCA_PG_BINDIR overrides): initdb into a fresh directory
 * /tmp/mc-pg-XXXXXX, pg_ctl start on a free port of 127.0.0.1 only (its Unix socket in that
 * directory), createdb mailca_test. Password authentication over TCP with a random password
 * (in the URI). As root it runs everything as the `postgres` system user (else `nobody`), whom
 * initdb requires to be unprivileged, and makes the directory theirs. mc_pgserver_stop stops the
 * server (pg_ctl stop -m fast) and removes the directory.
 *
 * Typical use (a cmocka group setup / teardown):
 *     mc_pgserver *pg = NULL;
 *     assert_int_equal(mc_pgserver_start(&pg, &err), MC_OK);
 *     ... mc_store_open(mc_pgserver_uri(pg), ...) ...
 *     mc_pgserver_stop(pg);
 */
#ifndef MAILCA_TEST_PGSERVER_H
#define MAILCA_TEST_PGSERVER_H

#include "mailca/err.h"

typedef struct mc_pgserver mc_pgserver;

/* Starts the server (a few seconds). On failure the server's logs go to stderr, err says which
 * step failed, and nothing is left running or on disk. Caller stops *out with mc_pgserver_stop. */
mc_err mc_pgserver_start(mc_pgserver **out, mc_errdetail *err);

/* "postgresql://postgres:<password>@127.0.0.1:<port>/mailca_test"; valid until stop. */
const char *mc_pgserver_uri(const mc_pgserver *pg);

/* Stops the server as a crash would (pg_ctl stop -m immediate: every connection is cut) and
 * keeps its data: mc_pgserver_resume starts it again on the same port and URI. For outage
 * tests. MC_OK, or MC_ERR_IO with the server log on stderr. */
mc_err mc_pgserver_halt(mc_pgserver *pg, mc_errdetail *err);
mc_err mc_pgserver_resume(mc_pgserver *pg, mc_errdetail *err);

/* Stops the server, removes its directory and frees pg (NULL is a no-op). */
void mc_pgserver_stop(mc_pgserver *pg);

#endif
