/*
 * mc_sqlvfs: a SQLite VFS that wraps the platform's default one and gathers the writes SQLite
 * makes to a write-ahead log into large sequential writes (engine/sqlvfs.c says why).
 *
 * Only the "-wal" file is written differently; the database file's calls go to the default
 * VFS unchanged (its WAL write lock is watched, to drop what a rollback leaves), and all other
 * files are the default VFS's own. A commit reaches the WAL file (the OS page
 * cache) before SQLite publishes it, as without this VFS, so durability is the same: a
 * committed transaction survives the death of the process (synchronous=NORMAL in WAL mode).
 */
#ifndef MAILCA_SQLVFS_H
#define MAILCA_SQLVFS_H

#include "mailca/err.h"

/* Name to pass to sqlite3_open_v2 as its zVfs argument. */
#define MC_SQLVFS_NAME "mailca-wal"

/* Registers the VFS (not as the default) once per process; later calls return its first
 * result. Thread-safe. The VFS lives until the process ends (nothing to free). */
mc_err mc_sqlvfs_register(mc_errdetail *err);

/* Counters of this process's WAL files (all handles, since start), for tests and the bench. */
typedef struct mc_sqlvfs_stats {
    unsigned long long sqlite_writes; /* xWrite calls SQLite made on WAL files */
    unsigned long long os_writes;     /* pwrite calls they became */
    unsigned long long dropped_bytes; /* frames of rolled-back transactions never written */
} mc_sqlvfs_stats;

void mc_sqlvfs_stats_get(mc_sqlvfs_stats *out);

#endif
