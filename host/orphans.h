/* orphans.h — internal: no process the host started outlives it.
 *
 * Three nets, each for what the one before misses:
 * - groups: each child leads a process group (process.c), so stopping the
 *   group stops what the child started in it. The groups are kept here for
 *   the host's own stop and for its async-signal-safe last resort.
 * - adoption: a host that owns its process is a child subreaper, so a
 *   descendant that leaves its group (setsid) and loses its parent becomes
 *   the host's child: reaped when it exits, stopped when the host stops.
 * - the reaper: PR_SET_PDEATHSIG reaches only a direct child, so the
 *   first spawn forks a reaper process that outlives even a SIGKILLed
 *   host, stops the groups it leaves behind, then every process whose
 *   environment carries the host's mark. Every child gets the mark in
 *   SONDE_HOSTS (with the marks of the hosts above, so the reaper of an
 *   outer sonde finds what an inner one started) and passes it on to its
 *   descendants, unless one clears its environment.
 * What clears its environment and escapes its group is stopped when the host
 * stops, but not found after a SIGKILL. */
#ifndef SONDE_ORPHANS_H
#define SONDE_ORPHANS_H

#include <sys/types.h>

/* Forks the reaper process and makes the mark, once; without a reaper
 * (no fork) the host's own stop still works. */
void sonde_orphans_start_reaper(void);
/* The "SONDE_HOSTS=..." entry for a child's environment (after the first
 * sonde_orphans_start_reaper; NULL before). */
const char *sonde_orphans_mark(void);
/* A child started, leading group pgid / its group has emptied. */
void sonde_orphans_add_group(pid_t pgid);
void sonde_orphans_drop_group(pid_t pgid);
/* Async-signal-safe: sends sig to every group still known. */
void sonde_orphans_signal_groups(int sig);
/* SIGKILLs every group still known and forgets them all. */
void sonde_orphans_kill_groups(void);

/* on: the host owns its process, so it adopts orphaned descendants from
 * now on; 0: no longer (the host is freed, and nothing would reap them). */
void sonde_orphans_adopt(int on);
/* In a forked copy of the host: a reaper, groups and mark of its own. */
void sonde_orphans_forked(void);
/* Async-signal-safe: sends sig to each adopted child and the group it
 * leads; returns how many there are. */
int sonde_orphans_signal_adopted(int sig);

/* Sends sig to every child but the reaper (and to the group each leads),
 * those in sonde's own group too (io.popen's, os.execute's): an image that
 * execs itself after a test's death (protect.c) can wait for none of them.
 * Async-signal-safe. Returns how many it signalled. */
int sonde_orphans_signal_children(int sig);
/* Reaps the adopted children that have exited; returns how many still run. */
int sonde_orphans_reap_adopted(void);
/* SIGKILLs and reaps every adopted child, and what their deaths hand over. */
void sonde_orphans_kill_adopted(void);

#endif
