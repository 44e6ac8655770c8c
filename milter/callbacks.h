/*
 * callbacks: the libmilter callback table of smimegw.
 */
#ifndef SMG_CALLBACKS_H
#define SMG_CALLBACKS_H

#include <libmilter/mfapi.h>

/* The registration description handed to smfi_register(). */
extern const struct smfiDesc callbacks_desc;

#endif
