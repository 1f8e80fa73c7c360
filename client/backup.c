/* SPDX-License-Identifier: MIT */
/* backup.c: mq_backup: Backup, then BackupRead chunk by chunk into the
 * caller's fd with a running BLAKE2b checksum, then BackupEnd (always,
 * once the broker named the backup). docs/backup.md. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "mq.pb-c.h"
#include "rpc.h"

#define MQC_BACKUP_COPY_TIMEOUT_MS (3600u * 1000u)
#define MQC_BACKUP_CHUNK           (1u << 20)

static int mqc_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* mqc_backup_end sends BackupEnd; its outcome only matters when all else
 * went well. */
static mq_status mqc_backup_end(mq_client *c, const char *id)
{
	Mq__BackupEndRequest req = MQ__BACKUP_END_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	mq_status st;

	req.id = (char *)id;
	st = mqc_rpc(c, &req.base, 0, &rep);
	if (rep != NULL)
		protobuf_c_message_free_unpacked(rep, NULL);
	return st;
}

mq_status mq_backup(mq_client *c, int fd, const mq_backup_opts *opts, mq_backup_info *info)
{
	static const mq_backup_opts defaults;
	Mq__BackupRequest req = MQ__BACKUP_REQUEST__INIT;
	Mq__BackupReply *rep = NULL;
	crypto_generichash_state hs;
	uint8_t sum[32];
	char id[64], errbuf[512];
	uint64_t off = 0, size;
	mq_status st, end_st;

	if (c == NULL || fd < 0)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_backup: a client and an open fd are required");
	if (opts == NULL)
		opts = &defaults;
	if (sodium_init() < 0)
		return mqc_fail(MQ_INTERNAL, "mq_backup: libsodium failed to initialise");
	st = mqc_rpc(c, &req.base,
	             opts->copy_timeout_ms ? opts->copy_timeout_ms : MQC_BACKUP_COPY_TIMEOUT_MS,
	             (ProtobufCMessage **)&rep);
	if (st != MQ_OK)
		return st;
	snprintf(id, sizeof(id), "%s", rep->id);
	size = rep->size;
	if (rep->checksum.len != sizeof(sum)) {
		size_t n = rep->checksum.len;

		mq__backup_reply__free_unpacked(rep, NULL);
		mqc_backup_end(c, id);
		return mqc_fail(MQ_INTERNAL,
		                "mq_backup: the broker sent a %zu-byte checksum, not 32", n);
	}
	if (info != NULL) {
		memset(info, 0, sizeof(*info));
		info->size = size;
		info->schema_version = rep->schema_version;
		info->created_ms = rep->created_ms;
		memcpy(info->checksum, rep->checksum.data, sizeof(info->checksum));
	}
	memcpy(sum, rep->checksum.data, sizeof(sum));
	mq__backup_reply__free_unpacked(rep, NULL);
	if (opts->progress != NULL)
		opts->progress(opts->progress_arg, 0, size);

	crypto_generichash_init(&hs, NULL, 0, sizeof(sum));
	st = MQ_OK;
	while (st == MQ_OK) {
		Mq__BackupReadRequest rr = MQ__BACKUP_READ_REQUEST__INIT;
		Mq__BackupReadReply *rd = NULL;
		bool eof;

		rr.id = id;
		rr.offset = off;
		rr.max_bytes = opts->chunk_bytes ? opts->chunk_bytes : MQC_BACKUP_CHUNK;
		if ((st = mqc_rpc(c, &rr.base, 0, (ProtobufCMessage **)&rd)) != MQ_OK)
			break;
		if (rd->data.len == 0 && !rd->eof) {
			st = mqc_fail(MQ_INTERNAL,
			              "mq_backup: the broker sent an empty chunk at %llu",
			              (unsigned long long)off);
		} else if (off + rd->data.len > size) {
			st = mqc_fail(MQ_DATA_LOSS,
			              "mq_backup: the backup grew past its announced %llu bytes",
			              (unsigned long long)size);
		} else if (mqc_write_all(fd, rd->data.data, rd->data.len) != 0) {
			st = mqc_fail(MQ_INTERNAL, "mq_backup: write: %s", strerror(errno));
		} else {
			crypto_generichash_update(&hs, rd->data.data, rd->data.len);
			off += rd->data.len;
			if (opts->progress != NULL)
				opts->progress(opts->progress_arg, off, size);
		}
		eof = rd->eof;
		mq__backup_read_reply__free_unpacked(rd, NULL);
		if (st == MQ_OK && eof)
			break;
	}
	/* Keep the first error's message across BackupEnd. */
	snprintf(errbuf, sizeof(errbuf), "%s", mq_errmsg());
	end_st = mqc_backup_end(c, id);
	if (st != MQ_OK)
		return mqc_fail(st, "%s", errbuf);
	if (off != size)
		return mqc_fail(MQ_DATA_LOSS, "mq_backup: got %llu bytes of %llu",
		                (unsigned long long)off, (unsigned long long)size);
	{
		uint8_t got[32];

		crypto_generichash_final(&hs, got, sizeof(got));
		if (sodium_memcmp(got, sum, sizeof(sum)) != 0)
			return mqc_fail(MQ_DATA_LOSS,
			                "mq_backup: the %llu bytes received do not match the "
			                "broker's checksum",
			                (unsigned long long)size);
	}
	if (end_st != MQ_OK)
		return end_st; /* its message is set */
	return mqc_ok();
}
