/*
 * mproto: the MTA (client) side of the milter protocol, version 6, spoken
 * the way Postfix's milter8.c speaks it.  One struct mproto is one
 * connection to a milter; it negotiates options once, then runs any number
 * of message transactions (MAIL .. EOB, then ABORT to reset, as Postfix
 * does between messages) before QUIT.
 *
 * This is a test tool's protocol client, so it never trusts the milter:
 * every read and write is bounded by poll() with a timeout, packet lengths
 * are capped, and every malformed reply becomes an error with a reason
 * instead of a hang.  It deliberately does not use libmilter.
 *
 * A struct mproto belongs to one thread.
 */
#ifndef SMG_MPROTO_H
#define SMG_MPROTO_H

#include <stddef.h>
#include <stdint.h>

/* Longest reply packet accepted from a milter (libmilter never sends more than 1 MB). */
#define MPROTO_MAX_PACKET (64u * 1024 * 1024)
/* Largest body chunk sent, like MILTER_CHUNK_SIZE. */
#define MPROTO_CHUNK 65535

/* Why a transaction failed; MPE_NONE when it did not. */
enum mproto_errkind {
	MPE_NONE = 0,
	MPE_CONNECT,    /* socket() or connect() failed */
	MPE_CLOSED,     /* the milter closed the connection */
	MPE_TIMEOUT,    /* no (complete) reply within the timeout */
	MPE_IO,         /* read/write error other than EOF */
	MPE_OVERSIZE,   /* packet length above MPROTO_MAX_PACKET */
	MPE_MALFORMED,  /* packet that does not parse */
	MPE_UNEXPECTED, /* reply code not allowed at this stage */
	MPE_NEGOTIATE,  /* option negotiation refused */
	MPE_NKINDS
};

/* Human name of an error kind ("connection closed", "timeout", ...). */
const char *mproto_errkind_name(enum mproto_errkind);

struct mproto_err {
	enum mproto_errkind kind;
	char msg[256];
};

/* Connection-wide settings; strings are borrowed and must outlive the connection. */
struct mproto_conf {
	const char *socket;      /* unix:/path, local:/path, /path or inet:PORT@HOST */
	int timeout_ms;          /* per read/write and per reply */
	const char *client_addr; /* IPv4 or IPv6 literal */
	const char *client_name; /* reverse name sent with CONNECT */
	const char *helo;
	const char *myhostname;  /* macro j */
	const char *daemon_name; /* macro {daemon_name} */
	const char *auth;        /* macro {auth_authen}, NULL for none */
};

struct mproto_header {
	const char *name;
	size_t namelen;
	const char *value; /* after the colon, leading space kept, CRLF folds kept */
	size_t valuelen;
};

/* One message to send; everything is borrowed. */
struct mproto_msg {
	const char *queue_id;
	const char *from;
	const char *const *rcpt;
	size_t nrcpt;
	const struct mproto_header *hdr;
	size_t nhdr;
	const unsigned char *body; /* CRLF line ends */
	size_t bodylen;
	size_t size; /* for SIZE= */
};

/* Header modification requested by the milter. */
struct mproto_hdrmod {
	char op; /* SMFIR_ADDHEADER, SMFIR_INSHEADER or SMFIR_CHGHEADER */
	uint32_t index;
	char *name;
	char *value;
};

/* What the milter did to one message.  Reset by mproto_result_reset. */
struct mproto_result {
	char verdict;        /* final SMFIR_* reply (a, c, r, t, d), 0 if none */
	char stage;          /* SMFIC_* command the verdict answered */
	int replbody;        /* the body was replaced */
	unsigned char *body; /* reassembled new body when replbody */
	size_t bodylen, bodycap;
	struct mproto_hdrmod *hdrmod;
	size_t nhdrmod, hdrmodcap;
	unsigned naddrcpt, ndelrcpt, nchgfrom, nquarantine, nprogress;
	uint64_t bytes_in;    /* payload bytes received from the milter */
	uint64_t bytes_out;   /* payload bytes sent to the milter */
	double eom_ms;        /* from sending EOB to the final reply */
	char reply_text[128]; /* SMFIR_REPLYCODE text, truncated */
};

void mproto_result_init(struct mproto_result *);
void mproto_result_reset(struct mproto_result *);
void mproto_result_free(struct mproto_result *);

struct mproto;

/* Allocates an unconnected client for conf (borrowed). */
struct mproto *mproto_new(const struct mproto_conf *conf);
/* Sends QUIT if connected, closes, frees.  NULL is a no-op. */
void mproto_free(struct mproto *);
/* True if a connection is open and negotiated. */
int mproto_connected(const struct mproto *);

/*
 * Opens the socket if needed, negotiates, sends CONNECT and HELO, then runs
 * one transaction for msg and fills res.  Returns 0 when a final reply was
 * read (whatever it was), -1 on a protocol error (err set; the connection is
 * then closed and the next call reconnects).  A connection-level reject or
 * tempfail ends the connection too.
 */
int mproto_transact(struct mproto *, const struct mproto_msg *msg, struct mproto_result *res,
                    struct mproto_err *err);
/* Sends QUIT and closes the connection; the next transaction reconnects. */
void mproto_close(struct mproto *);

/* The negotiated action and protocol masks (valid after a transaction). */
uint32_t mproto_actions(const struct mproto *);
uint32_t mproto_protocol(const struct mproto *);

#endif
