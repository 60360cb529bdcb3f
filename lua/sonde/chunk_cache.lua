-- sonde.chunk_cache: compiled Lua kept between runs, as Python keeps .pyc
-- files. Parsing is most of what loading a large spec file costs (a 5000-
-- test file: 11-14 ms to parse, 3 ms to load compiled), and every run of
-- sonde test parses luassert's two dozen files again.
--
-- A cached file is LuaJIT's own bytecode (with line information, and the
-- keys table constructors reserve: sonde.bytecode), named by a hash of the
-- format, the LuaJIT version and the source's path, and by the 64-bit hash
-- of the source's content: a file whose content differs in any byte has
-- another name, and is compiled afresh. The source is hashed in C and a
-- cached chunk loads with loadfile, so when the cache has it neither file
-- is read whole into a Lua string. A cache that cannot be read or written
-- is simply not used. The cache lives in $SONDE_CACHE_DIR, else
-- $XDG_CACHE_HOME/sonde, else ~/.cache/sonde; SONDE_CACHE=off turns it off.
local loop = require("sonde.c.loop")

local M = {}

local FORMAT = "sonde-chunk 5"

local dir -- the directory of cached chunks; false: no cache

local function cache_dir()
  if dir ~= nil then return dir end
  dir = false
  local setting = os.getenv("SONDE_CACHE")
  if setting == "off" or setting == "0" or setting == "no" then return dir end
  local base = os.getenv("SONDE_CACHE_DIR")
  if not base or base == "" then
    local xdg, home = os.getenv("XDG_CACHE_HOME"), os.getenv("HOME")
    if xdg and xdg ~= "" then
      base = xdg .. "/sonde"
    elseif home and home ~= "" then
      base = home .. "/.cache/sonde"
    else
      return dir
    end
  end
  dir = base .. "/chunks"
  return dir
end

-- Creates `path` and its parents, readable by this user alone (what is in
-- the cache runs as code); true when it exists afterwards.
local function make_dirs(path)
  if loop.stat(path) == "dir" then return true end
  local parent = path:match("^(.+)/[^/]+$")
  if parent and not make_dirs(parent) then return false end
  return loop.mkdir(path, tonumber("700", 8)) ~= nil
end

local function read_all(path, mode)
  local f = io.open(path, mode)
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- The cached chunk of `path` whose content hashes to `hash`.
local function cache_file(path, hash)
  return string.format("%s/%s-%s.bc", dir, loop.hash64(FORMAT .. "\0" .. jit.version .. "\0" .. path), hash)
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
local dir_made -- make_dirs(dir) succeeded in this run

-- sonde.bytecode's dump, required at the first store (most runs store
-- nothing); false while it loads, since from source it loads through here.
local dump

local function store(file, chunk)
  if dump == false then return end
  if dump == nil then
    dump = false
    local loaded, bytecode = pcall(require, "sonde.bytecode")
    dump = loaded and bytecode.dump or nil
    if not dump then return end
  end
  local ok, bytecode = pcall(dump, chunk)
  if not ok then return end
  dir_made = dir_made or make_dirs(dir)
  if not dir_made then return end
  local tmp = string.format("%s.%d.tmp", file, loop.pid())
  local f = io.open(tmp, "wb")
  if not f then return end
  local written = f:write(bytecode)
  local closed = f:close()
  if not (written and closed and os.rename(tmp, file)) then return os.remove(tmp) end
  drop_earlier(file)
  maybe_prune(file)
end

-- Compiles `path`, whose content is `source`, and caches the chunk.
local function compile(path, source)
  -- as loadfile: a first line starting with # is skipped, its newline kept
  local text = source:byte(1) == 35 and source:gsub("^[^\n]*", "", 1) or source
  local chunk, err = loadstring(text, "@" .. path)
  if not chunk then return nil, err end
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
-- loop.stat said of path.
local function load_path(path, kind, size)
  if kind ~= "file" or size < MIN_CACHED then return loadfile(path) end
  local hash = loop.hash_file(path)
  if not hash then return loadfile(path) end
  local chunk = loadfile(cache_file(path, hash), "b")
  if chunk then return chunk end
  local source = read_all(path, "rb")
  if not source then return loadfile(path) end -- its error
  return compile(path, source)
end

-- loadfile(path) -> chunk | nil, err: as Lua's loadfile, through the cache.
function M.loadfile(path)
  if not cache_dir() then return loadfile(path) end
  return load_path(path, loop.stat(path))
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
      local chunk, lerr = load_path(path, kind, size)
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
