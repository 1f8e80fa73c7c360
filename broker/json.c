/* SPDX-License-Identifier: MIT */
/*
 * json.c: protobuf <-> JSON by descriptor (see json.h for the mapping).
 *
 * JSON -> protobuf builds the message in memory from an arena (every
 * allocation is kept on a list and freed at once after packing), so no
 * protobuf-c ownership rule (defaults, free_unpacked) is involved.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define MAX_DEPTH 32

typedef struct arena_blk {
	struct arena_blk *next;
	max_align_t data[];
} arena_blk;

typedef struct conv {
	arena_blk *blocks;
	char *err;
	size_t errlen;
	char path[256]; /* field path for messages, e.g. messages[2].payload */
} conv;

static void *arena_alloc(conv *cv, size_t n)
{
	arena_blk *b = calloc(1, sizeof(*b) + (n ? n : 1));

	if (b == NULL)
		return NULL;
	b->next = cv->blocks;
	cv->blocks = b;
	return b->data;
}

static void arena_free(conv *cv)
{
	for (arena_blk *b = cv->blocks, *next; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	cv->blocks = NULL;
}

static int fail(conv *cv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(conv *cv, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cv->path[0])
		snprintf(cv->err, cv->errlen, "%s: %s", cv->path, msg);
	else
		snprintf(cv->err, cv->errlen, "%s", msg);
	return -1;
}

/* ---- base64 ------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *brk_base64_encode(const uint8_t *src, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
		*p++ = b64[v >> 18];
		*p++ = b64[(v >> 12) & 63];
		*p++ = b64[(v >> 6) & 63];
		*p++ = b64[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < len ? (uint32_t)src[i + 1] << 8 : 0);
		*p++ = b64[v >> 18];
		*p++ = b64[(v >> 12) & 63];
		*p++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* b64_decode decodes standard or URL-safe base64, padding optional. */
static int b64_decode(conv *cv, const char *s, size_t n, ProtobufCBinaryData *out)
{
	uint8_t *buf;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return fail(cv, "invalid base64 (length)");
	buf = arena_alloc(cv, n / 4 * 3 + 3);
	if (buf == NULL)
		return fail(cv, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int v = b64_val(s[i]);
		if (v < 0)
			return fail(cv, "invalid base64 character '%c'", s[i]);
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
		}
	}
	out->data = buf;
	out->len = o;
	return 0;
}

/* ---- names ------------------------------------------------------------- */

/* name_matches: key equals the field's name or its lowerCamelCase form. */
static bool name_matches(const char *name, const char *key)
{
	if (strcmp(name, key) == 0)
		return true;
	for (const char *p = name; *p; p++, key++) {
		if (*p == '_' && p[1] >= 'a' && p[1] <= 'z') {
			p++;
			if (*key != *p - 'a' + 'A')
				return false;
			continue;
		}
		if (*key != *p)
			return false;
	}
	return *key == '\0';
}

static const ProtobufCFieldDescriptor *field_by_key(const ProtobufCMessageDescriptor *d,
                                                    const char *key)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (name_matches(d->fields[i].name, key))
			return &d->fields[i];
	return NULL;
}

/* ---- JSON -> protobuf -------------------------------------------------- */

static size_t scalar_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* json_int reads an integral JSON number or decimal string. */
static int json_int(conv *cv, json_t *v, bool is_signed, int64_t *sv, uint64_t *uv)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (!is_signed && i < 0)
			return fail(cv, "negative value for an unsigned field");
		*sv = (int64_t)i;
		*uv = (uint64_t)i;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d != floor(d) || fabs(d) > 9.2e18)
			return fail(cv, "not an integer: %g", d);
		if (!is_signed && d < 0)
			return fail(cv, "negative value for an unsigned field");
		*sv = (int64_t)d;
		*uv = (uint64_t)d;
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		if (is_signed) {
			long long x = strtoll(s, &end, 10);
			*sv = x;
			*uv = (uint64_t)x;
		} else {
			if (s[0] == '-')
				return fail(cv, "negative value for an unsigned field");
			unsigned long long x = strtoull(s, &end, 10);
			*uv = x;
			*sv = (int64_t)x;
		}
		if (errno || end == s || *end != '\0')
			return fail(cv, "not an integer: \"%.40s\"", s);
		return 0;
	}
	return fail(cv, "expected an integer (number or string)");
}

static int msg_from_json(conv *cv, const ProtobufCMessageDescriptor *d, json_t *in,
                         ProtobufCMessage **out, int depth);

/* scalar_from_json stores one value of field f at p. */
static int scalar_from_json(conv *cv, const ProtobufCFieldDescriptor *f, json_t *v, void *p,
                            int depth)
{
	int64_t sv = 0;
	uint64_t uv = 0;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (json_int(cv, v, true, &sv, &uv) != 0)
			return -1;
		if (sv < INT32_MIN || sv > INT32_MAX)
			return fail(cv, "out of range for int32");
		*(int32_t *)p = (int32_t)sv;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (json_int(cv, v, false, &sv, &uv) != 0)
			return -1;
		if (uv > UINT32_MAX)
			return fail(cv, "out of range for uint32");
		*(uint32_t *)p = (uint32_t)uv;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (json_int(cv, v, true, &sv, &uv) != 0)
			return -1;
		*(int64_t *)p = sv;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (json_int(cv, v, false, &sv, &uv) != 0)
			return -1;
		*(uint64_t *)p = uv;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double d;
		if (json_is_number(v))
			d = json_number_value(v);
		else if (json_is_string(v) && strcmp(json_string_value(v), "NaN") == 0)
			d = NAN;
		else if (json_is_string(v) && strcmp(json_string_value(v), "Infinity") == 0)
			d = INFINITY;
		else if (json_is_string(v) && strcmp(json_string_value(v), "-Infinity") == 0)
			d = -INFINITY;
		else
			return fail(cv, "expected a number");
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)d;
		else
			*(double *)p = d;
		return 0;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return fail(cv, "expected true or false");
		*(protobuf_c_boolean *)p = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		const ProtobufCEnumValue *ev;
		if (json_is_string(v)) {
			ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
			if (ev == NULL)
				return fail(cv, "unknown %s value \"%.40s\"", ed->name,
				            json_string_value(v));
			*(int32_t *)p = ev->value;
			return 0;
		}
		if (json_is_integer(v)) {
			json_int_t i = json_integer_value(v);
			if (i < INT32_MIN || i > INT32_MAX)
				return fail(cv, "out of range for enum %s", ed->name);
			*(int32_t *)p = (int32_t)i;
			return 0;
		}
		return fail(cv, "expected a %s name or number", ed->name);
	}
	case PROTOBUF_C_TYPE_STRING: {
		if (!json_is_string(v))
			return fail(cv, "expected a string");
		size_t n = json_string_length(v);
		char *s = arena_alloc(cv, n + 1);
		if (s == NULL)
			return fail(cv, "out of memory");
		memcpy(s, json_string_value(v), n);
		if (memchr(s, '\0', n) != NULL)
			return fail(cv, "string with a NUL character");
		*(char **)p = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		if (!json_is_string(v))
			return fail(cv, "expected a base64 string");
		return b64_decode(cv, json_string_value(v), json_string_length(v), p);
	case PROTOBUF_C_TYPE_MESSAGE:
		return msg_from_json(cv, f->descriptor, v, (ProtobufCMessage **)p, depth + 1);
	}
	return fail(cv, "unsupported field type");
}

static int msg_from_json(conv *cv, const ProtobufCMessageDescriptor *d, json_t *in,
                         ProtobufCMessage **out, int depth)
{
	ProtobufCMessage *m;
	const char *key;
	json_t *v;

	if (depth > MAX_DEPTH)
		return fail(cv, "nested too deeply");
	if (!json_is_object(in))
		return fail(cv, "expected a JSON object for %s", d->name);
	m = arena_alloc(cv, d->sizeof_message);
	if (m == NULL)
		return fail(cv, "out of memory");
	d->message_init(m);
	json_object_foreach(in, key, v)
	{
		const ProtobufCFieldDescriptor *f = field_by_key(d, key);
		size_t plen = strlen(cv->path);
		char *base = (char *)m;

		if (f == NULL)
			return fail(cv, "unknown field \"%.64s\" in %s", key, d->name);
		snprintf(cv->path + plen, sizeof(cv->path) - plen, "%s%s", plen ? "." : "",
		         f->name);
		if (json_is_null(v)) {
			cv->path[plen] = '\0';
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n, sz = scalar_size(f->type);
			uint8_t *arr;
			if (!json_is_array(v))
				return fail(cv, "expected an array");
			n = json_array_size(v);
			arr = arena_alloc(cv, n * sz);
			if (arr == NULL)
				return fail(cv, "out of memory");
			for (size_t i = 0; i < n; i++) {
				size_t l2 = strlen(cv->path);
				snprintf(cv->path + l2, sizeof(cv->path) - l2, "[%zu]", i);
				if (scalar_from_json(cv, f, json_array_get(v, i), arr + i * sz,
				                     depth) != 0)
					return -1;
				cv->path[l2] = '\0';
			}
			*(size_t *)(base + f->quantifier_offset) = n;
			*(void **)(base + f->offset) = arr;
		} else {
			if (scalar_from_json(cv, f, v, base + f->offset, depth) != 0)
				return -1;
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
				*(uint32_t *)(base + f->quantifier_offset) = f->id;
			else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
			         f->type != PROTOBUF_C_TYPE_MESSAGE &&
			         f->type != PROTOBUF_C_TYPE_STRING && f->quantifier_offset)
				*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
		}
		cv->path[plen] = '\0';
	}
	*out = m;
	return 0;
}

int brk_json_to_pb(const ProtobufCMessageDescriptor *d, json_t *in, uint8_t **out, size_t *out_len,
                   char *err, size_t errlen)
{
	conv cv = {.err = err, .errlen = errlen};
	ProtobufCMessage *m = NULL;
	uint8_t *buf;
	size_t n;

	err[0] = '\0';
	if (msg_from_json(&cv, d, in, &m, 0) != 0) {
		arena_free(&cv);
		return -1;
	}
	n = protobuf_c_message_get_packed_size(m);
	buf = malloc(n ? n : 1);
	if (buf == NULL) {
		arena_free(&cv);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*out_len = protobuf_c_message_pack(m, buf);
	*out = buf;
	arena_free(&cv);
	return 0;
}

/* ---- protobuf -> JSON -------------------------------------------------- */

static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *p)
{
	char num[32];

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)p);
		return json_string(num);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)p);
		return json_string(num);
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double d =
		    f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
		if (isnan(d))
			return json_string("NaN");
		if (isinf(d))
			return json_string(d > 0 ? "Infinity" : "-Infinity");
		return json_real(d);
	}
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		int32_t v = *(const int32_t *)p;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		return ev ? json_string(ev->name) : json_integer(v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return json_string(s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		char *s = brk_base64_encode(b->data, b->len);
		json_t *j = s ? json_string(s) : NULL;
		free(s);
		return j;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
		return m ? brk_pb_to_json(m) : json_null();
	}
	}
	return json_null();
}

json_t *brk_pb_to_json(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		json_t *v;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const uint8_t *arr = *(uint8_t *const *)(base + f->offset);
			size_t sz = scalar_size(f->type);
			v = json_array();
			for (size_t k = 0; v != NULL && k < n; k++)
				if (json_array_append_new(v, value_to_json(f, arr + k * sz)) != 0) {
					json_decref(v);
					v = NULL;
				}
		} else {
			if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
			if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
			    f->type != PROTOBUF_C_TYPE_MESSAGE &&
			    f->type != PROTOBUF_C_TYPE_STRING && f->quantifier_offset &&
			    !*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    *(ProtobufCMessage *const *)(base + f->offset) == NULL)
				continue;
			v = value_to_json(f, base + f->offset);
		}
		if (v == NULL || json_object_set_new(o, f->name, v) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}
