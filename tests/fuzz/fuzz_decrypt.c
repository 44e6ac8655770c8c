/*
 * fuzz_decrypt: inbound decryption (src/decrypt.c) on arbitrary messages:
 * decrypt_message on the msgbuf for local recipients that have keys (bob,
 * frank with three key generations, the NSS corpus Bob), and decrypt_der
 * on the raw bytes.  The key store is built once in a temporary directory.
 * Checks that a failure never leaves a rewrite behind and that a success
 * yields an entity inside the bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/provider.h>

#include "src/decrypt.h"
#include "fuzz_msg.h"
#include "src/keystore.h"
#include "src/ossl.h"
#include "src/msgbuf.h"
#include "src/rewrite.h"

static struct keystore *ks;
/* The engine loads these for the process lifetime and drops the handles;
 * holding them here keeps LeakSanitizer from reporting that as a leak. */
static char tmp[256];
static const struct decrypt_limits lim = {1u << 20, 1u << 20, 64, 4};
static const char *const rcpts[] = {"bob@example.org", "frank@example.org", "bob@example.com",
                                    "nobody@example.org"};

static void
cleanup(void)
{
	char cmd[300];

	keystore_free(ks);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_decrypt: could not remove %s\n", tmp);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char store[300];
	struct errbuf eb;

	(void)argc;
	(void)argv;
	/* The engine's provider handling (loaded once, unloaded at exit). */
	(void)ossl_load_legacy();
	snprintf(tmp, sizeof(tmp), "%s", fuzz_tmpdir("decrypt"));
	snprintf(store, sizeof(store), "%s/store", tmp);
	if (mkdir(store, 0700) != 0)
		abort();
	fuzz_import(store, "bob@example.org", "fixtures/pki/bob.p12", "test");
	fuzz_import(store, "frank@example.org", "fixtures/pki/frank-gen1.p12", "test");
	fuzz_import(store, "frank@example.org", "fixtures/pki/frank-gen2.p12", "test");
	fuzz_import(store, "frank@example.org", "fixtures/pki/frank-gen3.p12", "test");
	fuzz_import(store, "bob@example.com", "fixtures/corpus/nss/Bob.p12", "nss");
	ks = keystore_load(store, NULL, &eb);
	if (ks == NULL) {
		fprintf(stderr, "fuzz_decrypt: %s\n", eb.msg);
		abort();
	}
	atexit(cleanup);
	return 0;
}

static void
check_result(const struct decrypt_result *r, const struct rewrite *rw)
{
	if (r->status != DECRYPT_OK) {
		if (rw != NULL)
			abort();
		return;
	}
	if (rw == NULL || r->entity == NULL || r->entity_len > lim.max_decrypted + 65536)
		abort();
	/* Touch every byte so ASan sees an out-of-bounds entity. */
	{
		volatile unsigned char x = 0;
		size_t i;
		for (i = 0; i < r->entity_len; i++)
			x ^= r->entity[i];
		(void)x;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msgbuf *mb;
	struct decrypt_result res;
	struct rewrite *rw = NULL;
	struct errbuf eb;
	unsigned char *plain = NULL;
	size_t plainlen = 0;
	size_t n = size ? (size_t)(data[0] & 3) + 1 : 4;

	if (size > (1u << 20))
		return 0;
	mb = fuzz_msg_new(data, size, 0);
	memset(&res, 0, sizeof(res));
	if (decrypt_message(mb, ks, rcpts, n, &lim, &rw, &res, &eb) == OUTCOME_OK)
		check_result(&res, rw);
	rewrite_free(rw);
	msgbuf_free(mb);

	memset(&res, 0, sizeof(res));
	if (decrypt_der(data, size, ks, rcpts, 4, &lim, &plain, &plainlen, &res, &eb) ==
	        OUTCOME_OK &&
	    res.status == DECRYPT_OK && (plain == NULL && plainlen != 0))
		abort();
	free(plain);
	return 0;
}
