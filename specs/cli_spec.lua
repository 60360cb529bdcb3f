-- The sonde command line, run as a subprocess: exit codes and the one clear
-- line each user mistake gets.
local support = require("specs.support")
local process = require("sonde.process")

local sonde, fixture = support.sonde, support.fixture

describe("sonde --version and --help", function()
  it("prints sonde's version and commit, and the LuaJIT, libuv, libcurl and libedit it runs with", function()
    local code, out, err = sonde("--version")
    assert.are.equal(0, code, err)
    local header = io.open("host/sonde.h"):read("*a")
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(5, #lines, out)
    local version, commit = lines[1]:match("^sonde (%S+) %(commit (%S+)%)$")
    assert.are.equal(header:match('#define SONDE_VERSION "(.-)"'), version)
    if commit ~= "unknown" then -- a build outside a git checkout cannot know it
      local hash = commit:gsub("%-dirty$", "")
      assert.are.equal(0, (process.run { "git", "cat-file", "-e", hash .. "^{commit}" }), "no such commit: " .. hash)
    end
    assert.are.equal(jit.version, lines[2])
    assert.matches("^libuv %d+%.%d+%.%d+$", lines[3])
    local curl = require("sonde.http").curl_version():match("^libcurl/(%S+)")
    assert.matches("^libcurl " .. curl:gsub("%p", "%%%0") .. " %(libcurl[%w%-]*%.so%.%d+, %S+%)$", lines[4])
    assert.matches("^libedit libedit%.so%.%d+ %(the REPL's line editing%)$", lines[5])
  end)

  -- refuse_dlopen(names, ...) -> code, out, err of sonde ... run with an
  -- LD_PRELOAD shim whose dlopen fails for each soname in names
  local function refuse_dlopen(names, ...)
    local dir = support.temp_dir("dlopen")
    support.write_file(dir .. "/shim.c", [[
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
void *dlopen(const char *name, int flags) {
    const char *refused = getenv("REFUSED"); /* ",a,b," */
    char        key[256];
    if (name && refused && strlen(name) < 250) {
        strcpy(key, ","); strcat(key, name); strcat(key, ",");
        if (strstr(refused, key)) return NULL;
    }
    void *(*real)(const char *, int) = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    return real(name, flags);
}
]])
    local code, _, err = process.run { "cc", "-shared", "-fPIC", "-o", dir .. "/shim.so", dir .. "/shim.c", "-ldl" }
    assert.are.equal(0, code, err)
    return sonde(..., { env = { LD_PRELOAD = dir .. "/shim.so", REFUSED = "," .. table.concat(names, ",") .. ",",
      ASAN_OPTIONS = (os.getenv("ASAN_OPTIONS") or "") .. ":verify_asan_link_order=0" } })
  end

  it("says libcurl is not available when no libcurl can be loaded, and why", function()
    local code, out = refuse_dlopen({ "libcurl.so.4", "libcurl-gnutls.so.4" }, "--version")
    assert.are.equal(0, code)
    assert.matches("\nlibcurl not available: cannot load libcurl %(tried libcurl%.so%.4, libcurl%-gnutls%.so%.4%): "
      .. "not found\nlibedit ", out)
  end)

  it("loads the libcurl other distributions name libcurl-gnutls.so.4 when there is no libcurl.so.4", function()
    if not io.open("/usr/lib/x86_64-linux-gnu/libcurl-gnutls.so.4") and not io.open("/usr/lib/libcurl-gnutls.so.4")
    then
      pending("no libcurl-gnutls.so.4 on this machine")
      return
    end
    local code, out = refuse_dlopen({ "libcurl.so.4" }, "--version")
    assert.are.equal(0, code)
    assert.matches("\nlibcurl %S+ %(libcurl%-gnutls%.so%.4, GnuTLS/%S+%)\n", out)
  end)

  it("prints usage on --help and exits 0", function()
    local code, out = sonde("--help")
    assert.are.equal(0, code)
    assert.matches("usage: sonde run FILE", out)
  end)

  it("runs the script on stdin when called with no arguments and no terminal", function()
    local code, out = sonde({ stdin = "print('piped')" })
    assert.are.equal(0, code)
    assert.are.equal("piped\n", out)
  end)
end)

describe("sonde run", function()
  it("runs a script with its arguments and exits 0", function()
    local code, out = sonde("run", fixture("args.lua"), "one", "two")
    assert.are.equal(0, code)
    assert.are.equal(fixture("args.lua") .. "\t2\tone\ttwo\n", out)
  end)

  it("accepts FILE.lua without the run command", function()
    local code, out = sonde(fixture("args.lua"), "x")
    assert.are.equal(0, code)
    assert.matches("\t1\tx\n$", out)
  end)

  it("names the file and line of a syntax error, exit 2", function()
    local code, out, err = sonde("run", fixture("syntax_error.lua"))
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.matches("^sonde: cannot load specs/fixtures/syntax_error.lua:3: unexpected symbol near '='\n$", err)
  end)

  it("names a missing file, exit 2", function()
    local code, _, err = sonde("run", "no/such/file.lua")
    assert.are.equal(2, code)
    assert.are.equal("sonde: cannot load no/such/file.lua: no such file or not readable\n", err)
  end)

  it("says which file is expected when run has none, exit 2", function()
    local code, _, err = sonde("run")
    assert.are.equal(2, code)
    assert.are.equal("sonde run: expected a FILE to run\n", err)
  end)

  it("rejects an unknown command, exit 2", function()
    local code, _, err = sonde("frobnicate")
    assert.are.equal(2, code)
    assert.matches("unknown command 'frobnicate'", err)
  end)

  it("reports an error with file, line and a user-only traceback, exit 1", function()
    local code, _, err = sonde("run", fixture("raises.lua"))
    assert.are.equal(1, code)
    assert.matches("^sonde: specs/fixtures/raises.lua:3: scenario went wrong\nstack traceback:\n", err)
    assert.matches("raises.lua:5: in main chunk", err)
    assert.not_matches("lua/sonde/task.lua", err)
  end)

  it("reports a table error through its __tostring and survives a nil error", function()
    local code, _, err = sonde("run", fixture("raise_table.lua"))
    assert.are.equal(1, code)
    assert.matches("^sonde: a table error", err)
  end)

  it("reports an error in a task nobody joined, exit 1", function()
    local code, out, err = sonde("run", fixture("lost_task.lua"))
    assert.are.equal(1, code)
    assert.are.equal("script finished\n", out)
    assert.matches("error in a task nobody joined: specs/fixtures/lost_task.lua:3: nobody joined me", err)
  end)

  for _, sig in ipairs({ "INT", "TERM" }) do
    it("stops on SIG" .. sig .. ", cleans up and exits non-zero", function()
      local p = process.spawn { support.bin, "run", fixture("hang.lua") }
      p:wait_output("ready", 30)
      p:kill(sig)
      local code = p:wait(30)
      assert.are.equal(130, code)
      assert.matches("interrupted", p:stderr())
    end)
  end
end)

describe("a second interrupt", function()
  it("exits at once, even when the script swallows the first, and stops its children", function()
    local p = process.spawn { support.bin, "run", fixture("stubborn.lua") }
    local child = tonumber(p:wait_output("ready (%d+)", 30))
    p:kill("INT")
    p:wait_output("^swallowed$", 30) -- the first one is handled (the script swallows it)
    p:kill("INT")
    assert.are.equal(130, p:wait(30))
    process.wait_exit(child, 30)
  end)
end)

describe("sonde test usage errors", function()
  it("rejects an unknown option, exit 2", function()
    local code, _, err = sonde("test", "--bogus")
    assert.are.equal(2, code)
    assert.are.equal("sonde test: unknown option '--bogus' (see sonde test --help)\n", err)
  end)

  it("names a missing spec path, exit 2", function()
    local code, _, err = sonde("test", "no/such/dir")
    assert.are.equal(2, code)
    assert.are.equal("sonde test: no/such/dir: no such file or directory\n", err)
  end)

  it("rejects an unknown reporter, exit 2", function()
    local code, _, err = sonde("test", "--output", "xml", fixture("runner/tags.lua"))
    assert.are.equal(2, code)
    assert.matches("unknown reporter 'xml' %(expected one of: human, tap", err)
  end)

  it("rejects an unwritable report path, exit 2", function()
    local code, _, err = sonde("test", "--output", "tap=/nonexistent/dir/r.tap", fixture("runner/tags.lua"))
    assert.are.equal(2, code)
    assert.matches("cannot write the tap report: /nonexistent/dir/r.tap", err)
  end)

  it("rejects a report path left empty and an empty tag list, exit 2", function()
    local code, _, err = sonde("test", "--output", "json=", fixture("runner/tags.lua"))
    assert.are.equal(2, code)
    assert.matches("%-o json=: expected a file name after '='", err)
    code, _, err = sonde("test", "--tags", " , ", fixture("runner/tags.lua"))
    assert.are.equal(2, code)
    assert.matches("--tags expects a comma%-separated list of tags, got ' , '", err)
  end)

  it("lists each test once with --repeat", function()
    local code, out = sonde("test", "--list", "--repeat", "3", fixture("runner/tags.lua"))
    assert.are.equal(0, code)
    local _, n = out:gsub("tags.lua:%d+: ", "")
    local _, once = select(2, sonde("test", "--list", fixture("runner/tags.lua"))):gsub("tags.lua:%d+: ", "")
    assert.are.equal(once, n)
  end)

  it("rejects a bad timeout and a missing option value, exit 2", function()
    local code, _, err = sonde("test", "--timeout", "soon")
    assert.are.equal(2, code)
    assert.matches("--timeout expects a number greater than 0, got 'soon'", err)
    code, _, err = sonde("test", "--filter")
    assert.are.equal(2, code)
    assert.matches("--filter expects a value", err)
  end)
end)

describe("sonde test interrupted", function()
  it("cancels the running test, reports what ran and exits 130", function()
    local out = support.interrupt_hang(support.fixture("runner/hang.lua"))
    assert.matches("\n1%.%.2\n", out)
  end)
end)
