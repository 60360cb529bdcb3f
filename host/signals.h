/* signals.h — internal: how sonde installs a signal handler. */
#ifndef SONDE_SIGNALS_H
#define SONDE_SIGNALS_H

#include <signal.h>
#include <string.h>

/* Installs fn as sig's handler, with the siginfo (who sent it, and how) and
 * without SA_RESTART: a call blocked when the signal comes returns, so what
 * the handler asked for is seen at once. The handling before is stored in
 * old unless it is NULL. Returns what sigaction returns. */
static inline int sonde_signal_catch(int sig, void (*fn)(int sig, siginfo_t *info, void *ctx), struct sigaction *old) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, old);
}

#endif
