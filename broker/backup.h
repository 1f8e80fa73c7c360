/* SPDX-License-Identifier: MIT */
/*
 * backup.h: the Backup, BackupRead and BackupEnd methods of mq.Broker
 * (backup.c; docs/backup.md). A backup is made by store_backup on a thread
 * of its own (never the writer's), into "backup-<id>.tmp" in the data
 * directory; it is read in chunks and deleted by BackupEnd, by
 * --backup-idle-ms without a read, at shutdown, or (a crash) at the next
 * start. One backup exists at a time.
 */
#ifndef BRK_BACKUP_H
#define BRK_BACKUP_H

#include "broker.h"

#define BRK_BACKUP_CHUNK_MAX (1u << 20) /* most bytes per BackupRead */

typedef struct brk_backup brk_backup;

/* brk_backup_open sets up backups for the store of info (after
 * store_open) and removes backup files a previous run left in the data
 * directory. Returns 0, or -1 when out of memory (logged). */
int brk_backup_open(brk_backup **out, brk_info *info);

/* brk_backup_stop waits for a copy in progress to end (a copy cannot be
 * interrupted; its reply is sent), then deletes the backup file. Call after
 * the writer stopped and before the server closes. NULL is fine. */
void brk_backup_stop(brk_backup *b);
void brk_backup_free(brk_backup *b);

/* The typed handlers, for service.c's method table. */
void svc_backup(Mq__Broker_Service *base, const Mq__BackupRequest *in,
                Mq__BackupReply_Closure closure, void *data);
void svc_backup_read(Mq__Broker_Service *base, const Mq__BackupReadRequest *in,
                     Mq__BackupReadReply_Closure closure, void *data);
void svc_backup_end(Mq__Broker_Service *base, const Mq__BackupEndRequest *in,
                    Mq__BackupEndReply_Closure closure, void *data);

/* svc_backup_init gives the handlers the server-wide facts (called by
 * brk_service_init; info->backup may be NULL: the methods then answer
 * UNAVAILABLE). */
void svc_backup_init(brk_info *info);

#endif
