-- sonde.boot.chunk_cache: compiled Lua kept between runs, as Python keeps .pyc
-- files. Parsing is most of what loading a large spec file costs (a 5000-
-- test file: 11-14 ms to parse, 3 ms to load compiled), and every run of
-- sonde test parses luassert's two dozen files again.
--
-- A cached file is LuaJIT's own bytecode (with line information, and the
-- keys table constructors reserve: sonde.boot.bytecode), named by a hash of the
-- format, the LuaJIT version, this sonde build and the source's path, and
-- by the 64-bit hash of the source's content: a file whose content differs
-- in any byte has another name, and is compiled afresh. The source is
-- hashed in C and a cached chunk loads with loadfile, so when the cache has
-- it neither file is read whole into a Lua string. A cache that cannot be
-- read or written is simply not used. The cache lives in $SONDE_CACHE_DIR,
-- else $XDG_CACHE_HOME/sonde, else ~/.cache/sonde; SONDE_CACHE=off turns it
-- off.
--
-- What the cache holds runs as code, so it is only used when nobody else
-- can write there: the directory and its chunks/ (and any level sonde
-- made) must belong to the effective user and be writable by neither group
-- nor others; else one warning line, and no cache. Entries are written
-- mode 0600. Only Lua source is compiled and cached: spec files and
-- scripts load as text (M.loadfile), never as bytecode.
local loop = require("sonde.c.loop")
local bit = require("bit")

local M = {}

local FORMAT = "sonde-chunk 5"

local dir -- the directory of cached chunks; false: no cache
local base -- the directory holding it

-- The directory the settings name, or nil.
local function configured_base()
  local setting = os.getenv("SONDE_CACHE")
  if setting == "off" or setting == "0" or setting == "no" then return nil end
  local named = os.getenv("SONDE_CACHE_DIR")
  if named and named ~= "" then return named end
  local xdg, home = os.getenv("XDG_CACHE_HOME"), os.getenv("HOME")
  if xdg and xdg ~= "" then return xdg .. "/sonde" end
  if home and home ~= "" then return home .. "/.cache/sonde" end
  return nil
end

local GROUP_OR_OTHER_WRITE = tonumber("022", 8)

-- Why code kept in the directory `path` could be someone else's, or nil
-- when only this user (or root) can have put it there. One that does not
-- exist is fine: sonde makes it.
local function distrust(path)
  local kind, _, perm, uid = loop.stat(path)
  if kind == nil then return nil end
  if kind ~= "dir" then return path .. " is not a directory" end
  if uid ~= loop.euid() then
    return string.format("%s belongs to uid %d, not to you (uid %d)", path, uid, loop.euid())
  end
  if bit.band(perm, GROUP_OR_OTHER_WRITE) ~= 0 then
    return string.format("%s is writable by %s (mode %04o)", path,
      bit.band(perm, tonumber("002", 8)) ~= 0 and "others" or "its group", perm)
  end
  return nil
end

-- refuse(why): one line on stderr, and no cache for this process or its
-- --jobs workers (M.refused).
local function refuse(why)
  io.stderr:write("sonde: not using the compiled-chunk cache: ", why, ": it must be yours and writable by you ",
    "alone (or set SONDE_CACHE_DIR, or SONDE_CACHE=off)\n")
  dir, M.refused = false, true
  return false
end

local function cache_dir()
  if dir ~= nil then return dir end
  dir = false
  base = configured_base()
  if not base then return dir end
  dir = base .. "/chunks"
  local why = distrust(base) or distrust(dir)
  if why then return refuse(why) end
  return dir
end

-- Creates `path` and its parents, readable by this user alone (what is in
-- the cache runs as code); true when it exists afterwards, and `made`
-- lists the directories it created.
local function make_dirs(path, made)
  if loop.stat(path) == "dir" then return true end
  local parent = path:match("^(.+)/[^/]+$")
  if parent and not make_dirs(parent, made) then return false end
  if loop.mkdir(path, tonumber("700", 8)) == nil then return false end
  made[#made + 1] = path
  return true
end

-- make_cache_dir() -> whether chunks/ is there to write in, and still
-- trusted: each level is checked again once it exists (another user may
-- have made one meanwhile).
local function make_cache_dir()
  local made = {}
  if not make_dirs(dir, made) then return false end
  made[#made + 1] = base
  made[#made + 1] = dir
  for _, path in ipairs(made) do
    local why = distrust(path)
    if why then return refuse(why) end
  end
  return true
end

local function read_all(path, mode)
  local f = io.open(path, mode)
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- What a cached chunk was made by: its key changes with any of them. The
-- sonde build counts through the code of the two modules that make the
-- cache's bytes, sonde.boot.bytecode (which writes them) and this one (which
-- compiles): the hash of their bytecode as compiled into the binary (which
-- changes with their source and with the LuaJIT that built it), or of
-- their source files when they load from a source tree (SONDE_LUA_PATH).
-- jit.version names the LuaJIT that loads the chunks.
local MAKERS = { "sonde.boot.bytecode", "sonde.boot.chunk_cache" }
local maker

local function build_identity()
  local id = { FORMAT, jit.version }
  for _, name in ipairs(MAKERS) do
    local path = not package.preload[name] and package.searchpath(name, package.path)
    id[#id + 1] = path and loop.hash_file(path) or loop.embedded_hash(name) or ""
  end
  return table.concat(id, "\0") .. "\0"
end

-- The cached chunk of `path` whose content hashes to `hash`.
local function cache_file(path, hash)
  maker = maker or build_identity()
  return string.format("%s/%s-%s.bc", dir, loop.hash64(maker .. path), hash)
end

-- Storing a file's new content drops the entries of its earlier ones, but
-- files under ever new names (temporary specs) would pile up: now and then
-- (1 store in 256), when there are more than MAX_ENTRIES, about half of
-- them, chosen at random, are dropped.
local MAX_ENTRIES = 4096

-- prune([max]): with more than max entries (MAX_ENTRIES), drops about half.
function M.prune(max)
  if not cache_dir() then return end
  local entries = loop.scandir(dir)
  if not entries or #entries <= (max or MAX_ENTRIES) then return end
  local now = tostring(loop.real_now())
  for _, e in ipairs(entries) do
    if loop.hash64(e.name .. now):byte(-1) < 56 then os.remove(dir .. "/" .. e.name) end -- "0".."7"
  end
end

local function maybe_prune(file)
  if loop.hash64(file .. tostring(loop.real_now())):sub(-2) == "00" then M.prune() end
end

-- The cache's entries by the part of their name that names the file
-- ("<path hash>-"), read once, at the first store of a run.
local listing

local function entries_of(prefix)
  if not listing then
    listing = {}
    for _, e in ipairs(loop.scandir(dir) or {}) do
      local p = e.name:match("^(%x+%-)%x+%.bc$")
      if p then
        listing[p] = listing[p] or {}
        listing[p][e.name] = true
      end
    end
  end
  listing[prefix] = listing[prefix] or {}
  return listing[prefix]
end

-- Drops the entries of the earlier contents of the file whose new entry is
-- `file` (a large spec edited often would otherwise fill the cache).
local function drop_earlier(file)
  local name = file:match("[^/]+$")
  local names = entries_of(name:match("^%x+%-"))
  for other in pairs(names) do
    if other ~= name then
      os.remove(dir .. "/" .. other)
      names[other] = nil
    end
  end
  names[name] = true
end

-- Writes whole or not at all: a reader never sees half a file, and two
-- processes (--jobs workers) never write the same temporary file.
-- Entries are the user's alone (mode 0600).
local dir_made -- make_dirs(dir) succeeded in this run

-- sonde.boot.bytecode's dump, required at the first store (most runs store
-- nothing); false while it loads, since from source it loads through here.
local dump

local function store(file, chunk)
  if dump == false then return end
  if dump == nil then
    dump = false
    local loaded, bytecode = pcall(require, "sonde.boot.bytecode")
    dump = loaded and bytecode.dump or nil
    if not dump then return end
  end
  local ok, bytecode = pcall(dump, chunk)
  if not ok then return end
  dir_made = dir_made or make_cache_dir()
  if not dir_made then return end
  local tmp = string.format("%s.%d.tmp", file, loop.pid())
  os.remove(tmp) -- one a process of the same pid left
  if not (loop.write_private(tmp, bytecode) and os.rename(tmp, file)) then return os.remove(tmp) end
  drop_earlier(file)
  maybe_prune(file)
end

local ESC = 27 -- the first byte of LuaJIT's bytecode

-- Compiles `path`, whose content is `source`, and caches the chunk; mode
-- is loadfile's ("t": source only). Bytecode (in a module) is not cached.
local function compile(path, source, mode)
  -- as loadfile: a first line starting with # is skipped, its newline kept
  local text = source:byte(1) == 35 and source:gsub("^[^\n]*", "", 1) or source
  local chunk, err = loadstring(text, "@" .. path, mode)
  if not chunk or text:byte(1) == ESC then return chunk, err end
  store(cache_file(path, loop.hash64(source)), chunk)
  return chunk
end

-- Smaller files parse about as fast as their bytecode loads (a 1.5 KB
-- module: 26 us to parse, 31 through the cache), so they are not cached.
local MIN_CACHED = 4096

-- From the cache when the content is there (a cached file cut short fails
-- to load, and is compiled again); the content compiled is the content
-- hashed, even when the file changes meanwhile. What is no regular file (a
-- pipe, a FIFO) loads as Lua's loadfile loads it. kind and size are what
-- loop.stat said of path; mode is loadfile's.
local function load_path(path, kind, size, mode)
  if kind ~= "file" or size < MIN_CACHED then return loadfile(path, mode) end
  local hash = loop.hash_file(path)
  if not hash then return loadfile(path, mode) end
  local chunk = loadfile(cache_file(path, hash), "b")
  if chunk then return chunk end
  local source = read_all(path, "rb")
  if not source then return loadfile(path, mode) end -- its error
  return compile(path, source, mode)
end

-- loadfile(path) -> chunk | nil, err: as Lua's loadfile(path, "t"), through
-- the cache: a spec file or a script is Lua source, never bytecode.
function M.loadfile(path)
  if not cache_dir() then return loadfile(path, "t") end
  local kind, size = loop.stat(path)
  return load_path(path, kind, size, "t")
end

-- install(): Lua modules found on package.path load through the cache too.
-- Errors read as those of Lua's own searcher.
function M.install()
  if not cache_dir() or package.loaders[2] == M.searcher then return end
  package.loaders[2] = M.searcher
end

-- Walks package.path as package.searchpath does: the first file there
-- that opens.
function M.searcher(name)
  local file = name:gsub("%.", "/")
  local tried = {}
  for template in package.path:gmatch("[^;]+") do
    local path = template:gsub("%?", function() return file end)
    local kind, size = loop.stat(path)
    local found = kind == "file"
    if kind ~= nil and not found then -- a directory, a FIFO: there when it opens, as for Lua
      local f = io.open(path, "rb")
      found = f ~= nil and f:close()
    end
    if found then
      local chunk, lerr = load_path(path, kind, size, "bt") -- as Lua's own searcher
      if not chunk then
        error(string.format("error loading module '%s' from file '%s':\n\t%s", name, path, lerr), 0)
      end
      return chunk
    end
    tried[#tried + 1] = "\n\tno file '" .. path .. "'"
  end
  return table.concat(tried)
end

return M
