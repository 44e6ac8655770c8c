/*
 * ossl: process-wide OpenSSL provider handling.  Old PKCS#12 files (RC2-40,
 * 3DES) and old mail (RC2) need OpenSSL's legacy provider; loading any
 * provider by hand stops the implicit default one, so both are loaded,
 * once, whoever asks first (key import or decryption).
 */
#ifndef SMG_OSSL_H
#define SMG_OSSL_H

/* Loads the default and legacy providers once; 0, or -1 if legacy is unavailable. */
int ossl_load_legacy(void);
/* Unloads what ossl_load_legacy loaded; registered with atexit by the first load. */
void ossl_unload(void);

#endif
