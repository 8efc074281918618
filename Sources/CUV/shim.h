#ifndef MCPD_CUV_SHIM_H
#define MCPD_CUV_SHIM_H
#include <uv.h>
#include <signal.h>
#include <unistd.h>
#include <sys/prctl.h>

extern char **environ;

/* The process environment, read through a function so Swift sees no mutable global. */
static inline char **mcpd_environ(void) { return environ; }
#endif
