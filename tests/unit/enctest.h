/*
 * enctest: helpers shared by the encryption engine tests (test_encrypt.c:
 * output structure and interop; test_encrypt_direct.c: the direct writer
 * against OpenSSL's CMS reference): the fixture PKI, temp directories,
 * shell commands, the DER behind a base64 body.
 */
#ifndef SMG_ENCTEST_H
#define SMG_ENCTEST_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "src/b64.h"
#include "src/encrypt.h"
#include "src/iolist.h"

#define PKI TEST_SRCDIR "/fixtures/pki"

static inline const char *
openssl_bin(void)
{
	const char *o = getenv("OPENSSL_BIN");

	return o != NULL && *o != '\0' ? o : "openssl";
}

static inline X509 *
load_cert_path(const char *path)
{
	FILE *f;
	X509 *x;

	cr_assert((f = fopen(path, "r")) != NULL, "%s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(x != NULL, "%s", path);
	return x;
}

static inline X509 *
pki_cert(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), PKI "/%s.crt", name);
	return load_cert_path(path);
}

static inline void
mktmp(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/smg-encrypt-XXXXXX");
	cr_assert(mkdtemp(dir) != NULL);
}

static inline void
rmtmp(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", dir);
}

static inline int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int
run(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	rc = system(cmd);
	free(cmd);
	return rc;
}

/* The DER behind a base64 body. */
static inline unsigned char *
b64_der(const struct iolist *b64, size_t *n)
{
	size_t len;
	unsigned char *flat = iolist_flatten(b64, &len);
	unsigned char *der = malloc(len * 3 / 4 + 3);

	*n = b64_decode(flat, len, der);
	free(flat);
	return der;
}

/* Every base64 line is at most 76 characters and ends with CRLF. */
static inline void
check_b64_lines(const struct iolist *b64)
{
	size_t len, i, col = 0;
	unsigned char *flat = iolist_flatten(b64, &len);

	cr_assert(len > 2 && flat[len - 2] == '\r' && flat[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		if (flat[i] == '\r') {
			cr_assert(i + 1 < len && flat[i + 1] == '\n', "bare CR at %zu", i);
			cr_assert(col <= B64_LINE && col > 0, "line of %zu at %zu", col, i);
			col = 0;
			i++;
		} else {
			cr_assert(flat[i] != '\n', "bare LF at %zu", i);
			col++;
		}
	}
	free(flat);
}

static inline struct encryptor *
make_encryptor(void)
{
	struct encryptor *e = NULL;
	struct errbuf eb = {{0}};

	cr_assert(encryptor_new(&e, &eb) == OUTCOME_OK, "%s", eb.msg);
	return e;
}

#endif
