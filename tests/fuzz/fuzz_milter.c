/*
 * fuzz_milter: the daemon's callback layer (milter/callbacks.c and what it
 * drives: outbound, inbound, apply, reply, context, runtime, events) fed
 * with sequences of milter events, through callbacks_desc exactly as
 * libmilter calls it, with tests/fuzz/fakemilter.c in place of libmilter.
 *
 * Set-up, once: a key store imported from tests/fixtures in a temporary
 * directory and four configurations loaded with config_load (one runtime
 * each, built with runtime_new as milter/smimegw.c does; no Redis, no
 * AuditLog).  Each input is one SMTP session:
 *
 *   byte 0   bit 0 the MTA negotiates (else an old MTA: connect comes first)
 *            bit 1 offers SMFIP_NR_HDR, bit 2 SMFIP_NR_BODY, bit 3
 *            SMFIP_HDR_LEADSPC; bits 4-5 the runtime (configuration)
 *   byte 1   the actions the MTA allows: bit 0 ADDHDRS, 1 CHGBODY, 2 CHGHDRS
 *   then events, each an opcode byte (low 4 bits) and its arguments;
 *   STR is a length (one byte < 0xfe; 0xfe + 2 bytes; 0xff + 3 bytes,
 *   big-endian, cut at the end of the input) and the bytes:
 *     0 CONNECT  family (0 none, 1 inet + 4 bytes, 2 inet6 + 16, 3 unix), STR host
 *     1 MACRO    stage (libmilter CI_*), name (byte < 8: a known macro, else STR), STR value
 *     2 MAIL     nargs (low 2 bits), STR address, nargs x STR (e.g. SIZE=123)
 *     3 RCPT     STR address
 *     4 HEADER   STR name, STR value (dropped, as by the MTA, unless a valid field name)
 *     5 EOH      6 BODY STR     7 BODYFILL byte, 3-byte length (a large body)
 *     8 EOM      9 ABORT
 *    10 MESSAGE  flags (bit 0 LF -> CRLF, bit 1 then EOH, bit 2 then EOM,
 *                bits 3-7 body chunk size), STR raw message: its header
 *                fields become HEADER events and its body BODY events
 *    11 QUIT     the connection closes; the next event opens another
 *    12 RELOAD   byte: runtime to install (SIGHUP)
 *    13 SHUTDOWN bit 0 gw.stopping, bit 1 gw.force_tempfail
 *   14-15 ignored.  The session always ends with close.
 *
 * Events pass libmilter's state machine (engine.c next_states): one that
 * is not allowed in the current state makes libmilter call abort (if a
 * message is open) and retry from HELO, or drop it, as the real library
 * does; a verdict other than continue ends the message for libmilter.
 *
 * Invariants besides ASan/UBSan/LSan:
 *  - every callback returns a status libmilter accepts at that stage
 *    (SMFIS_NOREPLY only where the no-reply step was negotiated);
 *  - every smfi_setreply call is one libmilter accepts, and a reply set
 *    before a tempfail/reject verdict has that verdict's class (4xx/5xx);
 *  - header changes name a field that exists, with a valid field name,
 *    and with the leading space when HDR_LEADSPC was negotiated;
 *  - a replaced body parses as a MIME entity with its header; an
 *    outbound multipart/signed result verifies with the engine; an
 *    outbound application/pkcs7-mime result decrypts with the key of a
 *    recipient it was encrypted to, and if we signed it too, the
 *    signature inside verifies;
 *  - after close, no connection and no message is left counted in gw.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "fakemilter.h"
#include "fuzz_msg.h"
#include "milter/callbacks.h"
#include "milter/context.h"
#include "milter/gw.h"
#include "milter/runtime.h"
#include "src/decrypt.h"
#include "src/keystore.h"
#include "src/log.h"
#include "src/mime.h"
#include "src/msgbuf.h"
#include "src/ossl.h"
#include "src/rewrite.h"
#include "src/verify.h"
#include "src/xmalloc.h"

/* milter/smimegw.c defines this; it is not linked here. */
struct gw gw;

#define NRT          4
#define MAX_STR      (16u << 20)
#define MAX_EVENTS   4096
#define MAX_FILL     (6u << 20)
#define KEEP_HEADERS 20000

static struct runtime *rts[NRT];
static char tmp[256];

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_milter: invariant violated: %s\n", what);
	abort();
}

/* --- set-up ------------------------------------------------------------------ */

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

/* Concatenates two PEM files into path. */
static void
cat_files(const char *path, const char *a, const char *b)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' >'%s'", a, b, path);
	if (system(cmd) != 0)
		abort();
}

static const char *const variants[NRT] = {
    /* 0: the defaults (sign, encrypt if a certificate is known, reject-recipient). */
    "MaximumMessageSize 4M\n",
    /* 1: strict: everything refused, every non-default algorithm. */
    "MaximumMessageSize 64K\n"
    "OnOversizedMessage reject\n"
    "EncryptDefault encrypt\n"
    "OnMissingRecipientCert reject-message\n"
    "EncryptCipher aes256-gcm\n"
    "RsaEncryptionPadding oaep\n"
    "SignDigest sha512\n"
    "RsaSignaturePadding pss\n"
    "EncryptedSubject ...\n"
    "EncryptToSender no\n"
    "SubjectTagPass [signed]\n"
    "SubjectTagFail [S/MIME FAIL]\n"
    "OnDecryptFailure reject\n"
    "OnMissingSigningKey reject\n",
    /* 2: policies from files, tempfail everywhere, plain when a certificate is missing. */
    "MaximumMessageSize 1M\n"
    "OnOversizedMessage tempfail\n"
    "EncryptPolicy %1$s/encrypt.policy\n"
    "SignPolicy %1$s/sign.policy\n"
    "SignByDefault no\n"
    "OnMissingRecipientCert send-plain\n"
    "GcmDomains example.org\n"
    "OnDecryptFailure tempfail\n"
    "OnMissingSigningKey tempfail\n"
    "MaxMessagesInFlight 1\n",
    /* 3: the NSS corpus CA trusted too, certificate harvesting, tempfail on no certificate. */
    "MaximumMessageSize 2M\n"
    "OnMissingRecipientCert tempfail\n"
    "HarvestDir %1$s/harvest\n"
    "SignDigest sha384\n"
    "SubjectTagFail [unverified]\n",
};

static struct runtime *
load_variant(int v)
{
	char path[512], trust[512], *text, *body;
	struct config *cfg;
	struct runtime *rt;
	struct errbuf eb;

	if (v == 3) {
		char a[512], b[512];

		snprintf(trust, sizeof(trust), "%s/trust-nss.pem", tmp);
		snprintf(a, sizeof(a), "%s/fixtures/pki/trust-anchors.pem", fuzz_testdir());
		snprintf(b, sizeof(b), "%s/fixtures/corpus/nss/TestCA.pem", fuzz_testdir());
		cat_files(trust, a, b);
	} else {
		snprintf(trust, sizeof(trust), "%s/fixtures/pki/trust-anchors.pem", fuzz_testdir());
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	body = xasprintf(variants[v], tmp);
#pragma GCC diagnostic pop
	text = xasprintf("Socket unix:%s/smimegw.sock\n"
	                 "KeyStore %s/store\n"
	                 "TrustAnchors %s\n"
	                 "Intermediates %s/fixtures/pki/intermediate-ca.crt\n"
	                 "InternalDomains example.org\n"
	                 "AuthservID mx.example.org\n"
	                 "LogLevel error\n"
	                 "%s",
	                 tmp, tmp, trust, fuzz_testdir(), body);
	snprintf(path, sizeof(path), "%s/smimegw-%d.conf", tmp, v);
	write_file(path, text);
	free(text);
	free(body);
	if ((cfg = config_load(path, &eb)) == NULL) {
		fprintf(stderr, "fuzz_milter: %s: %s\n", path, eb.msg);
		abort();
	}
	if ((rt = runtime_new(cfg, &eb)) == NULL) {
		fprintf(stderr, "fuzz_milter: %s: %s\n", path, eb.msg);
		abort();
	}
	return rt;
}

static void
cleanup(void)
{
	char cmd[300];
	int i;

	runtime_install(NULL);
	for (i = 0; i < NRT; i++)
		runtime_unref(rts[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_milter: could not remove %s\n", tmp);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char store[300], p[300];
	int i;

	(void)argc;
	(void)argv;
	log_init("fuzz_milter", 1, LOG_MAIL);
	(void)ossl_load_legacy();
	snprintf(tmp, sizeof(tmp), "%s", fuzz_tmpdir("milter"));
	snprintf(store, sizeof(store), "%s/store", tmp);
	snprintf(p, sizeof(p), "%s/harvest", tmp);
	if (mkdir(store, 0700) != 0 || mkdir(p, 0700) != 0)
		abort();
	fuzz_import(store, "alice@example.org", "fixtures/pki/alice-sign.p12", "test");
	fuzz_import(store, "alice@example.org", "fixtures/pki/alice-enc.p12", "test");
	fuzz_import(store, "bob@example.org", "fixtures/pki/bob.p12", "test");
	fuzz_import(store, "carol@example.org", "fixtures/pki/carol.p12", "test");
	fuzz_import(store, "dave@example.org", "fixtures/pki/dave.p12", "test");
	fuzz_import(store, "erin@example.org", "fixtures/pki/erin-old.p12", "test");
	fuzz_import(store, "erin@example.org", "fixtures/pki/erin.p12", "test");
	fuzz_import(store, "frank@example.org", "fixtures/pki/frank-gen2.p12", "test");
	fuzz_import(store, "frank@example.org", "fixtures/pki/frank-gen3.p12", "test");
	fuzz_import(store, "bob@example.com", "fixtures/corpus/nss/Bob.p12", "nss");
	snprintf(p, sizeof(p), "%s/encrypt.policy", tmp);
	write_file(p, "bob@example.org encrypt\n@example.org if-cert\n* noencrypt\n");
	snprintf(p, sizeof(p), "%s/sign.policy", tmp);
	write_file(p, "erin@example.org nosign\n@example.org sign\n");
	for (i = 0; i < NRT; i++)
		rts[i] = load_variant(i);
	/* As smimegw.c after loading: the level from the config, here quieter. */
	log_setlevel(getenv("SMG_FUZZ_VERBOSE") != NULL ? LOG_DEBUG : LOG_CRIT);
	runtime_install(runtime_ref(rts[0]));
	atexit(cleanup);
	return 0;
}

/* --- input decoding ---------------------------------------------------------- */

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned
in_byte(struct in *in)
{
	unsigned b;

	if (in->n == 0)
		return 0;
	b = in->p[0];
	in->p++;
	in->n--;
	return b;
}

static size_t
in_len(struct in *in)
{
	size_t l = in_byte(in), k, i;

	if (l < 0xfe)
		return l;
	k = l == 0xfe ? 2 : 3;
	for (l = 0, i = 0; i < k; i++)
		l = (l << 8) | in_byte(in);
	return l;
}

/* A byte string (not NUL-terminated); *len is cut to what the input has. */
static const uint8_t *
in_bytes(struct in *in, size_t *len)
{
	size_t l = in_len(in);
	const uint8_t *p = in->p;

	if (l > in->n)
		l = in->n;
	if (l > MAX_STR)
		l = MAX_STR;
	in->p += l;
	in->n -= l;
	*len = l;
	return p;
}

/* A C string as libmilter hands them over: it ends at the first NUL. */
static char *
in_str(struct in *in)
{
	size_t l;
	const uint8_t *p = in_bytes(in, &l);

	return xstrndup((const char *)p, l);
}

/* --- session state ----------------------------------------------------------- */

/* libmilter's states (engine.c), the ones that matter for our callbacks. */
enum st {
	ST_NONE,
	ST_OPTS,
	ST_CONN,
	ST_HELO,
	ST_MAIL,
	ST_RCPT,
	ST_HDRS,
	ST_EOHS,
	ST_BODY,
	ST_ENDM,
	ST_ABRT
};
#define IN_MAIL(s) ((s) >= ST_MAIL && (s) <= ST_BODY)

struct hdr {
	char *name, *value;
};

struct sess {
	SMFICTX ctx;
	enum st st;
	unsigned flags;        /* byte 0 */
	unsigned long actions; /* what the MTA allows */
	unsigned long pflags;  /* negotiated protocol steps */
	int negotiated, open;  /* negotiate done; a connection is open */
	int reply_fresh;       /* a reply was set since the last tempfail/reject */
	int signjob_seen;      /* the open message had a signing job at end of message */
	/* The open message, as the MTA would keep it (for applying the changes). */
	struct hdr *hdrs;
	size_t nhdrs;
};

static void
sess_forget_message(struct sess *s)
{
	size_t i;

	for (i = 0; i < s->nhdrs; i++) {
		free(s->hdrs[i].name);
		free(s->hdrs[i].value);
	}
	free(s->hdrs);
	s->hdrs = NULL;
	s->nhdrs = 0;
	s->signjob_seen = 0;
}

/* Whether libmilter lets event new follow state cur (next_states, skipping HELO/DATA). */
static int
trans_ok(enum st cur, enum st new)
{
	switch (new) {
	case ST_CONN:
		return cur == ST_NONE || cur == ST_OPTS;
	case ST_MAIL:
		return cur == ST_CONN || cur == ST_HELO || cur == ST_ENDM || cur == ST_ABRT;
	case ST_RCPT:
		return cur == ST_MAIL || cur == ST_RCPT;
	case ST_HDRS:
		return cur == ST_RCPT || cur == ST_HDRS;
	case ST_EOHS:
		return cur == ST_RCPT || cur == ST_HDRS;
	case ST_BODY:
		return cur == ST_RCPT || cur == ST_EOHS || cur == ST_BODY;
	case ST_ENDM:
		return cur == ST_RCPT || cur == ST_EOHS || cur == ST_BODY;
	case ST_ABRT:
		return IN_MAIL(cur);
	default:
		return 0;
	}
}

static void check_verdict(struct sess *s, enum st stage, sfsistat rc);

static void
call_abort(struct sess *s)
{
	sfsistat rc = callbacks_desc.xxfi_abort(&s->ctx);

	if (rc != SMFIS_CONTINUE)
		die("abort callback returned something else than continue");
	fake_macro_clear(&s->ctx, FAKE_CI_MAIL);
	sess_forget_message(s);
	s->st = ST_ABRT;
}

/*
 * engine.c: an event the state does not allow aborts the open message and
 * is retried from HELO; if HELO does not allow it either, it is dropped.
 * Returns whether the callback is to be called.
 */
static int
sess_enter(struct sess *s, enum st new)
{
	if (trans_ok(s->st, new))
		return 1;
	if (IN_MAIL(s->st))
		call_abort(s);
	s->st = ST_HELO;
	return trans_ok(s->st, new);
}

/* Opens a connection (negotiation) if none is open. */
static void
sess_open(struct sess *s)
{
	unsigned long f1 = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA, pf0 = 0, pf1 = 0, pf2 = 0,
	              pf3 = 0;
	sfsistat rc;

	if (s->open)
		return;
	s->open = 1;
	s->st = ST_NONE;
	s->reply_fresh = 0;
	fake_ctx_init(&s->ctx, s->actions);
	if (s->flags & 2)
		f1 |= SMFIP_NR_HDR;
	if (s->flags & 4)
		f1 |= SMFIP_NR_BODY;
	if (s->flags & 8)
		f1 |= SMFIP_HDR_LEADSPC;
	s->pflags = 0;
	s->negotiated = (s->flags & 1) != 0;
	if (!s->negotiated) {
		s->ctx.actions = callbacks_desc.xxfi_flags & s->actions;
		return;
	}
	rc = callbacks_desc.xxfi_negotiate(&s->ctx, s->actions, f1, 0, 0, &pf0, &pf1, &pf2, &pf3);
	if (rc != SMFIS_CONTINUE && rc != SMFIS_ALL_OPTS && rc != SMFIS_REJECT &&
	    rc != SMFIS_TEMPFAIL)
		die("negotiate returned an invalid status");
	if (rc == SMFIS_CONTINUE) {
		/* st_optionneg: the milter may not ask for more than the MTA offered. */
		if ((pf0 & s->actions) != pf0 || (pf1 & f1) != pf1)
			die("negotiate asked for actions or steps the MTA did not offer");
		s->ctx.actions = pf0;
		s->pflags = pf1;
	} else {
		s->ctx.actions = callbacks_desc.xxfi_flags & s->actions;
	}
	s->st = ST_OPTS;
}

static void
sess_close(struct sess *s)
{
	if (!s->open)
		return;
	if (IN_MAIL(s->st))
		call_abort(s);
	if (callbacks_desc.xxfi_close(&s->ctx) != SMFIS_CONTINUE)
		die("close callback returned something else than continue");
	if (smfi_getpriv(&s->ctx) != NULL)
		die("close left the connection context set");
	if (atomic_load(&gw.connections) != 0 || atomic_load(&gw.inflight) != 0)
		die("a connection or message is still counted after close");
	fake_ctx_release(&s->ctx);
	sess_forget_message(s);
	s->open = 0;
}

/*
 * The verdict of a callback at stage: valid for that stage; a reply set
 * for it has its class; libmilter's next state.
 */
static void
check_verdict(struct sess *s, enum st stage, sfsistat rc)
{
	switch (rc) {
	case SMFIS_CONTINUE:
	case SMFIS_REJECT:
	case SMFIS_DISCARD:
	case SMFIS_ACCEPT:
	case SMFIS_TEMPFAIL:
		break;
	case SMFIS_NOREPLY:
		if (stage == ST_HDRS && (s->pflags & SMFIP_NR_HDR))
			break;
		if (stage == ST_BODY && (s->pflags & SMFIP_NR_BODY))
			break;
		die("SMFIS_NOREPLY where no-reply was not negotiated");
		break;
	default:
		die("callback returned an invalid sfsistat");
	}
	if (s->ctx.replies_bad != 0)
		die("smfi_setreply called with a reply libmilter refuses");
	if (rc == SMFIS_TEMPFAIL || rc == SMFIS_REJECT) {
		if (s->reply_fresh && s->ctx.reply != NULL &&
		    s->ctx.reply[0] != (rc == SMFIS_TEMPFAIL ? '4' : '5')) {
			fprintf(stderr, "fuzz_milter: verdict %d with reply \"%s\"\n", rc,
			        s->ctx.reply);
			die("reply class does not match the verdict (libmilter drops the text)");
		}
		free(fake_reply_take(&s->ctx, rc));
		s->reply_fresh = 0;
	}
	/* engine.c: accept ends the message; reject/discard/tempfail too, except at RCPT. */
	if (rc == SMFIS_ACCEPT ||
	    ((rc == SMFIS_REJECT || rc == SMFIS_DISCARD || rc == SMFIS_TEMPFAIL) &&
	     stage != ST_RCPT))
		s->st = ST_HELO;
}

/* Notes whether the callback set a reply (replies_set counts every success). */
static unsigned
reply_mark(struct sess *s)
{
	return s->ctx.replies_set;
}

static void
reply_after(struct sess *s, unsigned before)
{
	if (s->ctx.replies_set != before)
		s->reply_fresh = 1;
}

/* --- checking a modified message --------------------------------------------- */

static int
valid_field_name(const char *n)
{
	if (*n == '\0')
		return 0;
	for (; *n != '\0'; n++)
		if ((unsigned char)*n < 33 || (unsigned char)*n > 126 || *n == ':')
			return 0;
	return 1;
}

/* Applies the recorded header changes to hdrs as Postfix would, checking each. */
static void
apply_edits(struct sess *s, struct hdr **hp, size_t *np)
{
	struct hdr *h = *hp;
	size_t n = *np, i, j;
	int leadspc = (s->pflags & SMFIP_HDR_LEADSPC) != 0;

	for (i = 0; i < s->ctx.nedits; i++) {
		const struct fake_edit *e = &s->ctx.edits[i];
		int seen = 0;

		/* A change or delete may name a field as the MTA sent it; new ones must be valid.
		 */
		if (e->op != 'c' && !valid_field_name(e->name)) {
			fprintf(stderr, "fuzz_milter: %c \"%s\"\n", e->op, e->name);
			die("header added with an invalid field name");
		}
		if (leadspc && e->value[0] != '\0' && e->value[0] != ' ')
			die("header value without the negotiated leading space");
		if (e->op == 'c') {
			for (j = 0; j < n; j++)
				if (strcasecmp(h[j].name, e->name) == 0 && ++seen == e->index)
					break;
			if (j == n) {
				fprintf(stderr, "fuzz_milter: chgheader %s[%d]: %d such fields\n",
				        e->name, e->index, seen);
				die("header change or delete names a field that does not exist");
			}
			if (e->value[0] == '\0') {
				free(h[j].name);
				free(h[j].value);
				memmove(&h[j], &h[j + 1], (n - j - 1) * sizeof(*h));
				n--;
			} else {
				free(h[j].value);
				h[j].value = xstrdup(e->value);
			}
			continue;
		}
		h = xreallocarray(h, n + 1, sizeof(*h));
		j = e->op == 'i' && (size_t)e->index < n ? (size_t)e->index : n;
		memmove(&h[j + 1], &h[j], (n - j) * sizeof(*h));
		h[j].name = xstrdup(e->name);
		h[j].value = xstrdup(e->value);
		n++;
	}
	*hp = h;
	*np = n;
}

/* The first Content-Type of a msgbuf, parsed; -1 if none or unparsable. */
static int
msg_ctype(const struct msgbuf *mb, struct mime_ctype *ct)
{
	const struct msgbuf_hdr *h = msgbuf_header_find(mb, "Content-Type", NULL);

	if (h == NULL)
		return -1;
	return mime_ctype_parse(msgbuf_data(mb) + h->value.off, h->value.len, ct);
}

static int
is_p7m(const struct mime_ctype *ct)
{
	return strcasecmp(ct->type, "application") == 0 &&
	       (strcasecmp(ct->subtype, "pkcs7-mime") == 0 ||
	        strcasecmp(ct->subtype, "x-pkcs7-mime") == 0);
}

static int
is_signed(const struct mime_ctype *ct)
{
	return strcasecmp(ct->type, "multipart") == 0 && strcasecmp(ct->subtype, "signed") == 0;
}

/* A multipart body has its boundary as a delimiter line and a close delimiter. */
static void
check_multipart(const struct mime_ctype *ct, const unsigned char *body, size_t len)
{
	char delim[MIME_MAX_BOUNDARY + 8];
	size_t dl;
	const unsigned char *p;

	if (strcasecmp(ct->type, "multipart") != 0)
		return;
	if (ct->boundary[0] == '\0')
		die("multipart result without a boundary");
	dl = (size_t)snprintf(delim, sizeof(delim), "--%s--", ct->boundary);
	if (len < dl || memmem(body, len, delim, dl) == NULL)
		die("multipart result without its close delimiter");
	p = memmem(body, len, delim, dl - 2);
	if (p == NULL || !(p == body || p[-1] == '\n'))
		die("multipart result whose first delimiter does not start a line");
}

struct eom_snap {
	int outbound;
	struct runtime *rt;
	char **enc_for;
	size_t nenc;
};

/* Verifies the signed entity: our own signature must pass. */
static void
check_our_signature(const struct runtime *rt, const void *ent, size_t len, const struct msgbuf *mb)
{
	struct verify_result vr;
	struct errbuf eb;
	enum outcome o;

	memset(&vr, 0, sizeof(vr));
	o = mb != NULL ? verify_message(mb, rt->trust, NULL, time(NULL), &vr, &eb)
	               : verify_entity(ent, len, rt->trust, NULL, time(NULL), &vr, &eb);
	if (o != OUTCOME_OK)
		die("verifying our signature failed with a resource error");
	if (vr.nlayers < 1 || vr.layer[0].signature != CHECK_PASS) {
		fprintf(stderr, "fuzz_milter: layers %zu, sig_reason %d\n", vr.nlayers,
		        vr.nlayers ? (int)vr.layer[0].sig_reason : -1);
		die("our own signature does not verify");
	}
	verify_result_release(&vr);
}

/* The message as the MTA delivers it after end of message, checked. */
static void
check_modified(struct sess *s, const struct eom_snap *snap)
{
	struct hdr *h;
	size_t n = s->nhdrs, i;
	struct msgbuf *mb;
	struct mime_ctype ct;
	int leadspc = (s->pflags & SMFIP_HDR_LEADSPC) != 0;

	h = xreallocarray(NULL, n + 1, sizeof(*h));
	for (i = 0; i < n; i++) {
		h[i].name = xstrdup(s->hdrs[i].name);
		h[i].value = xstrdup(s->hdrs[i].value);
	}
	apply_edits(s, &h, &n);
	if (s->ctx.body == NULL || snap->rt == NULL)
		goto out;
	if (s->nhdrs >= KEEP_HEADERS)
		goto out; /* headers were not all kept */
	mb = msgbuf_new(s->ctx.bodylen + 65536, (size_t)1 << 30);
	for (i = 0; i < n; i++)
		if (msgbuf_add_header(mb, h[i].name, h[i].value, leadspc) == -1)
			die("the modified header does not fit a message buffer");
	if (msgbuf_end_headers(mb) == -1 || msgbuf_add_body(mb, s->ctx.body, s->ctx.bodylen) == -1)
		die("the modified message does not fit a message buffer");
	if (n < ENTITY_MAX_FIELDS) {
		struct entity ent;

		if (entity_parse(msgbuf_data(mb), msgbuf_len(mb), &ent) == -1) {
			size_t k = msgbuf_body_offset(mb);

			fprintf(stderr, "fuzz_milter: modified header section:\n");
			fwrite(msgbuf_data(mb), 1, k < 4000 ? k : 4000, stderr);
			die("the modified message does not parse as a MIME entity");
		}
	}
	if (msg_ctype(mb, &ct) == 0)
		check_multipart(&ct, s->ctx.body, s->ctx.bodylen);
	if (snap->outbound) {
		if (msg_ctype(mb, &ct) == -1)
			die("outbound body replaced but no Content-Type");
		if (is_signed(&ct)) {
			check_our_signature(snap->rt, NULL, 0, mb);
		} else if (is_p7m(&ct)) {
			struct decrypt_result dr;
			struct rewrite *rw = NULL;
			struct errbuf eb;
			struct entity ent;
			const struct entity_field *f;
			struct mime_ctype ict;

			if (snap->nenc == 0)
				die("outbound pkcs7-mime without encryption recipients");
			memset(&dr, 0, sizeof(dr));
			if (decrypt_message(mb, snap->rt->ks, (const char *const *)snap->enc_for,
			                    snap->nenc, NULL, &rw, &dr, &eb) != OUTCOME_OK ||
			    dr.status != DECRYPT_OK) {
				fprintf(stderr, "fuzz_milter: decrypt status %d reason %d\n",
				        (int)dr.status, (int)dr.reason);
				die("our encrypted message does not decrypt for its recipient");
			}
			if (entity_parse(dr.entity, dr.entity_len, &ent) == -1)
				die("our encrypted content is not a MIME entity");
			if (s->signjob_seen) {
				if ((f = entity_field_find(&ent, "Content-Type")) == NULL ||
				    mime_ctype_parse(f->value, f->vlen, &ict) == -1 ||
				    !is_signed(&ict))
					die("signed and encrypted, but the content is not "
					    "multipart/signed");
				check_our_signature(snap->rt, dr.entity, dr.entity_len, NULL);
			}
			rewrite_free(rw);
		} else {
			die("outbound body replaced with neither multipart/signed nor pkcs7-mime");
		}
	}
	if (getenv("SMG_FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "fuzz_milter: checked a replaced body (%zu bytes, %zu packets)\n",
		        s->ctx.bodylen, s->ctx.nbodychunks);
	msgbuf_free(mb);
out:
	for (i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

/* --- events ------------------------------------------------------------------ */

static void
ev_connect(struct sess *s, struct in *in)
{
	unsigned fam = in_byte(in) & 3;
	struct sockaddr_storage ss;
	struct sockaddr *sa = NULL;
	char *host;
	size_t i;
	unsigned mark;
	sfsistat rc;

	memset(&ss, 0, sizeof(ss));
	if (fam == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		for (i = 0; i < 4; i++)
			((uint8_t *)&sin->sin_addr)[i] = (uint8_t)in_byte(in);
		sa = (struct sockaddr *)sin;
	} else if (fam == 2) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		for (i = 0; i < 16; i++)
			sin6->sin6_addr.s6_addr[i] = (uint8_t)in_byte(in);
		sa = (struct sockaddr *)sin6;
	} else if (fam == 3) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

		sun->sun_family = AF_UNIX;
		sa = (struct sockaddr *)sun;
	}
	host = in_str(in);
	if (sess_enter(s, ST_CONN)) {
		mark = reply_mark(s);
		rc = callbacks_desc.xxfi_connect(&s->ctx, host, sa);
		reply_after(s, mark);
		s->st = ST_CONN;
		check_verdict(s, ST_CONN, rc);
	}
	free(host);
}

static const char *const known_macros[] = {"i",           "{auth_authen}", "{daemon_name}",
                                           "j",           "{auth_type}",   "{client_addr}",
                                           "{mail_addr}", "{rcpt_addr}"};

static void
ev_macro(struct sess *s, struct in *in)
{
	int stage = (int)(in_byte(in) % FAKE_NSTAGES);
	unsigned k = in_byte(in);
	char *name = k < 8 ? xstrdup(known_macros[k]) : in_str(in), *value = in_str(in);

	fake_macro_set(&s->ctx, stage, name, value);
	free(name);
	free(value);
}

static void
ev_mail(struct sess *s, struct in *in)
{
	unsigned nargs = in_byte(in) & 3, i;
	char *argv[6] = {NULL};
	unsigned mark;
	sfsistat rc;

	for (i = 0; i <= nargs; i++)
		argv[i] = in_str(in);
	if (sess_enter(s, ST_MAIL)) {
		sess_forget_message(s);
		fake_macro_clear(&s->ctx, FAKE_CI_RCPT);
		mark = reply_mark(s);
		rc = callbacks_desc.xxfi_envfrom(&s->ctx, argv);
		reply_after(s, mark);
		s->st = ST_MAIL;
		check_verdict(s, ST_MAIL, rc);
	}
	for (i = 0; i <= nargs; i++)
		free(argv[i]);
}

static void
ev_rcpt(struct sess *s, struct in *in)
{
	char *argv[2] = {in_str(in), NULL};
	unsigned mark;
	sfsistat rc;

	if (sess_enter(s, ST_RCPT)) {
		mark = reply_mark(s);
		rc = callbacks_desc.xxfi_envrcpt(&s->ctx, argv);
		reply_after(s, mark);
		s->st = ST_RCPT;
		check_verdict(s, ST_RCPT, rc);
	}
	free(argv[0]);
}

/*
 * One header field; name and value are C strings owned by the caller.  A
 * name the MTA would not take for a field name (empty, with white space,
 * control or 8-bit bytes: Postfix is_header()) is not sent: for the MTA
 * that line is not a header field.
 */
static void
do_header(struct sess *s, char *name, char *value)
{
	unsigned mark;
	sfsistat rc;

	if (!valid_field_name(name))
		return;
	if (!sess_enter(s, ST_HDRS))
		return;
	if (s->nhdrs < KEEP_HEADERS) {
		s->hdrs = xreallocarray(s->hdrs, s->nhdrs + 1, sizeof(*s->hdrs));
		s->hdrs[s->nhdrs].name = xstrdup(name);
		s->hdrs[s->nhdrs].value = xstrdup(value);
	}
	s->nhdrs++;
	mark = reply_mark(s);
	rc = callbacks_desc.xxfi_header(&s->ctx, name, value);
	reply_after(s, mark);
	s->st = ST_HDRS;
	check_verdict(s, ST_HDRS, rc);
}

static void
ev_header(struct sess *s, struct in *in)
{
	char *name = in_str(in), *value = in_str(in);

	do_header(s, name, value);
	free(name);
	free(value);
}

static void
do_eoh(struct sess *s)
{
	unsigned mark;
	sfsistat rc;

	if (!sess_enter(s, ST_EOHS))
		return;
	mark = reply_mark(s);
	rc = callbacks_desc.xxfi_eoh(&s->ctx);
	reply_after(s, mark);
	s->st = ST_EOHS;
	check_verdict(s, ST_EOHS, rc);
}

/* A body piece, in packets of at most MILTER_CHUNK_SIZE as the MTA sends them. */
static void
do_body(struct sess *s, const uint8_t *p, size_t n, size_t chunk)
{
	unsigned char *copy;
	unsigned mark;
	sfsistat rc;

	if (chunk == 0 || chunk > FAKE_CHUNK)
		chunk = FAKE_CHUNK;
	do {
		size_t k = n < chunk ? n : chunk;

		if (!sess_enter(s, ST_BODY))
			return;
		/* A copy of exactly k bytes, so that ASan sees reads past the chunk. */
		copy = xmalloc(k + 1);
		if (k > 0)
			memcpy(copy, p, k);
		mark = reply_mark(s);
		rc = callbacks_desc.xxfi_body(&s->ctx, copy, k);
		reply_after(s, mark);
		free(copy);
		s->st = ST_BODY;
		check_verdict(s, ST_BODY, rc);
		p += k;
		n -= k;
	} while (n > 0);
}

static void
ev_bodyfill(struct sess *s, struct in *in)
{
	unsigned ch = in_byte(in);
	size_t len = 0, i;
	uint8_t *buf;

	for (i = 0; i < 3; i++)
		len = (len << 8) | in_byte(in);
	if (len > MAX_FILL)
		len = MAX_FILL;
	buf = xmalloc(len + 1);
	/* Lines of 76 characters, as a base64 body would have. */
	for (i = 0; i < len; i++)
		buf[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (uint8_t)ch;
	do_body(s, buf, len, FAKE_CHUNK);
	free(buf);
}

static void
do_eom(struct sess *s)
{
	struct eom_snap snap;
	struct conn *c;
	unsigned mark;
	sfsistat rc;
	size_t i;

	if (!sess_enter(s, ST_ENDM))
		return;
	memset(&snap, 0, sizeof(snap));
	if ((c = smfi_getpriv(&s->ctx)) != NULL && c->msg != NULL) {
		snap.outbound = c->msg->outbound;
		snap.rt = c->rt;
		s->signjob_seen = c->msg->signjob != NULL;
		snap.nenc = c->msg->enc_for.n;
		snap.enc_for = xreallocarray(NULL, snap.nenc + 1, sizeof(char *));
		for (i = 0; i < snap.nenc; i++)
			snap.enc_for[i] = xstrdup(c->msg->enc_for.v[i]);
	}
	fake_ctx_clear_mods(&s->ctx);
	s->ctx.in_eom = 1;
	mark = reply_mark(s);
	rc = callbacks_desc.xxfi_eom(&s->ctx);
	reply_after(s, mark);
	s->ctx.in_eom = 0;
	s->st = ST_ENDM;
	check_verdict(s, ST_ENDM, rc);
	if ((c = smfi_getpriv(&s->ctx)) != NULL && c->msg != NULL)
		die("message context left open after end of message");
	if (rc == SMFIS_CONTINUE || rc == SMFIS_ACCEPT) {
		if (s->ctx.refused == 0)
			check_modified(s, &snap);
	} else if (s->ctx.nedits != 0 || s->ctx.body != NULL) {
		/* libmilter sends modifications only with accept/continue; harmless, but odd. */
	}
	fake_ctx_clear_mods(&s->ctx);
	fake_macro_clear(&s->ctx, FAKE_CI_MAIL);
	sess_forget_message(s);
	for (i = 0; i < snap.nenc; i++)
		free(snap.enc_for[i]);
	free(snap.enc_for);
}

/* A raw message: header fields (with folded lines) then the body. */
static void
ev_message(struct sess *s, struct in *in)
{
	unsigned flags = in_byte(in), sel = flags >> 3;
	size_t len, i, start = 0, hend, bstart, chunk;
	const uint8_t *raw = in_bytes(in, &len);
	int leadspc = (s->pflags & SMFIP_HDR_LEADSPC) != 0;

	chunk = sel == 0 ? FAKE_CHUNK : ((size_t)1 << (sel % 17)) + sel;
	/* The end of the header section: the first empty line. */
	hend = bstart = len;
	for (i = 0; i < len; i++)
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] == '\n' ||
		                       (raw[i - 1] == '\r' && i >= 2 && raw[i - 2] == '\n'))) {
			hend = i == 0 ? 0 : i - (raw[i - 1] == '\r' ? 1 : 0);
			bstart = i + 1;
			break;
		}
	for (i = 0; i <= hend; i++) {
		size_t end, j, o;
		const uint8_t *colon;
		char *name, *value;

		if (i < hend && raw[i] != '\n')
			continue;
		if (i + 1 < hend && (raw[i + 1] == ' ' || raw[i + 1] == '\t'))
			continue; /* folded: the field goes on */
		end = i;
		if (end > start && raw[end - 1] == '\r')
			end--;
		if (end > start && (colon = memchr(raw + start, ':', end - start)) != NULL &&
		    colon != raw + start) {
			const uint8_t *v = colon + 1;
			size_t vlen = (size_t)(raw + end - v);

			name = xstrndup((const char *)raw + start, (size_t)(colon - raw - start));
			/* Without HDR_LEADSPC the MTA drops the space after the colon. */
			if (!leadspc)
				while (vlen > 0 && (*v == ' ' || *v == '\t'))
					v++, vlen--;
			value = xmalloc(vlen + 1);
			for (j = 0, o = 0; j < vlen; j++)
				if (!(v[j] == '\r' && j + 1 < vlen && v[j + 1] == '\n'))
					value[o++] = v[j] != '\0' ? (char)v[j] : ' ';
			value[o] = '\0';
			do_header(s, name, value);
			free(name);
			free(value);
		}
		start = i + 1;
	}
	if (flags & 2)
		do_eoh(s);
	if (bstart < len) {
		const uint8_t *b = raw + bstart;
		size_t blen = len - bstart;

		if (flags & 1) {
			uint8_t *crlf = xmalloc(blen * 2 + 1);
			size_t o = 0;

			for (i = 0; i < blen; i++) {
				if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r'))
					crlf[o++] = '\r';
				crlf[o++] = b[i];
			}
			do_body(s, crlf, o, chunk);
			free(crlf);
		} else {
			do_body(s, b, blen, chunk);
		}
	}
	if (flags & 4)
		do_eom(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct sess s;
	unsigned nev = 0, b;

	memset(&s, 0, sizeof(s));
	s.flags = in_byte(&in);
	b = in_byte(&in);
	s.actions = ((b & 1) ? SMFIF_ADDHDRS : 0) | ((b & 2) ? SMFIF_CHGBODY : 0) |
	            ((b & 4) ? SMFIF_CHGHDRS : 0) | SMFIF_ADDRCPT | SMFIF_DELRCPT;
	runtime_install(runtime_ref(rts[(s.flags >> 4) & 3]));
	atomic_store(&gw.stopping, 0);
	atomic_store(&gw.force_tempfail, 0);

	while (in.n > 0 && nev++ < MAX_EVENTS) {
		unsigned op = in_byte(&in) & 15;
		size_t len;
		const uint8_t *p;

		if (op != 11 && op != 12 && op != 13)
			sess_open(&s);
		switch (op) {
		case 0:
			ev_connect(&s, &in);
			break;
		case 1:
			ev_macro(&s, &in);
			break;
		case 2:
			ev_mail(&s, &in);
			break;
		case 3:
			ev_rcpt(&s, &in);
			break;
		case 4:
			ev_header(&s, &in);
			break;
		case 5:
			do_eoh(&s);
			break;
		case 6:
			p = in_bytes(&in, &len);
			do_body(&s, p, len, FAKE_CHUNK);
			break;
		case 7:
			ev_bodyfill(&s, &in);
			break;
		case 8:
			do_eom(&s);
			break;
		case 9:
			if (s.open && sess_enter(&s, ST_ABRT))
				call_abort(&s);
			break;
		case 10:
			ev_message(&s, &in);
			break;
		case 11:
			sess_close(&s);
			break;
		case 12:
			runtime_install(runtime_ref(rts[in_byte(&in) % NRT]));
			break;
		case 13:
			b = in_byte(&in);
			atomic_store(&gw.stopping, (b & 1) != 0);
			atomic_store(&gw.force_tempfail, (b & 2) != 0);
			break;
		default:
			break;
		}
	}
	sess_open(&s); /* an empty session still connects and closes */
	sess_close(&s);
	atomic_store(&gw.stopping, 0);
	atomic_store(&gw.force_tempfail, 0);
	return 0;
}
