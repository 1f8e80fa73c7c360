/* SPDX-License-Identifier: MIT */
/*
 * json.h: generic protobuf <-> JSON conversion (proto3 JSON mapping), driven
 * by protobuf-c's descriptors only: no code per message, so every message of
 * mq.proto, present or future, converts the same way.
 *
 * Output: original field names (snake_case, as in mq.proto), every field
 * (defaults included; an unset sub-message is left out); 64-bit integers as
 * strings, other numbers as numbers; bytes as standard base64; enums by name.
 * Input: original or lowerCamelCase names; 64-bit integers as strings or
 * numbers; enums by name or number; bytes in standard or URL-safe base64,
 * padding optional; null means "default". Unknown fields are an error.
 */
#ifndef BRK_JSON_H
#define BRK_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* brk_json_to_pb packs the JSON object in as a message of type d into a
 * malloc'd buffer (*out, *out_len; free it with free). Returns 0, or -1
 * with a reason in err. */
int brk_json_to_pb(const ProtobufCMessageDescriptor *d, json_t *in, uint8_t **out, size_t *out_len,
                   char *err, size_t errlen);

/* brk_pb_to_json converts a message to a new JSON object (NULL when out of
 * memory). */
json_t *brk_pb_to_json(const ProtobufCMessage *m);

/* brk_base64_encode writes the base64 of src into a new NUL-ended string. */
char *brk_base64_encode(const uint8_t *src, size_t len);

#endif
