-- `cmake --install`: the tree it makes under a prefix, and programs built
-- against that tree (examples/embed, with pkg-config and with find_package).
local support = require("specs.support")
local process = require("sonde.process")
local options = require("sonde.runner.options")

local build = support.build_dir
local sanitized -- the build is under -fsanitize: what links libsonde.so must be too

-- run{argv..., cwd=, env=} -> stdout; fails the test with the command's output
local function run(argv)
  argv.timeout = argv.timeout or 120
  local code, out, err = process.run(argv)
  assert(code == 0, table.concat(argv, " ") .. " exited " .. tostring(code) .. ":\n" .. out .. err)
  return out
end

local function exists(path) return io.open(path, "rb") ~= nil end

local read = support.read_file

describe("cmake --install", function()
  local prefix, work

  setup(function()
    local flag = read(build .. "/CMakeCache.txt"):match("\nSONDE_SANITIZE:BOOL=([^\n]*)") or "OFF"
    sanitized = not ({ OFF = true, ["0"] = true, FALSE = true, NO = true, [""] = true })[flag:upper()]
    work = support.make_temp_dir("install")
    prefix = work .. "/prefix"
    run { "cmake", "--install", build, "--prefix", prefix }
  end)

  teardown(function() if work then support.remove_dir(work) end end)

  it("installs the command, both libraries, the header, pkg-config and CMake files, modules, man page, completions",
    function()
      for _, path in ipairs { "bin/sonde", "lib/libsonde.a", "lib/libsonde.so", "include/sonde/sonde.h",
        "lib/pkgconfig/sonde.pc", "lib/cmake/sonde/sonde-config.cmake", "lib/cmake/sonde/sonde-config-version.cmake",
        "lib/cmake/sonde/sonde-targets.cmake", "share/lua/5.1/sonde/task.lua",
        "share/lua/5.1/sonde/runner/reporters/tap.lua",
        "share/sonde/types/sonde/task.lua", "share/sonde/types/sonde/livecheck.lua",
        "share/man/man1/sonde.1", "share/bash-completion/completions/sonde", "share/zsh/site-functions/_sonde" } do
        assert(exists(prefix .. "/" .. path), "not installed: " .. path)
      end
      local soname = run { "readelf", "-d", prefix .. "/lib/libsonde.so" }:match("Library soname: %[(.-)%]")
      assert.matches("^libsonde%.so%.%d+%.%d+$", soname)
      assert(exists(prefix .. "/lib/" .. soname), "no " .. soname .. " in lib/")
      -- only the embedding API is exported
      for name in run { "nm", "-D", "--defined-only", prefix .. "/lib/libsonde.so" }:gmatch("%x+ T (%S+)") do
        assert.matches("^sonde_", name)
      end
      assert.matches("prefix=" .. prefix:gsub("%p", "%%%0") .. "\n", read(prefix .. "/lib/pkgconfig/sonde.pc"))
    end)

  it("installs a sonde that runs from any folder with its embedded modules", function()
    support.write_file(work .. "/hello.lua", 'local task = require("sonde.task")\ntask.sleep(0)\n'
      .. 'print(require("sonde.json").encode({ ok = true }))\n')
    local out = run { prefix .. "/bin/sonde", "run", "hello.lua", cwd = work, env = { SONDE_LUA_PATH = false } }
    assert.are.equal('{"ok":true}\n', out)
  end)

  it("installs the pure-Lua modules where luajit's package.path finds them", function()
    local out = run { "luajit", "-e", 'print(require("sonde.runner.diff") ~= nil, require("sonde.json").encode({1}))',
      env = { LUA_PATH = prefix .. "/share/lua/5.1/?.lua;;" } }
    assert.are.equal("true\t[1]\n", out)
  end)

  it("builds examples/embed with pkg-config --cflags --libs sonde and runs it", function()
    local flags = run { "pkg-config", "--cflags", "--libs", "sonde",
      env = { PKG_CONFIG_PATH = prefix .. "/lib/pkgconfig" } }
    local argv = { "cc", "-Wall", "-Werror", "-o", work .. "/embed_pc", "examples/embed/embed.c" }
    for flag in flags:gmatch("%S+") do argv[#argv + 1] = flag end
    argv[#argv + 1] = "-Wl,-rpath," .. prefix .. "/lib"
    if sanitized then argv[#argv + 1] = "-fsanitize=address,undefined" end
    run(argv)
    assert.matches(prefix .. "/lib/libsonde", run { "ldd", work .. "/embed_pc" }, 1, true)
    assert.are.equal("hello, embedder (from examples/embed/scenario.lua)\n",
      run { work .. "/embed_pc", "examples/embed/scenario.lua" })
  end)

  it("builds examples/embed with find_package(sonde) and runs it", function()
    local dir = work .. "/embed_cmake"
    run { "cmake", "-S", "examples/embed", "-B", dir, "-DCMAKE_PREFIX_PATH=" .. prefix,
      "-DCMAKE_C_FLAGS=" .. (sanitized and "-fsanitize=address,undefined" or "") }
    run { "cmake", "--build", dir }
    assert.matches(prefix .. "/lib/libsonde", run { "ldd", dir .. "/embed_example" }, 1, true)
    assert.are.equal("hello, embedder (from examples/embed/scenario.lua)\n",
      run { dir .. "/embed_example", "examples/embed/scenario.lua" })
  end)

  it("installs a man page with every command and option of sonde --help", function()
    local page = run { "man", "--warnings", "-l", prefix .. "/share/man/man1/sonde.1",
      env = { MANWIDTH = "200", MAN_KEEP_FORMATTING = false } }
    local _, help = support.sonde("--help")
    for _, command in ipairs { "sonde run FILE", "sonde test [OPTIONS] [PATHS]", "sonde repl", "sonde live APP.lua" } do
      assert.matches(command, page, 1, true)
      assert.matches(command, help, 1, true)
    end
    for _, list in ipairs { options.OPTIONS, require("sonde.load.cli").OPTIONS } do
      for _, row in ipairs(list) do
        if not row.hidden then
          for _, name in ipairs(row) do assert.matches(name, page, 1, true) end
        end
      end
    end
    local merge = require("sonde.load.cli").HELP:match("(sonde load merge [^\n]-)%s*\n")
    assert.is_string(merge)
    assert.matches(merge, page, 1, true)
  end)

  it("installs a bash completion of commands, test options and reporter names", function()
    local function complete(...)
      local words = { ... }
      local script = ". " .. prefix .. "/share/bash-completion/completions/sonde; COMP_WORDS=("
      for _, w in ipairs(words) do script = script .. "'" .. w .. "' " end
      script = script .. "); COMP_CWORD=" .. (#words - 1) .. '; _sonde; for w in "${COMPREPLY[@]}"; do echo "$w"; done'
      return run { "bash", "-c", script, cwd = work }
    end
    assert.are.equal("repl\nrun\n", table.concat((function()
      local l = {}
      for w in complete("sonde", "r"):gmatch("[^\n]+") do l[#l + 1] = w end
      table.sort(l)
      return l
    end)(), "\n") .. "\n")
    assert.are.equal("--fail-fast\n--fail-on-flaky\n", complete("sonde", "test", "--fail"))
    assert.are.equal("--no-shuffle\n--no-shuffle-files\n--no-shuffle-tests\n",
      complete("sonde", "test", "--no-shu"))
    assert.are.equal("junit\n", complete("sonde", "test", "-o", "ju"))
    assert.are.equal("tap\ntable\n", complete("sonde", "test", "--output", "t"))
    assert.are.equal("", complete("sonde", "test", "--timeout", "")) -- a number: nothing to offer
    assert.are.equal("--segment\n", complete("sonde", "load", "--seg")) -- sonde.load.cli's options
    assert.are.equal("", complete("sonde", "load", "--fail")) -- not test's
  end)

  it("refuses a prefix it cannot write to in one line, before copying anything", function()
    local ro = work .. "/ro"
    run { "mkdir", "-m", "555", ro }
    local argv = { "cmake", "--install", build, "--prefix", ro .. "/p", timeout = 60 }
    if run { "id", "-u" } == "0\n" then -- root writes anywhere: try as nobody
      table.insert(argv, 1, "setpriv")
      table.insert(argv, 2, "--reuid=65534")
      table.insert(argv, 3, "--regid=65534")
      table.insert(argv, 4, "--clear-groups")
    end
    local code, out, err = process.run(argv)
    assert.are_not.equal(0, code)
    -- the line is whole (CMake wraps messages unless they start with a space)
    assert.are.equal("sonde: cannot install into " .. ro .. "/p: " .. ro .. " is not a directory you can write to "
      .. "(choose another --prefix, or install as its owner)", err:match("\n%s*(sonde: cannot install[^\n]*)\n"))
    assert.is_nil(out:find("Installing:", 1, true))
  end)
end)
