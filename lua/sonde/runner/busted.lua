-- sonde.runner.busted: what busted reads before it runs, read the same way,
-- so that a busted project runs with `sonde test` typed in its root.
--
-- `.busted` (or -f FILE) is a Lua file returning a table of tasks: the one
-- named by --run (else `default`) and then `_all` fill in what the command
-- line left unset, key by key, as busted merges them (a list given on the
-- command line replaces the file's, it is not appended to). Keys are
-- busted's long option names (`ROOT`, `pattern`, `exclude-pattern`,
-- `lpath`, `helper`, `output`, `tags`, ...); each goes through the same row
-- of sonde.runner.options as its flag, so a value is checked as the flag's
-- would be. A key sonde does not know is one line naming it.
local loop = require("sonde.c.loop")
local options = require("sonde.runner.options")
local command_line = require("sonde.lib.command_line")

local M = {}

-- busted's default module paths, prefixed to package.path / cpath.
local LPATH = "./src/?.lua;./src/?/?.lua;./src/?/init.lua"
local CPATH = "./csrc/?.so;./csrc/?/?.so"

-- Keys busted stores but that are no options of a task.
local IGNORED = { version = true, help = true }

local function values_of(v)
  if type(v) == "table" then return v end
  return { v }
end

-- apply_key(opts, where, key, value) -> true | nil, err: one key of a task.
local function apply_key(opts, where, key, value)
  if key == "ROOT" then
    if opts.given.paths then return true end
    for _, p in ipairs(values_of(value)) do table.insert(opts.paths, tostring(p)) end
    opts.given.paths = true
    return true
  end
  if IGNORED[key] then return true end
  local name = (#key == 1 and "-" or "--") .. key
  local row = options.BY_NAME[name] or options.BY_NAME["-" .. key]
  if not row or row.hidden then
    return nil, string.format("%s: unknown key '%s' (not a busted option sonde knows; see sonde test --help)",
      where, key)
  end
  if opts.given[row.key] then return true end -- the command line wins
  opts.given[row.key] = true
  if row.kind == "optional" and type(value) == "string" then -- coverage = "cov.info"
    if value == "" then return nil, string.format("%s: '%s' expects true, false or a file name, got ''", where, key) end
    opts[row.key] = value
    return true
  end
  if row.kind == "flag" or row.kind == "optional" then
    if type(value) ~= "boolean" then
      return nil, string.format("%s: '%s' expects true%s, got %s", where, key,
        row.kind == "optional" and ", false or a file name" or " or false", type(value))
    end
    opts[row.key] = value
    if value and row.note then opts.notes[#opts.notes + 1] = row.note .. " (set in " .. where .. ")" end
    return true
  end
  if type(value) ~= "string" and type(value) ~= "number" and type(value) ~= "table" then
    return nil, string.format("%s: '%s' expects a string or a list, got %s", where, key, type(value))
  end
  for _, v in ipairs(values_of(value)) do
    local ok, err = command_line.take_value(opts, row, where .. ": '" .. key .. "'", v)
    if not ok then return nil, err end
  end
  if row.note then opts.notes[#opts.notes + 1] = row.note .. " (set in " .. where .. ")" end
  return true
end

-- apply_task(opts, where, t): every key of a task, in a stable order so
-- that the first bad key is always the same one.
local function apply_task(opts, where, t)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then return nil, where .. ": keys are option names, got a " .. type(k) .. " key" end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local ok, err = apply_key(opts, where, k, t[k])
    if not ok then return nil, err end
  end
  return true
end

-- read(path) -> the table the file returns | nil, err.
local function read(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then return nil, "cannot load " .. path .. ": " .. err end
  local ok, t = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(t) end
  if type(t) ~= "table" then return nil, path .. ": expected the file to return a table of tasks, got " .. type(t) end
  return t
end

-- load(opts) -> true | nil, err: fills opts from the config file, if any.
function M.load(opts)
  local path = opts.config_file or ".busted"
  if not opts.config_file and loop.stat(path) ~= "file" then
    if opts.run then return nil, "--run " .. opts.run .. ": there is no .busted file here to take it from" end
    return true
  end
  local config, err = read(path)
  if not config then return nil, err end
  local name = opts.run
  local chosen = config.default
  if name then chosen = config[name] end
  if name and type(chosen) ~= "table" then
    return nil, string.format("%s: task '%s' not found, or not a table", path, name)
  end
  if chosen ~= nil then
    if type(chosen) ~= "table" then return nil, path .. ": 'default' must be a table of options" end
    local ok, terr = apply_task(opts, path .. " (" .. (name or "default") .. ")", chosen)
    if not ok then return nil, terr end
  end
  if config._all ~= nil then
    if type(config._all) ~= "table" then return nil, path .. ": '_all' must be a table of options" end
    local ok, terr = apply_task(opts, path .. " (_all)", config._all)
    if not ok then return nil, terr end
  end
  opts.config_path = path
  return true
end

-- default_root() -> where specs are when neither the command line nor a
-- config file says: busted's spec/, else sonde's specs/.
local function default_root()
  if loop.stat("spec") == "dir" then return { "spec" } end
  return { "specs" }
end

-- prefix_paths(opts): busted's module paths before the usual ones.
-- prefixed(path, prefix) -> path with prefix in front, once: a host that
-- runs specs again (an embedding program, --watch) must not grow it.
local function prefixed(path, prefix)
  if prefix == "" or path:sub(1, #prefix + 1) == prefix .. ";" then return path end
  return ((prefix .. ";" .. path):gsub(";;+", ";"))
end

local function prefix_paths(opts)
  package.path = prefixed(package.path, opts.lpath or LPATH)
  package.cpath = prefixed(package.cpath, opts.cpath or CPATH)
end

-- set_arg(argv): the global `arg` spec files see, as busted gives it: the
-- runner at 0, the interpreter at -1 (sonde is both), then the command
-- line's words.
local function set_arg(argv)
  local exe = loop.exe_path()
  local t = { [-1] = exe, [0] = exe }
  for i, a in ipairs(argv or {}) do t[i] = a end
  _G.arg = t
end

-- run_helper(opts) -> true | nil, err: busted's --helper, a file or a
-- module run once before the spec files, its `arg` the -Xhelper values.
-- It sees the DSL and luassert's `assert` (busted's globals), and what it
-- assigns lands in _G for specs and modules alike.
local function run_helper(opts)
  local helper = opts.helper
  if not helper or helper == "" then return true end
  local saved = _G.arg
  local harg = { [-1] = saved[-1], [0] = saved[0] }
  for i, v in ipairs(opts.xhelper) do harg[i] = v end
  _G.arg = harg
  local ok, err
  if helper:find("%.lua$") then
    local chunk, lerr = loadfile(helper, "t")
    if not chunk then
      _G.arg = saved
      return nil, "--helper " .. helper .. ": " .. lerr
    end
    setfenv(chunk, require("sonde.runner.dsl").helper_env())
    ok, err = pcall(chunk)
  else
    ok, err = pcall(require, helper)
  end
  _G.arg = saved
  if not ok then return nil, "--helper " .. helper .. " raised: " .. tostring(err) end
  return true
end

-- prepare(opts) -> true | nil, err: the Lua side of a run before any spec
-- file loads, in the order busted sets it up: module paths, `arg`, the -e
-- statements, the helper; and the DSL's --lazy and --no-auto-insulate.
-- Also in each --jobs worker, from the options it is sent.
function M.prepare(opts)
  -- `require("busted.runner")()` at the top of a spec file makes it run
  -- under plain lua with busted; under a runner it does nothing.
  package.preload["busted.runner"] = function() return function() end end
  package.preload["busted"] = function() return require("sonde.runner.dsl").busted_module() end
  prefix_paths(opts)
  set_arg(opts.argv)
  require("sonde.runner.dsl").configure { lazy = opts.lazy, auto_insulate = opts.auto_insulate ~= false }
  for i, statement in ipairs(opts.execute or {}) do
    local chunk, err = loadstring(statement, "=-e #" .. i)
    if not chunk then return nil, "-e: " .. err end
    local ok, rerr = pcall(chunk)
    if not ok then return nil, "-e '" .. statement .. "' raised: " .. tostring(rerr) end
  end
  return run_helper(opts)
end

-- parse(paths, args) -> opts | nil, err: the command line, then -C, then
-- the config file, then what neither set.
function M.parse(paths, args)
  local opts, err = options.parse_args(paths, args)
  if not opts then return nil, err end
  if opts.worker then return options.finish(opts) end -- its parent sends the options that count
  opts.argv = args
  if opts.directory then
    local ok, cerr = loop.chdir(opts.directory)
    if not ok then return nil, "-C " .. opts.directory .. ": " .. cerr end
  end
  local ok, lerr = M.load(opts)
  if not ok then return nil, lerr end
  return options.finish(opts, #opts.paths == 0 and default_root() or nil)
end

return M
