/* main.c — the sonde command line: parses the command, calls sonde.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sonde.h"
#include "protect.h"

static const char usage[] =
    "usage: sonde run FILE [ARGS...]      run a Lua scenario as a task; - reads stdin\n"
    "       sonde FILE.lua [ARGS...]      the same\n"
    "       sonde test [OPTIONS] [PATHS]  run *_spec.lua files (default: .busted ROOT, spec/, specs/)\n"
    "       sonde repl                    interactive prompt, each line a task\n"
    "       sonde live APP.lua [ARGS...]  run the LiveCheck app APP.lua returns until Ctrl-C\n"
    "            [--bus redis://HOST:PORT/DB]  as one of N processes sharing a Redis bus\n"
    "       sonde live --reports URL --app ID [--port N]  follow every process's reports\n"
    "       sonde load SCRIPT [OPTIONS]   run SCRIPT's scenarios as a load test (sonde load --help)\n"
    "       sonde                         the REPL on a terminal, else runs stdin\n"
    "       sonde --version | --help\n"
    "\n";

/* The options of `sonde test` come from their one table in Lua
 * (sonde.runner.options), as `sonde test --help` prints them. */
static int print_test_help(void) {
    static const char *const help[] = {"--help"};
    sonde_opts               opts = {NULL, 1, 0};
    sonde_t                 *S = sonde_new(&opts);
    if (!S) return 2;
    fflush(stdout);
    sonde_spec_opts o = {help, 1};
    int             rc = sonde_run_specs(S, NULL, 0, &o);
    sonde_free(S);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int has_arg(int argc, char **argv, const char *arg) {
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], arg) == 0) return 1;
    return 0;
}

/* lua's own options: sonde started as "the interpreter" (busted's arg[-1]). */
static int is_lua_option(const char *arg) {
    return strncmp(arg, "-e", 2) == 0 || strncmp(arg, "-l", 2) == 0 || strcmp(arg, "-") == 0;
}

static int run_command(sonde_t *S, int argc, char **argv) {
    const char *cmd = argv[1];
    if (is_lua_option(cmd)) return sonde_run_lua(S, argc - 1, argv + 1);
    if (strcmp(cmd, "test") == 0) {
        sonde_spec_opts o = {(const char *const *)argv + 2, argc - 2};
        return sonde_run_specs(S, NULL, 0, &o);
    }
    if (strcmp(cmd, "run") == 0) {
        if (argc < 3) {
            fprintf(stderr, "sonde run: expected a FILE to run\n");
            return 2;
        }
        return sonde_run_file(S, strcmp(argv[2], "-") == 0 ? NULL : argv[2], argc - 3, argv + 3);
    }
    if (strcmp(cmd, "live") == 0) {
        if (argc < 3) {
            fprintf(stderr, "sonde live: expected the APP.lua that returns a livecheck app\n");
            return 2;
        }
        return sonde_run_live(S, argv[2], argc - 3, argv + 3);
    }
    if (strcmp(cmd, "load") == 0) return sonde_run_load(S, argc - 2, argv + 2);
    if (strcmp(cmd, "repl") == 0) {
        if (argc > 2) {
            fprintf(stderr, "sonde repl: takes no arguments (use :load FILE at the prompt)\n");
            return 2;
        }
        return sonde_run_repl(S);
    }
    if (ends_with(cmd, ".lua")) return sonde_run_file(S, cmd, argc - 2, argv + 2);
    fprintf(stderr, "sonde: unknown command '%s' (expected run, test, repl, live, load, --help or --version)\n", cmd);
    return 2;
}

int main(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return print_test_help();
    }
    /* busted's `--version` is `sonde test --version` to a busted user */
    int test_version = argc >= 2 && strcmp(argv[1], "test") == 0 && has_arg(argc, argv, "--version");
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || test_version)) {
        fputs(sonde_versions(), stdout);
        return 0;
    }
    /* A serial run survives a test that kills its process (protect.c);
     * a --jobs worker's parent already sees its death; --watch runs in
     * one process, reading keys from the terminal. */
    const char *protect = getenv("SONDE_SUPERVISE");
    if (argc >= 2 && strcmp(argv[1], "test") == 0 && !has_arg(argc, argv, "--worker") &&
        !has_arg(argc, argv, "--watch") && !(protect && strcmp(protect, "off") == 0)) {
        int rc = sonde_protect_start(argv);
        if (rc != 0) return rc;
    }
    sonde_opts opts = {NULL, 1, 0};
    sonde_t   *S = sonde_new(&opts);
    if (!S) return 2;
    sonde_protect_ready();
    /* no command: a person at a terminal gets the REPL, a pipe is a script */
    int rc = argc >= 2              ? run_command(S, argc, argv)
             : isatty(STDIN_FILENO) ? sonde_run_repl(S)
                                    : sonde_run_file(S, NULL, 0, NULL);
    /* A finished suite needs no freeing: scripts and the REPL still get
     * their finalizers (a REPL's terminal settings, a script's __gc). */
    if (argc >= 2 && strcmp(argv[1], "test") == 0) sonde_exit(S, rc);
    sonde_free(S);
    return rc;
}
