/*
 * log: syslog or stderr logging.  Daemon-wide lines use log_*; lines about
 * one message use qlog_* and carry the MTA's queue id first, so an admin can
 * grep one id across Postfix's and smimegw's logs.  The *warn variants
 * append strerror(errno); the *warnx variants do not.  Never pass a key or
 * message content to these functions.
 */
#ifndef SMG_LOG_H
#define SMG_LOG_H

#include <stdarg.h>
#include <syslog.h>

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))

/* Opens the log: to stderr when foreground is set, else to syslog with facility. */
void log_init(const char *ident, int foreground, int facility);
/* Drops messages less urgent than level (a syslog LOG_* priority). */
void log_setlevel(int level);
int log_getlevel(void);
/* Maps "mail", "local0".."local7", "daemon", "user" to a facility; -1 if unknown. */
int log_facility_parse(const char *);
/* Maps "error", "warning", "notice", "info", "debug" to a priority; -1 if unknown. */
int log_level_parse(const char *);

void log_vlog(int prio, const char *qid, int with_errno, const char *fmt, va_list ap);

void log_crit(const char *, ...) LOG_FMT(1, 2);
void log_warn(const char *, ...) LOG_FMT(1, 2);
void log_warnx(const char *, ...) LOG_FMT(1, 2);
void log_notice(const char *, ...) LOG_FMT(1, 2);
void log_info(const char *, ...) LOG_FMT(1, 2);
void log_debug(const char *, ...) LOG_FMT(1, 2);

void qlog_warn(const char *qid, const char *, ...) LOG_FMT(2, 3);
void qlog_warnx(const char *qid, const char *, ...) LOG_FMT(2, 3);
void qlog_notice(const char *qid, const char *, ...) LOG_FMT(2, 3);
void qlog_info(const char *qid, const char *, ...) LOG_FMT(2, 3);
void qlog_debug(const char *qid, const char *, ...) LOG_FMT(2, 3);

#endif
