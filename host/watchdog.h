/* watchdog.h — internal: a thread that notices code running past a deadline.
 *
 * The spec runner arms it with each test's timeout. A test that waits is
 * stopped by the loop's own timer; one that never yields keeps the loop from
 * turning, so only another thread can notice. When the deadline passes while
 * still armed, the thread calls `fire` (from the watchdog thread) and again
 * every `refire` seconds until disarmed. Arming and disarming take an
 * uncontended mutex and no system call while tests run: the thread wakes on
 * its own at the deadline it last saw, so a run of short tests costs it
 * nothing. A thread that wakes to find itself disarmed waits for the next
 * arm, which wakes it: it never wakes just to look. */
#ifndef SONDE_WATCHDOG_H
#define SONDE_WATCHDOG_H

/* Called on the watchdog thread; fires counts calls since the last arm. */
typedef void (*sonde_watchdog_fire)(void *ud, int fires);

/* Starts the thread once (later calls only replace fire/ud). Returns 0 or an
 * errno value. */
int sonde_watchdog_start(sonde_watchdog_fire fire, void *ud);
/* Arms: fire after `seconds`, then every `refire` seconds until disarmed. */
void sonde_watchdog_arm(double seconds, double refire);
/* In a forked copy of the host: no thread yet; the next start makes one. */
void sonde_watchdog_forked(void);
void sonde_watchdog_disarm(void);
/* Stops and joins the thread; a later start creates a new one. */
void sonde_watchdog_stop(void);

#endif
