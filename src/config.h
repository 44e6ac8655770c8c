/*
 * config: the smimegw configuration file.  Every key is declared once, in
 * the table in config.c, with its type, default and validator; this struct
 * holds the parsed values.  A loaded config is immutable and may be shared
 * between threads; a reload builds a new one.
 *
 * File format: one "Key value" per line, '#' starts a comment line, blank
 * lines are ignored, keys are case-insensitive, unknown keys and bad values
 * are errors naming file, line and key.
 */
#ifndef SMG_CONFIG_H
#define SMG_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "outcome.h"

/* What the milter does with a message when a policy or limit triggers. */
enum action {
	ACTION_ACCEPT = 0, /* deliver unchanged */
	ACTION_TEMPFAIL,   /* 4xx: the client retries later */
	ACTION_REJECT,     /* 5xx: the client gives up and bounces */
};

struct strlist {
	size_t n;
	char **v;
};

struct config {
	char *path;		  /* the file this came from */
	char *socket;		  /* Socket */
	char *user;		  /* UserID, "" to keep the current user */
	char *pidfile;		  /* PidFile, "" for none */
	int syslog_facility;	  /* SyslogFacility */
	int log_level;		  /* LogLevel */
	size_t max_message_size;  /* MaximumMessageSize */
	enum action on_oversize;  /* OnOversizedMessage */
	unsigned shutdown_timeout; /* ShutdownTimeout, seconds */
	unsigned socket_mode;	  /* SocketMode */
	unsigned milter_timeout;  /* MilterTimeout, seconds */
};

/* Reads and validates path; NULL with the error (file:line: key: why) in eb. */
struct config *config_load(const char *path, struct errbuf *eb);
/* A config holding only the defaults. */
struct config *config_defaults(void);
void config_free(struct config *);
/* Prints every key with its type, default and description (for -n -v and the docs). */
void config_describe(FILE *);

/* Shared value parsers, also used by the tools. */
int config_parse_bool(const char *, int *);
int config_parse_size(const char *, size_t *);
int config_parse_socket(const char *, struct errbuf *);
const char *action_name(enum action);

#endif
