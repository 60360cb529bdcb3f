-- sonde.boot.chunk_cache: compiled chunks kept between runs, never stale. Each
-- case runs sonde in a process of its own with its own cache directory
-- (the directory is chosen once per process).
local support = require("specs.support")

local write = support.write_file

local read = support.read_file

-- Runs a Lua script with the cache in `cache` (false: SONDE_CACHE=off);
-- returns its stdout, failing with its stderr when it fails.
local function run(script, cache, file)
  local env = cache and { SONDE_CACHE_DIR = cache } or { SONDE_CACHE = "off", SONDE_CACHE_DIR = false }
  local code, out, err = support.sonde("run", "-", file or "", { stdin = script, env = env })
  assert.are.equal(0, code, err)
  return out
end

local LOAD = [[
local chunk, err = require("sonde.boot.chunk_cache").loadfile(arg[1])
if not chunk then print("error: " .. err) else print(chunk()) end
]]

-- Files under 4 KB are not cached (they parse about as fast): the specs'
-- files end in this comment to be cached.
local PAD = "--" .. string.rep("-", 4096) .. "\n"

-- The test's own directory with `name` in it holding `text` and PAD:
-- returns the cache directory for the runs (inside it, made by the first
-- run) and the file's path.
local function scratch(name, text)
  local dir = support.temp_dir()
  local file = dir .. "/" .. name
  write(file, text .. PAD)
  return dir .. "/cache", file
end

local function cached_files(cache)
  local entries = require("sonde.c.loop").scandir(cache .. "/chunks") or {}
  local names = {}
  for _, e in ipairs(entries) do names[#names + 1] = e.name end
  return names
end

describe("sonde.boot.chunk_cache", function()
  it("loads the compiled chunk on the next run, not the source", function()
    local cache, file = scratch("m.lua", 'return "from source"\n')
    assert.are.equal("from source\n", run(LOAD, cache, file))
    local names = cached_files(cache)
    assert.are.equal(1, #names)
    -- swap the compiled code for other code: proof the cache is read
    local entry = cache .. "/chunks/" .. names[1]
    assert.matches("^%x+%-" .. require("sonde.c.loop").hash64('return "from source"\n' .. PAD) .. "%.bc$", names[1])
    write(entry, string.dump(loadstring('return "from cache"', "@" .. file)))
    assert.are.equal("from cache\n", run(LOAD, cache, file))
  end)

  it("compiles a changed file afresh, even when its size is the same, keeping one entry for it", function()
    local cache, file = scratch("m.lua", "return 1\n")
    assert.are.equal("1\n", run(LOAD, cache, file))
    write(file, "return 2\n" .. PAD)
    assert.are.equal("2\n", run(LOAD, cache, file))
    assert.are.equal(1, #cached_files(cache))
  end)

  it("tells content apart by a hash that any one-byte edit changes", function()
    local hash64 = require("sonde.c.loop").hash64
    local base = string.rep("local x = 1 -- padding\n", 40) .. "tail" -- whole words and leftover bytes
    local seen = { [hash64(base)] = true }
    for i = 1, #base do
      local edited = base:sub(1, i - 1) .. string.char((base:byte(i) + 1) % 256) .. base:sub(i + 1)
      local h = hash64(edited)
      assert.is_nil(seen[h], "same hash after editing byte " .. i)
      seen[h] = true
    end
    assert.are_not.equal(hash64("a"), hash64("a\0"))
    assert.are_not.equal(hash64(""), hash64("\0\0\0\0\0\0\0\0"))
    assert.matches("^%x+$", hash64(base))
    assert.are.equal(16, #hash64(base))
  end)

  it("hashes a file as its content, streamed past its buffer, and says why it cannot", function()
    local loop = require("sonde.c.loop")
    local dir = support.temp_dir()
    for _, size in ipairs({ 0, 7, 8, 32768, 32768 * 3 + 5 }) do
      local content = string.rep("0123456789abcdef", math.ceil(size / 16) + 1):sub(1, size)
      write(dir .. "/f", content)
      local hash, n = loop.hash_file(dir .. "/f")
      assert.are.equal(loop.hash64(content), hash, "size " .. size)
      assert.are.equal(size, n)
    end
    local hash, err = loop.hash_file(dir .. "/missing")
    assert.is_nil(hash)
    assert.matches("no such file", err)
  end)

  it("loads what is no regular file (a pipe) as loadfile does", function()
    local cache, script = scratch("from_stdin.lua",
      'local chunk, err = require("sonde.boot.chunk_cache").loadfile("/dev/stdin")\nprint(chunk and chunk() or err)\n')
    local code, out, err = support.sonde("run", script, { stdin = 'return "from the pipe"\n',
        env = { SONDE_CACHE_DIR = cache } })
    assert.are.equal(0, code, err)
    assert.are.equal("from the pipe\n", out)
  end)

  it("does not use a cached file that was cut short", function()
    local cache, file = scratch("m.lua", 'return "whole"\n')
    run(LOAD, cache, file)
    local entry = cache .. "/chunks/" .. cached_files(cache)[1]
    local stored = read(entry)
    write(entry, stored:sub(1, #stored - 5))
    assert.are.equal("whole\n", run(LOAD, cache, file))
  end)

  it("keeps line numbers and the file name in errors from a cached chunk", function()
    local cache, file = scratch("boom.lua", "local x = 1\n\nerror('boom')\n")
    local script = [[
local chunk = require("sonde.boot.chunk_cache").loadfile(arg[1])
print(select(2, pcall(chunk)))
]]
    run(script, cache, file)
    assert.are.equal(file .. ":3: boom\n", run(script, cache, file))
  end)

  it("reports a syntax error as loadfile does, and caches nothing for it", function()
    local cache, file = scratch("bad.lua", "local x = = 1\n")
    local _, expected = loadfile(file)
    assert.are.equal("error: " .. expected .. "\n", run(LOAD, cache, file))
    assert.are.same({}, cached_files(cache))
  end)

  it("skips a first line starting with #, keeping the line count", function()
    local cache, file = scratch("script.lua", "#!/usr/bin/env sonde\nreturn debug.getinfo(1, 'l').currentline\n")
    assert.are.equal("2\n", run(LOAD, cache, file))
    assert.are.equal("2\n", run(LOAD, cache, file))
  end)

  it("serves sonde's own modules read from source (SONDE_LUA_PATH), starting from an empty cache", function()
    local cache = support.temp_dir() .. "/cache"
    for _ = 1, 2 do -- filling the cache, then reading it
      local code, out, err = support.sonde("run", "-", { stdin = 'print(require("sonde.boot.bytecode").dump ~= nil)',
        env = { SONDE_CACHE_DIR = cache, SONDE_LUA_PATH = "lua" } })
      assert.are.equal(0, code, err)
      assert.are.equal("true\n", out)
    end
  end)

  it("leaves files under 4 KB to Lua's loadfile", function()
    local dir = support.temp_dir()
    write(dir .. "/small.lua", "return 'small'\n")
    assert.are.equal("small\n", run(LOAD, dir .. "/cache", dir .. "/small.lua"))
    for _, name in ipairs(cached_files(dir .. "/cache")) do -- luassert's modules are there, not the file
      assert.falsy(read(dir .. "/cache/chunks/" .. name):find("compiled_spec", 1, true), name)
    end
  end)

  it("works without a cache when the directory cannot be written, and with SONDE_CACHE=off", function()
    local _, file = scratch("m.lua", "return 3\n")
    assert.are.equal("3\n", run(LOAD, "/proc/sonde-cannot-write-here", file))
    assert.are.equal("3\n", run(LOAD, false, file))
  end)

  -- A cache filled for a file whose entry was then swapped for code that
  -- says "planted", as another user who can write there would: returns the
  -- cache directory and the file.
  local function planted()
    local cache, file = scratch("m.lua", 'return "from source"\n')
    assert.are.equal("from source\n", run(LOAD, cache, file))
    write(cache .. "/chunks/" .. cached_files(cache)[1], string.dump(loadstring('return "planted"', "@" .. file)))
    assert.are.equal("planted\n", run(LOAD, cache, file)) -- what a trusted cache runs
    return cache, file
  end

  -- Runs LOAD on file with the cache in `cache`: the source must run, not
  -- the planted entry, and stderr be one warning matching `why`.
  local function refused(cache, file, why)
    local code, out, err = support.sonde("run", "-", file, { stdin = LOAD, env = { SONDE_CACHE_DIR = cache } })
    assert.are.equal(0, code, err)
    assert.are.equal("from source\n", out)
    assert.matches("^sonde: not using the compiled%-chunk cache: " .. why .. ": it must be yours and writable by "
      .. "you alone %(or set SONDE_CACHE_DIR, or SONDE_CACHE=off%)\n$", err)
  end

  local function sh(...)
    local code, _, err = require("sonde.process").run { ... }
    assert.are.equal(0, code, table.concat({ ... }, " ") .. ": " .. err)
  end

  it("runs no code from a cache directory its group or others can write, and says so in one line", function()
    local cache, file = planted()
    sh("chmod", "o+w", cache)
    refused(cache, file, "[^\n]+/cache is writable by others %(mode 0702%)")
    sh("chmod", "o-w", cache)
    sh("chmod", "g+w", cache .. "/chunks")
    refused(cache, file, "[^\n]+/cache/chunks is writable by its group %(mode 0720%)")
  end)

  it("runs no code from a cache directory another user owns (chown: the suite runs as root)", function()
    local cache, file = planted()
    sh("chown", "nobody", cache .. "/chunks")
    refused(cache, file, "[^\n]+/cache/chunks belongs to uid %d+, not to you %(uid %d+%)")
  end)

  it("does not hand a refused cache to --jobs workers: one warning in all", function()
    local dir = support.temp_dir()
    write(dir .. "/a_spec.lua", 'it("a", function() end)\n')
    write(dir .. "/b_spec.lua", 'it("b", function() end)\n')
    sh("chmod", "o+w", dir)
    local code, out, err = support.sonde("test", "--jobs", "2", dir, { env = { SONDE_CACHE_DIR = dir } })
    assert.are.equal(0, code, out .. err)
    local _, warnings = err:gsub("not using the compiled%-chunk cache", "")
    assert.are.equal(1, warnings, err)
  end)

  it("makes its directories and entries readable and writable by this user alone", function()
    local loop = require("sonde.c.loop")
    local cache, file = scratch("m.lua", "return 1\n")
    run(LOAD, cache, file)
    for _, path in ipairs({ cache, cache .. "/chunks", cache .. "/chunks/" .. cached_files(cache)[1] }) do
      local kind, _, perm, uid = loop.stat(path)
      assert.are.equal(kind == "dir" and "0700" or "0600", string.format("%04o", perm), path)
      assert.are.equal(loop.euid(), uid, path)
    end
  end)

  it("keys entries by the sonde build: an edited sonde.boot.bytecode (SONDE_LUA_PATH) does not read the old ones",
    function()
    local dir = support.temp_dir()
    sh("cp", "-r", "lua", dir .. "/lua")
    local cache, file = dir .. "/cache", dir .. "/m.lua"
    write(file, "return 1\n" .. PAD)
    local function load_with_tree()
      local code, out, err = support.sonde("run", "-", file, { stdin = LOAD,
        env = { SONDE_CACHE_DIR = cache, SONDE_LUA_PATH = dir .. "/lua" } })
      assert.are.equal(0, code, err)
      assert.are.equal("1\n", out)
    end
    load_with_tree()
    local bytecode_lua = dir .. "/lua/sonde/boot/bytecode.lua"
    write(bytecode_lua, read(bytecode_lua) .. "-- a new format\n")
    load_with_tree()
    local names = cached_files(cache)
    assert.are.equal(2, #names)
    assert.are_not.equal(names[1]:match("^%x+"), names[2]:match("^%x+"))
  end)

  it("hashes the modules compiled into the binary, for the key of a binary that loads them", function()
    local loop = require("sonde.c.loop")
    local writer, cache = loop.embedded_hash("sonde.boot.bytecode"), loop.embedded_hash("sonde.boot.chunk_cache")
    assert.matches("^%x+$", writer)
    assert.are.equal(16, #writer)
    assert.are_not.equal(writer, cache)
    assert.is_nil(loop.embedded_hash("sonde.no_such_module"))
  end)

  it("refuses a bytecode file as a spec or a script, in one line, whatever its size", function()
    local dir = support.temp_dir()
    local small = string.dump(loadstring('print("planted")'))
    local constants = {}
    for i = 1, 600 do constants[i] = string.format("%q", "constant " .. i) end
    local large = string.dump(loadstring('local t = {' .. table.concat(constants, ",") .. '} print("planted")'))
    assert.is_true(#large > 4096)
    for _, bytecode in ipairs({ small, large }) do
      local spec = dir .. "/compiled_spec.lua"
      write(spec, bytecode)
      local code, out, err = support.sonde("test", spec, { env = { SONDE_CACHE_DIR = dir .. "/cache" } })
      assert.are.equal(2, code)
      assert.not_matches("planted", out .. err)
      assert.matches("\n  " .. spec:gsub("%p", "%%%0") .. ": is LuaJIT bytecode, not Lua source; sonde loads spec "
        .. "files and scripts from source only\n", out)
      code, out, err = support.sonde("run", spec, { env = { SONDE_CACHE_DIR = dir .. "/cache" } })
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.are.equal("sonde: cannot load " .. spec .. ": is LuaJIT bytecode, not Lua source; sonde loads spec "
        .. "files and scripts from source only\n", err)
    end
    for _, name in ipairs(cached_files(dir .. "/cache")) do -- luassert's modules are there, not the file
      assert.falsy(read(dir .. "/cache/chunks/" .. name):find("compiled_spec", 1, true), name)
    end
  end)

  it("drops about half of its entries when there are too many, and still works", function()
    local dir = support.temp_dir()
    local cache = dir .. "/cache"
    local script = [[
local cc = require("sonde.boot.chunk_cache")
for i = 1, 20 do
  local path = arg[1] .. "/m" .. i .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write("return " .. i .. "\n--" .. string.rep("-", 4096) .. "\n")
  f:close()
  assert(cc.loadfile(path)() == i)
end
cc.prune(10)
print(cc.loadfile(arg[1] .. "/m7.lua")())
]]
    assert.are.equal("7\n", run(script, cache, dir))
    local left = #cached_files(cache)
    assert.is_true(left < 20 and left > 0, "entries left: " .. left)
  end)

  it("serves modules that require finds on package.path, with the usual errors", function()
    local dir = support.temp_dir()
    local cache = dir .. "/cache"
    write(dir .. "/cached_mod.lua", 'return { answer = 42 }\n' .. PAD)
    write(dir .. "/broken_mod.lua", 'return {\n')
    local script = string.format([[
package.path = %q .. "/?.lua;" .. package.path
print(require("cached_mod").answer)
print((select(2, pcall(require, "broken_mod"))))
print((select(2, pcall(require, "no_such_mod"))):match("module 'no_such_mod' not found") ~= nil)
]], dir)
    local first = run(script, cache)
    assert.are.equal(first, run(script, cache))
    assert.matches("^42\nerror loading module 'broken_mod' from file " ..
        "'[^']+broken_mod.lua':\n\t[^\n]+broken_mod.lua:2: ",
      first)
    assert.matches("\ntrue\n$", first)
    local found = false
    for _, name in ipairs(cached_files(cache)) do
      found = found or read(cache .. "/chunks/" .. name):find("cached_mod.lua", 1, true) ~= nil
    end
    assert.is_true(found)
  end)
end)
