/*
 * fuzz_msg: shared helpers for the libFuzzer targets.  Turns raw fuzzer
 * bytes into a struct msgbuf the way the milter builds one from what the
 * MTA hands over: the input is split at the first blank line (CRLFCRLF,
 * or LFLF when there is none), each header line (with its folded
 * continuations) becomes one msgbuf_add_header call with the value as sent
 * (leading space included), and the rest is the body.
 */
#ifndef SMG_FUZZ_MSG_H
#define SMG_FUZZ_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "src/msgbuf.h"

/* The libFuzzer entry points each target defines (Initialize is optional). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Upper bound on the msgbuf (like MaxMessageSize): the input plus slack. */
#define FUZZ_MSG_LIMIT (8u << 20)

/*
 * Builds a message from data.  Header lines without a colon are dropped
 * (the MTA would not hand them over); NUL bytes end a header value (the
 * MTA passes C strings).  If body_chunk is not NULL the body is appended
 * in pieces of that many bytes (>= 1).  Never returns NULL.
 */
struct msgbuf *fuzz_msg_new(const uint8_t *data, size_t size, size_t body_chunk);

/* Headers only (msgbuf_end_headers done, no body); the body starts at *body_start. */
struct msgbuf *fuzz_msg_headers(const uint8_t *data, size_t size, size_t *body_start);

/* The source tree's tests/ directory (fixtures), from FUZZ_SRCDIR or the environment. */
const char *fuzz_testdir(void);

/* Imports the PKCS#12 file rel (under fuzz_testdir()) into the key store
 * at store for user; aborts on failure. */
void fuzz_import(const char *store, const char *user, const char *rel, const char *pass);

/* Makes a fresh private temporary directory and returns its path (static storage). */
const char *fuzz_tmpdir(const char *tag);

#endif
