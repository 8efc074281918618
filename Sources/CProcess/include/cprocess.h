#ifndef MCPD_CPROCESS_H
#define MCPD_CPROCESS_H

/* Starts `path` (an executable file, already resolved) as a backend: in a new session, with
 * `fds` as its stdin, stdout and stderr, every signal at its default and none blocked, in `cwd`
 * when given, and with PR_SET_PDEATHSIG(SIGKILL), so that it dies with mcpd even when mcpd is
 * killed with SIGKILL. `parent` is mcpd's pid: a child whose parent is already gone exits at
 * once. Returns the pid, or a negative errno (the exec's own error when exec failed). */
int mcpd_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd, const int fds[3], int parent);

/* Makes mcpd the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER). 0 or -errno. */
int mcpd_become_subreaper(void);

/* True when orphaned descendants are re-parented to mcpd: it is PID 1 or a subreaper. */
int mcpd_reaps_orphans(void);

/* Raises the soft limit on open files to the hard limit; returns the new soft limit, or -errno. */
long mcpd_raise_open_file_limit(void);

/* The hard (`hard` != 0) or soft limit on open files. */
long mcpd_open_file_limit(int hard);

/* Gives the heap's free memory back to the system (glibc's malloc_trim). */
void mcpd_release_free_memory(void);

/* The parent pid of `pid` from /proc/<pid>/stat, or -1. */
int mcpd_parent_of(int pid);

/* Fills buf with len bytes from the kernel's CSPRNG (getrandom(2), blocking only until the
 * pool is initialised at boot). Returns 0, or -1 with errno. */
int mcpd_random_bytes(void *buf, unsigned long len);

#endif
