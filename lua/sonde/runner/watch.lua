-- sonde.runner.watch: `sonde test --watch`, fast feedback while editing.
--
-- One run of every spec file, then: each spec file's run records the
-- files it loaded (require through package.path, dofile, loadfile); the
-- folders of the spec roots and of those files are watched (libuv fs
-- events, sonde.c.fswatch). Changes are gathered until none has come for
-- DEBOUNCE seconds, then only the spec files that loaded a changed file
-- run again, and a changed, added or renamed spec file runs itself. A
-- changed file that does not compile is one line, and nothing runs until
-- the next save. Keys (sonde.c.keys): a runs everything, f the tests that
-- failed last, q (or Ctrl-C) ends the watch, stopping what runs. On a
-- terminal the screen is cleared before each run and one line says what
-- changed and what runs.
--
-- Runs happen in this process, one after another, each with fresh
-- reporters (a report file is rewritten by each run); the modules a spec
-- file loaded are dropped from package.loaded before each run, so a run
-- sees what is on disk. Not with --jobs or --shard (sonde.runner refuses).
local fswatch = require("sonde.c.fswatch")
local ckeys = require("sonde.c.keys")
local loop = require("sonde.c.loop")
local task = require("sonde.task")
local options = require("sonde.runner.options")
local output = require("sonde.runner.capture")
local util = require("sonde.lib.report_util")

local M = {}

M.DEBOUNCE = 0.1 -- seconds without a change before a run

local Watch = {}
Watch.__index = Watch

-- ------------------------------------------------------------------ paths

local cwd_prefix

local function normalize(path)
  path = path:gsub("^%./", ""):gsub("/%./", "/"):gsub("//+", "/")
  cwd_prefix = cwd_prefix or ((loop.cwd() or "") .. "/")
  if path:sub(1, #cwd_prefix) == cwd_prefix then path = path:sub(#cwd_prefix + 1) end
  return path
end

local function dir_of(path) return path:match("^(.*)/[^/]*$") or "." end

local function join(dir, name) return dir == "." and name or (dir .. "/" .. name) end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- ------------------------------------------------------------ what loads

-- The files each spec file loaded are recorded while it runs: the Lua
-- searcher is wrapped (the path is package.searchpath's, recorded even
-- when the module fails to load, so that fixing it runs the spec again),
-- and so are dofile and loadfile.
function Watch:record_loads()
  local searcher = package.loaders[2]
  local watch = self
  package.loaders[2] = function(name)
    local ok, found = pcall(searcher, name)
    if watch.recording then
      local path = package.searchpath(name, package.path)
      if path then
        watch.recording[normalize(path)] = true
        watch.modules[name] = true
      end
    end
    if not ok then error(found, 0) end
    return found
  end
  for _, fname in ipairs({ "dofile", "loadfile" }) do
    local real = _G[fname]
    _G[fname] = function(path, ...)
      if watch.recording and type(path) == "string" then watch.recording[normalize(path)] = true end
      return real(path, ...)
    end
  end
end

-- ------------------------------------------------------------- the screen

function Watch:say(...)
  local out = self.out
  out:write(...)
  out:flush()
end

-- The status line: what changed and what runs.
function Watch:status(text)
  if self.tty then self:say("\27[2J\27[3J\27[H") end
  self:say("sonde test --watch: ", text, "\n")
end

function Watch:footer()
  local files, dirs = 0, 0
  for _ in pairs(self:watched_files()) do files = files + 1 end
  for _ in pairs(self.watchers) do dirs = dirs + 1 end
  self:say(string.format("\nwatching %s in %s; %s\n", util.plural(files, "file"), util.plural(dirs, "folder"),
    self.keys and "a: run all, f: run failures, q: quit" or "Ctrl-C: quit"))
end

-- names(list) -> "a, b and 3 more"
local function names(list)
  if #list <= 3 then return table.concat(list, ", ") end
  return table.concat({ list[1], list[2], list[3] }, ", ") .. " and " .. (#list - 3) .. " more"
end

-- ---------------------------------------------------------------- running

-- A listener that keeps the run's failures, for the f key; `test` tells a
-- test (it had a test_start) from a hook's or a file's error.
local function failure_listener(list, opts)
  local started = {}
  return {
    test_start = function(_, r) started[r.name] = true end,
    test_end = function(_, r)
      if util.is_failed(r.status, opts) then
        list[#list + 1] = { file = r.file, name = r.name, test = started[r.name] }
      end
    end,
    load_error = function(_, r) list[#list + 1] = { file = r.file, name = r.name } end,
  }
end

-- run(files[, filter]): one run of `files`, in this process.
function Watch:run(files, filter)
  for name in pairs(self.modules) do package.loaded[name] = nil end -- loaded again from disk
  local opts = self.opts
  local saved_filter = opts.filter
  if filter then opts.filter = filter end
  local reporters, err = options.open_reporters(opts, self.out)
  if not reporters then
    opts.filter = saved_filter
    self:say("sonde test: ", err, "\n")
    return
  end
  local failures = {}
  local listeners = { unpack(reporters) }
  listeners[#listeners + 1] = failure_listener(failures, opts)
  local run = self.runner.Run.new(opts, listeners)
  local run_file = run.run_file
  local watch = self
  run.run_file = function(r, path)
    local key = normalize(path)
    watch.deps[key] = watch.deps[key] or {} -- kept from earlier runs: a module deleted and made again still counts
    watch.recording = watch.deps[key]
    run_file(r, path)
    watch.recording = nil
  end
  self.running = run
  if run.capture then output.begin() end
  local ok, summary = pcall(run.main, run, files)
  if run.capture then output.finish() end
  self.running = nil
  opts.filter = saved_filter
  local unwritten = options.close_reporters(reporters)
  if not ok then
    self:say("sonde test: internal error: ", tostring(summary), "\n")
    return
  end
  if not options.to_terminal(reporters) then
    local human = require("sonde.runner.reporters.human")
    self:say(human.details(summary), "\n", human.closing_line(summary), "\n")
  end
  if unwritten > 0 then summary.report_errors = unwritten end
  self.failures = failures
  self.summary = summary
  self:watch_folders()
  self:footer()
end

-- ---------------------------------------------------------------- folders

-- Every file whose change means a run: the spec files and what they load.
function Watch:watched_files()
  local all = set_of(self.files)
  for _, deps in pairs(self.deps) do
    for path in pairs(deps) do all[path] = true end
  end
  return all
end

-- The spec roots and their subfolders (as discovery walks them), and the
-- folder of every watched file.
function Watch:folders()
  local dirs = {}
  local function walk(dir)
    dirs[dir] = true
    if self.opts.recursive == false then return end
    for _, e in ipairs(loop.scandir(dir) or {}) do
      if e.dir and e.name:sub(1, 1) ~= "." then walk(join(dir, e.name)) end
    end
  end
  for _, p in ipairs(self.opts.paths) do
    local path = normalize(p):gsub("/+$", "")
    if path == "" then path = "." end
    if loop.stat(path) == "dir" then walk(path) else dirs[dir_of(path)] = true end
  end
  for path in pairs(self:watched_files()) do dirs[dir_of(path)] = true end
  return dirs
end

-- Starts a watcher on each folder not yet watched; stops those of folders
-- that went away.
function Watch:watch_folders()
  local want = self:folders()
  for dir, w in pairs(self.watchers) do
    if not want[dir] or loop.stat(dir) ~= "dir" then
      w:close()
      self.watchers[dir] = nil
    end
  end
  for dir in pairs(want) do
    if not self.watchers[dir] and loop.stat(dir) == "dir" then
      local w = fswatch.open(dir, self.token)
      if w then
        self.watchers[dir] = w
        self.watcher_dir[w] = dir
      end
    end
  end
end

-- The names the watchers saw, as paths, into self.changed.
function Watch:take_changes()
  for dir, w in pairs(self.watchers) do
    for _, name in ipairs(w:take()) do
      if name == "" then -- libuv could not say: every watched file in the folder
        for path in pairs(self:watched_files()) do
          if dir_of(path) == dir then self.changed[path] = true end
        end
      else
        self.changed[join(dir, name)] = true
      end
    end
  end
end

-- --------------------------------------------------------------- changes

-- What a batch of changes runs: spec files that changed or came, and
-- those that loaded a changed file. A changed file that does not compile
-- is one line each, and nothing runs.
function Watch:on_changes(changed)
  local files, derr = self.runner.discover(self.opts.paths, self.opts)
  if not files then
    self:status(derr)
    return
  end
  local before, now, watched = set_of(self.files), set_of(files), self:watched_files()
  local relevant, broken = {}, {}
  for path in pairs(changed) do
    if before[path] or now[path] or watched[path] then
      relevant[#relevant + 1] = path
      if loop.stat(path) == "file" then
        local ok, err = loadfile(path)
        if not ok then broken[#broken + 1] = err end
      end
    end
  end
  local dirs_changed = false
  for path in pairs(changed) do
    if loop.stat(path) == "dir" and not self.watchers[path] then dirs_changed = true end
  end
  if #relevant == 0 then
    if dirs_changed then self:watch_folders() end
    return
  end
  table.sort(relevant)
  if #broken > 0 then -- one line each; the next save that compiles runs what it should
    table.sort(broken)
    self:status(broken[1]:match("^[^\n]*") .. " (nothing runs until it compiles)")
    for i = 2, #broken do self:say("sonde test --watch: ", broken[i]:match("^[^\n]*"), "\n") end
    return self:footer()
  end
  local run, added, removed = {}, {}, {}
  for _, f in ipairs(files) do
    local hit = changed[f] or not before[f]
    if not before[f] then added[#added + 1] = f end
    for path in pairs(self.deps[f] or {}) do hit = hit or changed[path] end
    if hit then run[#run + 1] = f end
  end
  for _, f in ipairs(self.files) do
    if not now[f] then
      removed[#removed + 1] = f
      self.deps[f] = nil
    end
  end
  self.files = files
  local what, edited = {}, {}
  for _, p in ipairs(relevant) do
    if (now[p] or false) == (before[p] or false) then edited[#edited + 1] = p end -- not a spec file that came or went
  end
  if #edited > 0 then what[#what + 1] = names(edited) .. " changed" end
  if #added > 0 then what[#what + 1] = names(added) .. " added" end
  if #removed > 0 then what[#what + 1] = names(removed) .. " removed" end
  if #run == 0 then
    self:status(table.concat(what, ", ") .. "; nothing to run")
    self:watch_folders()
    self:footer()
    return
  end
  self:status(table.concat(what, ", ") .. "; running " .. names(run))
  self:run(run)
end

-- ------------------------------------------------------------------- keys

local function exact(name) return "^" .. name:gsub("%p", "%%%0") .. "$" end

function Watch:on_key(key)
  if key == "q" or key == "\3" or key == "\4" then
    self.quit = self.quit or "q"
  elseif key == "a" then
    local files, err = self.runner.discover(self.opts.paths, self.opts)
    if not files then return self:status(err) end
    self.files = files
    self:status("running every spec file")
    self:run(files)
  elseif key == "f" then
    local list = self.failures or {}
    if #list == 0 then
      self:status("no failures to run again")
      return self:footer()
    end
    local files, seen, filter, whole = {}, {}, {}, false
    for _, f in ipairs(list) do
      if not seen[f.file] then
        seen[f.file] = true
        if loop.stat(f.file) == "file" then files[#files + 1] = f.file end
      end
      if f.test then filter[#filter + 1] = exact(f.name) else whole = true end -- a file or hook error: its whole file
    end
    self:status(string.format("running the %s that failed", util.plural(#list, "test")))
    self:run(files, not whole and filter or nil)
  end
end

-- ------------------------------------------------------------------- main

-- Returns once `seconds` pass without a change: each change (a key too)
-- sets wake, which starts the quiet time again. Ctrl-C and q end it.
function Watch:quiet_for(seconds)
  repeat
    self.wake:clear()
    local woken, e = pcall(self.wake.wait, self.wake, seconds)
    if not woken and not task.is_timeout(e) then error(e, 0) end
  until not woken or self.quit
  self:take_changes()
end

function Watch:loop()
  self:status("running every spec file")
  self:run(self.files)
  while not self.quit do
    if #self.pending_keys == 0 and next(self.changed) == nil then self.wake:wait() end
    self.wake:clear()
    if self.quit then break end
    local key = table.remove(self.pending_keys, 1)
    if key then
      self:on_key(key)
    elseif next(self.changed) ~= nil then
      self:quiet_for(M.DEBOUNCE)
      if self.quit then break end
      local changed = self.changed
      self.changed = {}
      self:on_changes(changed)
    end
  end
end

-- main(runner, opts, files) -> exit code: 0 after q, 130 after Ctrl-C.
-- runner: {Run, discover} of sonde.runner.
function M.main(runner, opts, files)
  local out = output.stdout(opts)
  local self = setmetatable({ runner = runner, opts = opts, files = files, out = out, deps = {}, modules = {},
    watchers = {}, watcher_dir = {}, changed = {}, pending_keys = {}, events = 0, wake = task.event(),
    tty = loop.isatty(1) }, Watch)
  self:record_loads()
  local root = task.run(function()
    self.token = task.persistent_token(function()
      self.events = self.events + 1
      self:take_changes()
      self.wake:set()
    end)
    local keys_token = task.persistent_token(function()
      local bytes, ended = self.keys:take()
      for key in bytes:gmatch(".") do
        key = key:lower()
        if key == "q" or key == "\3" or key == "\4" then
          self.quit = self.quit or "q"
          if self.running then self.running:interrupt() end
        elseif key == "a" or key == "f" then
          self.pending_keys[#self.pending_keys + 1] = key
        end
      end
      if ended then
        self.keys:close()
        self.keys = nil
      end
      self.wake:set()
    end)
    self.keys = ckeys.open(keys_token)
    local remove = task.on_interrupt(function()
      self.quit = "interrupted"
      if self.running then self.running:interrupt() end
      self.wake:set()
    end)
    self:loop()
    remove()
    task.drop_token(self.token)
    task.drop_token(keys_token)
  end)
  for _, w in pairs(self.watchers) do w:close() end
  if self.keys then self.keys:close() end
  if root.err ~= nil then
    io.stderr:write("sonde test: internal error: ", tostring(root.err), "\n", root.traceback or "", "\n")
    return 2
  end
  return self.quit == "interrupted" and 130 or 0
end

return M
