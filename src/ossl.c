/*
 * ossl: the providers are kept so that they are unloaded at exit, which
 * keeps leak checkers quiet about memory that is in fact process-lifetime.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/provider.h>

#include "log.h"
#include "ossl.h"

static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;
static OSSL_PROVIDER *ossl_default, *ossl_legacy;

static void
ossl_load(void)
{
	if ((ossl_default = OSSL_PROVIDER_load(NULL, "default")) == NULL)
		log_warnx("cannot load OpenSSL's default provider");
	if ((ossl_legacy = OSSL_PROVIDER_load(NULL, "legacy")) == NULL)
		log_warnx("cannot load OpenSSL's legacy provider: RC2 and 3DES protected "
			  "PKCS#12 files and RC2 mail cannot be read");
	ERR_clear_error();
	/*
	 * Registered after OpenSSL's own exit handler (OpenSSL is initialised by
	 * now), so it runs first: providers must go before the library does.
	 */
	(void)atexit(ossl_unload);
}

int
ossl_load_legacy(void)
{
	(void)pthread_once(&ossl_once, ossl_load);
	return ossl_default != NULL && ossl_legacy != NULL ? 0 : -1;
}

void
ossl_unload(void)
{
	if (ossl_legacy != NULL)
		OSSL_PROVIDER_unload(ossl_legacy);
	if (ossl_default != NULL)
		OSSL_PROVIDER_unload(ossl_default);
	ossl_legacy = ossl_default = NULL;
}
