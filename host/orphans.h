/* orphans.h — internal: no process the host started outlives it.
 *
 * Each child leads a process group (process.c), so stopping the group stops
 * what the child started in it. The groups are kept here, for the host's
 * own stop and for its async-signal-safe last resort, and told to a
 * watchdog process forked at the first spawn: PR_SET_PDEATHSIG reaches only
 * a direct child, and the watchdog outlives even a SIGKILLed host to stop
 * the groups it leaves behind. */
#ifndef SONDE_ORPHANS_H
#define SONDE_ORPHANS_H

#include <sys/types.h>

/* Forks the watchdog process, once; without one (no fork) the host's own
 * stop still works. */
void sonde_orphans_start_watchdog(void);
/* A child started, leading group pgid / its group has emptied. */
void sonde_orphans_add_group(pid_t pgid);
void sonde_orphans_drop_group(pid_t pgid);
/* Async-signal-safe: sends sig to every group still known. */
void sonde_orphans_signal_groups(int sig);
/* SIGKILLs every group still known and forgets them all. */
void sonde_orphans_kill_groups(void);

#endif
