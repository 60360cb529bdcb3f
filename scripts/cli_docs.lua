-- scripts/cli_docs.lua: the man page and the bash and zsh completions of
-- sonde, generated from its one command line: the commands from the usage
-- `SONDE --help` prints (host/main.c), the options of `sonde test` from
-- sonde.runner.options' OPTIONS, those of `sonde load` from
-- sonde.load.cli's. The build runs it with the sonde it built:
--
--   sonde run scripts/cli_docs.lua SONDE OUTDIR   writes OUTDIR/sonde.1,
--                                                 OUTDIR/sonde.bash, OUTDIR/_sonde
local process = require("sonde.process")
local options = require("sonde.runner.options")
local load_cli = require("sonde.load.cli")

local sonde, outdir = arg[1], arg[2]
if not sonde or not outdir then
  io.stderr:write("usage: sonde run scripts/cli_docs.lua SONDE OUTDIR\n")
  os.exit(2)
end

-- usage(text) -> { {synopsis = "sonde run FILE [ARGS...]", words = {"run"}, help = "...",
-- more = {{synopsis=, help=}}} }: usage lines ("usage: sonde CMD ARGS  what it does"), up
-- to the first blank line; a line that does not start with "sonde" goes on the one above
-- (more arguments, or its text when it has no synopsis of its own).
local function usage(text)
  local list = {}
  for line in text:gmatch("([^\n]*)\n") do
    if line == "" then break end
    local indent = #line:match("^%s*")
    line = line:gsub("^usage:", ""):gsub("^%s+", "")
    local synopsis, help = line:match("^(.-)%s%s+(%S.*)$")
    synopsis = synopsis or line
    if not help and indent >= 24 and list[#list] then -- text in the description column alone
      list[#list].help = line
    elseif not synopsis:match("^sonde") and list[#list] then
      table.insert(list[#list].more, { synopsis = synopsis, help = help })
    else
      local words = {}
      for w in synopsis:gmatch("%S+") do
        if w ~= "sonde" and w:match("^%-?%-?[a-z][a-z%-]*$") then words[#words + 1] = w end
      end
      list[#list + 1] = { synopsis = synopsis, words = words, help = help, more = {} }
    end
  end
  return list
end

-- commands() -> usage() of `sonde --help`, then of `sonde load --help`'s own forms
local function commands()
  local code, out, err = process.run { sonde, "--help", timeout = 30 }
  if code ~= 0 then error(sonde .. " --help failed (" .. tostring(code) .. "): " .. err, 0) end
  local list = usage(out)
  if #list == 0 then error(sonde .. " --help printed no usage lines", 0) end
  for _, c in ipairs(usage(load_cli.HELP)) do
    if c.synopsis:match("^sonde load merge") then list[#list + 1] = c end
  end
  return list
end

local function write(name, text)
  local path = outdir .. "/" .. name
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

-- the option rows --help shows, in its two groups
local function rows(busted)
  local list = {}
  for _, row in ipairs(options.OPTIONS) do
    if not row.hidden and (row.busted or false) == busted then list[#list + 1] = row end
  end
  return list
end

-- the rows of `sonde load`'s options
local function load_rows()
  local list = {}
  for _, row in ipairs(load_cli.OPTIONS) do
    if not row.hidden then list[#list + 1] = row end
  end
  return list
end

-- every spelling of a row: -v, --verbose, --no-verbose
local function spellings(row)
  local names = {}
  for _, n in ipairs(row) do names[#names + 1] = n end
  if row.negatable then names[#names + 1] = "--no-" .. row[#row]:sub(3) end
  return names
end

-- sonde's reporters, then busted's names for them
local function reporter_names()
  local names, seen = {}, {}
  for _, n in ipairs(options.REPORTERS) do names[#names + 1], seen[n] = n, true end
  local busted = {}
  for n in pairs(options.BUSTED_OUTPUTS) do
    if not seen[n] then busted[#busted + 1] = n end
  end
  table.sort(busted)
  for _, n in ipairs(busted) do names[#names + 1] = n end
  return names
end

-- what a value of a row of `sonde CMD` is: "reporter", "dir", "file" or "word"
local function value_kind(cmd, row)
  if cmd == "test" and row.key == "outputs" then return "reporter" end
  if row.arg == "DIR" then return "dir" end
  if row.arg == "FILE" or row.arg == "PATH" or (row.arg or ""):match("=FILE$") then return "file" end
  return "word"
end

-- the commands whose options are completed, with their option rows
local function option_sets()
  return { { cmd = "test", rows = options.OPTIONS, paths = "spec path" },
    { cmd = "load", rows = load_cli.OPTIONS, paths = "script" } }
end

-- ---------------------------------------------------------------- man page

local function roff(text)
  text = text:gsub("\\", "\\e"):gsub("%-", "\\-")
  return (text:gsub("^([%.'])", "\\&%1"))
end

local function roff_synopsis(synopsis)
  local out = {}
  for w in synopsis:gmatch("%S+") do
    out[#out + 1] = (w == "sonde" or w:match("^%-?%-?[a-z][a-z%-]*$")) and ("\\fB" .. roff(w) .. "\\fR")
      or roff(w)
  end
  return table.concat(out, " ")
end

local function man_rows(lines, list)
  for _, row in ipairs(list) do
    local names = {}
    for _, n in ipairs(spellings(row)) do names[#names + 1] = "\\fB" .. roff(n) .. "\\fR" end
    local head = table.concat(names, ", ")
    if row.arg then head = head .. " \\fI" .. roff(row.arg) .. "\\fR" end
    lines[#lines + 1] = ".TP"
    lines[#lines + 1] = head
    lines[#lines + 1] = roff(row.help or row.note)
  end
end

local function man(cmds, version)
  local lines = {
    '.TH SONDE 1 "" "' .. roff(version) .. '" "User Commands"',
    ".\\\" generated by scripts/cli_docs.lua from sonde --help and sonde.runner.options: do not edit",
    ".SH NAME",
    "sonde \\- run tests written in Lua: API scenarios, spec suites, live checks, a REPL",
    ".SH SYNOPSIS",
    ".nf",
  }
  for _, c in ipairs(cmds) do
    local more = {}
    for _, m in ipairs(c.more) do more[#more + 1] = roff_synopsis(m.synopsis) end
    lines[#lines + 1] = roff_synopsis(c.synopsis) .. (#more > 0 and (" " .. table.concat(more, " ")) or "")
  end
  lines[#lines + 1] = ".fi"
  lines[#lines + 1] = ".SH DESCRIPTION"
  lines[#lines + 1] = "sonde embeds LuaJIT and runs tests written in Lua. Every test, hook and script is a task "
    .. "on an event loop, so it may make HTTP requests, sleep, spawn processes and wait for events without "
    .. "blocking the others. Spec files use busted's DSL with luassert's assertions."
  lines[#lines + 1] = ".SH COMMANDS"
  for _, c in ipairs(cmds) do
    if c.help then
      lines[#lines + 1] = ".TP"
      lines[#lines + 1] = roff_synopsis(c.synopsis)
      lines[#lines + 1] = roff(c.help)
      for _, m in ipairs(c.more) do
        lines[#lines + 1] = ".br"
        lines[#lines + 1] = "with " .. roff_synopsis(m.synopsis) .. ": " .. roff(m.help or "")
      end
    end
  end
  lines[#lines + 1] = ".SH TEST OPTIONS"
  man_rows(lines, rows(false))
  lines[#lines + 1] = ".SH BUSTED'S OPTIONS"
  lines[#lines + 1] = "With busted's meaning; a .busted file may set any of their long names."
  man_rows(lines, rows(true))
  lines[#lines + 1] = ".PP"
  lines[#lines + 1] = roff(options.PATHS_HELP)
  lines[#lines + 1] = ".SH LOAD OPTIONS"
  lines[#lines + 1] = "Of \\fBsonde load\\fR SCRIPT, which runs the script's scenarios as a load test with k6's "
    .. "semantics; " .. roff(load_cli.help():match("(exit codes: [^\n]*)") or "") .. "."
  man_rows(lines, load_rows())
  lines[#lines + 1] = ".SH EXIT STATUS"
  for _, c in ipairs(options.EXIT_CODES) do
    lines[#lines + 1] = ".TP"
    lines[#lines + 1] = tostring(c[1])
    lines[#lines + 1] = roff(c[2])
  end
  lines[#lines + 1] = ".SH SEE ALSO"
  lines[#lines + 1] = "\\fBbusted\\fR(1), \\fBluajit\\fR(1)"
  return table.concat(lines, "\n") .. "\n"
end

-- ------------------------------------------------------------------- bash

local function words_of(list) return table.concat(list, " ") end

local function bash(cmds)
  local command_words = {} -- what may follow "sonde": each usage line's first word
  for _, c in ipairs(cmds) do
    local first = c.words[1] or ""
    for i, w in ipairs(c.words) do
      local dup = false
      for _, x in ipairs(command_words) do dup = dup or x == w end
      if not dup and (i == 1 or first:match("^%-")) then command_words[#command_words + 1] = w end
    end
  end
  local lines = {
    "# bash completion for sonde; generated by scripts/cli_docs.lua from sonde --help,",
    "# sonde.runner.options and sonde.load.cli: do not edit",
    "_sonde() {",
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}",
    "    COMPREPLY=()",
    "    if [ \"$COMP_CWORD\" -eq 1 ]; then",
    "        case $cur in",
    "        -*) COMPREPLY=($(compgen -W '" .. words_of(command_words) .. "' -- \"$cur\")) ;;",
    "        *) COMPREPLY=($(compgen -W '" .. words_of(command_words) .. "' -- \"$cur\")"
      .. " $(compgen -f -X '!*.lua' -- \"$cur\") $(compgen -d -- \"$cur\")) ;;",
    "        esac",
    "        return 0",
    "    fi",
    "    case ${COMP_WORDS[1]} in",
  }
  for _, set in ipairs(option_sets()) do
    local words, by_kind = {}, { reporter = {}, dir = {}, file = {}, word = {} }
    for _, row in ipairs(set.rows) do
      if not row.hidden then
        for _, n in ipairs(spellings(row)) do words[#words + 1] = n end
        if row.kind ~= "flag" and row.kind ~= "optional" then -- an optional value goes after =
          for _, n in ipairs(row) do table.insert(by_kind[value_kind(set.cmd, row)], n) end
        end
      end
    end
    lines[#lines + 1] = "    " .. set.cmd .. ")"
    lines[#lines + 1] = "        case $prev in"
    local actions = { reporter = "COMPREPLY=($(compgen -W '" .. words_of(reporter_names()) .. "' -- \"$cur\"))",
      dir = "COMPREPLY=($(compgen -d -- \"$cur\"))", file = "COMPREPLY=($(compgen -f -- \"$cur\"))", word = ":" }
    for _, kind in ipairs { "reporter", "dir", "file", "word" } do
      if #by_kind[kind] > 0 then
        lines[#lines + 1] = "        " .. table.concat(by_kind[kind], "|") .. ") " .. actions[kind] .. "; return 0 ;;"
      end
    end
    lines[#lines + 1] = "        esac"
    lines[#lines + 1] = "        case $cur in"
    lines[#lines + 1] = "        -*) COMPREPLY=($(compgen -W '" .. words_of(words) .. "' -- \"$cur\")) ;;"
    lines[#lines + 1] = "        esac ;;"
  end
  lines[#lines + 1] = "    esac # run, live and the paths: files, completed by default"
  lines[#lines + 1] = "    return 0"
  lines[#lines + 1] = "}"
  lines[#lines + 1] = "complete -o bashdefault -o default -F _sonde sonde"
  return table.concat(lines, "\n") .. "\n"
end

-- -------------------------------------------------------------------- zsh

local function zsh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- a description inside _arguments' brackets or _describe's "word:text"
local function zsh_text(s) return (s:gsub("\\", "\\\\"):gsub("%[", "\\["):gsub("%]", "\\]"):gsub(":", "\\:")) end

local function zsh_action(cmd, row)
  local kind = value_kind(cmd, row)
  if kind == "reporter" then return "(" .. words_of(reporter_names()) .. ")" end
  if kind == "dir" then return "_files -/" end
  if kind == "file" then return "_files" end
  return " "
end

local function zsh(cmds)
  local lines = {
    "#compdef sonde",
    "# zsh completion for sonde; generated by scripts/cli_docs.lua from sonde --help,",
    "# sonde.runner.options and sonde.load.cli: do not edit",
    "_sonde() {",
    "  local -a commands",
    "  commands=(",
  }
  local seen = {}
  for _, c in ipairs(cmds) do
    local w = c.words[1]
    if w and not seen[w] and not w:match("^%-") then
      seen[w] = true
      lines[#lines + 1] = "    " .. zsh_quote(zsh_text(w) .. ":" .. zsh_text(c.help or c.synopsis))
    end
  end
  lines[#lines + 1] = "  )"
  lines[#lines + 1] = "  if (( CURRENT == 2 )); then"
  lines[#lines + 1] = "    _alternative 'commands:command:_describe -t commands command commands' \\"
  lines[#lines + 1] = "      'options:option:(--help --version)' 'files:scenario:_files -g \"*.lua\"'"
  lines[#lines + 1] = "    return"
  lines[#lines + 1] = "  fi"
  lines[#lines + 1] = "  case $words[2] in"
  for _, set in ipairs(option_sets()) do
    lines[#lines + 1] = "  " .. set.cmd .. ")"
    lines[#lines + 1] = "    shift words; (( CURRENT-- ))"
    lines[#lines + 1] = "    _arguments -s \\"
    for _, row in ipairs(set.rows) do
      if not row.hidden then
        local names = spellings(row)
        local repeat_ = (row.kind == "list" or row.kind == "csv" or row.kind == "path") and "*" or ""
        local head = #names == 1 and names[1] or ("{" .. table.concat(names, ",") .. "}")
        local spec = "[" .. zsh_text(row.help or row.note) .. "]"
        if row.kind ~= "flag" and row.kind ~= "optional" then -- an optional value goes after =
          spec = spec .. ":" .. zsh_text(row.arg or "value") .. ":" .. zsh_action(set.cmd, row)
        end
        lines[#lines + 1] = "      " .. (repeat_ ~= "" and zsh_quote(repeat_) or "") .. head .. zsh_quote(spec) .. " \\"
      end
    end
    lines[#lines + 1] = "      '*:" .. set.paths .. ":_files'"
    lines[#lines + 1] = "    ;;"
  end
  lines[#lines + 1] = "  *) _files ;;"
  lines[#lines + 1] = "  esac"
  lines[#lines + 1] = "}"
  lines[#lines + 1] = "_sonde \"$@\""
  return table.concat(lines, "\n") .. "\n"
end

local cmds = commands()
local code, out = process.run { sonde, "--version", timeout = 30 }
local version = code == 0 and out:match("^(sonde %S+)") or "sonde"
write("sonde.1", man(cmds, version))
write("sonde.bash", bash(cmds))
write("_sonde", zsh(cmds))
