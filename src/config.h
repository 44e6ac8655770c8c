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
	char *path;                /* the file this came from */
	char *socket;              /* Socket */
	char *user;                /* UserID, "" to keep the current user */
	char *pidfile;             /* PidFile, "" for none */
	int syslog_facility;       /* SyslogFacility */
	int log_level;             /* LogLevel */
	size_t max_message_size;   /* MaximumMessageSize */
	enum action on_oversize;   /* OnOversizedMessage */
	unsigned shutdown_timeout; /* ShutdownTimeout, seconds */
	unsigned socket_mode;      /* SocketMode */
	unsigned milter_timeout;   /* MilterTimeout, seconds */
	unsigned max_connections;  /* MaxConnections, 0 for no limit */
	unsigned max_inflight;     /* MaxMessagesInFlight, 0 for no limit */

	/* Keys and trust (issue 3). */
	char *keystore;      /* KeyStore directory, "" for none */
	char *trust_anchors; /* TrustAnchors file or directory */
	char *intermediates; /* Intermediates file or directory */

	/* Outbound signing policy. */
	struct strlist internal_domains;    /* InternalDomains */
	struct strlist trusted_networks;    /* TrustedNetworks */
	char *sign_policy;                  /* SignPolicy table file */
	char *group_file;                   /* GroupFile */
	int sign_by_default;                /* SignByDefault */
	enum action on_missing_signing_key; /* OnMissingSigningKey */
	int sign_digest;                    /* SignDigest: enum sign_digest */
	int rsa_padding;                    /* RsaSignaturePadding: enum rsa_padding */

	/* Certificate cache (issue 4). */
	size_t cache_size;              /* CacheSize, bytes */
	unsigned cache_ttl;             /* CacheTTL, seconds */
	unsigned cache_negative_ttl;    /* CacheNegativeTTL, seconds */
	char *redis;                    /* Redis host:port or unix:/path, "" for none */
	unsigned redis_connect_timeout; /* RedisConnectTimeout, ms */
	unsigned redis_command_timeout; /* RedisCommandTimeout, ms */
	char *redis_prefix;             /* RedisKeyPrefix */

	/* Outbound encryption (issue 4). */
	char *encrypt_policy;     /* EncryptPolicy table file */
	int encrypt_default;      /* EncryptDefault: enum encrypt_mode */
	int on_missing_rcpt_cert; /* OnMissingRecipientCert: enum missing_cert_action */
	int encrypt_cipher; /* EncryptCipher: 0 aes256-cbc, 1 aes256-gcm (enum encrypt_cipher) */
	struct strlist gcm_domains;     /* GcmDomains: recipient domains that get AES-256-GCM */
	int rsa_encryption_padding;     /* RsaEncryptionPadding: 0 pkcs1, 1 oaep */
	char *encrypted_subject;        /* EncryptedSubject, "" keeps the Subject */
	int encrypt_to_sender;          /* EncryptToSender */
	char *recipient_cert_dir;       /* RecipientCertDir */
	int allow_untrusted_rcpt_certs; /* AllowUntrustedRecipientCerts */
	char *crl_file;                 /* CrlFile */

	/* Inbound (issue 5). */
	char *decrypt_policy;           /* DecryptPolicy table file */
	enum action on_decrypt_failure; /* OnDecryptFailure */
	int verify_signatures;          /* VerifySignatures */
	char *authserv_id;              /* AuthservID, "" for the host name */
	int harvest_certs;              /* HarvestCertificates */
	char *harvest_dir;              /* HarvestDir: where harvested certificates are kept */
	char *subject_tag_fail;         /* SubjectTagFail, "" for none */
	char *subject_tag_pass;         /* SubjectTagPass, "" for none */

	/* Audit log (issue 6). */
	char *audit_log;              /* AuditLog path, "" for none */
	char *audit_node;             /* AuditNode, "" for the host name */
	int audit_sync;               /* AuditSync: enum audit_sync */
	unsigned audit_sync_interval; /* AuditSyncInterval, seconds */
	int on_audit_failure;         /* OnAuditFailure: enum audit_failure */
	size_t audit_rotate_size;     /* AuditRotateSize, bytes, 0 for never */
	int audit_rotate_daily;       /* AuditRotateDaily */
	unsigned audit_checkpoint;    /* AuditCheckpointInterval, records */
	unsigned audit_queue;         /* AuditQueueSize, records */
};

enum sign_digest { SIGN_SHA256 = 0, SIGN_SHA384, SIGN_SHA512 };
enum rsa_padding { RSA_PAD_PKCS1 = 0, RSA_PAD_PSS };
enum audit_sync { AUDIT_SYNC_NONE = 0, AUDIT_SYNC_INTERVAL, AUDIT_SYNC_EVERY };
enum encrypt_mode { ENCRYPT_MODE_ENCRYPT = 0, ENCRYPT_MODE_NO, ENCRYPT_MODE_IF_CERT };
enum missing_cert_action {
	MISSING_CERT_SEND_PLAIN = 0,
	MISSING_CERT_REJECT_RECIPIENT,
	MISSING_CERT_TEMPFAIL,
	MISSING_CERT_REJECT_MESSAGE,
};
enum audit_failure { AUDIT_FAIL_TEMPFAIL = 0, AUDIT_FAIL_CONTINUE };

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
