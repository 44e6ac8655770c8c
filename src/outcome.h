/*
 * outcome: the three results of every fallible engine or cache call, and a
 * bounded buffer for the detail.  Only milter/ turns an outcome into a
 * milter reply; the engine never decides accept, reject or tempfail.
 */
#ifndef SMG_OUTCOME_H
#define SMG_OUTCOME_H

#include <stddef.h>

enum outcome {
	OUTCOME_OK = 0,
	OUTCOME_PERM, /* retrying the same input will fail the same way */
	OUTCOME_TEMP, /* may succeed later: a resource or a peer was missing */
};

#define ERRBUF_SIZE 512

struct errbuf {
	char msg[ERRBUF_SIZE];
};

/* Sets the detail text (truncated to fit, never overflowing). */
void err_set(struct errbuf *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the detail to "what: <OpenSSL errors>" and drains OpenSSL's error queue. */
void err_openssl(struct errbuf *, const char *what);
/* Drains OpenSSL's error queue without recording it. */
void err_openssl_clear(void);
const char *outcome_name(enum outcome);

#endif
