#include "cbuildinfo.h"

/* Written by the Makefile (target buildinfo) outside the source tree, so that a commit does
 * not change a tracked file. Clang records the header as a dependency of this file, so a new
 * commit rebuilds this file alone. */
#if __has_include("../../.build/mcpd-buildinfo.h")
#include "../../.build/mcpd-buildinfo.h"
#endif

#ifndef MCPD_COMMIT
#define MCPD_COMMIT "unknown"
#endif
#ifndef MCPD_COMMIT_DATE
#define MCPD_COMMIT_DATE "unknown"
#endif

const char *mcpd_build_commit(void) { return MCPD_COMMIT; }
const char *mcpd_build_date(void) { return MCPD_COMMIT_DATE; }
