/*
 * log: one formatting path for syslog and stderr.  Lines are built in a
 * bounded stack buffer and written with one call, so concurrent threads
 * never interleave within a line and logging takes no lock of ours.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_foreground = 1;
static int log_level = LOG_INFO;
static const char *log_ident = "smimegw";

void
log_init(const char *ident, int foreground, int facility)
{
	log_ident = ident;
	log_foreground = foreground;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

int
log_facility_parse(const char *s)
{
	static const struct {
		const char *name;
		int fac;
	} tab[] = {
	    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
	    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
	    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
	    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcasecmp(s, tab[i].name) == 0)
			return tab[i].fac;
	return -1;
}

int
log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int prio;
	} tab[] = {
	    {"error", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
	    {"info", LOG_INFO}, {"debug", LOG_DEBUG},
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcasecmp(s, tab[i].name) == 0)
			return tab[i].prio;
	return -1;
}

void
log_vlog(int prio, const char *qid, int with_errno, const char *fmt, va_list ap)
{
	char line[2048];
	size_t off = 0;
	int saved = errno, n;

	if (prio > log_level)
		return;
	if (qid != NULL && *qid != '\0') {
		n = snprintf(line, sizeof(line), "%s: ", qid);
		if (n > 0)
			off = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	}
	n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (n > 0)
		off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;
	if (with_errno && off < sizeof(line) - 1)
		snprintf(line + off, sizeof(line) - off, ": %s", strerror(saved));
	/* Control bytes from hostile input must not forge log lines. */
	for (char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (log_foreground) {
		char buf[sizeof(line) + 64];
		struct timespec ts;
		struct tm tm;
		int len;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		len =
		    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld]: %s\n",
		             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		             tm.tm_sec, ts.tv_nsec / 1000000, log_ident, (long)getpid(), line);
		if (len > 0) {
			if ((size_t)len >= sizeof(buf))
				len = sizeof(buf) - 1;
			(void)!write(STDERR_FILENO, buf, (size_t)len);
		}
	} else {
		syslog(prio, "%s", line);
	}
	errno = saved;
}

#define LOG_DEFINE(name, prio, witherr)                                                            \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vlog(prio, NULL, witherr, fmt, ap);                                            \
		va_end(ap);                                                                        \
	}
#define QLOG_DEFINE(name, prio, witherr)                                                           \
	void name(const char *qid, const char *fmt, ...)                                           \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vlog(prio, qid, witherr, fmt, ap);                                             \
		va_end(ap);                                                                        \
	}

LOG_DEFINE(log_crit, LOG_CRIT, 0)
LOG_DEFINE(log_warn, LOG_WARNING, 1)
LOG_DEFINE(log_warnx, LOG_WARNING, 0)
LOG_DEFINE(log_notice, LOG_NOTICE, 0)
LOG_DEFINE(log_info, LOG_INFO, 0)
LOG_DEFINE(log_debug, LOG_DEBUG, 0)
QLOG_DEFINE(qlog_warn, LOG_WARNING, 1)
QLOG_DEFINE(qlog_warnx, LOG_WARNING, 0)
QLOG_DEFINE(qlog_notice, LOG_NOTICE, 0)
QLOG_DEFINE(qlog_info, LOG_INFO, 0)
QLOG_DEFINE(qlog_debug, LOG_DEBUG, 0)
