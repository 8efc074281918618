#ifndef MCPD_CUV_SHIM_H
#define MCPD_CUV_SHIM_H
#include <uv.h>
#include <signal.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <spawn.h>

/* A GNU extension (glibc 2.29) that <spawn.h> declares only under _GNU_SOURCE. */
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *__restrict actions,
                                                const char *__restrict path);

extern char **environ;

/* The process environment, read through a function so Swift sees no mutable global. */
static inline char **mcpd_environ(void) { return environ; }
#endif
