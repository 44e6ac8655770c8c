/*
 * cachebench: a micro-benchmark of the certificate cache, for the lead and
 * for admins sizing a deployment: lookups per second served by the LRU and
 * by Redis (LRU bypassed).  Prints figures; asserts nothing.  Also provides
 * the throwaway self-signed certificate the benchmark and the tests use.
 */
#ifndef SMG_CACHE_CACHEBENCH_H
#define SMG_CACHE_CACHEBENCH_H

#include <stdio.h>

#include <openssl/x509.h>

/* A new self-signed P-256 certificate for email (subject emailAddress and SAN rfc822Name). */
X509 *cachebench_selfsigned(const char *email);

/*
 * Runs each benchmark for about millis ms and prints lookups/s to out.
 * redis_spec ("host:port" or "unix:/path") may be NULL to skip Redis.
 * Returns 0, or -1 if Redis was asked for and could not be used.
 */
int cachebench_run(FILE *out, const char *redis_spec, unsigned millis);

#endif
