-- sonde.chunk_cache: compiled Lua kept between runs, as Python keeps .pyc
-- files. Parsing is most of what loading a large spec file costs (a 5000-
-- test file: 11-14 ms to parse, 3 ms to load compiled), and every run of
-- sonde test parses luassert's two dozen files again.
--
-- Each cached file holds, on its first lines, the LuaJIT version, the
-- source's path, size and a 64-bit hash of its content, then LuaJIT's own
-- bytecode (string.dump, with line information). A file whose content
-- differs in any byte is compiled afresh; a cache that cannot be read or
-- written is simply not used. The cache lives in $SONDE_CACHE_DIR, else
-- $XDG_CACHE_HOME/sonde, else ~/.cache/sonde; SONDE_CACHE=off turns it off.
local loop = require("sonde.c.loop")

local M = {}

local FORMAT = "sonde-chunk 2"

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

-- The first two lines a cached chunk of `path` with content `source` has;
-- the third gives the length of the bytecode that follows.
local function header(path, source)
  return string.format("%s %s %d %s\n%s\n", FORMAT, jit.version, #source, loop.hash64(source), path)
end

-- Entries are keyed by path, so files under ever new names (temporary
-- specs) would pile up: now and then (1 store in 256), when there are more
-- than MAX_ENTRIES, about half of them, chosen at random, are dropped.
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

-- Writes whole or not at all: a reader never sees half a file, and two
-- processes (--jobs workers) never write the same temporary file.
local function store(file, head, chunk)
  local ok, bytecode = pcall(string.dump, chunk)
  if not ok or not make_dirs(dir) then return end
  local tmp = string.format("%s.%d.tmp", file, loop.pid())
  local f = io.open(tmp, "wb")
  if not f then return end
  local written = f:write(head, #bytecode, "\n", bytecode)
  local closed = f:close()
  if not (written and closed and os.rename(tmp, file)) then return os.remove(tmp) end
  maybe_prune(file)
end

-- The bytecode in a cached file whose first lines are `head`, when it is
-- all there. (Read past the header, not cut out of the whole file: a large
-- spec's bytecode is not copied twice.)
local function read_bytecode(file, head)
  local f = io.open(file, "rb")
  if not f then return nil end
  local ok = f:read(#head) == head
  local len = ok and tonumber(f:read("*l"))
  local bytecode = len and f:read("*a")
  f:close()
  if bytecode and #bytecode == len then return bytecode end
end

-- The chunk of `path`, whose content is `source` (nil: it could not be
-- read, and Lua's loadfile says why), from the cache when it is there.
local function load_source(path, source)
  if not source then return loadfile(path) end
  local head = header(path, source)
  local file = dir .. "/" .. loop.hash64(path) .. ".bc"
  local bytecode = read_bytecode(file, head)
  if bytecode then
    local chunk = loadstring(bytecode, "@" .. path)
    if chunk then return chunk end
  end
  -- as loadfile: a first line starting with # is skipped, its newline kept
  local text = source:byte(1) == 35 and source:gsub("^[^\n]*", "", 1) or source
  local chunk, err = loadstring(text, "@" .. path)
  if not chunk then return nil, err end
  store(file, head, chunk)
  return chunk
end

-- loadfile(path) -> chunk | nil, err: as Lua's loadfile, through the cache.
function M.loadfile(path)
  if not cache_dir() then return loadfile(path) end
  return load_source(path, read_all(path, "rb"))
end

-- install(): Lua modules found on package.path load through the cache too.
-- Errors read as those of Lua's own searcher.
function M.install()
  if not cache_dir() or package.loaders[2] == M.searcher then return end
  package.loaders[2] = M.searcher
end

-- Walks package.path as package.searchpath does, but reads the file it
-- finds at once instead of opening it to test that it is there and then
-- again to load it.
function M.searcher(name)
  local file = name:gsub("%.", "/")
  local tried = {}
  for template in package.path:gmatch("[^;]+") do
    local path = template:gsub("%?", function() return file end)
    local f = io.open(path, "rb")
    if f then
      local source = f:read("*a")
      f:close()
      local chunk, err = load_source(path, source)
      if not chunk then
        error(string.format("error loading module '%s' from file '%s':\n\t%s", name, path, err), 0)
      end
      return chunk
    end
    tried[#tried + 1] = "\n\tno file '" .. path .. "'"
  end
  return table.concat(tried)
end

return M
