/* SPDX-License-Identifier: MIT */
/* wire_fuzz.c: libFuzzer target: decode, and re-encode what is accepted. */
#include <stdlib.h>

#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fmi_msg m, again;
	fm_error e;
	unsigned char buf[FMI_WIRE_MAX_HEADER];
	size_t len;
	if (fmi_msg_decode(&m, data, size, &e) != FM_OK) {
		return 0;
	}
	if (fmi_msg_encode(&m, buf, sizeof buf, &len) != FM_OK ||
	    fmi_msg_decode(&again, buf, len, &e) != FM_OK ||
	    again.type != m.type || again.n != m.n) {
		abort(); /* accepted headers must survive a round trip */
	}
	return 0;
}
