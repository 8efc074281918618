#ifndef CBUILDINFO_H
#define CBUILDINFO_H

/* What this binary was built from: `make build` and `make release` write
 * .build/mcpd-buildinfo.h (git describe, and the commit's date) before they build; a plain
 * `swift build` has neither and says "unknown". */
const char *mcpd_build_commit(void);
const char *mcpd_build_date(void);

#endif
