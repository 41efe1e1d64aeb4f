/*
 * version.c — cofi_version(): the library's own version at run time.
 */
#include "cofi.h"

const char *cofi_version(void) { return COFI_VERSION; }
