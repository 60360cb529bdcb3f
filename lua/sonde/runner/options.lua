-- sonde.runner.options: the command line of `sonde test`, and reporters.
--
-- One table, OPTIONS, is the command line: parsing, `--help`, and the keys
-- a `.busted` file may set (sonde.runner.busted) all come from its rows, so
-- adding an option is one row here plus its use in the runner. busted's
-- flags are rows too, with busted's meaning; those sonde cannot honour say
-- so in one line (`note`) instead of being silently dropped. A reporter is
-- one file lua/sonde/runner/reporters/NAME.lua plus its name in REPORTERS.
local shard = require("sonde.runner.shard")
local command_line = require("sonde.lib.command_line")

local M = {}

M.REPORTERS = { "human", "tap", "junit", "json", "table", "html" }

-- busted's output handler names, and the sonde reporter each becomes.
M.BUSTED_OUTPUTS = { utfTerminal = "human", plainTerminal = "human", gtest = "human", TAP = "tap", junit = "junit",
  json = "json" }

-- Each row is a row of sonde.lib.command_line (names, key, kind, arg,
-- help, note, hidden: see there), plus `busted`: busted's own flag (its
-- meaning is busted's), listed under its own heading in --help.
local OPTIONS = {
  { "-o", "--output", key = "outputs", kind = "list", arg = "NAME[=FILE]",
    help = "human (default), tap, junit, json, table or html (one self-contained page: -o html=report.html); "
      .. "repeatable. busted's names work too: utfTerminal, plainTerminal and gtest are human, TAP is tap" },
  { "--filter", kind = "list", arg = "PATTERN", help = "run tests whose full name matches (Lua pattern; any of)" },
  { "--filter-out", kind = "list", arg = "PATTERN", help = "skip tests whose full name matches" },
  { "-t", "--tags", kind = "csv", arg = "A,B", help = "run tests with any of these #tags" },
  { "--exclude-tags", kind = "csv", arg = "A,B", help = "skip tests with any of these #tags" },
  { "-p", "--pattern", kind = "list", arg = "PATTERN",
    help = "in directories, run .lua files whose name matches (default _spec); repeatable" },
  { "--exclude-pattern", kind = "list", arg = "PATTERN", help = "in directories, skip files whose name matches" },
  { "--timeout", kind = "number", min = 0, max = 1e9, -- larger ones overflow the timers
    arg = "SECONDS", help = "per test, stops busy loops too (default 30)" },
  { "--fail-fast", kind = "flag", help = "stop at the first failure" },
  { "--shuffle", kind = "flag", negatable = true,
    help = "random order of files and tests (the printed seed replays it)" },
  { "--seed", kind = "int", min = 0, max = 2147483647, arg = "N", help = "the seed of --shuffle and --interleave" },
  { "--interleave", kind = "flag", help = "ready tasks resume in a seeded random order" },
  { "--repeat", key = "repeat_count", kind = "int", min = 1, arg = "N", help = "run everything N times" },
  { "--retries", kind = "int", min = 0, arg = "N", help = "rerun failures; pass-after-fail is flaky" },
  { "--fail-on-flaky", kind = "flag", help = "flaky tests fail the run" },
  { "--shard", kind = "string", arg = "K/N", help = "run shard K of N (split by file and test name)" },
  { "--shard-durations", kind = "string", arg = "FILE", help = "balance shards by a previous json report" },
  { "-j", "--jobs", kind = "int", min = 1, arg = "N", help = "run files in N worker processes" },
  { "-s", "--no-capture", kind = "flag",
    help = "let tests print instead of capturing their output (busted's -s is --enable-sound)" },
  { "-l", "--list", kind = "flag", help = "list tests with file:line, run nothing" },
  { "-v", "--verbose", kind = "flag", negatable = true, help = "one line per test" },
  { "--pass-with-no-tests", kind = "flag", help = "a run that finds no test exits 0, not 5" },
  { "--watch", kind = "flag",
    help = "run, then run again the spec files that load a file that changes (keys: a all, f failures, q quit)" },
  { "-c", "--coverage", kind = "optional", negatable = true, arg = "[=FILE]",
    help = "line coverage of the code under test, written as LCOV to FILE (default lcov.info), summed up in a table; "
      .. "busted's -c too" },
  { "--coverage-include", kind = "list", arg = "PATTERN",
    help = "cover only files whose path without .lua matches (Lua pattern; repeatable); also sonde's own modules "
      .. "and luassert, left out otherwise" },
  { "--coverage-exclude", kind = "list", arg = "PATTERN",
    help = "do not cover files whose path without .lua matches (spec files and the helper never are)" },
  { "--worker", kind = "flag", hidden = true }, -- internal: a --jobs worker
  { "--version", kind = "flag", help = "print sonde's version (as sonde --version) and run nothing" },

  -- busted's flags, with busted's meaning
  { "-C", "--directory", kind = "string", arg = "DIR", busted = true,
    help = "change to DIR first (where .busted is read)" },
  { "-f", "--config-file", kind = "string", arg = "FILE", busted = true,
    help = "read options from FILE instead of ./.busted" },
  { "-r", "--run", kind = "string", arg = "NAME", busted = true,
    help = "the task of .busted to run (default: default)" },
  { "-m", "--lpath", kind = "path", arg = "PATH", busted = true,
    help = "prefixed to package.path (default ./src/?.lua;./src/?/?.lua;./src/?/init.lua)" },
  { "--cpath", kind = "path", arg = "PATH", busted = true,
    help = "prefixed to package.cpath (default ./csrc/?.so;./csrc/?/?.so)" },
  { "--helper", kind = "string", arg = "PATH", busted = true,
    help = "a Lua file (or module) run before the spec files" },
  { "-Xhelper", key = "xhelper", kind = "csv", arg = "OPTION", busted = true,
    help = "an argument for the helper (its arg)" },
  { "-Xoutput", key = "xoutput", kind = "csv", arg = "OPTION", busted = true,
    help = "an argument for -o: the file of a junit report, as busted's" },
  { "-e", key = "execute", kind = "list", arg = "STATEMENT", busted = true, help = "run the Lua STATEMENT first" },
  { "-k", "--keep-going", kind = "flag", negatable = true, busted = true,
    help = "go on after a failure (the default); --no-keep-going is --fail-fast" },
  { "-R", "--recursive", kind = "flag", negatable = true, busted = true,
    help = "look into subdirectories (the default)" },
  { "--shuffle-files", kind = "flag", negatable = true, busted = true, help = "random file order" },
  { "--shuffle-tests", kind = "flag", negatable = true, busted = true, help = "random test order within a file" },
  { "--sort", kind = "flag", negatable = true, busted = true,
    help = "files in name order (the default) and tests by name" },
  { "--sort-files", kind = "flag", negatable = true, busted = true, help = "files in name order (the default)" },
  { "--sort-tests", kind = "flag", negatable = true, busted = true, help = "tests by name within a block" },
  { "--suppress-pending", kind = "flag", negatable = true, busted = true,
    help = "leave pending tests out of the output" },
  { "--lazy", kind = "flag", negatable = true, busted = true, help = "setup/teardown are lazy_setup/lazy_teardown" },
  { "--auto-insulate", kind = "flag", negatable = true, busted = true,
    help = "each file restores globals and package.loaded (the default)" },
  { "--lua", kind = "string", arg = "LUA", busted = true,
    note = "--lua is ignored: sonde runs the specs in its own LuaJIT" },
  { "--ignore-lua", kind = "flag", busted = true, hidden = true },
  { "--lang", kind = "string", arg = "LANG", busted = true, help = "only en: messages are sonde's own" },
  { "--loaders", kind = "csv", arg = "NAME", busted = true, help = "only lua: moonscript and terra are not loaded" },
  { "--coverage-config-file", kind = "string", arg = "FILE", busted = true,
    help = "luacov's config file, whose include and exclude lists --coverage reads (default .luacov when there is " ..
        "one)" },
  { "--enable-sound", kind = "flag", negatable = true, busted = true,
    note = "--enable-sound is ignored: sonde plays no sound" },
  { "--defer-print", kind = "flag", negatable = true, busted = true,
    note = "--defer-print is ignored: sonde captures a test's output and shows it with its failure" },
}

-- name -> row, for every spelling.
local BY_NAME = command_line.index(OPTIONS)
M.OPTIONS, M.BY_NAME = OPTIONS, BY_NAME

-- the values of what the command line does not set (lists start empty)
local function defaults()
  return { paths = {}, timeout = 30, repeat_count = 1, retries = 0, jobs = 1 }
end

-- class_end(p, i) -> the index after the set p[i] == "[" opens, or nil
-- when it is never closed (as lstrlib reads it: "[]]" is a set of "]").
local function class_end(p, i)
  i = i + 1
  if p:sub(i, i) == "^" then i = i + 1 end
  repeat
    if i > #p then return nil end
    if p:sub(i, i) == "%" then i = i + 1 end
    i = i + 1
  until p:sub(i, i) == "]"
  return i + 1
end

-- pattern_error(p) -> nil, or what is wrong with the Lua pattern p. Lua's
-- matcher finds a malformed part only when a match reaches it (find("",
-- "t[") passes, and the first name with a "t" raises), so read it through.
local function pattern_error(p)
  if not p:find("[%^%$%*%+%?%.%(%[%%%-]") then return nil end -- no specials: found as plain text
  local i, n, closed = 1, #p, {} -- closed[k]: capture k is complete
  while i <= n do
    local c, d = p:sub(i, i), p:sub(i + 1, i + 1)
    if c == "(" then
      if #closed == 32 then return "too many captures" end
      closed[#closed + 1] = d == ")"
      i = d == ")" and i + 2 or i + 1
    elseif c == ")" then
      local k = #closed
      while k > 0 and closed[k] do k = k - 1 end
      if k == 0 then return "')' without '('" end
      closed[k], i = true, i + 1
    elseif c == "%" and d == "" then
      return "ends with '%'"
    elseif c == "%" and d == "b" then
      if i + 3 > n then return "missing arguments to '%b'" end
      i = i + 4
    elseif c == "%" and d == "f" then
      if p:sub(i + 2, i + 2) ~= "[" then return "missing '[' after '%f'" end
      i = class_end(p, i + 2)
      if not i then return "missing ']'" end
    elseif c == "%" and d:find("%d") then
      if not closed[tonumber(d)] then return "invalid capture index %" .. d end
      i = i + 2
    elseif c == "%" then
      i = i + 2
    elseif c == "[" then
      i = class_end(p, i)
      if not i then return "missing ']'" end
    else
      i = i + 1
    end
  end
  for k = 1, #closed do
    if not closed[k] then return "unfinished capture" end
  end
end

-- any_matches(name, patterns) -> true when name matches one of the Lua
-- patterns of a list option (--filter, --pattern, --coverage-include...).
function M.any_matches(name, patterns)
  for _, pat in ipairs(patterns) do
    if name:find(pat) then return true end
  end
  return false
end

local function bad_pattern(name, patterns)
  for _, pat in ipairs(patterns) do
    local why = pattern_error(pat)
    if why then return name .. " expects a Lua pattern, got '" .. pat .. "': " .. why end
  end
end

-- busted's flags in sonde's terms. A flag left unset keeps its default;
-- `false` is a --no-NAME.
local function settle_busted(opts)
  if opts.keep_going == false then opts.fail_fast = true end
  if opts.shuffle == false then opts.shuffle_files, opts.shuffle_tests = false, false end
  if opts.shuffle then
    if opts.shuffle_files == nil then opts.shuffle_files = true end
    if opts.shuffle_tests == nil then opts.shuffle_tests = true end
  end
  opts.shuffle = opts.shuffle_files or opts.shuffle_tests or nil
  if opts.sort and opts.sort_tests == nil then opts.sort_tests = true end
  for _, loader in ipairs(opts.loaders or {}) do
    if loader ~= "lua" then
      opts.notes[#opts.notes + 1] = "--loaders " .. loader .. " is ignored: only Lua spec files are loaded"
    end
  end
  if opts.lang and opts.lang ~= "en" then
    opts.notes[#opts.notes + 1] = "--lang " .. opts.lang .. " is ignored: messages are in English"
  end
end

-- Checks that need several options, or reading a file. `root` is where
-- specs are looked for when no path is given.
function M.finish(opts, root)
  if #opts.paths == 0 then opts.paths = root or { "specs" } end
  if #opts.outputs == 0 then opts.outputs = { "human" } end
  settle_busted(opts)
  if opts.seed and not opts.interleave and opts.shuffle == nil then -- a seed alone is for --shuffle
    opts.shuffle, opts.shuffle_files, opts.shuffle_tests = true, true, true
  end
  local bad = bad_pattern("--pattern", opts.pattern) or bad_pattern("--exclude-pattern", opts.exclude_pattern)
    or bad_pattern("--filter", opts.filter) or bad_pattern("--filter-out", opts.filter_out)
    or bad_pattern("--coverage-include", opts.coverage_include) or bad_pattern("--coverage-exclude",
        opts.coverage_exclude)
  if bad then return nil, bad end
  for _, tag in ipairs(opts.exclude_tags) do
    for _, wanted in ipairs(opts.tags) do
      if tag == wanted then return nil, "--tags and --exclude-tags both name '" .. tag .. "'" end
    end
  end
  if type(opts.shard) == "string" then
    local spec, err = shard.parse(opts.shard)
    if not spec then return nil, err end
    opts.shard = spec
  end
  if opts.watch then -- its runs are in this process, one file after another, over the whole suite
    local with = opts.jobs > 1 and "--jobs" or opts.shard and "--shard" or opts.coverage and "--coverage"
      or opts.list and "--list"
    if with then
      return nil, "--watch cannot be combined with " .. with .. ": it runs the spec files in this process, one after "
        .. "another (filters, tags, --output, --retries and --fail-fast go with it)"
    end
  end
  if opts.shard_durations then
    if not opts.shard then return nil, "--shard-durations needs --shard K/N" end
    local durations, err = shard.durations(opts.shard_durations)
    if not durations then return nil, err end
    opts.durations = durations
  end
  return opts
end

-- parse_args(paths, args) -> opts (not finished: a .busted file may still
-- fill what the command line left unset) | nil, "one line saying what is
-- wrong". opts.given[key] is true for what the command line set.
function M.parse_args(paths, args)
  local opts = defaults()
  for _, p in ipairs(paths or {}) do table.insert(opts.paths, p) end
  local err
  opts, err = command_line.parse(BY_NAME, args, opts, "test")
  if not opts then return nil, err end
  if #opts.paths > 0 then opts.given.paths = true end
  return opts
end

-- parse(paths, args) -> opts | nil, err: the command line alone.
function M.parse(paths, args)
  local opts, err = M.parse_args(paths, args)
  if not opts then return nil, err end
  return M.finish(opts)
end

-- The rest of --help, also read by scripts/cli_docs.lua for the man page.
M.PATHS_HELP = "PATHS default to .busted's ROOT, else spec/ when it exists, else specs/."
M.EXIT_CODES = { { 0, "all passed" }, { 1, "failures" }, { 2, "usage or load errors" }, { 5, "no tests found" },
  { 130, "interrupted" } }

-- help() -> the text of `sonde test --help`, from OPTIONS.
function M.help()
  local lines = {}
  command_line.help_section(lines, "test options:", OPTIONS, function(row) return not row.busted end)
  lines[#lines + 1] = ""
  command_line.help_section(lines, "busted's options, with busted's meaning (a .busted file may set any of their long "
    .. "names):", OPTIONS, function(row) return row.busted end)
  lines[#lines + 1] = ""
  lines[#lines + 1] = M.PATHS_HELP
  local codes = {}
  for _, c in ipairs(M.EXIT_CODES) do codes[#codes + 1] = c[1] .. " " .. c[2] end
  lines[#lines + 1] = "exit codes: " .. table.concat(codes, ", ")
  return table.concat(lines, "\n") .. "\n"
end

local function known_reporter(name)
  for _, r in ipairs(M.REPORTERS) do
    if r == name then return true end
  end
  return false
end

-- output_spec(spec, opts) -> name, file: busted's names become sonde's;
-- busted writes a junit report to the file -Xoutput names.
local function output_spec(spec, opts)
  local name, file = spec:match("^([^=]+)=(.*)$")
  name = name or spec
  local mapped = M.BUSTED_OUTPUTS[name]
  if mapped then
    if name == "gtest" then opts.verbose = true end
    if name == "junit" and not file then file = opts.xoutput[1] end
    name = mapped
  end
  return name, file
end

-- wants_detail(opts) -> whether a reporter of the run asks for results
-- that carry their blocks, times and requests (what open_reporters sets as
-- opts.detail), known before any report is opened.
function M.wants_detail(opts)
  for _, spec in ipairs(opts.outputs) do
    local name = output_spec(spec, opts)
    if known_reporter(name) and require("sonde.runner.reporters." .. name).wants_detail then return true end
  end
  return nil
end

-- open_reporters(opts, stdout) -> list | nil, err: each "NAME[=FILE]"
-- output; those without a file write to `stdout`.
function M.open_reporters(opts, stdout)
  local list, opened = {}, {}
  for _, spec in ipairs(opts.outputs) do
    local name, file = output_spec(spec, opts)
    if file == "" then return nil, "-o " .. spec .. ": expected a file name after '='" end
    if not known_reporter(name) then
      return nil, "unknown reporter '" .. name .. "' (expected one of: " .. table.concat(M.REPORTERS, ", ")
        .. ", or busted's utfTerminal, plainTerminal, gtest, TAP)"
    end
    local out = stdout
    if file then
      local f, err = io.open(file, "w")
      if not f then
        for _, o in ipairs(opened) do o:close() end
        return nil, "cannot write the " .. name .. " report: " .. err
      end
      out = f
      opened[#opened + 1] = f
    end
    local mod = require("sonde.runner.reporters." .. name)
    if mod.wants_detail then opts.detail = true end -- results carry their blocks, times and requests
    local r = mod.new(out, opts, file == nil)
    r.out, r.owns_out, r.name, r.file = out, file ~= nil, name, file
    list[#list + 1] = r
  end
  return list
end

-- to_terminal(list) -> true when a reporter writes to stdout.
function M.to_terminal(list)
  for _, r in ipairs(list) do
    if not r.owns_out then return true end
  end
  return false
end

-- close_reporters(list) -> the number of reports that could not be
-- written (disk full...), each named in one line on stderr.
-- human_on_terminal(list) -> true when the human reporter writes to stdout.
function M.human_on_terminal(list)
  for _, r in ipairs(list) do
    if r.name == "human" and not r.owns_out then return true end
  end
  return false
end

function M.close_reporters(list)
  local failed = 0
  for _, r in ipairs(list) do
    local ok, err
    if r.owns_out then
      ok, err = r.out:flush()
      local closed, cerr = r.out:close()
      if ok then ok, err = closed, cerr end
    else
      ok, err = r.out:flush()
    end
    if not ok and r.owns_out and not r.failed then -- a reporter that failed has said so
      failed = failed + 1
      io.stderr:write("sonde test: cannot write the ", r.name, " report to ", r.file, ": ", tostring(err), "\n")
    end
  end
  return failed
end

return M
