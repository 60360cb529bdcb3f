/* supervise.h — internal: `sonde test` under a supervisor (supervise.c). */
#ifndef SONDE_SUPERVISE_H
#define SONDE_SUPERVISE_H

/* si_value of a signal the supervisor passes on to its runner. */
#define SONDE_FORWARDED 0x50ed
/* si_value of a second signal the supervisor passes on: meant, so the
 * runner leaves at once. */
#define SONDE_FORWARDED_AGAIN 0x50ee

/* Forks the runner, and another for each runner that dies in a test.
 * Returns -1 in a runner, which goes on to run the specs; in the supervisor,
 * the exit code of the run once a runner ends it. */
int sonde_supervise(void);

#endif
