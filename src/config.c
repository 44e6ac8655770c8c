/*
 * config: the typed key table and the parser.  Adding a key means one row
 * in config_keys[] and one field in struct config; the parser, -n checks
 * and config_describe() follow from the row.
 */
#include "autoconf.h"

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "xmalloc.h"

#define CONFIG_MAX_LINE  8192
#define CONFIG_MAX_LINES 100000

enum cfg_type {
	CFG_STRING,
	CFG_PATH,
	CFG_BOOL,
	CFG_UINT,
	CFG_SIZE,
	CFG_ENUM,
	CFG_LIST,
	CFG_SOCKET,
	CFG_FACILITY,
	CFG_LOGLEVEL,
	CFG_MODE,
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t offset;
	const char *def;
	const char *const *choices; /* CFG_ENUM: value i maps to index i */
	unsigned long min, max;     /* CFG_UINT, CFG_SIZE */
	const char *doc;
};

static const char *const action_choices[] = {"accept", "tempfail", "reject", NULL};
static const char *const digest_choices[] = {"sha256", "sha384", "sha512", NULL};
static const char *const padding_choices[] = {"pkcs1", "pss", NULL};
static const char *const audit_sync_choices[] = {"none", "interval", "every-record", NULL};
static const char *const audit_failure_choices[] = {"tempfail", "continue", NULL};
static const char *const encrypt_mode_choices[] = {"encrypt", "noencrypt", "if-cert", NULL};
static const char *const missing_cert_choices[] = {"send-plain", "reject-recipient", "tempfail",
                                                   "reject-message", NULL};
static const char *const cipher_choices[] = {"aes256-cbc", "aes256-gcm", NULL};
static const char *const rsa_enc_choices[] = {"pkcs1", "oaep", NULL};

#define OFF(f) offsetof(struct config, f)

static const struct cfg_key config_keys[] = {
    {"Socket", CFG_SOCKET, OFF(socket), "unix:/run/smimegw/smimegw.sock", NULL, 0, 0,
     "Where the milter listens: unix:/path or inet:PORT@HOST (inet6:PORT@HOST for IPv6)."},
    {"SocketMode", CFG_MODE, OFF(socket_mode), "0660", NULL, 0, 0777,
     "Octal permission bits of a unix socket, applied after it is created."},
    {"UserID", CFG_STRING, OFF(user), "", NULL, 0, 0,
     "User (optionally user:group) to run as after the socket is bound; empty keeps the "
     "starting user."},
    {"PidFile", CFG_PATH, OFF(pidfile), "", NULL, 0, 0,
     "File to write the daemon's process id to; empty for none."},
    {"SyslogFacility", CFG_FACILITY, OFF(syslog_facility), "mail", NULL, 0, 0,
     "Syslog facility: mail, daemon, user or local0..local7."},
    {"LogLevel", CFG_LOGLEVEL, OFF(log_level), "info", NULL, 0, 0,
     "Least urgent level logged: error, warning, notice, info or debug."},
    {"MaximumMessageSize", CFG_SIZE, OFF(max_message_size), "50M", NULL, 1024,
     (unsigned long)1 << 31,
     "Largest message (headers and body) smimegw buffers; suffixes K, M, G. Larger "
     "messages get OnOversizedMessage."},
    {"OnOversizedMessage", CFG_ENUM, OFF(on_oversize), "accept", action_choices, 0, 0,
     "accept (deliver unchanged and unprocessed, logged), tempfail or reject (552 5.3.4)."},
    {"ShutdownTimeout", CFG_UINT, OFF(shutdown_timeout), "30", NULL, 1, 3600,
     "Seconds in-flight messages get to finish after SIGTERM; new ones are tempfailed."},
    {"MilterTimeout", CFG_UINT, OFF(milter_timeout), "300", NULL, 1, 86400,
     "Seconds libmilter waits for the MTA on an idle connection."},
    {"MaxConnections", CFG_UINT, OFF(max_connections), "1000", NULL, 0, 1000000,
     "Milter connections served at once; beyond it new ones are tempfailed at once (0: no "
     "limit)."},
    {"MaxMessagesInFlight", CFG_UINT, OFF(max_inflight), "0", NULL, 0, 1000000,
     "Messages being received or processed at once; beyond it MAIL FROM is tempfailed "
     "(0: no limit)."},

    {"KeyStore", CFG_PATH, OFF(keystore), "", NULL, 0, 0,
     "Directory of users' certificates and private keys, managed with smimegw-keys."},
    {"TrustAnchors", CFG_PATH, OFF(trust_anchors), "", NULL, 0, 0,
     "PEM file or directory of trusted root CA certificates."},
    {"Intermediates", CFG_PATH, OFF(intermediates), "", NULL, 0, 0,
     "PEM file or directory of intermediate CA certificates used to build chains."},
    {"InternalDomains", CFG_LIST, OFF(internal_domains), "", NULL, 0, 0,
     "Domains whose senders are ours: mail from them is outbound; .example.org matches "
     "subdomains only, so list example.org too for both."},
    {"TrustedNetworks", CFG_LIST, OFF(trusted_networks), "127.0.0.0/8, ::1", NULL, 0, 0,
     "Client networks (CIDR) whose mail counts as submitted by our users, like Postfix's "
     "mynetworks; authenticated clients count too."},
    {"SignPolicy", CFG_PATH, OFF(sign_policy), "", NULL, 0, 0,
     "Table of sender address, @domain, .subdomain, group:NAME or * to sign or nosign."},
    {"GroupFile", CFG_PATH, OFF(group_file), "", NULL, 0, 0,
     "File of \"group: member, member\" lines used by group: entries in policy tables."},
    {"SignByDefault", CFG_BOOL, OFF(sign_by_default), "yes", NULL, 0, 0,
     "Sign outbound mail of senders that no SignPolicy entry matches."},
    {"OnMissingSigningKey", CFG_ENUM, OFF(on_missing_signing_key), "accept", action_choices, 0, 0,
     "What to do when a sender should sign but has no usable signing key."},
    {"SignDigest", CFG_ENUM, OFF(sign_digest), "sha256", digest_choices, 0, 0,
     "Digest for new signatures (and the micalg parameter)."},
    {"RsaSignaturePadding", CFG_ENUM, OFF(rsa_padding), "pkcs1", padding_choices, 0, 0,
     "RSA signature scheme: pkcs1 (PKCS#1 v1.5, widest support) or pss."},

    {"CacheSize", CFG_SIZE, OFF(cache_size), "64M", NULL, 65536, (unsigned long)1 << 40,
     "Bytes of recipient certificates kept in the in-process cache."},
    {"CacheTTL", CFG_UINT, OFF(cache_ttl), "3600", NULL, 1, 604800,
     "Seconds a found certificate stays cached (in process and in Redis)."},
    {"CacheNegativeTTL", CFG_UINT, OFF(cache_negative_ttl), "300", NULL, 1, 604800,
     "Seconds a \"no certificate\" answer stays cached."},
    {"Redis", CFG_STRING, OFF(redis), "", NULL, 0, 0,
     "Redis server as host:port or unix:/path; empty runs on the in-process cache alone."},
    {"RedisConnectTimeout", CFG_UINT, OFF(redis_connect_timeout), "200", NULL, 1, 60000,
     "Milliseconds to wait for a Redis connection."},
    {"RedisCommandTimeout", CFG_UINT, OFF(redis_command_timeout), "100", NULL, 1, 60000,
     "Milliseconds to wait for a Redis reply before going to the sources."},
    {"RedisKeyPrefix", CFG_STRING, OFF(redis_prefix), "smimegw:", NULL, 0, 0,
     "Prefix of every Redis key smimegw reads or writes."},

    {"EncryptPolicy", CFG_PATH, OFF(encrypt_policy), "", NULL, 0, 0,
     "Table of recipient address, @domain, .subdomain, group:NAME or * to encrypt, "
     "noencrypt or if-cert."},
    {"EncryptDefault", CFG_ENUM, OFF(encrypt_default), "if-cert", encrypt_mode_choices, 0, 0,
     "What EncryptPolicy says for recipients it does not match."},
    {"OnMissingRecipientCert", CFG_ENUM, OFF(on_missing_rcpt_cert), "reject-recipient",
     missing_cert_choices, 0, 0,
     "When a recipient whose policy is encrypt has no usable certificate: send-plain, "
     "reject-recipient (550 5.7.1 at RCPT), tempfail or reject-message."},
    {"EncryptCipher", CFG_ENUM, OFF(encrypt_cipher), "aes256-cbc", cipher_choices, 0, 0,
     "aes256-cbc (EnvelopedData, widest support) or aes256-gcm (AuthEnvelopedData)."},
    {"GcmDomains", CFG_LIST, OFF(gcm_domains), "", NULL, 0, 0,
     "Recipient domains that get AES-256-GCM AuthEnvelopedData whatever EncryptCipher says "
     "(all recipients of a message must be in them)."},
    {"RsaEncryptionPadding", CFG_ENUM, OFF(rsa_encryption_padding), "pkcs1", rsa_enc_choices, 0, 0,
     "RSA key transport: pkcs1 (PKCS#1 v1.5) or oaep (RSA-OAEP with SHA-256)."},
    {"EncryptedSubject", CFG_STRING, OFF(encrypted_subject), "", NULL, 0, 0,
     "Subject to put on encrypted mail instead of the real one; empty keeps it."},
    {"EncryptToSender", CFG_BOOL, OFF(encrypt_to_sender), "yes", NULL, 0, 0,
     "Also encrypt to the sender's own certificate so the sender can read sent mail."},
    {"RecipientCertDir", CFG_PATH, OFF(recipient_cert_dir), "", NULL, 0, 0,
     "Directory of PEM or DER recipient certificates, indexed by their e-mail addresses."},
    {"AllowUntrustedRecipientCerts", CFG_BOOL, OFF(allow_untrusted_rcpt_certs), "no", NULL, 0, 0,
     "Encrypt to recipient certificates that do not chain to TrustAnchors."},
    {"CrlFile", CFG_PATH, OFF(crl_file), "", NULL, 0, 0,
     "PEM file of certificate revocation lists checked for recipient and signer certificates."},

    {"DecryptPolicy", CFG_PATH, OFF(decrypt_policy), "", NULL, 0, 0,
     "Table of local recipient address, @domain, .subdomain, group:NAME or * to decrypt or "
     "nodecrypt; without it every local user's mail is decrypted."},
    {"OnDecryptFailure", CFG_ENUM, OFF(on_decrypt_failure), "accept", action_choices, 0, 0,
     "When encrypted mail for a local user cannot be decrypted: accept (deliver unchanged, "
     "result recorded), tempfail or reject."},
    {"VerifySignatures", CFG_BOOL, OFF(verify_signatures), "yes", NULL, 0, 0,
     "Verify signatures of inbound mail and add an Authentication-Results header."},
    {"AuthservID", CFG_STRING, OFF(authserv_id), "", NULL, 0, 0,
     "The authserv-id of our Authentication-Results headers; empty for the host name."},
    {"HarvestCertificates", CFG_BOOL, OFF(harvest_certs), "yes", NULL, 0, 0,
     "Keep certificates from verified inbound signatures as recipient certificates."},
    {"HarvestDir", CFG_PATH, OFF(harvest_dir), "", NULL, 0, 0,
     "Directory where harvested certificates are stored (persistent source)."},
    {"SubjectTagFail", CFG_STRING, OFF(subject_tag_fail), "", NULL, 0, 0,
     "Text put before the Subject of mail whose signature failed; empty for none."},
    {"SubjectTagPass", CFG_STRING, OFF(subject_tag_pass), "", NULL, 0, 0,
     "Text put before the Subject of mail whose signature verified; empty for none."},

    {"AuditLog", CFG_PATH, OFF(audit_log), "", NULL, 0, 0,
     "Audit log file (JSON lines with a hash chain); empty for none."},
    {"AuditNode", CFG_STRING, OFF(audit_node), "", NULL, 0, 0,
     "Node name written in audit records; empty for the host name."},
    {"AuditSync", CFG_ENUM, OFF(audit_sync), "interval", audit_sync_choices, 0, 0,
     "When audit records reach the disk: none (OS decides), interval or every-record."},
    {"AuditSyncInterval", CFG_UINT, OFF(audit_sync_interval), "1", NULL, 1, 3600,
     "Seconds between audit log syncs with AuditSync interval."},
    {"OnAuditFailure", CFG_ENUM, OFF(on_audit_failure), "tempfail", audit_failure_choices, 0, 0,
     "When the audit log cannot be written: tempfail mail, or continue and log loudly."},
    {"AuditRotateSize", CFG_SIZE, OFF(audit_rotate_size), "0", NULL, 0, (unsigned long)1 << 40,
     "Rotate the audit log when it reaches this size; 0 never."},
    {"AuditRotateDaily", CFG_BOOL, OFF(audit_rotate_daily), "no", NULL, 0, 0,
     "Rotate the audit log at midnight UTC."},
    {"AuditCheckpointInterval", CFG_UINT, OFF(audit_checkpoint), "1000", NULL, 0, 100000000,
     "Write a checkpoint record every this many records; 0 for none."},
    {"AuditQueueSize", CFG_UINT, OFF(audit_queue), "65536", NULL, 16, 16777216,
     "Records the audit writer's queue holds before OnAuditFailure applies."},
};

#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const char *const type_names[] = {
    [CFG_STRING] = "string",  [CFG_PATH] = "path",       [CFG_BOOL] = "yes|no",
    [CFG_UINT] = "number",    [CFG_SIZE] = "size",       [CFG_ENUM] = "choice",
    [CFG_LIST] = "list",      [CFG_SOCKET] = "socket",   [CFG_FACILITY] = "facility",
    [CFG_LOGLEVEL] = "level", [CFG_MODE] = "octal mode",
};

const char *
action_name(enum action a)
{
	return a <= ACTION_REJECT ? action_choices[a] : "unknown";
}

int
config_parse_bool(const char *s, int *out)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0 ||
	    strcmp(s, "1") == 0)
		*out = 1;
	else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 ||
	         strcasecmp(s, "off") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

static int
parse_ulong(const char *s, unsigned long *out, char **endp, int base)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno != 0)
		return -1;
	*out = v;
	*endp = end;
	return 0;
}

int
config_parse_size(const char *s, size_t *out)
{
	unsigned long v, mult = 1;
	char *end;

	if (parse_ulong(s, &v, &end, 10) == -1)
		return -1;
	if (*end != '\0') {
		switch (toupper((unsigned char)*end)) {
		case 'K':
			mult = 1024;
			break;
		case 'M':
			mult = 1024 * 1024;
			break;
		case 'G':
			mult = 1024UL * 1024 * 1024;
			break;
		default:
			return -1;
		}
		end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end != '\0')
			return -1;
	}
	if (v > SIZE_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int
config_parse_socket(const char *s, struct errbuf *eb)
{
	const char *p;
	unsigned long port;
	char *end;

	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0) {
		p = strchr(s, ':') + 1;
		if (*p != '/') {
			err_set(eb, "a unix socket needs an absolute path, as in "
			            "unix:/run/smimegw/smimegw.sock");
			return -1;
		}
		if (strlen(p) >= 108) {
			err_set(eb, "unix socket path longer than 107 bytes");
			return -1;
		}
		return 0;
	}
	if (strncmp(s, "inet:", 5) == 0 || strncmp(s, "inet6:", 6) == 0) {
		p = strchr(s, ':') + 1;
		if (parse_ulong(p, &port, &end, 10) == -1 || port == 0 || port > 65535 ||
		    (*end != '\0' && *end != '@')) {
			err_set(eb, "expected inet:PORT@HOST with PORT 1..65535");
			return -1;
		}
		if (*end == '@' && end[1] == '\0') {
			err_set(eb, "empty host after '@'");
			return -1;
		}
		return 0;
	}
	err_set(eb, "expected unix:/path or inet:PORT@HOST");
	return -1;
}

static void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Splits a comma- and/or space-separated list. */
static void
strlist_parse(struct strlist *l, const char *s)
{
	const char *p = s, *q;

	strlist_free(l);
	while (*p != '\0') {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		for (q = p; *q != '\0' && *q != ',' && !isspace((unsigned char)*q); q++)
			;
		l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
		l->v[l->n++] = xstrndup(p, (size_t)(q - p));
		p = q;
	}
}

/* Parses one value into cfg according to key; -1 with why in eb. */
static int
config_set(struct config *cfg, const struct cfg_key *k, const char *val, struct errbuf *eb)
{
	void *field = (char *)cfg + k->offset;
	unsigned long ul;
	size_t sz;
	char *end;
	int i;

	switch (k->type) {
	case CFG_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(val);
		return 0;
	case CFG_PATH:
		if (*val != '\0' && *val != '/') {
			err_set(eb, "\"%s\" is not an absolute path", val);
			return -1;
		}
		if (strlen(val) >= 4096) {
			err_set(eb, "path longer than 4095 bytes");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(val);
		return 0;
	case CFG_SOCKET:
		if (config_parse_socket(val, eb) == -1)
			return -1;
		free(*(char **)field);
		*(char **)field = xstrdup(val);
		return 0;
	case CFG_BOOL:
		if (config_parse_bool(val, &i) == -1) {
			err_set(eb, "\"%s\" is not yes or no", val);
			return -1;
		}
		*(int *)field = i;
		return 0;
	case CFG_UINT:
		if (parse_ulong(val, &ul, &end, 10) == -1 || *end != '\0' || ul < k->min ||
		    ul > k->max) {
			err_set(eb, "\"%s\" is not a number from %lu to %lu", val, k->min, k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)ul;
		return 0;
	case CFG_MODE:
		if (parse_ulong(val, &ul, &end, 8) == -1 || *end != '\0' || ul > k->max) {
			err_set(eb, "\"%s\" is not an octal mode such as 0660", val);
			return -1;
		}
		*(unsigned *)field = (unsigned)ul;
		return 0;
	case CFG_SIZE:
		if (config_parse_size(val, &sz) == -1 || sz < k->min || sz > k->max) {
			err_set(eb, "\"%s\" is not a size from %lu to %lu bytes (suffixes K, M, G)",
			        val, k->min, k->max);
			return -1;
		}
		*(size_t *)field = sz;
		return 0;
	case CFG_ENUM:
		for (i = 0; k->choices[i] != NULL; i++)
			if (strcasecmp(val, k->choices[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		{
			char list[256] = "";
			for (i = 0; k->choices[i] != NULL; i++) {
				if (i > 0)
					strncat(list, ", ", sizeof(list) - strlen(list) - 1);
				strncat(list, k->choices[i], sizeof(list) - strlen(list) - 1);
			}
			err_set(eb, "\"%s\" is not one of: %s", val, list);
		}
		return -1;
	case CFG_LIST:
		strlist_parse((struct strlist *)field, val);
		return 0;
	case CFG_FACILITY:
		if ((i = log_facility_parse(val)) == -1) {
			err_set(eb,
			        "\"%s\" is not a syslog facility (mail, daemon, local0..local7)",
			        val);
			return -1;
		}
		*(int *)field = i;
		return 0;
	case CFG_LOGLEVEL:
		if ((i = log_level_parse(val)) == -1) {
			err_set(eb, "\"%s\" is not one of: error, warning, notice, info, debug",
			        val);
			return -1;
		}
		*(int *)field = i;
		return 0;
	}
	err_set(eb, "internal error: key type %d", (int)k->type);
	return -1;
}

static struct config *
config_new_defaults(void)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct errbuf eb;
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (config_set(cfg, &config_keys[i], config_keys[i].def, &eb) == -1) {
			log_crit("default for %s is invalid: %s", config_keys[i].name, eb.msg);
			abort();
		}
	return cfg;
}

struct config *
config_defaults(void)
{
	struct config *cfg = config_new_defaults();

	cfg->path = xstrdup("(defaults)");
	return cfg;
}

static const struct cfg_key *
config_find(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcasecmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

struct config *
config_load(const char *path, struct errbuf *eb)
{
	struct config *cfg = NULL;
	unsigned setline[NKEYS];
	struct errbuf why;
	char line[CONFIG_MAX_LINE + 2];
	unsigned lineno = 0;
	FILE *fp = NULL;
	size_t len;

	memset(setline, 0, sizeof(setline));
	if ((fp = fopen(path, "r")) == NULL) {
		err_set(eb, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	cfg = config_new_defaults();
	cfg->path = xstrdup(path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		const struct cfg_key *k;
		char *key, *val, *end;

		if (++lineno > CONFIG_MAX_LINES) {
			err_set(eb, "%s:%u: too many lines", path, lineno);
			goto fail;
		}
		len = strlen(line);
		if (len > 0 && line[len - 1] != '\n' && !feof(fp)) {
			err_set(eb, "%s:%u: line longer than %d bytes", path, lineno,
			        CONFIG_MAX_LINE);
			goto fail;
		}
		if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
			err_set(eb, "%s:%u: NUL byte in line", path, lineno);
			goto fail;
		}
		while (len > 0 && isspace((unsigned char)line[len - 1]))
			line[--len] = '\0';
		for (key = line; isspace((unsigned char)*key); key++)
			;
		if (*key == '\0' || *key == '#')
			continue;
		for (end = key; *end != '\0' && !isspace((unsigned char)*end); end++)
			;
		val = end;
		while (isspace((unsigned char)*val))
			val++;
		*end = '\0';
		if ((k = config_find(key)) == NULL) {
			err_set(eb, "%s:%u: %s: unknown key", path, lineno, key);
			goto fail;
		}
		if (setline[k - config_keys] != 0) {
			err_set(eb, "%s:%u: %s: already set on line %u", path, lineno, k->name,
			        setline[k - config_keys]);
			goto fail;
		}
		setline[k - config_keys] = lineno;
		if (*val == '\0' && k->type != CFG_STRING && k->type != CFG_PATH &&
		    k->type != CFG_LIST) {
			err_set(eb, "%s:%u: %s: missing value", path, lineno, k->name);
			goto fail;
		}
		if (config_set(cfg, k, val, &why) == -1) {
			err_set(eb, "%s:%u: %s: %s", path, lineno, k->name, why.msg);
			goto fail;
		}
	}
	if (ferror(fp)) {
		err_set(eb, "%s: read error: %s", path, strerror(errno));
		goto fail;
	}
	fclose(fp);
	return cfg;
fail:
	if (fp != NULL)
		fclose(fp);
	config_free(cfg);
	return NULL;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		void *field = (char *)cfg + config_keys[i].offset;

		switch (config_keys[i].type) {
		case CFG_STRING:
		case CFG_PATH:
		case CFG_SOCKET:
			free(*(char **)field);
			break;
		case CFG_LIST:
			strlist_free((struct strlist *)field);
			break;
		default:
			break;
		}
	}
	free(cfg->path);
	free(cfg);
}

void
config_describe(FILE *fp)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &config_keys[i];

		fprintf(fp, "%s (%s, default \"%s\")", k->name, type_names[k->type], k->def);
		if (k->type == CFG_ENUM) {
			fputs(" one of:", fp);
			for (int j = 0; k->choices[j] != NULL; j++)
				fprintf(fp, " %s", k->choices[j]);
		}
		fprintf(fp, "\n    %s\n", k->doc);
	}
}
