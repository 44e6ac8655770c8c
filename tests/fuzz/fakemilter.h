/*
 * fakemilter: a stand-in for libmilter's per-connection API (the smfi_*
 * functions milter/ sources call), for fuzz_milter.  Linked instead of
 * -lmilter: there is no socket and no thread; the harness calls the
 * callbacks of callbacks_desc itself and this module records what the
 * daemon asks libmilter to send back (header edits, body replacement,
 * reply text) with the checks, limits and error returns libmilter 8.17
 * has (smfi_setreply's code syntax and length, mi_sendok's state and
 * negotiated-action checks, smfi_replacebody's 65535-byte packets).
 */
#ifndef SMG_FAKEMILTER_H
#define SMG_FAKEMILTER_H

#include <stddef.h>

#include <libmilter/mfapi.h>

#define FAKE_CHUNK       65535 /* libmilter MILTER_CHUNK_SIZE */
#define FAKE_MAXREPLYLEN 980   /* libmilter MAXREPLYLEN */
#define FAKE_MAX_MACROS  64    /* per connection; more are dropped */

/* libmilter's macro slots (CI_*), searched from the last to the first. */
enum fake_stage {
	FAKE_CI_CONN,
	FAKE_CI_HELO,
	FAKE_CI_MAIL,
	FAKE_CI_RCPT,
	FAKE_CI_DATA,
	FAKE_CI_EOM,
	FAKE_CI_EOH,
	FAKE_NSTAGES
};

/* One header modification as sent to the MTA. */
struct fake_edit {
	char op; /* 'a' addheader, 'c' chgheader, 'i' insheader */
	char *name;
	int index;
	char *value; /* "" for chgheader's delete (libmilter sends "") */
};

struct fake_macro {
	int stage;
	char *name, *value;
};

struct smfi_str {
	void *priv;
	unsigned long actions; /* negotiated SMFIF_* (mi_sendok checks these) */
	int in_eom;            /* libmilter's ST_ENDM: modifications are allowed */

	struct fake_macro mac[FAKE_MAX_MACROS];
	size_t nmac;

	char *reply;          /* the pending "code xcode text", as libmilter keeps it */
	unsigned replies_set; /* smfi_setreply calls that succeeded */
	unsigned replies_bad; /* smfi_setreply calls libmilter refuses */

	/* Modifications of the current end of message. */
	struct fake_edit *edits;
	size_t nedits;
	unsigned char *body; /* the replacement body, NULL if none */
	size_t bodylen, bodycap, nbodychunks;
	unsigned refused; /* modification calls refused (state, flags, arguments) */
};

/* Starts a connection with the actions the MTA allowed. */
void fake_ctx_init(SMFICTX *, unsigned long actions);
/* Forgets the modifications recorded at the last end of message. */
void fake_ctx_clear_mods(SMFICTX *);
/* Frees everything (the end of the connection). */
void fake_ctx_release(SMFICTX *);
/* An SMFIC_MACRO for stage: sets name (replacing the same name in that stage). */
void fake_macro_set(SMFICTX *, int stage, const char *name, const char *value);
/* libmilter's mi_clr_macros: drops the macros of stage and later ones. */
void fake_macro_clear(SMFICTX *, int from_stage);
/* Takes the pending reply if the verdict would send it (matching class); NULL otherwise. */
char *fake_reply_take(SMFICTX *, sfsistat verdict);

#endif
