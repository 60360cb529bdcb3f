/* sonde.h — the embedding API of sonde.
 *
 * A C program links libsonde, creates a host, may add its own native Lua
 * modules, and runs scenario files or spec directories. Every run happens as
 * a task on the host's libuv loop; the host owns the Lua state, the loop and
 * every child process, and sonde_free() stops whatever is still running.
 *
 * Return codes of the run functions: 0 all passed, 1 failures, 2 usage or
 * load errors (a message naming the file and line has been printed). */
#ifndef SONDE_H
#define SONDE_H

#include <lua.h>

#define SONDE_VERSION "0.1.0"

/* what libsonde.so exports: the functions below, nothing else */
#if defined(__GNUC__)
#define SONDE_API __attribute__((visibility("default")))
#else
#define SONDE_API
#endif

typedef struct sonde sonde_t;

typedef struct sonde_opts {
    const char *lua_path; /* load lua/sonde/NAME.lua from here instead of the
                             embedded copies; NULL: $SONDE_LUA_PATH or embedded */
    int handle_signals;   /* the host owns the process: it installs
                             SIGINT/SIGTERM handling and adopts orphaned
                             descendants (PR_SET_CHILD_SUBREAPER), which it
                             reaps and stops; a program that handles its own
                             signals and children sets 0 */
    double stop_grace;    /* seconds children get between SIGTERM and
                             SIGKILL when the host stops; 0: 2 seconds */
} sonde_opts;

typedef struct sonde_spec_opts {
    const char *const *args; /* runner options as on the command line, e.g.
                                {"--output", "tap", "--timeout", "5"} */
    int nargs;
} sonde_spec_opts;

/* Creates a host: Lua state, loop, every sonde module preloaded. opts may be
 * NULL for the defaults. Returns NULL when memory runs out. */
SONDE_API sonde_t *sonde_new(const sonde_opts *opts);

/* Adds a native module that Lua code can require(name). */
SONDE_API void sonde_preload(sonde_t *S, const char *name, lua_CFunction open);

/* Runs a Lua file as a task with the global `arg` set to argv (argv[0] is
 * the first argument after the file); a NULL path reads the script from
 * stdin. Returns 0, 1 (it raised) or 2 (it could not be loaded). */
SONDE_API int sonde_run_file(sonde_t *S, const char *path, int argc, char **argv);

/* Runs the spec files found under paths (default "specs" when npaths is 0)
 * with the runner options in o (may be NULL). Returns 0, 1 or 2. */
SONDE_API int sonde_run_specs(sonde_t *S, const char *const *paths, int npaths, const sonde_spec_opts *o);

/* Runs the interactive REPL on stdin until Ctrl-D (or until piped input
 * ends: without a terminal, lines are read and run without editing). Each
 * line runs as a task on the host's loop. Returns 0; 143 after SIGTERM (which
 * ends the session, where SIGINT only cancels the running line); 2 when stdin
 * cannot be used. */
SONDE_API int sonde_run_repl(sonde_t *S);

/* Runs a command line as the lua interpreter reads one: `-e STATEMENT` and
 * `-l MODULE` in order, then the script (or `-` for stdin) with the rest as
 * its `arg`. So specs that start "the interpreter" (busted's arg[-1], which
 * is sonde) with lua's options run. Returns as sonde_run_file. */
SONDE_API int sonde_run_lua(sonde_t *S, int argc, char **argv);

/* Runs the LiveCheck app that the file at path returns until SIGINT or
 * SIGTERM, then drains executions and flushes reports. Returns 0, 1 (a case
 * was failing at exit) or 2 (it could not be loaded or started). */
SONDE_API int sonde_run_live(sonde_t *S, const char *path, int argc, char **argv);

/* Runs `sonde load`: argv are its arguments (a script and options, or
 * "merge" and files). Returns k6's exit codes: 0; 99 a threshold was
 * crossed; 107 a script error; 2 usage; 130 interrupted. */
SONDE_API int sonde_run_load(sonde_t *S, int argc, char **argv);

/* What this sonde is made of, one line each: sonde's version and commit,
 * then the LuaJIT, libuv, libcurl and libedit it runs with, as they answer at
 * run time. libcurl and libedit are loaded to ask them (sonde opens them at
 * first use); a library that cannot be loaded is a line saying why. Returns a
 * static string (not thread-safe). */
SONDE_API const char *sonde_versions(void);

/* The host's Lua state, for programs that push their own globals. */
SONDE_API lua_State *sonde_lua(sonde_t *S);

/* Stops every child process, closes every handle, frees the host. */
SONDE_API void sonde_free(sonde_t *S);

/* Ends the process with status rc the quick way, for a program that is done:
 * every child process is stopped, signal handlers are put back and stdio is
 * flushed, but the Lua state is not closed, so Lua finalizers (__gc) do not
 * run. Freeing a large suite's objects one by one costs ~10 ms per 5000 tests
 * for nothing. Under AddressSanitizer it frees everything (sonde_free) first,
 * so leak checks still cover the host. Does not return. */
SONDE_API void sonde_exit(sonde_t *S, int rc);

#endif
